"""The store's schema as one numbered list of migrations that every SQL dialect runs.

Entry i brings a store from version i to i + 1. Each entry is written once; the few words the
dialects spell differently are `{tokens}` that the dialect fills in (`Dialect.TYPES`). Version
4 is the one step whose history differs by dialect (SQLite moved run inputs out of `runs`,
PostgreSQL did nothing); version 5 brings both to the same shape, so every query that follows
is written once.
"""

from __future__ import annotations

from collections.abc import Mapping

# Version 1: the first schema.
_V1 = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE definitions (
    hash TEXT PRIMARY KEY, name TEXT NOT NULL, version TEXT, file TEXT,
    source TEXT NOT NULL, created_at {real} NOT NULL
);
CREATE TABLE runs (
    id TEXT PRIMARY KEY, workflow TEXT NOT NULL, def_hash TEXT NOT NULL,
    status TEXT NOT NULL, input TEXT, output TEXT, error TEXT, state TEXT NOT NULL,
    parent_id TEXT, root_id TEXT NOT NULL, depth INTEGER NOT NULL DEFAULT 0,
    created_at {real} NOT NULL, updated_at {real} NOT NULL, ended_at {real},
    due_at {real}, lease_owner TEXT, lease_expires {real},
    lease_token {bigint} NOT NULL DEFAULT 0,
    attention {bool} NOT NULL DEFAULT {false},
    cancel_requested {bool} NOT NULL DEFAULT {false},
    next_seq {bigint} NOT NULL DEFAULT 1
) {runs_storage};
CREATE INDEX runs_due ON runs(due_at) WHERE due_at IS NOT NULL;
CREATE INDEX runs_status ON runs(status, created_at);
CREATE INDEX runs_workflow ON runs(workflow, created_at);
CREATE INDEX runs_parent ON runs(parent_id) WHERE parent_id IS NOT NULL;
CREATE INDEX runs_attention ON runs(lease_owner) WHERE attention;
CREATE TABLE events (
    run_id TEXT NOT NULL, seq {bigint} NOT NULL, type TEXT NOT NULL, time {real} NOT NULL,
    state TEXT, attempt INTEGER, payload TEXT NOT NULL,
    PRIMARY KEY (run_id, seq)
) {without_rowid};
CREATE TABLE inbox (
    id {serial}, run_id TEXT NOT NULL, kind TEXT NOT NULL,
    name TEXT NOT NULL, payload TEXT, created_at {real} NOT NULL,
    consumed {bool} NOT NULL DEFAULT {false}
);
CREATE INDEX inbox_pending ON inbox(run_id, id) WHERE NOT consumed;
CREATE TABLE heartbeats (
    run_id TEXT NOT NULL, task_id TEXT NOT NULL, details TEXT, at {real} NOT NULL,
    PRIMARY KEY (run_id, task_id)
) {without_rowid}
"""

# Version 2: the activities a run's tasks name, so a worker only claims what it can run.
_V2 = "ALTER TABLE runs ADD COLUMN needs {text_list}"

# Version 3: map items and iteration results, written once each instead of in every state write.
_V3 = """
CREATE TABLE map_rows (
    run_id TEXT NOT NULL, frame TEXT NOT NULL, kind TEXT NOT NULL, idx INTEGER NOT NULL,
    value TEXT, PRIMARY KEY (run_id, frame, kind, idx)
) {without_rowid}
"""

# Version 4 (history differs by dialect, see the module docstring): SQLite rewrites a whole row,
# overflow pages included, on every UPDATE, so a large input in `runs` made each step O(input).
_V4 = {
    "sqlite": """
        CREATE TABLE run_inputs (run_id TEXT PRIMARY KEY, input TEXT);
        INSERT INTO run_inputs(run_id, input) SELECT id, input FROM runs;
        UPDATE runs SET input = NULL
    """,
    "postgresql": "SELECT 1",
}

# Version 5: one shape for every dialect. Run inputs live in `run_inputs` everywhere (a no-op
# on SQLite); the partial indexes that SQLite spelled `= 1` / `= 0` are rebuilt with the
# predicates the queries use (SQLite only uses a partial index whose WHERE the query repeats);
# leased runs get the index that finding dead local owners needs without a scan.
_V5 = """
CREATE TABLE IF NOT EXISTS run_inputs (run_id TEXT PRIMARY KEY, input TEXT);
INSERT INTO run_inputs(run_id, input) SELECT id, input FROM runs WHERE input IS NOT NULL;
UPDATE runs SET input = NULL WHERE input IS NOT NULL;
DROP INDEX IF EXISTS runs_attention;
CREATE INDEX runs_attention ON runs(lease_owner) WHERE attention;
DROP INDEX IF EXISTS inbox_pending;
CREATE INDEX inbox_pending ON inbox(run_id, id) WHERE NOT consumed;
CREATE INDEX IF NOT EXISTS runs_leased ON runs(lease_owner) WHERE lease_owner IS NOT NULL
"""

# Version 6: due runs by (status, due_at), so finding the next due run walks the running runs in
# due order and stops at the first claimable one. With runs(due_at) alone SQLite's planner took
# runs(status, created_at) and visited every running run (21 ms at 50,000 sleeping runs).
_V6 = """
CREATE INDEX runs_running_due ON runs(status, due_at) WHERE due_at IS NOT NULL;
DROP INDEX IF EXISTS runs_due
"""

# Version 7: callback tokens (`completion: callback`), kept only as their sha256. One row per
# token: the attempt it addresses and whether it is still pending, completed or closed (its
# attempt ended), so a late or reused token is refused with the reason.
_V7 = """
CREATE TABLE callbacks (
    token_hash TEXT PRIMARY KEY, run_id TEXT NOT NULL, task_id TEXT NOT NULL,
    attempt INTEGER NOT NULL, state TEXT, status TEXT NOT NULL, created_at {real} NOT NULL,
    heartbeat_at {real}, ended_at {real}
) {without_rowid};
CREATE INDEX callbacks_pending ON callbacks(run_id, task_id, attempt) WHERE status = 'pending'
"""

# Version 8: continue-as-new. Segment 2 on of a run's history (segment 1 starts at seq 1 and
# has no row): the seq its events start at. Events keep one seq order per run.
_V8 = """
CREATE TABLE segments (
    run_id TEXT NOT NULL, segment INTEGER NOT NULL, first_seq {bigint} NOT NULL,
    started_at {real} NOT NULL, PRIMARY KEY (run_id, segment)
) {without_rowid}
"""

# Version 9: updates (Client.update / `tideflow update`): one row per update id of a run, with
# its outcome, written in the same transaction as the step that applied or rejected it.
_V9 = """
CREATE TABLE updates (
    run_id TEXT NOT NULL, id TEXT NOT NULL, name TEXT NOT NULL, payload TEXT,
    status TEXT NOT NULL, result TEXT, message TEXT,
    created_at {real} NOT NULL, decided_at {real},
    PRIMARY KEY (run_id, id)
) {without_rowid}
"""

# Version 10: operating runs from the CLI. `paused`: a paused run is claimed by no worker until it
# is resumed (`tideflow pause`). `tideflow list` pages newest first by (created_at, id): with
# the id in the index, a page filtered by status or workflow is an index walk that stops
# after the page instead of a sort of every matching run (2,000 of 10,000 took PostgreSQL 11
# ms to sort before the first row).
_V10 = """
ALTER TABLE runs ADD COLUMN paused {bool} NOT NULL DEFAULT {false};
CREATE INDEX runs_created ON runs(created_at, id);
DROP INDEX IF EXISTS runs_status;
CREATE INDEX runs_status ON runs(status, created_at, id);
DROP INDEX IF EXISTS runs_workflow;
CREATE INDEX runs_workflow ON runs(workflow, created_at, id)
"""

# Version 11: the fork link (`tideflow fork RUN --from STATE`): the run a fork was made from and
# the state it was forked at, so `list` shows and filters forks and `status` names a run's forks
# (through the index) without reading run states. Forks made before this version name their
# original only in their run state (`run.forked_from`): copied from there. `{is_fork}` finds
# them by a substring test (no JSON parse of every run's state), `{fork_run}` and `{fork_state}`
# read the link with the dialect's JSON functions.
_V11 = """
ALTER TABLE runs ADD COLUMN forked_from TEXT;
ALTER TABLE runs ADD COLUMN forked_from_state TEXT;
UPDATE runs SET forked_from = {fork_run}, forked_from_state = {fork_state} WHERE {is_fork};
CREATE INDEX runs_forked_from ON runs(forked_from, created_at, id) WHERE forked_from IS NOT NULL
"""

# Version 12: leased runs by (status, lease_owner, lease_expires), running runs only. A run keeps
# its lease columns when it ends (its last step's guarded writes are fenced by them), so
# runs(lease_owner) held every run a worker had ever ended: finding dead local owners and a
# worker's runs needing attention (SQLite's planner took that index for both) visited all of
# them, on every poll. Walking only the running leased runs, covered by the index, costs the
# same at 200 runs as at 10,000.
_V12 = """
DROP INDEX IF EXISTS runs_leased;
CREATE INDEX runs_leased ON runs(status, lease_owner, lease_expires)
    WHERE lease_owner IS NOT NULL AND status = 'running'
