"""The callback approval sample (samples/approval_callbacks.yaml): three approvers in a parallel
state, each branch with its own callback token, completed from outside the worker: one by the
`tideflow complete` CLI in a subprocess, two by the Python Client. On SQLite and PostgreSQL."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from conftest import SAMPLE_ACTIVITIES, SAMPLES, run_cli
from run_helpers import assert_clean, cli_popen, finish, of_type, wait_for

from interpreter import Client

SAMPLE = SAMPLES / "approval_callbacks.yaml"
APPROVERS = ("finance", "legal", "manager")


def tokens(outbox: Path) -> dict[str, str]:
    """The tokens the sample's activity "mailed", once all three are there."""
    found = {a: outbox / f"{a}.token" for a in APPROVERS}
    if not all(path.exists() for path in found.values()):
        return {}
    return {a: path.read_text(encoding="utf-8") for a, path in found.items()}


def start(store_url: str, outbox: Path) -> subprocess.Popen[str]:
    """`tideflow run` of the sample in a subprocess (it waits for the callbacks, then ends)."""
    return cli_popen(
        "run",
        str(SAMPLE),
        "--input",
        json.dumps({"request_id": "R-7", "outbox": str(outbox)}),
        "--activities",
        str(SAMPLE_ACTIVITIES),
        "--db",
        store_url,
        "--id",
        "purchase-7",
        "--json",
    )


def run_result(proc: subprocess.Popen[str], code: int) -> dict[str, Any]:
    done = finish(proc, timeout=60)
    assert_clean(done, code)
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def test_three_approvals_complete_the_request(store_url: str, tmp_path: Path) -> None:
    outbox = tmp_path / "outbox"
    proc = start(store_url, outbox)
    sent = wait_for(lambda: tokens(outbox), timeout=30)
    assert len(set(sent.values())) == 3, "each approver has a token of their own"
    cli = run_cli(
        "complete",
        sent["finance"],
        "--result",
        '{"approved": true, "by": "finance"}',
        "--db",
        store_url,
        "--json",
    )
    assert_clean(cli, 0)
    assert json.loads(cli.stdout) == {
        "run_id": "purchase-7",
        "state": "finance",
        "attempt": 1,
        "outcome": "completed",
    }
    with Client(store_url) as client:
        for approver in ("legal", "manager"):
            client.complete_callback(sent[approver], {"approved": True, "by": approver})
        result = run_result(proc, 0)
        assert result["status"] == "completed"
        assert result["output"] == {
            "request_id": "R-7",
            "status": "approved",
            "answers": [{"approved": True, "by": a} for a in APPROVERS],  # branch order
        }
        events = list(client.history("purchase-7"))
    assert sorted(e["state"] for e in of_type(events, "CallbackReceived")) == sorted(APPROVERS)
    assert len(of_type(events, "CallbackWaiting")) == 3
    # The token is spent: using it again is refused (exit 1) and changes nothing.
    again = run_cli("complete", sent["legal"], "--result", "1", "--db", store_url)
    assert_clean(again, 1)
    assert "already used" in again.stderr


def test_one_rejection_is_caught(store_url: str, tmp_path: Path) -> None:
    outbox = tmp_path / "outbox"
    proc = start(store_url, outbox)
    sent = wait_for(lambda: tokens(outbox), timeout=30)
    with Client(store_url) as client:
        client.complete_callback(sent["finance"], {"approved": True, "by": "finance"})
    cli = run_cli(
        "complete",
        sent["legal"],
        "--error",
        "Rejected",
        "--message",
        "over budget",
        "--details",
        '{"limit": 500}',
        "--db",
        store_url,
    )
    assert_clean(cli, 0)
    result = run_result(proc, 0)
    assert result["output"] == {"request_id": "R-7", "status": "rejected", "reason": "over budget"}
    # The manager's branch was dropped with the parallel state: its token is now late.
    late = run_cli("complete", sent["manager"], "--result", "true", "--db", store_url)
    assert_clean(late, 1)
    assert "too late" in late.stderr


@pytest.mark.parametrize(
    ("token", "code", "says"),
    [
        ("not-a-token", 2, "malformed callback token"),
        ("tfcb_" + "A" * 43, 1, "unknown callback token"),
    ],
)
def test_bad_tokens_are_refused(store_url: str, token: str, code: int, says: str) -> None:
    Client(store_url).close()  # an empty store
    proc = run_cli("complete", token, "--result", "{}", "--db", store_url)
    assert_clean(proc, code)
    assert says in proc.stderr
    beat = run_cli("heartbeat", token, "--db", store_url)
    assert_clean(beat, code)


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--result", "{nope"], "--result is not valid JSON"),
        (["--error", "Rejected", "--details", "[1,"], "--details is not valid JSON"),
        (["--result", "1", "--message", "hi"], "--message and --details go with --error"),
        (["--result", "1", "--error", "X"], "not allowed with argument"),
        ([], "one of the arguments --result --error is required"),
    ],
)
def test_bad_arguments_exit_2_before_the_store_is_touched(
    sqlite_url: str, args: list[str], says: str
) -> None:
    proc = run_cli("complete", "tfcb_" + "A" * 43, *args, "--db", sqlite_url)
    assert_clean(proc, 2)
    assert says in proc.stderr
    assert not Path(sqlite_url).exists(), "a refused command created the store"
