"""Helpers shared by the engine, saga, CLI and fault tests (not fixtures: plain functions and
classes; the fixtures built on them are in conftest.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Collection, Iterable
from pathlib import Path
from typing import Any

from interpreter import Client
from interpreter.store import RunRecord

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
WORKFLOWS = TESTS / "workflows"
TEST_ACTIVITIES = TESTS / "activities_for_tests.py"
RUN_RESULT_KEYS = {"run_id", "workflow", "status", "output", "error"}


def write_workflow(directory: Path, text: str, name: str = "wf.yaml") -> Path:
    """Write a workflow given as an indented YAML block; `dsl: "1.0"` is added when missing."""
    body = textwrap.dedent(text).strip() + "\n"
    if not body.startswith("dsl:"):
        body = 'dsl: "1.0"\n' + body
    path = directory / name
    path.write_text(body, encoding="utf-8")
    return path


def run_to_end(client: Client, workflow: Path | str, input_: Any = None) -> RunRecord:
    run_id = client.start(workflow, input_)
    return client.execute(run_id)


def history(client: Client, run_id: str) -> list[dict[str, Any]]:
    return list(client.history(run_id))


def types_of(events: list[dict[str, Any]], only: set[str] | None = None) -> list[str]:
    return [e["type"] for e in events if only is None or e["type"] in only]


def of_type(events: list[dict[str, Any]], type_: str) -> list[dict[str, Any]]:
    return [e for e in events if e["type"] == type_]


def one_json(proc: subprocess.CompletedProcess[str]) -> Any:
    """stdout holds exactly one JSON document on one line."""
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    assert len(lines) == 1, (
        f"expected one line of JSON on stdout, got {proc.stdout!r}\nstderr: {proc.stderr}"
    )
    return json.loads(lines[0])


def assert_clean(proc: subprocess.CompletedProcess[str], code: int) -> None:
    """The process ended with `code` and no Python traceback reached the user."""
    assert proc.returncode == code, (
        f"exit {proc.returncode}, expected {code}\nstdout: {proc.stdout}\nstderr: {proc.stderr}"
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stdout, proc.stdout


def wait_for(condition: Callable[[], Any], timeout: float = 10.0, interval: float = 0.02) -> Any:
    """Poll until `condition()` is truthy; return its value or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)


def cli_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {**os.environ, **(extra or {})}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def cli_popen(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.Popen[str]:
    """Start `python -m interpreter ARGS` in the background (stdout/stderr piped)."""
    return subprocess.Popen(
        [sys.executable, "-m", "interpreter", *args],
        env=cli_env(env),
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(proc: subprocess.Popen[str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Wait for a background CLI process and return it like subprocess.run would."""
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError(
            f"process did not end within {timeout}s\nstdout: {out}\nstderr: {err}"
        ) from None
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def events_or_empty(client: Client, run_id: str) -> list[dict[str, Any]]:
    """The run's history, or [] while the run does not exist yet (another process creates it)."""
    try:
        return list(client.history(run_id))
    except Exception:
        return []


class Driven:
    """A worker driving one run in a thread (its own Client), as another process would."""

    def __init__(self, store_url: str, run_id: str) -> None:
        self.record: RunRecord | None = None
        self.error: BaseException | None = None

        def drive() -> None:
            try:
                with Client(store_url) as own:
                    self.record = own.execute(run_id)
            except BaseException as exc:
                self.error = exc

        self.thread = threading.Thread(target=drive, daemon=True)
        self.thread.start()

    def result(self) -> RunRecord:
        self.thread.join(60)
        assert not self.thread.is_alive(), "the run did not end"
        if self.error is not None:
            raise self.error
        assert self.record is not None
        return self.record


def token(folder: Path, name: str, attempt: int = 1) -> str:
    """The callback token the test activities wrote for step `name` (waits for the file)."""
    path = folder / f"{name}-{attempt}.token"
    text: str = wait_for(lambda: path.exists() and path.read_text(encoding="utf-8"), 30)
    return text


# ----------------------------------------------------------------- golden histories
# A golden file pins the stories (status, output, events...) of some runs; a change to the engine
# that alters one must be deliberate: regenerate with TIDEFLOW_UPDATE_GOLDEN=1, review the diff.
SAMPLES = ROOT / "samples"


def run_sample(
    client: Client, workflow: str, input_name: str, run_id: str | None = None
) -> RunRecord:
    """Run samples/WORKFLOW.yaml on samples/inputs/INPUT_NAME.json to its end."""
    data = json.loads((SAMPLES / "inputs" / f"{input_name}.json").read_text())
    return client.execute(client.start(SAMPLES / f"{workflow}.yaml", data, run_id=run_id))


def event_rows(
    events: Iterable[dict[str, Any]], payload_of: Collection[str] = ()
) -> list[list[Any]]:
    """[type, state, attempt] of each event, and its payload for the types in `payload_of`."""
    return [
        [e["type"], e["state"], e["attempt"]] + ([e["payload"]] if e["type"] in payload_of else [])
        for e in events
    ]


def story(
    record: RunRecord, events: Iterable[dict[str, Any]], payload_of: Collection[str] = ()
) -> dict[str, Any]:
    """An ended run's status, output, error and event rows."""
    return {
        "status": record.status,
        "output": record.output,
        "error": record.error,
        "events": event_rows(events, payload_of),
    }


def golden_found(golden: Path, found: dict[str, Any]) -> dict[str, Any]:
    """`found` as it is; written to the golden file first when TIDEFLOW_UPDATE_GOLDEN=1."""
    if os.environ.get("TIDEFLOW_UPDATE_GOLDEN") == "1":
        golden.write_text(json.dumps(found, indent=1, sort_keys=True) + "\n")
    return found


def assert_golden(found: Any, golden: Path, key: str) -> None:
    """The story `found` is the golden file's under `key`."""
    assert found == json.loads(golden.read_text())[key], (
        f"the history of {key} changed; if that is intended, regenerate with "
        "TIDEFLOW_UPDATE_GOLDEN=1 and review the diff"
    )
