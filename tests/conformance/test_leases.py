"""Conformance: work distribution (claim, renew, release, needs_attention, next_due)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from run_helpers import wait_for

from conformance.conformance_kit import claim_one, create, dead_owner, live_owner, step, with_task
from interpreter.store import RunRecord, Store

NOW = 1_000_000.0  # runs created with due_at=0.0 are due at this claim time


def ids(records: list[RunRecord]) -> list[str]:
    return [r.id for r in records]


# ----------------------------------------------------------------------------- claim
def test_claim_takes_only_due_running_runs(store: Store) -> None:
    create(store, "due", due_at=NOW - 1)
    create(store, "later", due_at=NOW + 100)
    create(store, "never", due_at=None)
    create(store, "ended", due_at=NOW - 1)
    store.terminate("ended", "stop", time.time())
    (claimed,) = store.claim("w", 600.0, NOW, limit=10)
    assert claimed.id == "due" and claimed.lease_owner == "w" and claimed.lease_token >= 1
    assert store.claim("w", 60.0, NOW, limit=10) == []
    assert ids(store.claim("w", 60.0, NOW + 100, limit=10)) == ["later"]


def test_claim_by_run_id_takes_that_run_whenever_it_is_due(store: Store) -> None:
    create(store, "never", due_at=None)
    create(store, "later", due_at=time.time() + 3600)
    assert ids(store.claim("w", 60.0, time.time(), run_id="never")) == ["never"]
    assert ids(store.claim("w", 60.0, time.time(), run_id="later")) == ["later"]
    assert store.claim("w", 60.0, time.time(), run_id="nope") == []
    create(store, "ended")
    store.terminate("ended", "stop", time.time())
    assert store.claim("w", 60.0, time.time(), run_id="ended") == []


def test_claim_respects_the_limit_and_takes_the_earliest_due_first(store: Store) -> None:
    for index, due in enumerate([50.0, 10.0, 40.0, 20.0, 30.0]):
        create(store, f"r{index}", due_at=NOW - due)
    # Which runs a claim takes is the contract; the order of the list it returns is not.
    assert sorted(ids(store.claim("w", 60.0, NOW, limit=3))) == ["r0", "r2", "r4"]
    assert sorted(ids(store.claim("w", 60.0, NOW, limit=3))) == ["r1", "r3"]
    assert store.claim("w", 60.0, NOW, limit=3) == []


def test_claim_within_one_root(store: Store) -> None:
    parent = create(store, "p")
    create(store, "c", parent=parent)
    create(store, "other")
    assert sorted(ids(store.claim("w", 60.0, NOW, root_id="p", limit=10))) == ["c", "p"]
    assert ids(store.claim("w", 60.0, NOW, root_id="p", limit=10)) == []
    assert ids(store.claim("w", 60.0, NOW, limit=10)) == ["other"]


def test_claim_and_next_due_respect_the_offered_activities(store: Store) -> None:
    record = create(store, "needs", due_at=None)
    claimed = claim_one(store, "needs", "w0")
    commit = step(claimed, "task", due_at=NOW - 5)
    commit.state = with_task(claimed, "payments.charge")
    store.commit(claimed, "w0", commit, time.time())
    store.release(record.id, "w0", claimed.lease_token, NOW - 5)
    create(store, "plain", due_at=NOW - 1)
    shipping = frozenset({"shipping.ship"})
    offered = frozenset({"payments.charge", "http"})
    assert store.next_due(activities=shipping) == NOW - 1
    assert store.next_due(activities=offered) == NOW - 5
    assert ids(store.claim("w", 60.0, NOW, activities=shipping, limit=5)) == ["plain"]
    assert ids(store.claim("w", 60.0, NOW, activities=frozenset(), limit=5)) == []
    assert ids(store.claim("w", 60.0, NOW, activities=offered, limit=5)) == ["needs"]


def test_a_run_whose_task_is_gone_is_claimable_by_any_worker(store: Store) -> None:
    create(store, "r", due_at=None)
    claimed = claim_one(store, "r", "w0")
    commit = step(claimed, "task")
    commit.state = with_task(claimed, "payments.charge")
    store.commit(claimed, "w0", commit, time.time())
    done = step(claimed, "no task", due_at=NOW - 1)
    done.state["tasks"] = {}
    store.commit(claimed, "w0", done, time.time())
    store.release("r", "w0", claimed.lease_token, NOW - 1)
    assert ids(store.claim("w", 60.0, NOW, activities=frozenset({"http"}))) == ["r"]


def test_an_expired_lease_is_taken_over_with_a_higher_token(store: Store) -> None:
    create(store, "r", due_at=NOW - 1)
    (late,) = store.claim("late", 1.0, NOW)
    assert store.claim("new", 15.0, NOW + 0.5) == []  # still held
    (new,) = store.claim("new", 15.0, NOW + 5)
    assert new.id == "r" and new.lease_owner == "new"
    assert new.lease_token > late.lease_token


def test_tokens_increase_with_every_claim(store: Store) -> None:
    create(store, "r")
    tokens = []
    for owner in ("a", "b", "a"):
        record = claim_one(store, "r", owner)
        tokens.append(record.lease_token)
        store.release("r", owner, record.lease_token, None)
    assert tokens == sorted(set(tokens)) and tokens[0] >= 1


def test_a_lease_held_by_a_dead_local_process_is_free(store: Store) -> None:
    create(store, "a", due_at=NOW - 1)
    create(store, "b", due_at=NOW - 1)
    dead = dead_owner()
    now = time.time()
    assert sorted(ids(store.claim(dead, 600.0, now, limit=2))) == ["a", "b"]
    # Its lease runs for ten more minutes, but its process is gone.
    assert ids(store.claim("heir", 15.0, now, run_id="a")) == ["a"]
    # Without a run id: found by the scan for dead holders, which may lag a little; next_due
    # counts the run as due once it is.
    wait_for(lambda: store.next_due() == NOW - 1)
    assert ids(store.claim("heir", 15.0, time.time())) == ["b"]


def test_a_lease_held_by_a_live_process_is_not_free(store: Store) -> None:
    create(store, "r", due_at=NOW - 1)
    alive = live_owner()
    assert ids(store.claim(alive, 600.0, time.time())) == ["r"]
    assert store.claim("other", 15.0, time.time(), run_id="r") == []
    assert store.claim("other", 15.0, time.time()) == []
    assert store.next_due() is None


def test_a_remote_owner_is_never_presumed_dead(store: Store) -> None:
    create(store, "r", due_at=NOW - 1)
    assert ids(store.claim("elsewhere:1:abcd", 600.0, time.time())) == ["r"]
    assert store.claim("other", 15.0, time.time(), run_id="r") == []


def test_concurrent_claimers_never_get_the_same_run(
    store: Store, open_another: Callable[[], Store]
) -> None:
    for index in range(120):
        create(store, f"r{index}", due_at=NOW - 1)
    claimers = [open_another() for _ in range(6)]
    claimed: list[list[str]] = [[] for _ in claimers]
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(claimers))

    def claim_all(index: int) -> None:
        try:
            barrier.wait()
            while got := claimers[index].claim(f"w{index}", 60.0, time.time(), limit=7):
                claimed[index] += ids(got)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=claim_all, args=(i,)) for i in range(len(claimers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    every = [run_id for got in claimed for run_id in got]
    assert sorted(every) == sorted(f"r{i}" for i in range(120))


# ----------------------------------------------------------------------------- renew
def test_renew_extends_the_holders_lease(store: Store) -> None:
    create(store, "r", due_at=NOW - 1)
    (held,) = store.claim("w", 1.0, NOW)
    assert store.renew_leases("w", [("r", held.lease_token)], NOW + 100) == {"r"}
    assert store.claim("other", 15.0, NOW + 50) == []
    assert store.renew_leases("w", [("r", held.lease_token + 1)], NOW + 200) == set()
    assert store.renew_leases("someone", [("r", held.lease_token)], NOW + 200) == set()
    assert store.claim("other", 15.0, NOW + 150) != []  # the refused renewals changed nothing


def test_renew_fails_after_a_takeover_or_termination(store: Store) -> None:
    create(store, "r", due_at=NOW - 1)
    (late,) = store.claim("late", 1.0, NOW)
    (new,) = store.claim("new", 15.0, NOW + 5)
    assert store.renew_leases("late", [("r", late.lease_token)], NOW + 100) == set()
    assert store.renew_leases("new", [("r", new.lease_token)], NOW + 100) == {"r"}
    store.terminate("r", "stop", time.time())
    assert store.renew_leases("new", [("r", new.lease_token)], NOW + 200) == set()


def test_renew_takes_many_leases_at_once_and_names_those_still_held(store: Store) -> None:
    # More leases than one statement binds (VALUES_ROWS), some no longer held.
    count = 520
    for i in range(count):
        create(store, f"r{i:03d}", due_at=NOW - 1)
    held = {r.id: r.lease_token for r in store.claim("w", 1.0, NOW, limit=count)}
    assert len(held) == count
    store.claim("other", 15.0, NOW + 5, run_id="r007")
    store.terminate("r510", "stop", time.time())
    leases = [(run_id, token + (run_id == "r003")) for run_id, token in sorted(held.items())]
    renewed = store.renew_leases("w", [*leases, ("missing", 1)], NOW + 100)
    assert renewed == set(held) - {"r003", "r007", "r510"}  # stale token, taken, ended
    # Past the first lease (and other's): only the runs not renewed are free.
    assert ids(store.claim("x", 15.0, NOW + 50, limit=count)) == ["r003", "r007"]
    assert store.renew_leases("w", [], NOW + 100) == set()


# ----------------------------------------------------------------------------- release
def test_release_keeps_the_given_due_time(store: Store) -> None:
    create(store, "r", due_at=None)
    held = claim_one(store, "r")
    store.release("r", "w", held.lease_token, NOW + 50)
    record = store.get_run("r")
    assert record is not None and record.lease_owner is None
    assert store.next_due() == NOW + 50
    assert store.claim("w", 60.0, NOW + 49) == []
    assert ids(store.claim("w", 60.0, NOW + 50)) == ["r"]


def test_release_without_a_due_time_leaves_the_run_asleep(store: Store) -> None:
    create(store, "r", due_at=NOW - 1)
    (held,) = store.claim("w", 60.0, NOW)
    store.release("r", "w", held.lease_token, None)
    assert store.next_due() is None
    assert store.claim("w", 60.0, NOW + 10_000) == []


def test_news_during_the_lease_makes_a_released_run_due_now(store: Store) -> None:
    create(store, "r", due_at=None)
    held = claim_one(store, "r")
    store.add_signal("r", "tick", 1, time.time())
    before = time.time()
    store.release("r", "w", held.lease_token, None)
    due = store.next_due()
    assert due is not None and due <= time.time() + 1e-6 and due >= before - 1
    assert ids(store.claim("w2", 60.0, time.time())) == ["r"]


def test_a_stale_release_leaves_the_new_owner_alone(store: Store) -> None:
    create(store, "r", due_at=NOW - 1)
    (late,) = store.claim("late", 1.0, NOW)
    (new,) = store.claim("new", 15.0, NOW + 5)
    store.release("r", "late", late.lease_token, None)
    record = store.get_run("r")
    assert record is not None and record.lease_owner == "new"
    assert record.lease_token == new.lease_token
    assert store.renew_leases("new", [("r", new.lease_token)], NOW + 100) == {"r"}


# ----------------------------------------------------------------------------- attention
def test_needs_attention_names_held_runs_that_got_news(store: Store) -> None:
    for run_id in ("a", "b", "c"):
        create(store, run_id, due_at=None)
        claim_one(store, run_id, "w" if run_id != "c" else "x")
    assert store.needs_attention("w") == set()
    store.add_signal("a", "tick", None, time.time())
    store.request_cancel("b", time.time())
    store.add_signal("c", "tick", None, time.time())
    assert store.needs_attention("w") == {"a", "b"}
    assert store.needs_attention("x") == {"c"}
    assert store.needs_attention("nobody") == set()
    # Reading the inbox is taking notice.
    store.read_inbox("a")
    assert store.needs_attention("w") == {"b"}


def test_claiming_clears_attention(store: Store) -> None:
    create(store, "r", due_at=None)
    claim_one(store, "r", "w", lease=1.0)
    store.add_signal("r", "tick", None, time.time())
    assert store.needs_attention("w") == {"r"}
    (taken,) = store.claim("heir", 60.0, time.time() + 5)
    assert taken.id == "r"
    assert store.needs_attention("w") == set() and store.needs_attention("heir") == set()


# ----------------------------------------------------------------------------- next_due
def test_next_due_is_the_earliest_claimable_due_time(store: Store) -> None:
    assert store.next_due() is None
    create(store, "a", due_at=NOW + 30)
    create(store, "b", due_at=NOW + 10)
    create(store, "asleep", due_at=None)
    assert store.next_due() == NOW + 10
    store.terminate("b", "stop", time.time())
    assert store.next_due() == NOW + 30


def test_next_due_ignores_runs_leased_by_a_live_worker(store: Store) -> None:
    create(store, "r", due_at=NOW - 1)
    assert store.next_due() == NOW - 1
    store.claim("w", 600.0, time.time())
    assert store.next_due() is None
    assert store.next_due(owner="w") is None


def test_next_due_within_one_root(store: Store) -> None:
    parent = create(store, "p", due_at=NOW + 20)
    create(store, "c", parent=parent, due_at=NOW + 40)
    create(store, "other", due_at=NOW + 10)
    assert store.next_due() == NOW + 10
    assert store.next_due("p") == NOW + 20
    assert store.next_due("nope") is None
