"""Replay of every kind of input: the history of every case of every sample's test file (signals,
several signals, updates, callbacks, completion rules, continue-as-new segments, detached
children, compensations, timeouts) replays compatible against its own sample; a real run of
samples/approval_callbacks.yaml on each store replays, and an incompatible edit of it is caught
at its callback step."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import SAMPLES
from run_helpers import finish, wait_for
from test_samples_cb import start, tokens

from dsl.testfile import load_test_file
from interpreter import Client
from interpreter.client import load_definition
from interpreter.replay import replay
from interpreter.testing import run_test_file

TEST_FILES = sorted((SAMPLES / "tests").glob("*.test.yaml"))


@pytest.mark.parametrize("test_file", TEST_FILES, ids=lambda p: p.name)
def test_every_sample_case_replays_against_its_sample(test_file: Path) -> None:
    sample = load_definition(SAMPLES / test_file.name.replace(".test.yaml", ".yaml"))
    report = run_test_file(test_file)
    loaded, _problems = load_test_file(test_file)
    assert loaded is not None
    run_ids = {c.name: c.run_id for c in loaded.model.cases}  # ids show in outputs
    checked = 0
    for case in report.cases:
        assert case.events, case.name
        run_id = run_ids[case.name] or f"test-{case.workflow}"
        result = replay(sample, run_id, case.events)
        assert result.compatible, (case.name, result.first_difference)
        checked += 1
    assert checked == len(report.cases) > 0


def test_a_callback_run_replays_and_an_incompatible_edit_is_caught(
    store_url: str, tmp_path: Path
) -> None:
    outbox = tmp_path / "outbox"
    proc = start(store_url, outbox)
    sent = wait_for(lambda: tokens(outbox), timeout=30)
    with Client(store_url) as client:
        client.complete_callback(sent["finance"], {"approved": True, "by": "finance"})
        client.fail_callback(sent["legal"], "Rejected", "legal says no")
        done = finish(proc, timeout=60)
        assert json.loads(done.stdout)["output"]["status"] == "rejected", done.stderr
        events = list(client.history("purchase-7", all_segments=True))
    kinds = {e["type"] for e in events}
    assert {"CallbackWaiting", "CallbackReceived"} <= kinds
    same = load_definition(SAMPLES / "approval_callbacks.yaml")
    assert replay(same, "purchase-7", events).compatible

    text = (SAMPLES / "approval_callbacks.yaml").read_text("utf-8")
    edited = tmp_path / "approval_callbacks.yaml"
    # Compatible: the approved path, which this run never took, changes.
    edited.write_text(text.replace("status: approved", "status: accepted"), "utf-8")
    assert replay(load_definition(edited), "purchase-7", events).compatible
    edited.write_text(text.replace("{approver: legal,", "{approver: legal2,"), "utf-8")
    result = replay(load_definition(edited), "purchase-7", events)
    assert not result.compatible
    diff = result.first_difference
    assert diff is not None and diff["recorded"]["type"] == "ActivityScheduled"
    assert diff["recorded"]["state"] == "legal"
