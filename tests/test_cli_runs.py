"""The CLI contract for runs: run/start/resume/worker/status/history/list/cancel/signal/query,
exit codes (0 completed, 1 otherwise, 2 invalid file, input or arguments with nothing created),
activity loading, several processes on one store, and every sample with its input files."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path
from typing import Any

import activities_for_tests as acts
import pytest
from conftest import SAMPLE_ACTIVITIES, SAMPLES, run_cli
from run_helpers import (
    RUN_RESULT_KEYS,
    TEST_ACTIVITIES,
    TESTS,
    WORKFLOWS,
    assert_clean,
    cli_popen,
    events_or_empty,
    finish,
    one_json,
    wait_for,
    write_workflow,
)

from interpreter import Client

GREET = WORKFLOWS / "greet_twice.yaml"
SLOW = WORKFLOWS / "slow_steps.yaml"
ACT = ("--activities", str(TEST_ACTIVITIES))


def runs_in(store_url: str) -> list[dict[str, Any]]:
    """The runs in the store (read in-process: `list --json` itself is tested below)."""
    with Client(store_url) as client:
        return [{"run_id": r.id, "status": r.status} for r in client.list_runs()]


# --------------------------------------------------------------------------- run


def test_run_json_prints_exactly_one_object(store_url: str) -> None:
    proc = run_cli(
        "run", str(GREET), "--input", '{"name": "Ada"}', *ACT, "--db", store_url, "--json"
    )
    assert_clean(proc, 0)
    out = one_json(proc)
    assert set(out) == RUN_RESULT_KEYS
    assert out["workflow"] == "greet_twice"
    assert out["status"] == "completed"
    assert out["error"] is None
    assert out["output"] == {"first": "hello Ada", "second": "hello again Ada"}
    assert [r["run_id"] for r in runs_in(store_url)] == [out["run_id"]]


def test_run_that_fails_exits_1_with_the_error(store_url: str, tmp_path: Path) -> None:
    wf = write_workflow(
        tmp_path,
        """
        name: doomed
        states:
          boom:
            type: fail
            error: Doomed
            message: "no luck for {{ input.who }}"
        """,
    )
    proc = run_cli("run", str(wf), "--input", '{"who": "bo"}', "--db", store_url, "--json")
    assert_clean(proc, 1)
    out = one_json(proc)
    assert set(out) == RUN_RESULT_KEYS
    assert out["status"] == "failed"
    assert out["output"] is None
    assert out["error"] == {"type": "Doomed", "message": "no luck for bo", "details": None}


def test_run_without_json_prints_a_summary(store_url: str) -> None:
    proc = run_cli("run", str(GREET), "--input", '{"name": "Ada"}', *ACT, "--db", store_url)
    assert_clean(proc, 0)
    assert "completed" in proc.stdout
    assert "hello again Ada" in proc.stdout


def test_invalid_workflow_file_exits_2_and_creates_nothing(store_url: str) -> None:
    broken = WORKFLOWS / "broken.yaml"
    proc = run_cli("run", str(broken), *ACT, "--db", store_url, "--json")
    assert_clean(proc, 2)
    assert "broken.yaml" in proc.stderr
    assert proc.stdout.strip() == ""
    start = run_cli("start", str(broken), *ACT, "--db", store_url)
    assert_clean(start, 2)
    assert runs_in(store_url) == []


def test_missing_workflow_file_exits_2(store_url: str, tmp_path: Path) -> None:
    proc = run_cli("run", str(tmp_path / "nope.yaml"), "--db", store_url)
    assert_clean(proc, 2)
    assert "nope.yaml" in proc.stderr
    assert "does not exist" in proc.stderr


def test_input_violating_the_schema_exits_2_with_pointer_and_reason(store_url: str) -> None:
    proc = run_cli("run", str(GREET), "--input", '{"name": ""}', *ACT, "--db", store_url, "--json")
    assert_clean(proc, 2)
    assert "/name" in proc.stderr
    assert "should be non-empty" in proc.stderr or "is too short" in proc.stderr
    missing = run_cli("run", str(GREET), "--input", '{"nom": "x"}', *ACT, "--db", store_url)
    assert_clean(missing, 2)
    assert "'name' is a required property" in missing.stderr
    assert runs_in(store_url) == []


@pytest.mark.parametrize("text", ['{"name": "Ada"', ""])
def test_bad_json_input_exits_2_without_traceback(store_url: str, text: str) -> None:
    proc = run_cli("run", str(GREET), "--input", text, *ACT, "--db", store_url, "--json")
    assert_clean(proc, 2)
    assert "--input is not valid JSON" in proc.stderr
    assert runs_in(store_url) == []


def test_input_from_a_file(store_url: str, tmp_path: Path) -> None:
    data = tmp_path / "in.json"
    data.write_text('{"name": "Grace"}')
    proc = run_cli("run", str(GREET), "--input", f"@{data}", *ACT, "--db", store_url, "--json")
    assert_clean(proc, 0)
    assert one_json(proc)["output"]["first"] == "hello Grace"
    bad = tmp_path / "bad.json"
    bad.write_text("{oops")
    proc = run_cli("run", str(GREET), "--input", f"@{bad}", *ACT, "--db", store_url)
    assert_clean(proc, 2)
    assert "bad.json" in proc.stderr
    assert "not valid JSON" in proc.stderr
    proc = run_cli(
        "run", str(GREET), "--input", f"@{tmp_path / 'absent.json'}", *ACT, "--db", store_url
    )
    assert_clean(proc, 2)
    assert "absent.json" in proc.stderr
    assert len(runs_in(store_url)) == 1


@pytest.mark.parametrize(
    "args",
    [
        ("run",),
        ("run", "x.yaml", "--no-such-flag"),
        ("worker", "--concurrency", "0"),
        ("signal", "some-run"),
    ],
)
def test_bad_arguments_exit_2(args: tuple[str, ...], store_url: str) -> None:
    proc = run_cli(*args, "--db", store_url)
    assert_clean(proc, 2)
    assert proc.stderr.strip()


# --------------------------------------------------------------------------- activities


def test_unregistered_activity_exits_2_before_the_run_starts(store_url: str) -> None:
    ghost = WORKFLOWS / "ghost_activity.yaml"
    proc = run_cli("run", str(ghost), *ACT, "--db", store_url, "--json")
    assert_clean(proc, 2)
    assert "ghost.boo" in proc.stderr
    assert "ghost.undo" in proc.stderr, "compensation activities are checked too"
    assert "--activities" in proc.stderr
    proc = run_cli("start", str(ghost), *ACT, "--db", store_url)
    assert_clean(proc, 2)
    assert "ghost.boo" in proc.stderr
    assert runs_in(store_url) == []


def test_start_without_activities_leaves_them_to_the_workers(store_url: str) -> None:
    """The process that starts a run need not have the activity code (docs/postgres.md)."""
    ghost = WORKFLOWS / "ghost_activity.yaml"
    proc = run_cli("start", str(ghost), "--id", "for-later", "--db", store_url)
    assert_clean(proc, 0)
    assert proc.stdout.strip() == "for-later"
    status = one_json(run_cli("status", "for-later", "--db", store_url, "--json"))
    assert status["status"] == "running"


def test_activities_from_a_module_name(store_url: str) -> None:
    proc = run_cli(
        "run",
        str(GREET),
        "--input",
        '{"name": "Mod"}',
        "--activities",
        "activities_for_tests",
        "--db",
        store_url,
        "--json",
        cwd=TESTS,
    )
    assert_clean(proc, 0)
    assert one_json(proc)["status"] == "completed"


def test_activities_from_a_relative_py_path(store_url: str) -> None:
    proc = run_cli(
        "run",
        str(GREET),
        "--input",
        '{"name": "Rel"}',
        "--activities",
        "tests/activities_for_tests.py",
        "--db",
        store_url,
        "--json",
        cwd=TESTS.parent,
    )
    assert_clean(proc, 0)
    assert one_json(proc)["status"] == "completed"


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ("no/such/file.py", "does not exist"),
        ("no_such_module_anywhere", "not found"),
        ("{broken}", "broken_activities.py"),
    ],
)
def test_bad_activities_exit_2_with_a_clear_message(
    store_url: str, tmp_path: Path, spec: str, words: str
) -> None:
    broken = tmp_path / "broken_activities.py"
    broken.write_text("import definitely_not_installed_module_xyz\n")
    spec = spec.replace("{broken}", str(broken))
    proc = run_cli(
        "run", str(GREET), "--input", '{"name": "x"}', "--activities", spec, "--db", store_url
    )
    assert_clean(proc, 2)
    assert words in proc.stderr
    assert runs_in(store_url) == []


# --------------------------------------------------------------------------- start, resume


def test_start_prints_the_id_and_resume_finishes_it(store_url: str) -> None:
    proc = run_cli("start", str(GREET), "--input", '{"name": "Lin"}', *ACT, "--db", store_url)
    assert_clean(proc, 0)
    run_id = proc.stdout.strip()
    assert run_id.startswith("greet_twice-")
    assert "\n" not in run_id
    status = run_cli("status", run_id, "--db", store_url, "--json")
    assert_clean(status, 0)
    info = one_json(status)
    assert info["status"] == "running"
    assert [c["state"] for c in info["current"]] == ["hello"]
    resumed = run_cli("resume", run_id, *ACT, "--db", store_url, "--json")
    assert_clean(resumed, 0)
    out = one_json(resumed)
    assert (out["run_id"], out["status"]) == (run_id, "completed")
    again = run_cli("resume", run_id, *ACT, "--db", store_url, "--json")
    assert_clean(again, 0)
    assert one_json(again) == out, "resuming a finished run reports it again"


def test_start_with_an_existing_id_returns_that_run(store_url: str) -> None:
    args = ("start", str(GREET), "--id", "order-77", *ACT, "--db", store_url)
    first = run_cli(*args, "--input", '{"name": "One"}')
    assert_clean(first, 0)
    assert first.stdout.strip() == "order-77"
    second = run_cli(*args, "--input", '{"name": "One"}')
    assert_clean(second, 0)
    assert second.stdout.strip() == "order-77"
    assert "already exists" in second.stderr
    as_json = run_cli(*args, "--input", '{"name": "One"}', "--json")
    assert one_json(as_json)["created"] is False
    # The same id with another input is not the same request: refused, nothing changes.
    other = run_cli(*args, "--input", '{"name": "Two"}')
    assert_clean(other, 2)
    assert "order-77" in other.stderr and "different input" in other.stderr
    runs = runs_in(store_url)
    assert [r["run_id"] for r in runs] == ["order-77"]
    status = one_json(run_cli("status", "order-77", "--db", store_url, "--json"))
    assert status["input"] == {"name": "One"}


def test_resume_of_an_unknown_run_is_a_clean_error(store_url: str) -> None:
    proc = run_cli("resume", "no-such-run", *ACT, "--db", store_url)
    assert proc.returncode != 0
    assert_clean(proc, proc.returncode)
    assert "no-such-run" in proc.stderr


def test_pinned_definition_survives_an_edit_between_start_and_resume(
    store_url: str, tmp_path: Path
) -> None:
    text = """
        name: pinned_cli
        version: {v}
        states:
          say:
            type: activity
            activity: test.echo
            input: "{said}"
            end: true
    """
    wf = write_workflow(tmp_path, text.format(v=1, said="old"))
    assert_clean(run_cli("start", str(wf), "--id", "p1", *ACT, "--db", store_url), 0)
    write_workflow(tmp_path, text.format(v=2, said="new"))
    resumed = run_cli("resume", "p1", *ACT, "--db", store_url, "--json")
    assert_clean(resumed, 0)
    assert one_json(resumed)["output"] == "old"
    status = run_cli("status", "p1", "--db", store_url)
    assert_clean(status, 0)
    assert "version 1" in status.stdout
    info = one_json(run_cli("status", "p1", "--db", store_url, "--json"))
    assert info["version"] == "1"
    assert info["definition_hash"][:12] in status.stdout
    fresh = run_cli("run", str(wf), *ACT, "--db", store_url, "--json")
    assert one_json(fresh)["output"] == "new"


# --------------------------------------------------------------------------- inspection


def test_status_history_and_list_as_json(store_url: str, tmp_path: Path) -> None:
    # The runs are made in-process: this test is about the commands that look at them.
    failing = write_workflow(tmp_path, "name: nope\nstates:\n  f: {type: fail, error: Nope}\n")
    with Client(store_url) as client:
        ok = {"run_id": client.execute(client.start(GREET, {"name": "A"})).id}
        bad = {"run_id": client.execute(client.start(failing)).id}
        pending = client.start(GREET, {"name": "B"})

    status = one_json(run_cli("status", ok["run_id"], "--db", store_url, "--json"))
    for key in (
        "run_id",
        "workflow",
        "version",
        "definition_hash",
        "status",
        "vars",
        "output",
        "error",
    ):
        assert key in status
    assert status["version"] == "2"
    assert status["status"] == "completed"
    assert status["vars"]["first"] == {"greeting": "hello A"}

    shown = run_cli("history", ok["run_id"], "--db", store_url, "--json")
    assert_clean(shown, 0)
    events = json.loads(shown.stdout)
    assert isinstance(events, list)
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert events[0]["type"] == "RunStarted"
    assert events[-1]["type"] == "RunCompleted"
    assert {"seq", "type", "time", "state", "attempt", "payload"} <= set(events[0])
    text = run_cli("history", ok["run_id"], "--db", store_url)
    assert_clean(text, 0)
    assert "RunStarted" in text.stdout and "ActivityCompleted" in text.stdout

    listed = run_cli("list", "--db", store_url, "--json")
    assert_clean(listed, 0)
    everything = json.loads(listed.stdout)
    assert isinstance(everything, list)
    assert {r["run_id"]: r["status"] for r in everything} == {
        ok["run_id"]: "completed",
        bad["run_id"]: "failed",
        pending: "running",
    }
    assert {"run_id", "workflow", "status", "version", "created_at"} <= set(everything[0])
    by_status = json.loads(
        run_cli("list", "--db", store_url, "--json", "--status", "failed").stdout
    )
    assert [r["run_id"] for r in by_status] == [bad["run_id"]]
    by_wf = json.loads(
        run_cli("list", "--db", store_url, "--json", "--workflow", "greet_twice").stdout
    )
    assert {r["run_id"] for r in by_wf} == {ok["run_id"], pending}
    both = json.loads(
        run_cli(
            "list",
            "--db",
            store_url,
            "--json",
            "--workflow",
            "greet_twice",
            "--status",
            "completed",
        ).stdout
    )
    assert [r["run_id"] for r in both] == [ok["run_id"]]


@pytest.mark.parametrize("command", ["status", "history", "cancel", "terminate"])
def test_unknown_run_id_is_a_clean_error(store_url: str, command: str) -> None:
    proc = run_cli(command, "ghost-run", "--db", store_url)
    assert proc.returncode != 0
    assert_clean(proc, proc.returncode)
    assert "ghost-run" in proc.stderr


# --------------------------------------------------------------------------- signals and queries


def test_signal_and_query_from_the_cli(store_url: str) -> None:
    approval = SAMPLES / "approval.yaml"
    sample_act = ("--activities", str(SAMPLE_ACTIVITIES))
    started = run_cli(
        "start",
        str(approval),
        "--id",
        "apr-1",
        "--input",
        f"@{SAMPLES / 'inputs' / 'approval.json'}",
        *sample_act,
        "--db",
        store_url,
    )
    assert_clean(started, 0)
    query = run_cli("query", "apr-1", "status", "--db", store_url, "--json")
    assert_clean(query, 0)
    assert one_json(query)["value"] == {
        "request_id": "R-7",
        "status": "submitted",
        "decided_by": None,
    }
    wrong = run_cli(
        "signal",
        "apr-1",
        "approve",
        "--data",
        '{"approved": "yes", "by": "bob"}',
        "--db",
        store_url,
    )
    assert_clean(wrong, 2)
    assert "/approved" in wrong.stderr
    undeclared = run_cli("signal", "apr-1", "reject", "--data", "{}", "--db", store_url)
    assert undeclared.returncode != 0
    assert_clean(undeclared, undeclared.returncode)
    assert "approve" in undeclared.stderr, "the hint lists the declared signals"
    unknown_query = run_cli("query", "apr-1", "nope", "--db", store_url)
    assert unknown_query.returncode != 0
    assert_clean(unknown_query, unknown_query.returncode)
    sent = run_cli(
        "signal",
        "apr-1",
        "approve",
        "--data",
        '{"approved": true, "by": "alice"}',
        "--db",
        store_url,
    )
    assert_clean(sent, 0)
    resumed = run_cli("resume", "apr-1", *sample_act, "--db", store_url, "--json")
    assert_clean(resumed, 0)
    assert one_json(resumed)["output"] == {
        "request_id": "R-7",
        "ticket": "apr-R-7",
        "status": "approved",
        "decided_by": "alice",
    }
    query = run_cli("query", "apr-1", "status", "--db", store_url)
    assert_clean(query, 0)
    assert json.loads(query.stdout) == {
        "request_id": "R-7",
        "status": "approved",
        "decided_by": "alice",
    }
    late = run_cli(
        "signal", "apr-1", "approve", "--data", '{"approved": false, "by": "x"}', "--db", store_url
    )
    assert late.returncode != 0
    assert_clean(late, late.returncode)
    assert "already ended" in late.stderr


# --------------------------------------------------------------------------- worker


def test_worker_executes_started_runs_and_stops_on_sigterm(store_url: str) -> None:
    ids = []
    for name in ("W1", "W2", "W3"):
        proc = run_cli(
            "start",
            str(GREET),
            "--input",
            json.dumps({"name": name, "nap": True}),
            *ACT,
            "--db",
            store_url,
        )
        assert_clean(proc, 0)
        ids.append(proc.stdout.strip())
    worker = cli_popen("worker", *ACT, "--db", store_url)
    try:
        with Client(store_url) as client:
            wait_for(lambda: all(client.get(i).status == "completed" for i in ids), timeout=20)
            assert client.get(ids[1]).output == {"first": "hello W2", "second": "hello again W2"}
        worker.send_signal(signal.SIGTERM)
        result = finish(worker, timeout=15)
    finally:
        if worker.poll() is None:
            worker.kill()
    assert_clean(result, 0)
    assert "worker stopped" in result.stderr


def _start_slow(store_url: str, run_id: str, log: Path, seconds: float) -> None:
    proc = run_cli(
        "start",
        str(SLOW),
        "--id",
        run_id,
        "--input",
        json.dumps({"seconds": seconds, "path": str(log)}),
        *ACT,
        "--db",
        store_url,
    )
    assert_clean(proc, 0)


def _wait_started(log: Path, count: int = 1) -> None:
    wait_for(
        lambda: len([e for e in acts.read_json_lines(log) if e["event"] == "start"]) >= count,
        timeout=20,
    )


def test_sigterm_lets_in_flight_work_finish_within_the_grace(
    store_url: str, tmp_path: Path
) -> None:
    log = tmp_path / "slow.log"
    _start_slow(store_url, "slow-1", log, 1.0)
    worker = cli_popen("worker", *ACT, "--db", store_url, "--grace", "10")
    try:
        _wait_started(log)
        worker.send_signal(signal.SIGTERM)
        result = finish(worker, timeout=20)
    finally:
        if worker.poll() is None:
            worker.kill()
    assert_clean(result, 0)
    entries = acts.read_json_lines(log)
    assert [(e["state"], e["event"]) for e in entries] == [("first", "start"), ("first", "end")]
    with Client(store_url) as client:
        events = events_or_empty(client, "slow-1")
        assert [e["state"] for e in events if e["type"] == "ActivityCompleted"] == ["first"]
        assert client.get("slow-1").status == "running"
    # Another worker finishes the run without repeating the first step.
    resumed = run_cli("resume", "slow-1", *ACT, "--db", store_url, "--json")
    assert_clean(resumed, 0)
    assert one_json(resumed)["status"] == "completed"
    assert [e["state"] for e in acts.read_json_lines(log) if e["event"] == "start"] == [
        "first",
        "second",
    ]


def test_sigterm_after_the_grace_releases_the_attempt_to_another_worker(
    store_url: str, tmp_path: Path
) -> None:
    log = tmp_path / "slow.log"
    _start_slow(store_url, "slow-2", log, 1.5)
    worker = cli_popen("worker", *ACT, "--db", store_url, "--grace", "0.2")
    try:
        _wait_started(log)
        stopped_at = time.monotonic()
        worker.send_signal(signal.SIGTERM)
        result = finish(worker, timeout=20)
        assert time.monotonic() - stopped_at < 3, "the worker waits only its grace"
    finally:
        if worker.poll() is None:
            worker.kill()
    assert_clean(result, 0)
    with Client(store_url) as client:
        record = client.get("slow-2")
        assert record.status == "running"
        assert record.lease_owner is None, "the run was released, not left leased"
    second = cli_popen("worker", *ACT, "--db", store_url)
    try:
        with Client(store_url) as client:
            wait_for(lambda: client.get("slow-2").status == "completed", timeout=20)
            events = events_or_empty(client, "slow-2")
        second.send_signal(signal.SIGTERM)
        assert_clean(finish(second), 0)
    finally:
        if second.poll() is None:
            second.kill()
    starts = [e for e in acts.read_json_lines(log) if e["event"] == "start"]
    assert [(e["state"], e["attempt"]) for e in starts] == [
        ("first", 1),
        ("first", 1),
        ("second", 1),
    ]
    assert starts[0]["key"] == starts[1]["key"], "the restarted attempt keeps its idempotency key"
    assert starts[0]["pid"] != starts[1]["pid"]
    ends = [e for e in acts.read_json_lines(log) if e["event"] == "end"]
    assert starts[0]["pid"] not in {e["pid"] for e in ends}, "the first attempt was cut off"
    assert "ActivityInterrupted" in [e["type"] for e in events]


def test_several_processes_share_one_store(store_url: str, tmp_path: Path) -> None:
    started = [
        run_cli(
            "start",
            str(GREET),
            "--input",
            json.dumps({"name": f"S{i}", "nap": True}),
            *ACT,
            "--db",
            store_url,
        )
        for i in range(3)
    ]
    ids = [p.stdout.strip() for p in started]
    worker = cli_popen("worker", *ACT, "--db", store_url)
    runner = cli_popen(
        "run",
        str(GREET),
        "--input",
        '{"name": "R", "nap": true}',
        *ACT,
        "--db",
        store_url,
        "--json",
    )
    try:
        readers = [
            cli_popen(*command, "--db", store_url, "--json")
            for command in (("status", ids[0]), ("list",), ("history", ids[1]), ("status", ids[2]))
        ]
        for reader in readers:
            assert_clean(finish(reader), 0)
        ran = finish(runner)
        assert_clean(ran, 0)
        assert one_json(ran)["status"] == "completed"
        with Client(store_url) as client:
            wait_for(lambda: all(client.get(i).status == "completed" for i in ids), timeout=20)
        worker.send_signal(signal.SIGTERM)
        assert_clean(finish(worker), 0)
    finally:
        for proc in (worker, runner):
            if proc.poll() is None:
                proc.kill()
    statuses = {r["status"] for r in runs_in(store_url)}
    assert statuses == {"completed"}
    assert len(runs_in(store_url)) == 4


# --------------------------------------------------------------------------- samples

INPUTS = SAMPLES / "inputs"
ORDER_OK = {
    "order_id": "A-1001",
    "status": "completed",
    "transaction_id": "tx-A-1001",
    "reservation_id": "rsv-A-1001",
    "shipping": "express",
    "tracking_number": "trk-A-1001",
}
PICKS = [
    {"sku": "A-1", "picked": 2, "bin": "bin-a-1"},
    {"sku": "B-2", "picked": 1, "bin": "bin-b-2"},
    {"sku": "C-3", "picked": 5, "bin": "bin-c-3"},
]

SAMPLE_CASES: list[tuple[str, str, str, Any, list[str]]] = [
    # (workflow, input file, status, output or error type, compensation activities in order)
    ("greeting", "greeting", "completed", {"message": "Hello, Ada!"}, []),
    ("order", "order", "completed", ORDER_OK, []),
    (
        "order",
        "order_small",
        "completed",
        {
            **ORDER_OK,
            "order_id": "A-1002",
            "transaction_id": "tx-A-1002",
            "reservation_id": "rsv-A-1002",
            "tracking_number": "trk-A-1002",
            "shipping": "standard",
        },
        [],
    ),
    (
        "order",
        "order_flaky",
        "completed",
        {
            **ORDER_OK,
            "order_id": "A-1003",
            "transaction_id": "tx-A-1003",
            "reservation_id": "rsv-A-1003",
            "tracking_number": "trk-A-1003",
            "shipping": "standard",
        },
        [],
    ),
    ("order", "order_declined", "failed", "PaymentDeclined", []),
    ("order", "order_out_of_stock", "failed", "OutOfStock", ["payments.refund"]),
    (
        "booking_saga",
        "booking_saga",
        "completed",
        {
            "trip_id": "T-42",
            "status": "confirmed",
            "hotel": "H-T-42",
            "flight": "F-T-42",
            "payment": "P-T-42",
        },
        [],
    ),
    ("booking_saga", "booking_hotel_fails", "failed", "BookingFailed", []),
    ("booking_saga", "booking_flight_fails", "failed", "BookingFailed", ["booking.cancel_hotel"]),
    (
        "booking_saga",
        "booking_payment_fails",
        "failed",
        "BookingFailed",
        ["booking.cancel_flight", "booking.cancel_hotel"],
    ),
    ("parent_child", "parent_child", "completed", {"count": 3, "picks": PICKS}, []),
    ("parent_child", "parent_child_missing", "failed", "PickFailed", []),
    ("child", "child", "completed", {"sku": "A-1", "picked": 2, "bin": "bin-a-1"}, []),
    ("fanout", "fanout", "completed", None, []),
]


def _check_sample(
    client: Client, case: tuple[str, str, str, Any, list[str]], proc: Any
) -> list[str]:
    """What is wrong with one sample's run (an empty list when nothing is)."""
    workflow, input_name, status, expected, compensations = case
    code = 0 if status == "completed" else 1
    if proc.returncode != code or "Traceback" in proc.stderr:
        return [f"exit {proc.returncode} (expected {code}): {proc.stderr.strip()[-500:]}"]
    out = one_json(proc)
    problems = []
    if out["status"] != status:
        problems.append(f"status {out['status']} (expected {status}), error {out['error']}")
    elif status == "completed" and workflow == "fanout":
        if (out["output"]["total"], out["output"]["count"]) != (385, 10):
            problems.append(f"output {out['output']}")
        if out["output"]["lookups"] != ["profile:u-42", "orders:u-42", "recommendations:u-42"]:
            problems.append(f"lookups {out['output']['lookups']}")
    elif status == "completed" and out["output"] != expected:
        problems.append(f"output {out['output']} (expected {expected})")
    elif status != "completed" and out["error"]["type"] != expected:
        problems.append(f"error {out['error']} (expected type {expected})")
    events = list(client.history(out["run_id"]))
    undo = [e["payload"]["activity"] for e in events if e["type"] == "CompensationStarted"]
    if undo != compensations:
        problems.append(f"compensations {undo} (expected {compensations})")
    if input_name == "order_flaky":
        ship = [
            e["attempt"] for e in events if e["type"] == "ActivityStarted" and e["state"] == "ship"
        ]
        if ship != [1, 2, 3]:
            problems.append(f"ship attempts {ship} (expected [1, 2, 3])")
    if input_name == "parent_child" and len(client.status(out["run_id"])["children"]) != 3:
        problems.append("expected 3 child runs")
    return problems


