"""SARIF output: every rule carries its own description and help link, paths are relative to
%SRCROOT%, and the SARIF multitool finds nothing to warn about.

The multitool check runs when TIDEFLOW_SARIF_MULTITOOL names the multitool's executable;
.ci/run installs it from .ci/sarif/package.json and sets the variable.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from dsl.formatters import DOCS_URL, code_titles
from dsl.lint.rules import CODES
from dsl.lint.titles import TITLES
from dsl.loader import LOADER_CODES
from dsl.schema_check import SCHEMA_CODES

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "lint"


def _sarif(*paths: str, cwd: Path = ROOT) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-m", "interpreter", "validate", "--format", "sarif", *paths],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode in (0, 1), proc.stderr
    document: dict[str, Any] = json.loads(proc.stdout)
    return document


def test_every_lint_code_has_its_own_title_matching_docs() -> None:
    assert set(TITLES) == set(CODES)
    table = dict(
        re.findall(
            r"^\| \[(TF2\d\d)\]\(#tf2\d\d\) \| (?:error|warning) \| (.*) \|$",
            (ROOT / "docs" / "lint.md").read_text(encoding="utf-8"),
            re.MULTILINE,
        )
    )
    assert table == TITLES
    every = {**LOADER_CODES, **SCHEMA_CODES, **TITLES}
    lowered = [title.lower() for title in every.values()]
    assert len(set(lowered)) == len(lowered), "two codes share one title"
    assert code_titles().keys() >= every.keys()


def test_rules_have_full_descriptions_and_help_links() -> None:
    run = _sarif("tests/fixtures/lint/", "tests/fixtures/invalid/")["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    assert len(rules) >= 20
    assert run["tool"]["driver"]["informationUri"].startswith("https://")
    for rule in rules:
        page = "lint.md" if rule["id"].startswith("TF2") else "diagnostics.md"
        assert rule["helpUri"] == f"{DOCS_URL}/{page}#{rule['id'].lower()}"
        assert rule["fullDescription"]["text"].startswith(rule["id"])
        assert rule["name"] != rule["id"] and re.fullmatch(r"(?:[A-Z][a-z0-9]+)+", rule["name"])
    for key in ("shortDescription", "fullDescription"):
        texts = [rule[key]["text"] for rule in rules]
        assert len(set(texts)) == len(texts), f"two rules share one {key}"


def test_paths_are_relative_to_srcroot(tmp_path: Path) -> None:
    outside = tmp_path / "my flow.yaml"
    outside.write_text((FIXTURES / "catch_all.yaml").read_text(encoding="utf-8"))
    document = _sarif("tests/fixtures/lint/catch_all.yaml", str(outside))
    run = document["runs"][0]
    assert run["originalUriBaseIds"]["SRCROOT"]["uri"] == ROOT.as_uri() + "/"
    locations = [r["locations"][0]["physicalLocation"] for r in run["results"]]
    inside = [
        loc["artifactLocation"] for loc in locations if "uriBaseId" in loc["artifactLocation"]
    ]
    assert inside and all(a["uri"] == "tests/fixtures/lint/catch_all.yaml" for a in inside)
    others = [loc["artifactLocation"]["uri"] for loc in locations]
    assert outside.as_uri() in others and "my%20flow.yaml" in outside.as_uri()
    for loc in locations:
        assert loc["region"]["snippet"]["text"].strip()
        assert loc["contextRegion"]["startLine"] <= loc["region"]["startLine"]


MULTITOOL = os.environ.get("TIDEFLOW_SARIF_MULTITOOL")


@pytest.mark.skipif(not MULTITOOL, reason="TIDEFLOW_SARIF_MULTITOOL is not set (.ci/run sets it)")
def test_sarif_multitool_finds_no_error_or_warning(tmp_path: Path) -> None:
    report = tmp_path / "tideflow.sarif"
    document = _sarif("tests/fixtures/lint/", "samples/", "tests/fixtures/invalid/")
    report.write_text(json.dumps(document), encoding="utf-8")
    out = tmp_path / "multitool.sarif"
    assert MULTITOOL is not None
    proc = subprocess.run(
        [MULTITOOL, "validate", "--level", "Error;Warning", "-o", str(out), str(report)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    findings = json.loads(out.read_text(encoding="utf-8"))["runs"][0]["results"]
    assert findings == [], "\n".join(f["message"]["text"] for f in findings)


def test_docs_and_package_name_the_same_project_url() -> None:
    from dsl.formatters import PROJECT_URL

    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert f'Homepage = "{PROJECT_URL}"' in pyproject
    diagnostics = (ROOT / "docs" / "diagnostics.md").read_text(encoding="utf-8")
    assert f"- repo: {PROJECT_URL}\n" in diagnostics
    assert "<owner>" not in diagnostics
