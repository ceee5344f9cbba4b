"""Render validation results: text (people), json (tools), github (Actions annotations), sarif
(code scanning). Each formatter takes the results of every checked file and returns the whole
output as one string."""

from __future__ import annotations

import importlib
import json
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

from dsl.diagnostics import Diagnostic, Severity
from dsl.loader import LOADER_CODES
from dsl.source_file import read_bytes
from dsl.validate import INTERNAL_CODES, ValidationResult

Formatter = Callable[[Sequence[ValidationResult]], str]


def summary(results: Sequence[ValidationResult]) -> tuple[int, int, int]:
    """(files, errors, warnings)."""
    errors = sum(r.errors for r in results)
    warnings = sum(r.warnings for r in results)
    return len(results), errors, warnings


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def summary_line(results: Sequence[ValidationResult]) -> str:
    files, errors, warnings = summary(results)
    return f"{_plural(errors, 'error')}, {_plural(warnings, 'warning')} in {_plural(files, 'file')}"


# --- text --------------------------------------------------------------------------------------


def format_text(
    results: Sequence[ValidationResult], *, sources: Mapping[str, str] | None = None
) -> str:
    """`file:line:col: severity[CODE] message`, the source line with a caret, the hint; then
    the summary line. `sources` maps file names to text for files without a loaded document
    (the file is otherwise read again, best effort)."""
    out: list[str] = []
    for result in results:
        lines = _source_lines(result, sources)
        for d in result.diagnostics:
            out.append(f"{d.file}:{d.line}:{d.column}: {d.severity.value}[{d.code}] {d.message}")
            if lines is not None and 0 < d.line <= len(lines):
                source = lines[d.line - 1].replace("\t", " ").rstrip("\r")
                if source.strip():
                    out.append(f"    {source}")
                    out.append("    " + " " * min(d.column - 1, len(source)) + "^")
            if d.hint:
                out.append(f"  hint: {d.hint}")
    out.append(summary_line(results))
    return "\n".join(out) + "\n"


def _source_lines(result: ValidationResult, sources: Mapping[str, str] | None) -> list[str] | None:
    if not result.diagnostics:
        return None
    if result.document is not None:
        return result.document.text.split("\n")
    if sources is not None and result.file in sources:
        return sources[result.file].split("\n")
    if result.file.startswith("<"):
        return None
    raw, _problem = read_bytes(result.file)
    if raw is None:
        return None
    return raw.decode("utf-8-sig", "replace").split("\n")


# --- json --------------------------------------------------------------------------------------


def format_json(results: Sequence[ValidationResult]) -> str:
    files, errors, warnings = summary(results)
    payload = {
        "files": files,
        "errors": errors,
        "warnings": warnings,
        "diagnostics": [d.to_dict() for r in results for d in r.diagnostics],
    }
    return json.dumps(payload, ensure_ascii=False, indent=2) + "\n"


# --- github ------------------------------------------------------------------------------------


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def format_github(results: Sequence[ValidationResult]) -> str:
    """GitHub Actions workflow commands: each finding becomes an annotation on the file."""
    out: list[str] = []
    for result in results:
        for d in result.diagnostics:
            level = "error" if d.severity is Severity.ERROR else "warning"
            message = d.message + (f"\nhint: {d.hint}" if d.hint else "")
            out.append(
                f"::{level} file={_escape_property(d.file)},line={d.line},col={d.column},"
                f"title={_escape_property(d.code)}::{_escape_data(message)}"
            )
    out.append(summary_line(results))
    return "\n".join(out) + "\n"


# --- sarif -------------------------------------------------------------------------------------


# Where the documentation lives: the rule help links of SARIF output point into it. The same
# address is the project URL in pyproject.toml and the pre-commit `repo:` in docs/diagnostics.md.
PROJECT_URL = "https://github.com/tideflow/tideflow"
DOCS_URL = PROJECT_URL + "/blob/main/docs"


def code_titles() -> dict[str, str]:
    """One title per known code: the loader's, the schema check's, and lint's own line per code
    (dsl/lint/titles.py, when lint is installed)."""
    from dsl.schema_check import SCHEMA_CODES  # the schema pass: imported when it is needed

    titles = {**LOADER_CODES, **SCHEMA_CODES, **INTERNAL_CODES}
    try:
        lint_titles: dict[str, str] = importlib.import_module("dsl.lint.titles").TITLES
    except ImportError:
        return titles
    titles.update(lint_titles)
    return titles


def _rule_page(code: str) -> str:
    return "lint.md" if code.startswith("TF2") else "diagnostics.md"


