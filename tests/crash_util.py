"""Helpers for the crash tests: run `tideflow` in a real subprocess, SIGKILL it at a chosen
point, then read what really happened (the sample activity log) and what was recorded (the
store's history).

Two ways to kill:

- from outside (`Cli.spawn` + `kill`): the test watches the activity log or the store and sends
  SIGKILL, as an operator's `kill -9` would;
- from inside, at an exact transaction boundary: run this file as the CLI with
  TIDEFLOW_TEST_CRASH=`after|before:EVENT_TYPE:N`. The store the CLI opens is wrapped so that
  the process SIGKILLs itself right after the transaction that records the N-th event of that
  type commits (`after`), or right before it is written (`before`: the decisions in memory,
  and any activity that just ended, are lost). The kill is a real SIGKILL of the real CLI; the
  wrapper only picks the moment.
"""

from __future__ import annotations

import json
import os
import select
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from interpreter.store.base import EVENT_COLUMNS, dumps, events_from_row

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"
SAMPLE_ACTIVITIES = SAMPLES / "activities.py"
CRASH_ENV = "TIDEFLOW_TEST_CRASH"
LOG_ENV = "TIDEFLOW_SAMPLE_LOG"
DELAY_ENV = "TIDEFLOW_SAMPLE_DELAY"

# How long a `tideflow` process may take to start (Python, the engine's imports, opening the
# store) before a test gives up on it. About 1 s of CPU, which on a loaded machine is a long
# wait: CI runs the suite in two pytest workers per CPU, and a worker's start-up alone was
# measured at 17 to 27 s (load 26 to 30 on 2 vCPUs). A bound for a hang, not a speed check.
STARTUP_SECONDS = 120.0
# What `tideflow worker` writes on stderr once its store is open, right before it looks for runs.
WORKER_READY = "Ctrl-C to stop"

# Outcomes of one attempt as recorded in history.
OUTCOME_EVENTS = frozenset(
    {"ActivityCompleted", "ActivityFailed", "CompensationCompleted", "CompensationFailed"}
)


# ----------------------------------------------------------------------------- subprocesses
def cli_env(log: Path | None = None, delay: float | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in (CRASH_ENV, LOG_ENV, DELAY_ENV)}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    if log is not None:
        env[LOG_ENV] = str(log)
    if delay is not None:
        env[DELAY_ENV] = str(delay)
    return env


