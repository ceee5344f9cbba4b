"""What the engine hands the store to write: a new run, one step's commit, a reopened run.

Apart from interpreter/store/base.py, which every command that opens a store imports
(`tideflow status`, `list`, `history`): these five dataclasses are made only where runs are
started and driven (the worker, `run`, `start`, `retry`...), and a dataclass costs about as
much to create as a small module to import."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from interpreter.core.records import Event


@dataclass
class NewRun:
    id: str
    workflow: str
    def_hash: str
    def_source: str
    def_version: str | None
    def_file: str | None
    input: Any
    state: dict[str, Any]
    events: list[Event]
    due_at: float | None
    parent_id: str | None = None
    root_id: str | None = None
    depth: int = 0


@dataclass
class SegmentStart:
    """A commit that continues the run as new: its events from index `first_event` on belong
    to segment `segment`, which starts with `input` (see interpreter/core/segments.py)."""

    segment: int
    first_event: int
    input: Any


@dataclass
class Reopen:
    """An ended run made to go on (Store.reopen_run, see interpreter/redrive.py): its rebuilt
    state, the first events of its new history segment, and the definition it now runs."""

    state: dict[str, Any]
    events: list[Event]
    segment: int
    workflow: str
    def_hash: str
    def_source: str
    def_version: str | None
    def_file: str | None
    # (task, attempt) of callback waits that wait again: their tokens are valid once more.
    callbacks_reopened: list[tuple[str, int]] = field(default_factory=list)


@dataclass
class UpdateOutcome:
    """The decision on an update, committed with the step that made it."""

    id: str
    status: str  # "applied" or "rejected"
    result: Any = None
    message: str | None = None


@dataclass(slots=True)
class Commit:
    """One atomic step of a run, written under the run's lease."""

    state: dict[str, Any]
    status: str
    events: list[Event]
    due_at: float | None
    output: Any = None
    error: Any = None
    new_runs: list[NewRun] = field(default_factory=list)
    cancel_runs: list[str] = field(default_factory=list)
    # Detached children ended with their parent (parent_close: terminate), with their own
    # running children, as `terminate` does.
    terminate_runs: list[str] = field(default_factory=list)
    consumed: list[int] = field(default_factory=list)
    # When the run ended and has a parent: tell the parent (inbox item of kind "child").
    notify_parent: dict[str, Any] | None = None
    # Map items and iteration results kept out of `state` (see interpreter/map_rows.py):
    # rows to write, as (frame, index, "item" | "result", value), and map frames whose rows go.
    map_rows: list[tuple[str, int, str, Any]] = field(default_factory=list)
    map_frames_done: list[str] = field(default_factory=list)
    # Callback tokens (interpreter/callbacks.py): the attempts started in this step, as
    # (task, attempt, state, token sha256), and the attempts whose wait ended, as (task, attempt).
    callbacks_opened: list[tuple[str, int, str, str]] = field(default_factory=list)
    callbacks_closed: list[tuple[str, int]] = field(default_factory=list)
    # Continue-as-new: a new segment of the run starts within this commit's events.
    new_segment: SegmentStart | None = None
    # Updates decided by this step (their inbox items are in `consumed`).
    updates: list[UpdateOutcome] = field(default_factory=list)
    # The row's due time already says what `due_at` says (an attempt runs and the row is
    # due): the store leaves the column alone, so its index is not rewritten on every step
    # (and a PostgreSQL update of the row can be HOT).
    keep_due: bool = False