"""

# Version 13: one row per step's events instead of one per event (a step usually writes four:
# ActivityCompleted, StateEntered, ActivityScheduled, ActivityStarted). A row holds the events
# `seq` to `last_seq`: one event as before (last_seq = seq), or several, whose `payload` is
# the JSON list of their [type, state, attempt, payload] and whose other columns are the first
# one's (base.events_from_row). The table keeps a rowid on SQLite: new rows go to its end and
# only the small (run_id, seq) index is written in each run's place, where WITHOUT ROWID moved
# whole events about on every page split. Existing rows are copied as one-event rows.
_V13 = """
CREATE TABLE step_events (
    run_id TEXT NOT NULL, seq {bigint} NOT NULL, last_seq {bigint} NOT NULL, type TEXT NOT NULL,
    time {real} NOT NULL, state TEXT, attempt INTEGER, payload TEXT NOT NULL,
    PRIMARY KEY (run_id, seq)
);
INSERT INTO step_events(run_id, seq, last_seq, type, time, state, attempt, payload)
SELECT run_id, seq, seq, type, time, state, attempt, payload FROM events ORDER BY run_id, seq;
DROP TABLE events;
ALTER TABLE step_events RENAME TO events
"""

MIGRATIONS: list[str | Mapping[str, str]] = [
    _V1,
    _V2,
    _V3,
    _V4,
    _V5,
    _V6,
    _V7,
    _V8,
    _V9,
    _V10,
    _V11,
    _V12,
    _V13,
]
SCHEMA_VERSION = len(MIGRATIONS)


def statements(index: int, dialect: str, types: Mapping[str, str]) -> list[str]:
    """The statements of migration `index` (from version index to index + 1) for `dialect`."""
    entry = MIGRATIONS[index]
    text = entry if isinstance(entry, str) else entry[dialect]
    return [s.strip().format_map(types) for s in text.split(";") if s.strip()]
