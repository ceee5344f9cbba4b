"""Conformance: callback tokens (`completion: callback`). A step opens an attempt's token and a
later step closes it; `send_callback` applies a completion, a failure or a heartbeat to a
pending token (an inbox item for the run, committed) and refuses unknown, used and late ones
without changing anything."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from conformance.conformance_kit import claim_one, create, step
from interpreter.errors import CallbackRefused
from interpreter.store import RunRecord, Store

HASH_A = hashlib.sha256(b"token-a").hexdigest()
HASH_B = hashlib.sha256(b"token-b").hexdigest()
DONE = {"kind": "complete", "result": {"ok": True}}


def opened(store: Store, *rows: tuple[str, int, str, str]) -> RunRecord:
    """Run "r", held by "w", with a step that opened `rows` (task, attempt, state, hash)."""
    create(store, "r", due_at=None)
    held = claim_one(store, "r")
    store.commit(held, "w", step(held, "start", callbacks_opened=list(rows)), time.time())
    return held


def refused(store: Store, token_hash: str, body: dict[str, Any]) -> str:
    before = store.read_inbox("r")[0]
    with pytest.raises(CallbackRefused) as caught:
        store.send_callback(token_hash, body, time.time())
    assert store.read_inbox("r")[0] == before, "a refused token changed the inbox"
    return caught.value.reason


def test_a_completion_reaches_the_run_inbox_and_wakes_it(store: Store) -> None:
    held = opened(store, ("a1", 1, "ask", HASH_A))
    store.release("r", "w", held.lease_token, None)
    assert store.next_due() is None
    target = store.send_callback(HASH_A, DONE, time.time())
    assert (target.run_id, target.task_id, target.attempt, target.state) == ("r", "a1", 1, "ask")
    (item,) = store.read_inbox("r")[0]
    assert (item.kind, item.name) == ("callback", "a1")
    assert item.payload == {**DONE, "attempt": 1}
    assert [r.id for r in store.claim("w2", 60.0, time.time())] == ["r"]


def test_a_used_token_and_its_attempts_other_tokens_are_refused(store: Store) -> None:
    # An interrupted attempt ran again with a second token for the same attempt.
    opened(store, ("a1", 1, "ask", HASH_A), ("a1", 1, "ask", HASH_B))
    store.send_callback(HASH_B, DONE, time.time())
    assert refused(store, HASH_B, DONE) == "used"
    assert refused(store, HASH_A, {"kind": "heartbeat"}) == "used"


def test_unknown_tokens_are_refused(store: Store) -> None:
    opened(store, ("a1", 1, "ask", HASH_A))
    assert refused(store, HASH_B, DONE) == "unknown"


def test_a_closed_attempt_makes_its_token_late(store: Store) -> None:
    held = opened(store, ("a1", 1, "ask", HASH_A), ("a2", 1, "other", HASH_B))
    store.commit(held, "w", step(held, "retry", callbacks_closed=[("a1", 1)]), time.time())
    assert refused(store, HASH_A, DONE) == "late"
    store.send_callback(HASH_B, DONE, time.time())  # the other attempt is still pending


@pytest.mark.parametrize(
    "end",
    [
        lambda store, held: store.commit(
            held, "w", step(held, "end", status="completed"), time.time()
        ),
        lambda store, held: store.terminate("r", "stop", time.time()),
    ],
    ids=["run-completed", "run-terminated"],
)
def test_every_token_is_late_once_the_run_ended(
    store: Store, end: Callable[[Store, RunRecord], Any]
) -> None:
    held = opened(store, ("a1", 1, "ask", HASH_A), ("a2", 1, "other", HASH_B))
    end(store, held)
    assert refused(store, HASH_A, DONE) == "late"
    assert refused(store, HASH_B, {"kind": "heartbeat"}) == "late"


def test_a_heartbeat_keeps_the_token_pending_and_keeps_its_details(store: Store) -> None:
    opened(store, ("a1", 1, "ask", HASH_A))
    body = {"kind": "heartbeat", "details": {"progress": 40}}
    store.send_callback(HASH_A, body, time.time())
    store.send_callback(HASH_A, body, time.time())
    assert store.heartbeat_details("r", "a1") == {"progress": 40}
    assert [item.payload for item in store.read_inbox("r")[0]] == [{**body, "attempt": 1}] * 2
    store.send_callback(HASH_A, DONE, time.time())  # still completes


def test_a_step_of_a_lost_lease_opens_nothing(store: Store) -> None:
    create(store, "r", due_at=None)
    held = claim_one(store, "r", lease=0.01)
    time.sleep(0.05)
    claim_one(store, "r", owner="w2")
    assert store.commit_many(
        [(held, "w", step(held, "x", callbacks_opened=[("a1", 1, "s", HASH_A)]), time.time())]
    ) == [False]
    assert refused(store, HASH_A, DONE) == "unknown"


def test_racing_completions_of_one_token_apply_once(
    store: Store, open_another: Callable[[], Store]
) -> None:
    """Eight threads, each with its own store (as eight processes), complete one token at
    once: one wins, seven are told it was used, and the run's inbox holds one item."""
    opened(store, ("a1", 1, "ask", HASH_A))
    others = [open_another() for _ in range(8)]
    gate = threading.Barrier(len(others))
    outcomes: list[str] = []

    def complete(other: Store) -> None:
        gate.wait()
        try:
            other.send_callback(HASH_A, DONE, time.time())
            outcomes.append("applied")
        except CallbackRefused as exc:
            outcomes.append(exc.reason)

    threads = [threading.Thread(target=complete, args=(other,)) for other in others]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(outcomes) == ["applied"] + ["used"] * 7
    assert len(store.read_inbox("r")[0]) == 1
