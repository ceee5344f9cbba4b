"""Lease renewal: a worker renews every lease it holds in one store transaction, however many
runs it drives. One transaction per run held its event loop for a round trip each on
PostgreSQL (at 200 runs, 1.6 to 4 s every 5 s in which no step of any run was committed)."""

from __future__ import annotations

from pathlib import Path

import concurrency_activities as cc
from run_helpers import write_workflow

from interpreter import Client

RUNS = 20
LEASE_SECONDS = 0.9  # renewed every 0.3 s


def _held_leases(client: Client) -> dict[str, float]:
    """Run id -> lease expiry of every leased run, read in one statement (one snapshot)."""
    store = client.store
    query = store.sql("SELECT id, lease_expires FROM runs WHERE lease_owner IS NOT NULL")
    rows = store._read(lambda q: q.execute(query).fetchall())
    return {row[0]: float(row[1]) for row in rows}


def test_one_renewal_extends_every_held_lease_at_once(
    client: Client, store_url: str, tmp_path: Path
) -> None:
    workflow = write_workflow(
        tmp_path,
        """
        name: held
        states:
          work: {type: activity, activity: cc.echo, input: {delay: 120}, end: true}
        """,
    )
    for i in range(RUNS):
        client.start(workflow, run_id=f"held-{i:02d}")
    with cc.BackgroundWorker(store_url, concurrency=RUNS, lease_seconds=LEASE_SECONDS):
        claimed = cc.wait_until(
            lambda: len(leases := _held_leases(client)) == RUNS and leases,
            what="the worker holds every run",
        )
        renewed = cc.wait_until(
            lambda: (
                len(leases := _held_leases(client)) == RUNS
                and min(leases.values()) > max(claimed.values())
                and leases
            ),
            what="every lease renewed",
        )
    # One transaction gives every lease the same new expiry; one per run, each its own.
    assert len(set(renewed.values())) == 1, (
        f"the leases were renewed one run at a time: {len(set(renewed.values()))} expiries"
    )
