"""The race, quorum and detached-child samples, run through the real CLI on both stores, with
their outcomes, the CompletionDecided / ParentClosePolicyApplied events, `status` and `list`;
and their drawings (the rule on the parallel/map cluster, the detached child's edge)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from conftest import SAMPLE_ACTIVITIES, SAMPLES, run_cli
from run_helpers import assert_clean, one_json

from dsl import validate_file
from dsl.graph import to_dot, to_mermaid
from interpreter import Client, load_activity_modules
from interpreter.worker import Worker

INPUTS = SAMPLES / "inputs"


def _run(store_url: str, workflow: str, input_name: str, log: Path | None = None) -> Any:
    env = {"TIDEFLOW_SAMPLE_LOG": str(log)} if log else None
    proc = run_cli(
        "run",
        str(SAMPLES / f"{workflow}.yaml"),
        "--input",
        f"@{INPUTS / input_name}.json",
        "--activities",
        str(SAMPLE_ACTIVITIES),
        "--db",
        store_url,
        "--json",
        env=env,
    )
    assert_clean(proc, 0 if json.loads(proc.stdout or "{}").get("status") == "completed" else 1)
    return one_json(proc)


def _events(client: Client, run_id: str, type_: str) -> list[dict[str, Any]]:
    return [e for e in client.history(run_id) if e["type"] == type_]


def test_race_sample(store_url: str, tmp_path: Path) -> None:
    log = tmp_path / "activities.log"
    result = _run(store_url, "race", "race", log)
    assert result["status"] == "completed"
    assert result["output"] == {
        "quote": {"provider": "fast", "price": 14},
        "why": "branch 0 succeeded first",
        "mirror": "ok-asia",
        "tried": 3,
    }
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    # The slow provider was asked and then cancelled (no fake error); the late one never was.
    slow = [line for line in lines if line["state"] == "ask_slow"]
    assert [line["event"] for line in slow] == ["start", "end"]
    assert slow[1]["outcome"] == "CancelledError"
    assert not [line for line in lines if line["state"] == "ask_late"]
    # The mirror after the winner was never tried.
    fetched = [line for line in lines if line["state"] == "fetch" and line["event"] == "start"]
    assert len(fetched) == 3
    with Client(store_url) as client:
        decided = _events(client, result["run_id"], "CompletionDecided")
        assert [(e["state"], e["payload"]["winner"]) for e in decided] == [
            ("quotes", 0),
            ("download", 2),
        ]
        assert not _events(client, result["run_id"], "ActivityFailed")[2:]  # 2 mirrors down
    status = run_cli("status", result["run_id"], "--db", store_url)
    assert_clean(status, 0)
    assert "decided    quotes: first met: branch 0 succeeded first" in status.stdout
    assert "decided    download: first met: item 2 succeeded first" in status.stdout


def test_race_sample_without_a_working_mirror(store_url: str) -> None:
    result = _run(store_url, "race", "race_no_mirror")
    assert result["status"] == "failed"
    assert result["error"]["type"] == "NoMirror"
    assert "only 0 of 2 items can still succeed" in result["error"]["message"]


def test_quorum_sample(store_url: str) -> None:
    result = _run(store_url, "quorum", "quorum")
    assert result["status"] == "completed"
    assert result["output"] == {
        "key": "k1",
        "acked_by": ["r1", "r3", "r4"],
        "outcomes": ["succeeded", "failed", "succeeded", "succeeded", "cancelled"],
        "why": "3 of 5 items succeeded (quorum of 3)",
    }
    lost = _run(store_url, "quorum", "quorum_lost")
    assert lost["status"] == "failed"
    assert lost["error"]["type"] == "NoQuorum"
    assert lost["error"]["details"] == {
        "outcomes": ["failed", "succeeded", "failed", "failed", "cancelled"]
    }
    assert "3 items failed, more than the 2 tolerated" in lost["error"]["message"]


def test_detached_sample(store_url: str) -> None:
    result = _run(store_url, "detached", "detached")
    assert result["status"] == "completed"
    run_id = result["run_id"]
    drip, reminder = f"{run_id}.start_drip", f"{run_id}.start_reminder"
    assert result["output"] == {"account": "acct-ada", "drip": drip, "reminder": reminder}
    with Client(store_url) as client:
        # abandon: the drip runs on (asleep for a day); terminate: the reminder ended with it.
        assert client.get(drip).status == "running"
        assert client.get(reminder).status == "terminated"
        assert client.get(reminder).error["message"] == f"parent run {run_id} ended"
        applied = [e["payload"] for e in _events(client, run_id, "ParentClosePolicyApplied")]
        assert applied == [
            {"child": drip, "policy": "abandon"},
            {"child": reminder, "policy": "terminate"},
        ]
    listing = run_cli("list", "--db", store_url, "--json")
    assert_clean(listing, 0)
    parents = {row["run_id"]: row["parent_id"] for row in json.loads(listing.stdout)}
    assert parents[drip] == parents[reminder] == run_id
    status = run_cli("status", drip, "--db", store_url, "--json")
    assert json.loads(status.stdout)["parent_id"] == run_id
    text = run_cli("status", run_id, "--db", store_url).stdout
    assert f"child      {drip}" in text and f"child      {reminder}" in text


def test_detached_status_shows_the_policy_while_the_parent_runs(
    store_url: str, tmp_path: Path
) -> None:
    wf = tmp_path / "p.yaml"
    (tmp_path / "welcome_drip.yaml").write_text((SAMPLES / "welcome_drip.yaml").read_text())
    wf.write_text(
        'dsl: "1.0"\nname: p\nsignals: {go: {}}\nstates:\n'
        "  spawn: {type: child, workflow: welcome_drip, detached: true, parent_close: cancel,\n"
        "          input: {email: a@b, template: t}, next: hold}\n"
        "  hold: {type: wait, signal: go, end: true}\n"
    )
    start = run_cli("start", str(wf), "--db", store_url, "--id", "p1")
    assert_clean(start, 0)
    load_activity_modules([str(SAMPLE_ACTIVITIES)])
    with Client(store_url) as client:
        worker = Worker(client.store, root_id="p1")
        asyncio.run(worker.run(until=lambda: bool(client.get("p1").state.get("detached"))))
    text = run_cli("status", "p1", "--db", store_url).stdout
    assert "child      p1.spawn (detached, parent_close: cancel)" in text


# --------------------------------------------------------------------------- drawings


def _workflow(name: str) -> Any:
    result = validate_file(SAMPLES / f"{name}.yaml")
    assert result.ok and result.workflow is not None
    return result.workflow


def test_graph_shows_the_rule_on_the_cluster() -> None:
    mermaid = to_mermaid(_workflow("race"))
    assert "subgraph" in mermaid and "quotes: branch 1 · first success wins" in mermaid
    assert "parallel: 3 branches, first success wins" in mermaid
    quorum = to_dot(_workflow("quorum"))
    assert "replicate: each replica · quorum of 3, 40% failures tolerated" in quorum


def test_graph_shows_a_detached_child_edge() -> None:
    mermaid = to_mermaid(_workflow("detached"))
    assert "detached child: welcome_drip" in mermaid
    assert '>"run: welcome_drip<br/>parent_close: abandon"]' in mermaid
    assert '-.->|"detached"|' in mermaid
    dot = to_dot(_workflow("detached"))
    assert "shape=component" in dot and "arrowhead=odot" in dot
    assert "parent_close: terminate" in dot


@pytest.mark.parametrize("name", ["race", "quorum", "detached", "welcome_drip"])
def test_samples_validate_strict(name: str) -> None:
    proc = run_cli("validate", "--strict", str(SAMPLES / f"{name}.yaml"))
    assert_clean(proc, 0)