@dataclass
class Cli:
    """`tideflow` against one store, with the sample activities and an activity log."""

    db: str
    log: Path
    delay: float | None = None
    cwd: Path = ROOT

    def argv(self, *args: str, crash: str | None = None) -> list[str]:
        entry = [str(Path(__file__).resolve())] if crash else ["-m", "interpreter"]
        return [sys.executable, *entry, *args]

    def env(self, crash: str | None = None) -> dict[str, str]:
        env = cli_env(self.log, self.delay)
        if crash:
            env[CRASH_ENV] = crash
        return env

    def spawn(self, *args: str, crash: str | None = None) -> subprocess.Popen[str]:
        return subprocess.Popen(
            self.argv(*args, crash=crash),
            cwd=self.cwd,
            env=self.env(crash),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def run(
        self, *args: str, crash: str | None = None, timeout: float = STARTUP_SECONDS
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.argv(*args, crash=crash),
            cwd=self.cwd,
            env=self.env(crash),
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def start_args(self, workflow: Path, input_file: Path, run_id: str) -> list[str]:
        return [
            "run",
            str(workflow),
            "--input",
            f"@{input_file}",
            "--activities",
            str(SAMPLE_ACTIVITIES),
            "--db",
            self.db,
            "--id",
            run_id,
            "--json",
        ]

    def resume(self, run_id: str, timeout: float = 20) -> dict[str, Any]:
        proc = self.run(
            "resume",
            run_id,
            "--activities",
            str(SAMPLE_ACTIVITIES),
            "--db",
            self.db,
            "--json",
            timeout=timeout,
        )
        assert proc.returncode in (0, 1), f"resume crashed ({proc.returncode}):\n{proc.stderr}"
        assert "Traceback" not in proc.stderr, proc.stderr
        result: dict[str, Any] = json.loads(proc.stdout)
        return result


def kill(proc: subprocess.Popen[str]) -> None:
    """SIGKILL a process we started and reap it."""
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=10)


def wait_until(
    predicate: Callable[[], bool],
    timeout: float,
    what: str,
    proc: subprocess.Popen[str] | None = None,
) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if proc is not None and proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(
                f"the process ended ({proc.returncode}) before {what}:\n{out}\n{err}"
            )
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(0.003)


def wait_for_stderr(proc: subprocess.Popen[str], text: str, timeout: float, what: str) -> str:
    """Read `proc`'s stderr until it holds `text`; return what it wrote so far. Raw reads of
    the pipe, not readline: a line already read into a buffer is never waited for again, and
    a later communicate() reads the rest from the same pipe."""
    assert proc.stderr is not None
    fd = proc.stderr.fileno()
    deadline = time.monotonic() + timeout
    seen = b""
    while text.encode() not in seen:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(
                f"timed out after {timeout:g}s waiting for {what}; its stderr so far:\n"
                + seen.decode(errors="replace")
            )
        if select.select([fd], [], [], remaining)[0]:
            chunk = os.read(fd, 65536)
            if not chunk:
                raise AssertionError(
                    f"the process ended ({proc.wait()}) before {what}:\n"
                    + seen.decode(errors="replace")
                )
            seen += chunk
    return seen.decode(errors="replace")


# ----------------------------------------------------------------------------- reading results
def read_log(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    # A kill can cut the last line short; a whole line always ends with "\n".
    return [json.loads(line) for line in lines if line.strip().endswith("}")]


def peek_events(db: str, run_id: str) -> list[tuple[int, str, str]]:
    """(seq, type, payload) read-only straight from the SQLite file, for polling while the CLI
    writes; [] until the run exists."""
    if not Path(db).exists():
        return []
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            rows = conn.execute(
                f"SELECT {EVENT_COLUMNS} FROM events WHERE run_id=? ORDER BY seq", (run_id,)
            ).fetchall()
        finally:
            conn.close()
    except sqlite3.OperationalError:
        return []  # the schema is not there yet
    return [
        (e["seq"], e["type"], dumps(e["payload"])) for row in rows for e in events_from_row(row)
    ]


def history(db: str, run_id: str) -> list[dict[str, Any]]:
    """The recorded history, through the store interface (works for every backend)."""
    from interpreter.store import open_store

    store = open_store(db)
    try:
        return list(store.iter_events(run_id))
    finally:
        store.close()


@dataclass
class Crash:
    """What was true at the moment of the kill, and what happened after the resume."""

    log_before: list[dict[str, Any]]
    history_before: list[dict[str, Any]]
    log_after: list[dict[str, Any]] = field(default_factory=list)
    history_after: list[dict[str, Any]] = field(default_factory=list)
    result: dict[str, Any] = field(default_factory=dict)


def task_keys(events: list[dict[str, Any]]) -> dict[str, str | None]:
    """Task id -> idempotency key. A compensation's key is its step's key + "-c"; its event
    does not carry it, so it is found through the state (unambiguous outside map/parallel)."""
    keys: dict[str, str | None] = {}
    step_keys: dict[str | None, set[str]] = {}
    for e in events:
        payload = e["payload"]
        if e["type"] == "ActivityScheduled":
            keys[payload["task"]] = payload["idempotency_key"]
            step_keys.setdefault(e["state"], set()).add(payload["idempotency_key"])
        elif e["type"] == "CompensationStarted":
            key = payload.get("idempotency_key")
            candidates = step_keys.get(e["state"], set())
            if key is None and len(candidates) == 1:
                key = next(iter(candidates)) + "-c"
            keys[payload["task"]] = key
    return keys


def recorded_outcomes(events: list[dict[str, Any]]) -> set[tuple[str | None, int]]:
    """(idempotency key, attempt) of every attempt whose outcome is in the history."""
    keys = task_keys(events)
    return {
        (keys.get(e["payload"]["task"]), e["attempt"])
        for e in events
        if e["type"] in OUTCOME_EVENTS
    }


def attempt_of(line: dict[str, Any]) -> tuple[str, int]:
    return (line["idempotency_key"], line["attempt"])


def shape(events: list[dict[str, Any]]) -> list[tuple[str, str | None]]:
    """History without what a crash legitimately adds (ActivityInterrupted, the extra
    ActivityStarted of a restarted attempt): must equal an uninterrupted run's."""
    return [
        (e["type"], e["state"])
        for e in events
        if e["type"] not in ("ActivityInterrupted", "ActivityStarted")
    ]


def check_recovery(crash: Crash, reference: Crash, run_id: str, *, ordered: bool = True) -> None:
    """The invariants of a crash and resume (see test_crash.py's docstring). `ordered=False`
    for workflows whose concurrent branches finish in any order."""
    res, ref = crash.result, reference.result
    assert (res["status"], res["output"], res["error"]) == (
        ref["status"],
        ref["output"],
        ref["error"],
    )

    recorded = recorded_outcomes(crash.history_before)
    assert all(key is not None for key, _ in recorded), "a task's idempotency key is unknown"
    log_all = crash.log_before + crash.log_after
    assert all(line["run_id"] == run_id for line in log_all)

    # 1. An attempt whose outcome was committed before the kill never runs again.
    rerun = [
        line
        for line in crash.log_after
        if line["event"] == "start" and attempt_of(line) in recorded
    ]
    assert not rerun, f"attempts with a recorded outcome ran again after the resume: {rerun}"
    ends = Counter(attempt_of(line) for line in log_all if line["event"] == "end")
    for attempt in recorded:
        assert ends[attempt] == 1, f"attempt {attempt} ended {ends[attempt]} times"

    # 2. An attempt that started before the kill but whose outcome was not recorded (killed
    #    mid-flight, or ended a moment before its completion was committed) runs again with the
    #    same idempotency key and the same attempt number.
    started_before = {attempt_of(line) for line in crash.log_before if line["event"] == "start"}
    restarted = {attempt_of(line) for line in crash.log_after if line["event"] == "start"}
    interrupted = started_before - recorded
    missing = interrupted - restarted
    assert not missing, f"interrupted attempts (key, attempt) not run again: {missing}"

    # 3. Every side effect happened exactly once, with the same keys as an uninterrupted run;
    #    only an attempt that was interrupted may have a second execution.
    def successes(lines: list[dict[str, Any]]) -> Counter[tuple[str, str, str]]:
        return Counter(
            (line["state"], line["activity"], line["idempotency_key"])
            for line in lines
            if line["event"] == "end" and line["outcome"] == "ok"
        )

    got, want = successes(log_all), successes(reference.log_before)
    assert set(got) == set(want), f"side effects differ from an uninterrupted run: {got} vs {want}"
    twice_allowed = {key for key, _ in interrupted}
    for (state, activity, key), count in got.items():
        limit = 2 if key in twice_allowed else 1
        assert count <= limit, f"{activity} in {state} (key {key}) succeeded {count} times"

    # 4. Compensations ran in the same order (newest first) as without the crash.
    def comp_order(lines: list[dict[str, Any]]) -> list[str]:
        order: list[str] = []
        for line in lines:
            key = line["idempotency_key"]
            if key.endswith("-c") and line["event"] == "end" and key not in order:
                order.append(key)
        return order

    assert comp_order(log_all) == comp_order(reference.log_before)

    # 5. The history is the uninterrupted one plus only interruption markers; one outcome per task.
    if ordered:
        assert shape(crash.history_after) == shape(reference.history_after)
    else:
        assert Counter(shape(crash.history_after)) == Counter(shape(reference.history_after))
    outcomes = Counter(
        e["payload"]["task"]
        for e in crash.history_after
        if e["type"] in OUTCOME_EVENTS and not e["payload"].get("will_retry")
    )
    assert all(n == 1 for n in outcomes.values()), outcomes
    assert [e["seq"] for e in crash.history_after] == list(range(1, len(crash.history_after) + 1))


# ----------------------------------------------------------------------------- the crash hook
def _install_crash_hook(spec: str) -> None:
    when, event_type, nth_text = spec.split(":")
    if when not in ("after", "before"):
        raise SystemExit(f"{CRASH_ENV}: expected after|before:EVENT:N, got {spec!r}")
    nth = int(nth_text)
    seen = 0

    def die() -> None:
        sys.stdout.flush()
        os.kill(os.getpid(), signal.SIGKILL)

    def count(events: list[Any]) -> int:
        return sum(1 for e in events if e.type == event_type)

    def around(
        write: Callable[..., Any], events_of: Callable[..., list[Any]]
    ) -> Callable[..., Any]:
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            nonlocal seen
            hit = seen < nth <= seen + count(events_of(*args, **kwargs))
            if hit and when == "before":
                die()
            result = write(*args, **kwargs)
            seen += count(events_of(*args, **kwargs))
            if hit:
                die()
            return result

        return wrapped

    import interpreter.client as client_module

    real_open = client_module.open_store

    def open_store(url: str | None = None, *, create: bool = True) -> Any:
        store = real_open(url, create=create)
        store.create_run = around(store.create_run, lambda run: run.events)
        # Every step goes through commit_many (store.commit included), one batch at a time.
        store.commit_many = around(
            store.commit_many, lambda steps: [e for _, _, commit, _ in steps for e in commit.events]
        )
        # A retry reopens an ended run (and the failed children it waits for) in one
        # transaction (Store.reopen_runs).
        store.reopen_runs = around(
            store.reopen_runs, lambda reopens, now: [e for _, _, r in reopens for e in r.events]
        )
        return store

    client_module.open_store = open_store  # type: ignore[assignment]


def main() -> int:
    sys.path.insert(0, str(ROOT))
    spec = os.environ.get(CRASH_ENV)
    if spec:
        _install_crash_hook(spec)
    from interpreter.cli import main as cli_main

    return cli_main(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
