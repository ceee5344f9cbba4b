"""Continue-as-new and the history limit, end to end on every store: the poller sample from the
CLI, history by segment, signals and queries across the switch, the pinned definition, and a
run stopped by its history limit (with `status` warning first)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import SAMPLE_ACTIVITIES, SAMPLES, run_cli

from interpreter import Client, load_activity_modules
from interpreter.core.definition import Definition
from interpreter.worker import Worker

WF = Path(__file__).resolve().parent / "workflows_can"
POLLER = SAMPLES / "poller.yaml"


@pytest.fixture
def client(store_url: str) -> Iterator[Client]:
    load_activity_modules([str(SAMPLE_ACTIVITIES)])
    with Client(store_url) as c:
        yield c


def types(events: Any) -> list[str]:
    return [e["type"] for e in events]


def drive_until(client: Client, run_id: str, done: Any) -> None:
    """Drive the run in this process until `done(record)` holds (the run may keep waiting)."""
    worker = Worker(client.store, root_id=run_id, poll_interval=0.01)

    def until() -> bool:
        record = client.store.get_run(run_id)
        return record is not None and bool(done(record))

    asyncio.run(asyncio.wait_for(worker.run(until=until, grace=1), 30))


# --------------------------------------------------------------------------- the sample


def test_poller_sample_runs_from_the_cli_in_three_segments(store_url: str) -> None:
    proc = run_cli(
        "run",
        str(POLLER),
        "--input",
        f"@{SAMPLES / 'inputs' / 'poller.json'}",
        "--activities",
        str(SAMPLE_ACTIVITIES),
        "--db",
        store_url,
        "--id",
        "poll-1",
        "--json",
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["output"] == {"job": "export-42", "checked": 8, "segment": 3}

    with Client(store_url) as client:
        chain = client.segments("poll-1")
        assert [s.segment for s in chain] == [1, 2, 3]
        everything = list(client.history("poll-1", all_segments=True))
        # One seq order over the whole chain; each segment starts with RunStarted.
        assert [e["seq"] for e in everything] == list(range(1, len(everything) + 1))
        for seg in chain:
            events = list(client.history("poll-1", segment=seg.segment))
            assert events[0]["type"] == "RunStarted" and events[0]["seq"] == seg.first_seq
            assert {e["segment"] for e in everything if e["seq"] >= seg.first_seq} >= {seg.segment}
            last = events[-1]["type"]
            assert last == ("RunCompleted" if seg.segment == 3 else "ContinuedAsNew")
            # Three polls per segment, except the last one (8 = 3 + 3 + 2).
            assert types(events).count("ActivityCompleted") == (2 if seg.segment == 3 else 3)
        current = list(client.history("poll-1"))
        assert current == list(client.history("poll-1", segment=3))
        switch = [e for e in everything if e["type"] == "ContinuedAsNew"]
        assert [e["payload"]["input"]["checked"] for e in switch] == [3, 6]
        started = [e for e in everything if e["type"] == "RunStarted"]
        assert [e["payload"].get("segment") for e in started] == [None, 2, 3]
        # The same pinned definition throughout; the run's input is the last segment's.
        assert len({e["payload"]["hash"] for e in started}) == 1
        record = client.get("poll-1")
        assert record.input["checked"] == 6
        info = client.status("poll-1")["history"]
        assert (info["segment"], info["segments"], info["warning"]) == (3, 3, None)
        assert info["events"] == len(current) and info["limit"] == 51_200

    text = run_cli("history", "poll-1", "--db", store_url)
    assert text.returncode == 0 and "segment 3 of 3" in text.stdout, text.stderr
    assert "ContinuedAsNew" not in text.stdout
    first = run_cli("history", "poll-1", "--db", store_url, "--segment", "1", "--json")
    assert types(json.loads(first.stdout))[-1] == "ContinuedAsNew"
    missing = run_cli("history", "poll-1", "--db", store_url, "--segment", "9")
    assert missing.returncode == 1 and "has no segment 9" in missing.stderr
    assert "Traceback" not in missing.stderr
    status = run_cli("status", "poll-1", "--db", store_url)
    assert "segment 3 (2 earlier" in status.stdout, status.stdout


def test_idempotency_keys_never_repeat_across_segments(client: Client) -> None:
    run_id = client.start(POLLER, {"job": "j", "finish_after": 7, "per_segment": 2})
    assert client.execute(run_id).status == "completed"
    keys = [
        e["payload"]["idempotency_key"]
        for e in client.history(run_id, all_segments=True)
        if e["type"] == "ActivityScheduled"
    ]
    assert len(keys) == 7 and len(set(keys)) == 7
    assert len(client.segments(run_id)) == 4


# --------------------------------------------------------------------------- signals, queries


def test_a_signal_sent_before_the_switch_reaches_the_next_segment(client: Client) -> None:
    run_id = client.start(WF / "carry_over.yaml", {"round": 0})
    client.signal(run_id, "go", {"n": 1})  # buffered: no segment waits for it yet
    record = client.execute(run_id)
    assert record.status == "completed"
    assert record.output == {"segment": 3, "got": {"n": 1}, "round": 2}
    received = [e for e in client.history(run_id) if e["type"] == "SignalReceived"]
    assert len(received) == 1 and received[0]["state"] == "hold"
    assert [s.segment for s in client.segments(run_id)] == [1, 2, 3]


def test_queries_and_signals_work_on_the_later_segment(client: Client) -> None:
    run_id = client.start(WF / "carry_over.yaml", {"round": 0})
    assert client.query(run_id, "where") == {"segment": 1, "round": 0, "seen": 0}
    drive_until(
        client, run_id, lambda r: any(f["state"] == "hold" for f in r.state["frames"].values())
    )
    assert client.query(run_id, "where") == {"segment": 3, "round": 2, "seen": 2}
    assert client.get(run_id).input == {"round": 2}
    client.signal(run_id, "go", "late")
    record = client.execute(run_id)
    assert (record.status, record.output["got"]) == ("completed", "late")


def test_an_input_the_schema_refuses_fails_the_run_at_the_switch(client: Client) -> None:
    data = {
        "dsl": "1.0",
        "name": "bad-next",
        "input_schema": {"type": "object", "required": ["n"]},
        "states": {"again": {"type": "continue_as_new", "input": "{{ {'m': 1} }}"}},
    }
    run_id = client.start(Definition.from_data(data), {"n": 1})
    record = client.execute(run_id)
    assert record.status == "failed" and record.error["type"] == "InputInvalid"
    assert "required property" in record.error["message"]
    assert len(client.segments(run_id)) == 1


def test_continue_as_new_inside_a_map_fails_cleanly_when_lint_is_bypassed(
    client: Client,
) -> None:
    data = {
        "dsl": "1.0",
        "name": "nested",
        "states": {
            "each": {
                "type": "map",
                "items": [1],
                "states": {"again": {"type": "continue_as_new"}},
                "end": True,
            }
        },
    }
    run_id = client.start(Definition.from_data(data), None)
    record = client.execute(run_id)
    assert record.status == "failed" and record.error["type"] == "ContinueAsNewNotAllowed"


# --------------------------------------------------------------------------- history limit


def test_status_warns_past_80_percent_and_the_cap_fails_the_run(client: Client) -> None:
    run_id = client.start(WF / "near_limit.yaml", None)
    drive_until(
        client, run_id, lambda r: any(f["state"] == "hold" for f in r.state["frames"].values())
    )
    info = client.status(run_id)["history"]
    assert (info["events"], info["limit"]) == (len(list(client.history(run_id))), 20)
    assert info["events"] > 16 and "HistoryLimitExceeded" in info["warning"]
    text = run_cli("status", run_id, "--db", client.store.url)
    assert "warning    this segment holds" in text.stdout, text.stdout
    client.signal(run_id, "go")
    record = client.execute(run_id)
    assert record.status == "failed"
    assert record.error["type"] == "HistoryLimitExceeded"
    assert record.error["details"]["limit"] == 20
    assert "continue_as_new" in record.error["details"]["hint"]
    assert types(client.history(run_id))[-1] == "RunFailed"


def test_a_runaway_loop_is_stopped_by_the_history_limit(client: Client) -> None:
    run_id = client.start(WF / "runaway.yaml", None)
    record = client.execute(run_id)
    assert record.status == "failed" and record.error["type"] == "HistoryLimitExceeded"
    events = list(client.history(run_id))
    # The step that reaches the cap is written whole, then RunFailed: a few past the cap.
    assert 40 <= len(events) <= 45, len(events)
    assert record.state["segment_events"] == len(events)


def test_rerunning_the_same_run_command_after_a_switch_returns_the_run(store_url: str) -> None:
    """`run --id` again is idempotent for the input the run started with, whatever segment
    it is in now; another input is still a conflict (exit 2)."""
    args = ["--activities", str(SAMPLE_ACTIVITIES), "--db", store_url, "--id", "again", "--json"]
    given = f"@{SAMPLES / 'inputs' / 'poller.json'}"
    first = run_cli("run", str(POLLER), "--input", given, *args)
    assert first.returncode == 0, first.stderr
    second = run_cli("run", str(POLLER), "--input", given, *args)
    assert second.returncode == 0, second.stderr
    assert json.loads(second.stdout)["output"] == json.loads(first.stdout)["output"]
    other = run_cli("run", str(POLLER), "--input", '{"job": "x", "finish_after": 1}', *args)
    assert other.returncode == 2 and "different input" in other.stderr
