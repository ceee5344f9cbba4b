"""`tideflow test`: the sample test files pass with 100% state coverage, failures and invalid
files give exit 1 and 2, and virtual time makes long waits instant."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from interpreter.testing import run_test_file

ROOT = Path(__file__).resolve().parent.parent


def _tideflow(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "interpreter", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_samples_pass_with_full_state_coverage() -> None:
    proc = _tideflow("test", "samples/", "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(proc.stdout)
    assert report["ok"] and len(report["cases"]) >= 20
    missed = {k: v["states_missed"] for k, v in report["coverage"].items() if v["states_missed"]}
    assert not missed, missed
    tested = {Path(c["file"]).name.removesuffix(".test.yaml") for c in report["cases"]}
    samples = {p.stem for p in (ROOT / "samples").glob("*.yaml")}
    assert samples <= tested, f"samples without a test file: {sorted(samples - tested)}"


def test_a_wrong_expectation_fails_with_a_diff(tmp_path: Path) -> None:
    test = tmp_path / "greeting.test.yaml"
    test.write_text(
        f"workflow: {ROOT / 'samples' / 'greeting.yaml'}\n"
        "mocks:\n  greet: {result: {message: Hi}}\n"
        "cases:\n  - name: wrong\n    input: {name: Ada}\n"
        "    expect: {output: {message: Hello}}\n",
        encoding="utf-8",
    )
    report = run_test_file(test)
    assert report.exit_code() == 1
    assert '-  "message": "Hello"\n      +  "message": "Hi"' in report.text()
    junit = tmp_path / "j.xml"
    proc = _tideflow("test", str(test), "--junit", str(junit))
    assert proc.returncode == 1 and "<failure" in junit.read_text()


def test_an_invalid_test_file_is_exit_2_with_a_position(tmp_path: Path) -> None:
    test = tmp_path / "bad.test.yaml"
    test.write_text("workflow: nowhere.yaml\ncases:\n  - name: a\n    colour: red\n")
    proc = _tideflow("test", str(test))
    assert proc.returncode == 2, proc.stdout
    assert "bad.test.yaml:4:" in proc.stdout and "TF300" in proc.stdout
    assert "Traceback" not in proc.stderr


def test_a_thirty_day_timeout_is_virtual() -> None:
    report = run_test_file(ROOT / "samples" / "tests" / "approval.test.yaml", only="30-day")
    assert report.ok, report.text()
    assert report.cases[0].virtual_seconds >= 30 * 86400


def test_cases_as_data_from_python() -> None:
    from interpreter.testing import run_cases

    report = run_cases(
        ROOT / "samples" / "booking_saga.yaml",
        [
            {
                "name": "payment refused: undo newest first",
                "input": {"trip_id": "T-1", "hotel": "H", "flight": "F", "amount": 10},
                "mocks": {
                    "booking.charge": {
                        "results": [
                            {"error": {"type": "Flaky"}},
                            {"error": {"type": "Declined", "non_retryable": True}},
                        ]
                    },
                    "booking.reserve_hotel": {"result": {"confirmation": "h1"}},
                    "booking.reserve_flight": {"result": {"confirmation": "f1"}},
                    "booking.cancel_hotel": {"result": None},
                    "booking.cancel_flight": {"result": None},
                },
                "expect": {
                    "status": "failed",
                    "compensations": ["reserve_flight", "reserve_hotel"],
                    "calls": {"booking.charge": 2},
                },
            }
        ],
    )
    assert report.ok, report.text()
    assert report.coverage["booking_saga"]["retries"]


def test_unknown_activity_and_state_names_are_tf303_tf304(tmp_path: Path) -> None:
    test = tmp_path / "greeting.test.yaml"
    test.write_text(
        f"workflow: {ROOT / 'samples' / 'greeting.yaml'}\n"
        "cases:\n  - name: a\n    mocks:\n      gret: {result: 1}\n"
        "    expect: {states: [greet, gone]}\n",
        encoding="utf-8",
    )
    proc = _tideflow("test", str(test), "--json")
    assert proc.returncode == 2, proc.stdout
    invalid = json.loads(proc.stdout)["invalid"]
    assert [(d["code"], d["line"]) for d in invalid] == [("TF303", 5), ("TF304", 6)]


def test_an_invalid_workflow_or_activities_module_is_exit_2(tmp_path: Path) -> None:
    (tmp_path / "wf.yaml").write_text('dsl: "1.0"\nname: wf\nstates:\n  a: {type: nope}\n')
    (tmp_path / "wf.test.yaml").write_text("workflow: wf.yaml\ncases:\n  - name: a\n")
    (tmp_path / "g.test.yaml").write_text(
        f"workflow: {ROOT / 'samples' / 'greeting.yaml'}\nactivities: [missing.py]\n"
        "cases:\n  - name: a\n"
    )
    proc = _tideflow("test", str(tmp_path), "--json")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    codes = sorted(d["code"] for d in json.loads(proc.stdout)["invalid"])
    assert codes == ["TF302", "TF307"]


def test_a_case_stops_at_its_virtual_time_limit(tmp_path: Path) -> None:
    test = tmp_path / "approval.test.yaml"
    test.write_text(
        f"workflow: {ROOT / 'samples' / 'approval.yaml'}\n"
        f"activities: [{ROOT / 'samples' / 'activities.py'}]\n"
        "cases:\n"
        "  - name: waiting\n"
        "    input: {request_id: R-7, amount: 1, requester: bob, timeout: 30d}\n"
        "    limit: 1d\n"
        "    expect: {status: running, states: [submit, awaiting, wait_for_decision]}\n"
        "  - name: expected to complete\n"
        "    input: {request_id: R-7, amount: 1, requester: bob, timeout: 30d}\n"
        "    limit: 1d\n",
        encoding="utf-8",
    )
    report = run_test_file(test)
    assert [c.ok for c in report.cases] == [True, False]
    assert "still running after the case's limit (1d" in report.text()