def _sarif_rule(code: str, title: str, severity: Severity) -> dict[str, Any]:
    """A rule as the SARIF multitool wants it: an opaque id, a readable Pascal-case name, a
    short and a full description that no other rule shares, and a help link."""
    plain = title.replace("`", "")
    sentence = plain[0].upper() + plain[1:]
    help_uri = f"{DOCS_URL}/{_rule_page(code)}#{code.lower()}"
    stage = {"0": "loading", "1": "schema check", "2": "lint", "9": "internal"}.get(
        code[2], "check"
    )
    full = f"{code} ({stage}, {severity.value}): {sentence}. Explained at {help_uri}"
    return {
        "id": code,
        "name": _pascal_case(plain),
        "shortDescription": {"text": sentence},
        "fullDescription": {"text": full},
        "helpUri": help_uri,
        "help": {"text": f"{sentence}. See {help_uri}", "markdown": f"[{code}]({help_uri})"},
        "defaultConfiguration": {"level": _sarif_level(severity)},
    }


def _pascal_case(text: str) -> str:
    # Acronyms become capitalised words and one-letter placeholders (`vars.X`) are dropped:
    # the multitool wants no two capitals in a row.
    words = [w for w in re.findall(r"[A-Za-z0-9]+", text) if len(w) > 1 or w.isdigit()]
    skip = {"a", "an", "the"}
    return "".join(w.capitalize() for w in words if w.lower() not in skip) or "Rule"


def _sarif_level(severity: Severity) -> str:
    return "error" if severity is Severity.ERROR else "warning"


def _artifact(file: str, base: Path) -> dict[str, Any]:
    """A path under the working directory becomes a relative URI against %SRCROOT% (so the
    report does not depend on where it was made); any other path an absolute file URI."""
    path = Path(file)
    absolute = path if path.is_absolute() else base / path
    try:
        relative = absolute.resolve().relative_to(base.resolve())
    except (ValueError, OSError):
        return {"uri": absolute.as_uri() if absolute.is_absolute() else quote(file)}
    return {"uri": quote(relative.as_posix()), "uriBaseId": "SRCROOT"}


def format_sarif(results: Sequence[ValidationResult]) -> str:
    """SARIF 2.1.0 with one rule per code seen (for GitHub code scanning and other tools)."""
    titles = code_titles()
    diagnostics: list[Diagnostic] = [d for r in results for d in r.diagnostics]
    severities = {d.code: d.severity for d in diagnostics}
    codes = sorted(severities)
    index = {code: i for i, code in enumerate(codes)}
    rules = [_sarif_rule(code, titles.get(code, code), severities[code]) for code in codes]
    base = Path.cwd()
    sarif_results: list[dict[str, Any]] = []
    for result in results:
        lines = _source_lines(result, None)
        for d in result.diagnostics:
            text = d.message + (f" (hint: {d.hint})" if d.hint else "")
            region: dict[str, Any] = {"startLine": d.line, "startColumn": d.column}
            location: dict[str, Any] = {"artifactLocation": _artifact(d.file, base)}
            if lines is not None and 0 < d.line <= len(lines):
                region["snippet"] = {"text": lines[d.line - 1].rstrip("\r")}
                first, last = max(1, d.line - 2), min(len(lines), d.line + 2)
                context = "\n".join(line.rstrip("\r") for line in lines[first - 1 : last])
                location["contextRegion"] = {
                    "startLine": first,
                    "endLine": last,
                    "snippet": {"text": context},
                }
            location["region"] = region
            sarif_results.append(
                {
                    "ruleId": d.code,
                    "ruleIndex": index[d.code],
                    "level": _sarif_level(d.severity),
                    "message": {"text": text},
                    "locations": [{"physicalLocation": location}],
                }
            )
    document = {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "tideflow",
                        "version": _version(),
                        "informationUri": PROJECT_URL,
                        "rules": rules,
                    }
                },
                "originalUriBaseIds": {"SRCROOT": {"uri": base.as_uri() + "/"}},
                "results": sarif_results,
            }
        ],
    }
    return json.dumps(document, ensure_ascii=False, indent=2) + "\n"


def _version() -> str:
    from importlib import metadata  # 10-30 ms of start-up: only SARIF output needs it

    try:
        return metadata.version("tideflow")
    except metadata.PackageNotFoundError:
        return "0+unknown"


FORMATTERS: dict[str, Formatter] = {
    "text": format_text,
    "json": format_json,
    "github": format_github,
    "sarif": format_sarif,
}
