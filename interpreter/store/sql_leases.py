"""The SQL store's work distribution: claiming due runs, renewing and releasing leases, each
operation's SQL written once for every dialect, mixed into SQLStore.

A run is held by at most one worker at a time: its row's lease (owner, expiry, token). A claim
takes due runs whose lease is free, expired, or held by a dead process of this host, and bumps
the token; the step commits that follow are fenced by that token (see sql.py), so a worker that
lost its lease writes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from interpreter import clock
from interpreter.store.base import RunRecord, run_from_row
from interpreter.store.leases import host_prefix, owner_is_dead
from interpreter.store.sqlcore import SELECT_RUN, VALUES_ROWS, Session, SQLCore, chunks, run_columns


class LeaseSQL(SQLCore):
    """Store.claim, Store.renew_leases and Store.release."""

    def _dead_owners(self, now: float, run_id: str | None) -> list[str]:
        """Lease holders on this host whose process is gone: their runs are free at once."""
        if run_id is not None:
            row = self._read(
                lambda q: q.execute(
                    self.sql("SELECT lease_owner FROM runs WHERE id=? AND lease_expires >= ?"),
                    (run_id, now),
                ).fetchone()
            )
            return [row[0]] if row and row[0] and owner_is_dead(row[0]) else []
        # Only running runs can be claimed, and ended runs keep their lease columns: the status
        # term keeps them out. The terms match runs_leased (migration 12), which covers the
        # query, so SQLite walks it instead of every running run by runs_status.
        query = self.sql(
            "SELECT DISTINCT lease_owner FROM runs WHERE status='running' "
            "AND lease_owner IS NOT NULL AND substr(lease_owner, 1, ?) = ? AND lease_expires >= ?"
        )
        prefix = host_prefix()
        return self._dead.get(
            lambda: [
                row[0]
                for row in self._read(
                    lambda q: q.execute(query, (len(prefix), prefix, now)).fetchall()
                )
            ]
        )

    def _claimable(
        self,
        now: float,
        run_id: str | None,
        root_id: str | None,
        activities: frozenset[str] | set[str] | None,
    ) -> tuple[str, list[Any]]:
        """WHERE terms (and their arguments) for the runs a claim may take now."""
        dead = self._dead_owners(now, run_id)
        where = (
            "r.status='running' AND NOT r.paused AND (r.lease_owner IS NULL OR r.lease_expires IS NULL "
            "OR r.lease_expires < ?"
        )
        where += f" OR r.lease_owner IN ({','.join('?' * len(dead))}))" if dead else ")"
        args: list[Any] = [now, *dead]
        if root_id is not None:
            where += " AND r.root_id=?"
            args.append(root_id)
        if activities is not None:
            where += " AND {offers_needs}"
            args.append(self._needs_value(sorted(activities)))
        return where, args

    def claim(
        self,
        owner: str,
        lease_seconds: float,
        now: float,
        *,
        run_id: str | None = None,
        root_id: str | None = None,
        limit: int = 1,
        activities: frozenset[str] | set[str] | None = None,
    ) -> list[RunRecord]:
        where, args = self._claimable(now, run_id, root_id, activities)
        if run_id is not None:
            where += " AND r.id=?"
            args.append(run_id)
        else:
            where += " AND r.due_at IS NOT NULL AND r.due_at<=?"
            args.append(now)
        expires = now + lease_seconds
        query = self.sql(
            "UPDATE runs SET lease_owner=?, lease_expires=?, lease_token=lease_token+1, "
            f"attention=FALSE WHERE id IN (SELECT r.id FROM runs r WHERE {where} "
            "ORDER BY r.due_at LIMIT ? {skip_locked}) "
            f"RETURNING {run_columns('runs')}"
        )
        params = [owner, expires, *args, limit]

        def resolve(q: Session) -> tuple[bool, list[Any]]:
            # The lost answer's runs carry our owner id and this exact expiry.
            rows = q.execute(
                self.sql(
                    SELECT_RUN + " WHERE r.lease_owner=? AND r.lease_expires=? "
                    "AND r.status='running'"
                ),
                (owner, expires),
            ).fetchall()
            return bool(rows), rows

        rows = self._write(lambda q: q.execute(query, params).fetchall(), resolve=resolve)
        return sorted((run_from_row(row) for row in rows), key=lambda r: r.id)

    def renew_leases(self, owner: str, leases: Sequence[tuple[str, int]], until: float) -> set[str]:
        """Extend to `until` each lease (run id, token) that `owner` still holds on a running
        run, in one transaction whatever their number; the ids of the runs renewed."""

        def op(q: Session) -> set[str]:
            renewed: set[str] = set()
            for chunk in chunks(list(leases), VALUES_ROWS):
                pairs = ",".join(["(?,CAST(? AS BIGINT))"] * len(chunk))
                rows = q.execute(
                    self.sql(
                        "UPDATE runs SET lease_expires=? WHERE lease_owner=? AND status='running' "
                        f"AND (id, lease_token) IN (VALUES {pairs}) RETURNING id"
                    ),
                    [until, owner, *(value for lease in chunk for value in lease)],
                ).fetchall()
                renewed.update(row[0] for row in rows)
            return renewed

        return self._write(op)

    def release(self, run_id: str, owner: str, token: int, due_at: float | None) -> None:
        # Something may have arrived (signal, cancel) since we last looked: keep it due.
        query = self.sql(
            "UPDATE runs SET lease_owner=NULL, lease_expires=NULL, "
            "due_at=CASE WHEN attention THEN ? ELSE ? END, attention=FALSE "
            "WHERE id=? AND lease_owner=? AND lease_token=?"
        )
        self._write(lambda q: q.execute(query, (clock.wall(), due_at, run_id, owner, token)))