APPROVAL_EXPIRED = (
    "approval",
    "approval",
    "completed",
    {"request_id": "R-7", "ticket": "apr-R-7", "status": "expired", "decided_by": None},
    [],
)


def test_every_sample_with_its_inputs(store_url: str) -> None:
    """All samples run at once (separate processes on one store), each with its known outcome.
    approval without a signal expires after its 5 s wait."""
    cases = [*SAMPLE_CASES, APPROVAL_EXPIRED]
    started = time.monotonic()
    procs = [
        cli_popen(
            "run",
            str(SAMPLES / f"{workflow}.yaml"),
            "--input",
            f"@{INPUTS / input_name}.json",
            "--activities",
            str(SAMPLE_ACTIVITIES),
            "--db",
            store_url,
            "--json",
        )
        for workflow, input_name, *_ in cases
    ]
    results = [finish(proc, timeout=180) for proc in procs]
    problems = {}
    with Client(store_url) as client:
        for case, result in zip(cases, results, strict=True):
            found = _check_sample(client, case, result)
            if found:
                problems[f"{case[0]} with {case[1]}.json"] = found
    assert problems == {}
    assert time.monotonic() - started >= 5, "approval waited for its signal timeout"
    # parent_child starts 3 children; with a missing item it stops starting them (2 or 3).
    assert len(cases) + 5 <= len(runs_in(store_url)) <= len(cases) + 6


def test_sample_approval_rejected_by_signal(store_url: str) -> None:
    sample_act = ("--activities", str(SAMPLE_ACTIVITIES))
    assert_clean(
        run_cli(
            "start",
            str(SAMPLES / "approval.yaml"),
            "--id",
            "apr-r",
            "--input",
            f"@{INPUTS / 'approval.json'}",
            *sample_act,
            "--db",
            store_url,
        ),
        0,
    )
    assert_clean(
        run_cli(
            "signal",
            "apr-r",
            "approve",
            "--data",
            '{"approved": false, "by": "carol"}',
            "--db",
            store_url,
        ),
        0,
    )
    resumed = run_cli("resume", "apr-r", *sample_act, "--db", store_url, "--json")
    assert_clean(resumed, 0)
    assert one_json(resumed)["output"] == {
        "request_id": "R-7",
        "ticket": "apr-R-7",
        "status": "rejected",
        "decided_by": "carol",
    }
