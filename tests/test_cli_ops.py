"""Operating runs from the CLI (issue 13, "CLI"): result, history --follow, status --watch, list
(filters, newest first, cursor pages, outputs), bulk cancel/terminate, prune, pause/unpause,
worker --log-format, and the exit codes. Real CLI subprocesses on every configured store."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import run_cli
from run_helpers import (
    TEST_ACTIVITIES,
    WORKFLOWS,
    assert_clean,
    cli_popen,
    finish,
    one_json,
    wait_for,
    write_workflow,
)

from interpreter import Client

GREET = WORKFLOWS / "greet_twice.yaml"
SLOW = WORKFLOWS / "slow_steps.yaml"
ACT = ("--activities", str(TEST_ACTIVITIES))
EXIT_STILL_RUNNING = 3
EXIT_NOT_FOUND = 4


def start(store_url: str, workflow: Path, input_: Any, *extra: str) -> str:
    proc = run_cli(
        "start", str(workflow), "--input", json.dumps(input_), "--db", store_url, "--json", *extra
    )
    assert_clean(proc, 0)
    run_id: str = one_json(proc)["run_id"]
    return run_id


def stop(worker: subprocess.Popen[str]) -> subprocess.CompletedProcess[str]:
    worker.send_signal(signal.SIGTERM)
    return finish(worker)


def history_types(store_url: str, run_id: str) -> list[str]:
    with Client(store_url) as client:
        return [e["type"] for e in client.history(run_id)]


def listed(store_url: str, *args: str) -> list[str]:
    proc = run_cli("list", "--db", store_url, "--output", "jsonl", *args)
    assert_clean(proc, 0)
    return [json.loads(line)["run_id"] for line in proc.stdout.splitlines()]


# --------------------------------------------------------------------------- result, follow


def test_result_waits_for_a_worker_without_executing_and_exits_like_run(
    store_url: str, tmp_path: Path
) -> None:
    run_id = start(store_url, GREET, {"name": "Ada"})
    waiting = cli_popen("result", run_id, "--db", store_url, "--json")
    pending = run_cli("result", run_id, "--db", store_url, "--timeout", "0.3")
    assert_clean(pending, EXIT_STILL_RUNNING)
    assert "still running" in pending.stderr
    assert waiting.poll() is None  # nobody executes the run: result only waits
    worker = cli_popen("worker", *ACT, "--db", store_url)
    try:
        done = finish(waiting, timeout=60)
    finally:
        stop(worker)
    assert_clean(done, 0)
    assert one_json(done)["output"] == {"first": "hello Ada", "second": "hello again Ada"}
    failed = write_workflow(
        tmp_path, "name: doomed\nstates:\n  boom: {type: fail, error: Doomed}\n"
    )
    bad = run_cli("run", str(failed), "--db", store_url, "--json")
    assert_clean(bad, 1)
    again = run_cli("result", one_json(bad)["run_id"], "--db", store_url)
    assert_clean(again, 1)
    assert "failed" in again.stdout and "Doomed" in again.stdout


@pytest.mark.parametrize(
    "command",
    [
        ("status",),
        ("history",),
        ("result",),
        ("cancel",),
        ("terminate",),
        ("pause",),
        ("unpause",),
        ("signal", "go"),
        ("query", "q"),
    ],
)
def test_an_unknown_run_id_has_its_own_exit_code(store_url: str, command: tuple[str, ...]) -> None:
    start(store_url, GREET, {"name": "x"})  # the store exists
    args = [command[0], "ghost-run", *command[1:], "--db", store_url]
    proc = run_cli(*args)
    assert_clean(proc, EXIT_NOT_FOUND)
    assert "ghost-run" in proc.stderr


def test_history_follow_streams_events_until_the_run_ends(store_url: str, tmp_path: Path) -> None:
    run_id = start(store_url, SLOW, {"seconds": 0.5, "path": str(tmp_path / "log")})
    follower = cli_popen("history", run_id, "--follow", "--json", "--db", store_url)
    assert follower.stdout is not None
    first = json.loads(follower.stdout.readline())  # what was there already comes at once
    assert first["type"] == "RunStarted" and first["seq"] == 1
    assert follower.poll() is None  # and it waits for more: nobody drives the run yet
    worker = cli_popen("worker", *ACT, "--db", store_url)
    try:
        # read line by line as they come; it ends by itself once the run has ended
        events = [first] + [json.loads(line) for line in follower.stdout]
        done = finish(follower, timeout=60)
    finally:
        stop(worker)
    assert_clean(done, 0)
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert events[-1]["type"] == "RunCompleted"
    assert [e["type"] for e in events] == history_types(store_url, run_id)


def test_status_watch_shows_new_events_and_the_final_status(store_url: str, tmp_path: Path) -> None:
    run_id = start(store_url, SLOW, {"seconds": 0.3, "path": str(tmp_path / "log")})
    watcher = cli_popen("status", run_id, "--watch", "--db", store_url)
    worker = cli_popen("worker", *ACT, "--db", store_url)
    try:
        done = finish(watcher, timeout=60)
    finally:
        stop(worker)
    assert_clean(done, 0)
    before, _, after = done.stdout.partition("watching (Ctrl-C to stop):")
    assert "status     running" in before
    assert "ActivityCompleted" in after and "RunCompleted" in after
    assert after.rstrip().splitlines()[-1].startswith("error") or "status     completed" in after


def test_history_table_shows_step_durations_and_folds_payloads(store_url: str) -> None:
    proc = run_cli(
        "run",
        str(GREET),
        "--input",
        json.dumps({"name": "A" * 500}),
        *ACT,
        "--db",
        store_url,
        "--json",
    )
    run_id = one_json(proc)["run_id"]
    table = run_cli("history", run_id, "--db", store_url, env={"COLUMNS": "120"})
    assert_clean(table, 0)
    lines = table.stdout.splitlines()
    assert "DURATION" in lines[0]
    completed = [line for line in lines if "ActivityCompleted" in line]
    assert completed and all("ms" in line or "s " in line for line in completed)
    assert max(len(line) for line in lines) <= 120
    assert "--wide shows them" in table.stdout
    wide = run_cli("history", run_id, "--db", store_url, "--wide", env={"COLUMNS": "120"})
    assert "A" * 500 in wide.stdout and "--wide shows them" not in wide.stdout


# --------------------------------------------------------------------------- list


def test_list_is_newest_first_with_cursor_pages_and_filters(store_url: str, tmp_path: Path) -> None:
    ids = [start(store_url, GREET, {"name": str(n)}, "--id", f"g-{n}") for n in range(5)]
    failed = write_workflow(
        tmp_path, "name: doomed\nstates:\n  boom: {type: fail, error: Doomed}\n"
    )
    bad = one_json(run_cli("run", str(failed), "--db", store_url, "--json", "--id", "bad-1"))
    assert bad["status"] == "failed"
    assert listed(store_url) == ["bad-1", *reversed(ids)]
    # pages of two, each telling the cursor of the next
    seen: list[str] = []
    cursor: list[str] = []
    while True:
        proc = run_cli("list", "--db", store_url, "--json", "--limit", "2", *cursor)
        assert_clean(proc, 0)
        seen += [r["run_id"] for r in json.loads(proc.stdout)]
        if "--cursor" not in proc.stderr:
            break
        cursor = ["--cursor", proc.stderr.split("--cursor", 1)[1].split()[0]]
    assert seen == ["bad-1", *reversed(ids)]
    assert listed(store_url, "--status", "failed") == ["bad-1"]
    assert listed(store_url, "--error", "Doomed") == ["bad-1"]
    assert listed(store_url, "--workflow", "greet_twice", "--limit", "2") == ids[:2:-1][:2]
    assert listed(store_url, "--since", "1h") == ["bad-1", *reversed(ids)]
    assert listed(store_url, "--until", "1h") == []
    assert listed(store_url, "--until", "2999-01-01T00:00:00Z", "--status", "running") == ids[::-1]
    unknown = run_cli("list", "--db", store_url, "--workflow", "greet_twise")
    assert_clean(unknown, 2)
    assert "did you mean 'greet_twice'" in unknown.stderr
    table = run_cli("list", "--db", store_url, env={"COLUMNS": "80"})
    assert_clean(table, 0)
    assert table.stdout.splitlines()[0].split()[:3] == ["RUN", "ID", "WORKFLOW"]
    assert max(len(line) for line in table.stdout.splitlines()) <= 80
    bad_cursor = run_cli("list", "--db", store_url, "--cursor", "nonsense!")
    assert_clean(bad_cursor, 2)
    assert "cursor" in bad_cursor.stderr


# --------------------------------------------------------------------------- bulk, prune


def test_bulk_terminate_asks_refuses_without_a_tty_and_acts_with_yes(store_url: str) -> None:
    ids = [start(store_url, GREET, {"name": str(n)}) for n in range(3)]
    refused = run_cli("terminate", "--workflow", "greet_twice", "--db", store_url, input_text="y\n")
    assert_clean(refused, 2)
    assert "3 run(s) match" in refused.stderr and "--yes" in refused.stderr
    assert listed(store_url, "--status", "running") == ids[::-1]
    both = run_cli("terminate", ids[0], "--workflow", "greet_twice", "--db", store_url)
    assert_clean(both, 2)
    done = run_cli(
        "terminate", "--status", "running", "--yes", "--json", "--reason", "bulk", "--db", store_url
    )
    assert_clean(done, 0)
    assert one_json(done) == {"matched": 3, "done": 3, "skipped": 0}
    assert listed(store_url, "--status", "terminated") == ids[::-1]
    assert listed(store_url, "--error", "Terminated") == ids[::-1]
    nothing = run_cli("cancel", "--workflow", "greet_twice", "--db", store_url)
    assert_clean(nothing, 0)
    assert "0 running run(s) match" in nothing.stderr


def test_bulk_cancel_requests_each_matching_run(store_url: str) -> None:
    ids = [start(store_url, GREET, {"name": str(n)}) for n in range(2)]
    other = start(store_url, SLOW, {"seconds": 0.01})
    done = run_cli("cancel", "--workflow", "greet_twice", "--yes", "--db", store_url)
    assert_clean(done, 0)
    assert "cancel: 2 run(s) done" in done.stdout
    with Client(store_url) as client:
        assert [client.get(i).cancel_requested for i in ids] == [True, True]
        assert client.get(other).cancel_requested is False


def test_prune_deletes_old_ended_runs_and_their_history(store_url: str, tmp_path: Path) -> None:
    finished = [
        one_json(
            run_cli(
                "run", str(GREET), "--input", '{"name": "x"}', *ACT, "--db", store_url, "--json"
            )
        )["run_id"]
        for _ in range(2)
    ]
    running = start(store_url, GREET, {"name": "y"})
    dry = run_cli("prune", "--older-than", "0s", "--dry-run", "--json", "--db", store_url)
    assert_clean(dry, 0)
    assert one_json(dry) == {"matched": 2, "deleted": 0, "dry_run": True}
    kept = run_cli("prune", "--older-than", "30d", "--yes", "--db", store_url)
    assert_clean(kept, 0)
    assert "nothing deleted" in kept.stdout
    none_failed = run_cli(
        "prune", "--older-than", "0s", "--status", "failed", "--yes", "--json", "--db", store_url
    )
    assert one_json(none_failed)["deleted"] == 0
    refused = run_cli("prune", "--older-than", "0s", "--db", store_url)
    assert_clean(refused, 2)
    pruned = run_cli("prune", "--older-than", "0s", "--yes", "--json", "--db", store_url)
    assert_clean(pruned, 0)
    assert one_json(pruned) == {"matched": 2, "deleted": 2, "dry_run": False}
    assert listed(store_url) == [running]
    for run_id in finished:
        assert_clean(run_cli("history", run_id, "--db", store_url), EXIT_NOT_FOUND)
    bad = run_cli("prune", "--older-than", "thirty days", "--db", store_url)
    assert_clean(bad, 2)
    assert "30d" in bad.stderr


# --------------------------------------------------------------------------- pause


def test_pause_lets_the_activity_in_flight_finish_and_starts_nothing_new(
    store_url: str, tmp_path: Path
) -> None:
    log = tmp_path / "log"
    run_id = start(store_url, SLOW, {"seconds": 4.0, "path": str(log)})
    worker = cli_popen("worker", *ACT, "--db", store_url)
    try:
        wait_for(lambda: log.exists() and "start" in log.read_text(), 30)
        paused = run_cli("pause", run_id, "--db", store_url)
        assert_clean(paused, 0)
        assert "paused" in paused.stdout
        # the first activity completes and is recorded, then the worker hands the run back
        wait_for(lambda: "ActivityCompleted" in history_types(store_url, run_id), 30)
        status = wait_for(
            lambda: (
                (s := one_json(run_cli("status", run_id, "--db", store_url, "--json")))["worker"]
                is None
                and s
            ),
            30,
        )
        assert status["paused"] is True and status["status"] == "running"
        types = history_types(store_url, run_id)
        assert types.count("ActivityStarted") == 1, types  # the second step did not start
        text = run_cli("status", run_id, "--db", store_url)
        assert "status     paused" in text.stdout
        assert listed(store_url, "--status", "paused") == [run_id]
        again = run_cli("pause", run_id, "--db", store_url)
        assert "already paused" in again.stdout
        assert_clean(run_cli("unpause", run_id, "--db", store_url), 0)
        done = run_cli("result", run_id, "--db", store_url, "--timeout", "60", "--json")
    finally:
        stop(worker)
    assert_clean(done, 0)
    assert one_json(done)["status"] == "completed"
    assert history_types(store_url, run_id).count("ActivityStarted") == 2


def test_a_run_paused_before_any_worker_waits_until_unpaused(store_url: str) -> None:
    run_id = start(store_url, GREET, {"name": "P"})
    assert_clean(run_cli("pause", run_id, "--db", store_url), 0)
    worker = cli_popen("worker", *ACT, "--db", store_url)
    try:
        pending = run_cli("result", run_id, "--db", store_url, "--timeout", "1")
        assert_clean(pending, EXIT_STILL_RUNNING)
        assert history_types(store_url, run_id) == ["RunStarted", "StateEntered"] or (
            "ActivityStarted" not in history_types(store_url, run_id)
        )
        assert_clean(run_cli("unpause", run_id, "--db", store_url), 0)
        done = run_cli("result", run_id, "--db", store_url, "--timeout", "60")
    finally:
        stop(worker)
    assert_clean(done, 0)
    ended = run_cli("pause", run_id, "--db", store_url)
    assert_clean(ended, 1)
    assert "already ended" in ended.stderr


# --------------------------------------------------------------------------- worker log, run


def test_worker_logs_one_json_line_per_run_event(store_url: str) -> None:
    run_id = start(store_url, GREET, {"name": "L"})
    worker = cli_popen("worker", *ACT, "--db", store_url, "--log-format", "json")
    try:
        assert_clean(run_cli("result", run_id, "--db", store_url, "--timeout", "60"), 0)
    finally:
        done = stop(worker)
    lines = [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]
    logged = [(line["seq"], line["type"]) for line in lines if line["run_id"] == run_id]
    types = history_types(store_url, run_id)
    # every event after the ones `start` wrote, in order, each once
    assert logged == [(seq, t) for seq, t in enumerate(types, 1)][len(types) - len(logged) :]
    assert logged[-1][1] == "RunCompleted"


def test_run_with_the_id_of_an_ended_run_says_so(store_url: str) -> None:
    first = run_cli(
        "run", str(GREET), "--input", '{"name": "R"}', *ACT, "--db", store_url, "--id", "once"
    )
    assert_clean(first, 0)
    assert "completed in" in first.stdout
    again = run_cli(
        "run", str(GREET), "--input", '{"name": "R"}', *ACT, "--db", store_url, "--id", "once"
    )
    assert_clean(again, 0)
    assert "already ended (completed); not run again" in again.stderr


def test_a_paused_run_stays_paused_when_its_worker_is_sigkilled(
    store_url: str, tmp_path: Path
) -> None:
    """The pause is durable: a worker killed with SIGKILL mid-activity after the pause leaves
    the run paused; no other worker takes it until it is unpaused, then it completes."""
    log = tmp_path / "log"
    run_id = start(store_url, SLOW, {"seconds": 4.0, "path": str(log)})
    doomed = cli_popen("worker", *ACT, "--db", store_url)
    try:
        wait_for(lambda: log.exists() and "start" in log.read_text(), 30)
        assert_clean(run_cli("pause", run_id, "--db", store_url), 0)
    finally:
        doomed.kill()  # SIGKILL, with the first activity in flight
        doomed.wait()
    worker = cli_popen("worker", *ACT, "--db", store_url)
    try:
        pending = run_cli("result", run_id, "--db", store_url, "--timeout", "2")
        assert_clean(pending, EXIT_STILL_RUNNING)
        status = one_json(run_cli("status", run_id, "--db", store_url, "--json"))
        assert status["paused"] is True
        assert "ActivityCompleted" not in history_types(store_url, run_id)
        assert_clean(run_cli("unpause", run_id, "--db", store_url), 0)
        done = run_cli("result", run_id, "--db", store_url, "--timeout", "60", "--json")
    finally:
        stop(worker)
    assert_clean(done, 0)
    assert one_json(done)["status"] == "completed"
    starts = [json.loads(line) for line in log.read_text().splitlines()]
    assert [s["event"] for s in starts].count("start") == 3  # first (killed, again), second


def test_status_of_a_run_no_worker_took_says_waiting_for_a_worker(store_url: str) -> None:
    run_id = start(store_url, GREET, {"name": "W"})
    proc = run_cli("status", run_id, "--db", store_url, "--relative")
    assert_clean(proc, 0)
    assert "waiting for a worker" in proc.stdout
    assert "ago" in proc.stdout or "just now" in proc.stdout
    info = one_json(run_cli("status", run_id, "--db", store_url, "--json"))
    assert info["worker"] is None and info["paused"] is False


@pytest.mark.parametrize(("answer", "code", "left_running"), [("y\n", 0, 0), ("n\n", 1, 2)])
def test_bulk_terminate_on_a_terminal_asks_and_follows_the_answer(
    store_url: str, answer: str, code: int, left_running: int
) -> None:
    import os
    import pty

    from run_helpers import cli_env

    for n in range(2):
        start(store_url, GREET, {"name": str(n)})
    leader, follower = pty.openpty()  # stdin is a terminal: the command asks
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "interpreter", "terminate", "--workflow", "greet_twice", "--db", store_url],
            stdin=follower, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli_env(),
        )  # fmt: skip
        os.write(leader, answer.encode())
        done = finish(proc, timeout=60)
    finally:
        os.close(leader)
        os.close(follower)
    assert_clean(done, code)
    assert "terminate 2 run(s)? [y/N]" in done.stderr
    assert len(listed(store_url, "--status", "running")) == left_running
