"""The SQL store's operations for operating runs from outside (the CLI's `list`, bulk
`cancel`/`terminate`, `prune`, `pause`): finding runs by a filter, page by page, newest first;
deleting ended runs in batches; pausing a run. Written once for every dialect, like sql.py.
"""

from __future__ import annotations

from typing import Any

from interpreter.core.statuses import TERMINAL_STATUSES
from interpreter.store.base import RunFilter, RunSummary, loads
from interpreter.store.sqlcore import Session, SQLCore

SUMMARY_COLUMNS = (
    "r.id, r.workflow, r.status, r.parent_id, r.root_id, r.created_at, r.updated_at, "
    "r.ended_at, r.error, r.paused, r.cancel_requested, r.lease_owner, r.def_hash, "
    "(SELECT d.version FROM definitions d WHERE d.hash = r.def_hash), "
    "r.forked_from, r.forked_from_state, {held_compensation}"
)

# Tables that hold a run's rows besides `runs` itself, deleted with it by `prune_runs`.
RUN_TABLES = (
    "events",
    "inbox",
    "map_rows",
    "heartbeats",
    "callbacks",
    "segments",
    "updates",
    "run_inputs",
)


def _summary(row: Any) -> RunSummary:
    return RunSummary(
        id=row[0],
        workflow=row[1],
        status=row[2],
        parent_id=row[3],
        root_id=row[4],
        created_at=row[5],
        updated_at=row[6],
        ended_at=row[7],
        error=loads(row[8]),
        paused=bool(row[9]),
        cancel_requested=bool(row[10]),
        lease_owner=row[11],
        def_hash=row[12],
        version=row[13],
        forked_from=row[14],
        forked_from_state=row[15],
        compensation_held=bool(row[16]),
    )


class SQLAdmin(SQLCore):
    """Mixed into SQLStore: see the module docstring."""

    def _filter_where(self, where: RunFilter) -> tuple[list[str], list[Any]]:
        terms: list[str] = []
        args: list[Any] = []
        if where.statuses:
            terms.append(f"r.status IN ({','.join('?' * len(where.statuses))})")
            args += list(where.statuses)
        for column, value in (
            ("r.workflow", where.workflow),
            ("r.parent_id", where.parent_id),
            ("{error_type}", where.error_type),
            ("r.forked_from", where.forked_from),
        ):
            if value is not None:
                terms.append(f"{column}=?")
                args.append(value)
        if where.since is not None:
            terms.append("r.created_at>=?")
            args.append(where.since)
        if where.until is not None:
            terms.append("r.created_at<?")
            args.append(where.until)
        if where.paused is not None:
            terms.append("r.paused=?")
            args.append(where.paused)
        if where.ended_before is not None:
            terms.append("r.ended_at<?")
            args.append(where.ended_before)
        return terms, args

    def find_runs(
        self,
        where: RunFilter,
        *,
        limit: int,
        before: tuple[float, str] | None = None,
    ) -> list[RunSummary]:
        terms, args = self._filter_where(where)
        if before is not None:
            terms.append("(r.created_at<? OR (r.created_at=? AND r.id<?))")
            args += [before[0], before[0], before[1]]
        sql = f"SELECT {SUMMARY_COLUMNS} FROM runs r"
        if terms:
            sql += " WHERE " + " AND ".join(terms)
        sql += f" ORDER BY r.created_at DESC, r.id DESC LIMIT {int(limit)}"
        query = self.sql(sql)
        rows = self._read(lambda q: q.execute(query, args).fetchall())
        return [_summary(row) for row in rows]

    def count_runs(self, where: RunFilter) -> int:
        terms, args = self._filter_where(where)
        sql = "SELECT COUNT(*) FROM runs r" + (" WHERE " + " AND ".join(terms) if terms else "")
        query = self.sql(sql)
        row = self._read(lambda q: q.execute(query, args).fetchone())
        return int(row[0])

    def workflow_names(self) -> list[str]:
        query = self.sql("SELECT DISTINCT name FROM definitions ORDER BY name")
        return [row[0] for row in self._read(lambda q: q.execute(query).fetchall())]

    def prune_runs(self, where: RunFilter, *, batch: int) -> list[str]:
        """Delete up to `batch` ended runs matching `where` (and all their rows) in one
        transaction; the ids deleted. Running runs, and ended runs whose parent still runs
        (it may still look at them), are never deleted."""
        terms, args = self._filter_where(where)
        ended = ",".join(f"'{status}'" for status in sorted(TERMINAL_STATUSES))
        terms += [
            f"r.status IN ({ended})",
            "NOT EXISTS (SELECT 1 FROM runs p WHERE p.id=r.parent_id AND p.status='running')",
        ]
        select = self.sql(
            "SELECT r.id FROM runs r WHERE "
            + " AND ".join(terms)
            + f" ORDER BY r.ended_at LIMIT {int(batch)} {{for_update}}"
        )

        def op(q: Session) -> list[str]:
            ids = [row[0] for row in q.execute(select, args).fetchall()]
            if not ids:
                return ids
            marks = ",".join("?" * len(ids))
            for table in RUN_TABLES:
                q.execute(self.sql(f"DELETE FROM {table} WHERE run_id IN ({marks})"), ids)
            q.execute(self.sql(f"DELETE FROM runs WHERE id IN ({marks})"), ids)
            return ids

        def resolve(q: Session) -> tuple[bool, list[str]]:
            return False, []  # not known which batch landed: the caller's next batch goes on

        return self._write(op, resolve=resolve)

    def set_paused(self, run_id: str, paused: bool, now: float) -> bool:
        """Pause or resume a running run; False when it already was so. A worker driving it
        is told (attention) and hands the run back once its attempts in flight are recorded;
        no worker claims a paused run."""

        def op(q: Session) -> bool:
            self._require_running(q, run_id)
            changed = q.execute(
                self.sql(
                    "UPDATE runs SET paused=?, attention=(attention OR lease_owner IS NOT NULL), "
                    "updated_at=? WHERE id=? AND status='running' AND paused<>?"
                ),
                (paused, now, run_id, paused),
            ).rowcount
            if changed:
                self._notify(q, "pause")
            return changed == 1

        def resolve(q: Session) -> tuple[bool, bool]:
            row = q.execute(self.sql("SELECT paused FROM runs WHERE id=?"), (run_id,)).fetchone()
            return bool(row) and bool(row[0]) == paused, True

        return self._write(op, resolve=resolve)

    def is_paused(self, run_id: str) -> bool:
        query = self.sql("SELECT paused FROM runs WHERE id=?")
        row = self._read(lambda q: q.execute(query, (run_id,)).fetchone())
        return bool(row and row[0])
