"""`tideflow validate` and `tideflow schema`: formats, exit codes, paths, --input, --activities."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from dsl import load_schema
from interpreter.cli import main

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).parent / "fixtures" / "invalid"

GOOD = """\
dsl: "1.0"
name: good
input_schema:
  type: object
  required: [id]
  properties:
    id: {type: integer}
states:
  hello:
    type: activity
    activity: http
    input: {url: "https://example.com/{{ input.id }}"}
    next: done
  done:
    type: succeed
"""

BAD = """\
dsl: "1.0"
name: bad
states:
  hello:
    type: activty
    end: true
"""

# A choice without default is a lint warning (TF209), not an error.
WARNING_ONLY = """\
dsl: "1.0"
name: warn
states:
  route:
    type: choice
    choices:
      - when: "{{ input.fast }}"
        next: done
  done:
    type: succeed
"""


def _write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["validate", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_valid_file_exits_zero(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, "good.yaml", GOOD)
    code, out, _ = _run(capsys, str(path))
    assert code == 0
    assert out == "0 errors, 0 warnings in 1 file\n"


def test_text_format(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, "bad.yaml", BAD)
    code, out, _ = _run(capsys, str(path))
    assert code == 1
    lines = out.splitlines()
    assert lines[0] == f'{path}:5:11: error[TF104] unknown state type "activty" in state "hello"'
    assert lines[1] == "        type: activty"
    assert lines[2] == "    " + " " * 10 + "^"
    assert lines[3].startswith('  hint: did you mean "activity"?')
    assert lines[-1] == "1 error, 0 warnings in 1 file"


def test_caret_for_a_file_that_does_not_load(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(tmp_path, "broken.yaml", "dsl: '1.0'\nstates: [a, b\nname: x\n")
    code, out, _ = _run(capsys, str(path))
    assert code == 1
    assert f"{path}:3:5: error[TF001]" in out
    assert "\n    name: x\n        ^\n  hint: a [ ... ] list is not closed" in out


def test_json_format(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = _write(tmp_path, "good.yaml", GOOD)
    bad = _write(tmp_path, "bad.yaml", BAD)
    code, out, _ = _run(capsys, "--format", "json", str(good), str(bad))
    assert code == 1
    payload = json.loads(out)
    assert (payload["files"], payload["errors"], payload["warnings"]) == (2, 1, 0)
    [d] = payload["diagnostics"]
    assert d["file"] == str(bad) and d["line"] == 5 and d["column"] == 11
    assert d["code"] == "TF104" and d["severity"] == "error" and d["hint"]
    assert d["path"] == "states/hello/type"


def test_github_format(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = _write(tmp_path, "bad.yaml", BAD)
    code, out, _ = _run(capsys, "--format", "github", str(bad))
    assert code == 1
    first = out.splitlines()[0]
    assert first.startswith(f"::error file={bad},line=5,col=11,title=TF104::unknown state type")
    assert "%0Ahint: " in first


def test_sarif_format(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = _write(tmp_path, "bad.yaml", BAD.replace("name: bad", "name: bad name"))
    code, out, _ = _run(capsys, "--format", "sarif", str(bad))
    assert code == 1
    sarif = json.loads(out)
    assert sarif["version"] == "2.1.0"
    run = sarif["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    assert [r["id"] for r in rules] == ["TF104", "TF105"]
    assert all(r["shortDescription"]["text"] for r in rules)
    results = run["results"]
    assert [r["ruleId"] for r in results] == ["TF105", "TF104"]
    for result in results:
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]
        assert result["level"] == "error"
        region = result["locations"][0]["physicalLocation"]["region"]
        assert region["startLine"] >= 1 and region["startColumn"] >= 1


def test_strict_fails_on_warnings(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("dsl.lint")
    path = _write(tmp_path, "warn.yaml", WARNING_ONLY)
    code, out, _ = _run(capsys, str(path))
    assert code == 0 and "warning[" in out and out.endswith("0 errors, 1 warning in 1 file\n")
    code, _, _ = _run(capsys, "--strict", str(path))
    assert code == 1


def test_missing_path_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(capsys, str(tmp_path / "nope.yaml"))
    assert code == 2 and out == ""
    assert "nope.yaml: no such file or directory" in err


def test_directory_without_workflows(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(capsys, str(tmp_path))
    assert code == 2 and "no workflow files" in err


def test_directories_are_searched(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _write(tmp_path, "a.yaml", GOOD)
    _write(tmp_path, "sub/b.yml", GOOD)
    _write(tmp_path, "sub/deeper/c.json", json.dumps({"dsl": "1.0", "name": "c", "states": {}}))
    _write(tmp_path, "sub/input.json", '{"id": 1}')  # not a workflow: skipped
    _write(tmp_path, "notes.txt", BAD)
    _write(tmp_path, ".hidden/bad.yaml", BAD)
    _write(tmp_path, ".venv/lib/bad.yaml", BAD)
    code, out, err = _run(capsys, "--format", "json", str(tmp_path))
    payload = json.loads(out)
    assert payload["files"] == 3
    assert [d["file"] for d in payload["diagnostics"]] == [str(tmp_path / "sub/deeper/c.json")]
    assert code == 1
    assert "skipped 1" in err and "input.json" in err


def test_named_files_are_always_checked(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, "input.json", '{"id": 1}')
    code, out, _ = _run(capsys, str(path))
    assert code == 1 and "TF102" in out


def test_input_inline_and_from_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, "good.yaml", GOOD)
    assert _run(capsys, "--input", '{"id": 7}', str(path))[0] == 0
    code, out, _ = _run(capsys, "--input", '{"id": "seven"}', str(path))
    assert code == 1 and "TF110" in out and "/id" in out
    data = _write(tmp_path, "input.json", '{"id": 8}')
    assert _run(capsys, "--input", f"@{data}", str(path))[0] == 0


def test_bad_input_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, "good.yaml", GOOD)
    code, _, err = _run(capsys, "--input", "{id: 7}", str(path))
    assert code == 2 and "--input is not valid JSON" in err
    code, _, err = _run(capsys, "--input", f"@{tmp_path / 'none.json'}", str(path))
    assert code == 2 and "does not exist" in err


def test_activities(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("dsl.lint")
    activities = tmp_path / "my_activities.py"
    activities.write_text(
        "from interpreter.activities import activity\n\n"
        "@activity('cli_test_charge')\n"
        "def charge(data):\n    return data\n",
        encoding="utf-8",
    )
    path = _write(tmp_path, "w.yaml", GOOD.replace("activity: http", "activity: cli_test_charge"))
    assert _run(capsys, "--activities", str(activities), str(path))[0] == 0
    typo = _write(tmp_path, "typo.yaml", GOOD.replace("activity: http", "activity: cli_tst"))
    code, out, _ = _run(capsys, "--activities", str(activities), str(typo))
    assert code == 1 and "cli_tst" in out


def test_activities_that_do_not_load(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, "good.yaml", GOOD)
    code, _, err = _run(capsys, "--activities", str(tmp_path / "missing.py"), str(path))
    assert code == 2 and "missing.py" in err


def test_workflows_dir_must_exist(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, "good.yaml", GOOD)
    code, _, err = _run(capsys, "--workflows", str(tmp_path / "nowhere"), str(path))
    assert code == 2 and "not a directory" in err


def test_loader_fixtures_never_crash_the_cli(capsys: pytest.CaptureFixture[str]) -> None:
    files = sorted(str(p) for p in FIXTURES.iterdir() if p.suffix in (".yaml", ".json"))
    files.remove(str(FIXTURES / "expected.json"))
    code, out, _ = _run(capsys, *files)
    assert code == 1
    assert "Traceback" not in out
    assert out.splitlines()[-1].endswith(f"in {len(files)} files")


def test_schema_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema"]) == 0
    assert json.loads(capsys.readouterr().out) == load_schema()


def _subprocess(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    return subprocess.run(
        [sys.executable, "-m", "interpreter", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_real_subprocess(tmp_path: Path) -> None:
    _write(tmp_path, "good.yaml", GOOD)
    _write(tmp_path, "bad.yaml", BAD)
    ok = _subprocess("validate", "good.yaml", cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout == "0 errors, 0 warnings in 1 file\n"
    bad = _subprocess("validate", "--format", "json", "good.yaml", "bad.yaml", cwd=tmp_path)
    assert bad.returncode == 1
    assert json.loads(bad.stdout)["errors"] == 1
    assert bad.stderr == ""
    missing = _subprocess("validate", "missing.yaml", cwd=tmp_path)
    assert missing.returncode == 2 and "Traceback" not in missing.stderr


def test_subprocess_schema_to_a_closed_pipe(tmp_path: Path) -> None:
    """`tideflow schema | head -1` must not print a BrokenPipeError traceback."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = f'"{sys.executable}" -m interpreter schema | head -1'
    done = subprocess.run(
        command, shell=True, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.stdout == "{\n"
    assert "Traceback" not in done.stderr


def test_pre_commit_hook_checks_only_workflows(tmp_path: Path) -> None:
    """The hook as pre-commit runs it: its `entry` plus every changed file its `files` pattern
    matches. A repository of non-workflow YAML passes; a broken workflow among them fails."""
    import re
    import shlex
    import subprocess
    import sys

    from ruamel.yaml import YAML

    root = Path(__file__).resolve().parent.parent
    (hook,) = YAML(typ="safe").load((root / ".pre-commit-hooks.yaml").read_text())
    repo = tmp_path / "repo"
    files = {
        ".pre-commit-config.yaml": "repos:\n  - repo: local\n    hooks: []\n",
        ".github/workflows/ci.yml": "on: [push]\njobs: {build: {runs-on: ubuntu-latest}}\n",
        "config/app.json": '{"debug": true}\n',
        "docker-compose.yaml": "services: {db: {image: postgres}}\n",
        "flows/ok.yaml": GOOD,
    }
    for name, text in files.items():
        _write(repo, name, text)

    def run_hook() -> subprocess.CompletedProcess[str]:
        matched = sorted(
            str(p.relative_to(repo))
            for p in repo.rglob("*")
            if p.is_file() and re.search(hook["files"], str(p.relative_to(repo)))
        )
        argv = [sys.executable, "-m", "interpreter", *shlex.split(hook["entry"])[1:], *matched]
        return subprocess.run(argv, cwd=repo, capture_output=True, text=True, timeout=60)

    proc = run_hook()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 errors, 0 warnings in 1 file" in proc.stdout
    _write(repo, "flows/broken.yaml", BAD)
    proc = run_hook()
    assert proc.returncode == 1 and "flows/broken.yaml:" in proc.stdout
    (repo / "flows" / "ok.yaml").unlink()
    (repo / "flows" / "broken.yaml").unlink()
    proc = run_hook()
    assert proc.returncode == 0 and "no workflow files among 4" in proc.stderr


def test_schema_output_writes_the_committed_schema(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "new" / "dir" / "workflow.schema.json"
    code = main(["schema", "--output", str(target)])
    out, err = capsys.readouterr()
    assert code == 0 and out == "" and "wrote" in err
    assert target.read_text(encoding="utf-8") == (ROOT / "schemas/workflow.schema.json").read_text(
        encoding="utf-8"
    )
    assert json.loads(target.read_text())["$id"].startswith("https://")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code = main(["schema", "--output", str(blocker / "schema.json")])
    out, err = capsys.readouterr()
    assert code == 2 and "cannot write the schema to" in err and "Traceback" not in err
    assert list(tmp_path.glob("**/.schema.json.tmp-*")) == []


def test_editor_docs_name_the_schema_id() -> None:
    from dsl.schema_export import SCHEMA_ID

    editors = (ROOT / "docs" / "editors.md").read_text(encoding="utf-8")
    assert f"$schema={SCHEMA_ID}" in editors and f'"url": "{SCHEMA_ID}"' in editors
