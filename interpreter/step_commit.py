"""One step's Commit, built from what the engine decided since the last one.

Besides the run's own state and events a step may write child runs to start, cancel or
terminate, inbox items it consumed, the end of a history segment, decided updates, map rows
and callback tokens. The engine says most of it as commands; the rest (map rows, tokens) the
driver's trackers derive from the state. `prepare` turns all of it into the one Commit the
store writes atomically; `PreparedStep.committed` moves the trackers on once it is written.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from interpreter.callbacks import CallbackTokens, TokenChanges
from interpreter.core import segments
from interpreter.core.engine import Engine
from interpreter.core.records import NOT_STARTED, Command
from interpreter.map_rows import MapRowTracker, Split
from interpreter.store.base import RunRecord
from interpreter.store.writes import Commit, NewRun, SegmentStart, UpdateOutcome

# Makes the child run of a `start_child` command, or an error dict when it cannot start.
ChildMaker = Callable[[Command], Awaitable[NewRun | dict[str, Any]]]


@dataclass(slots=True)
class PreparedStep:
    commit: Commit
    _split: Split
    _tokens: TokenChanges
    _map_rows: MapRowTracker
    _callbacks: CallbackTokens

    def committed(self) -> None:
        """The commit is in the store: its map rows and token changes are now the baseline."""
        self._map_rows.committed(self._split)
        self._callbacks.committed(self._tokens)


@dataclass(slots=True)
class _Effects:
    """What the commands of a step ask the store to do beyond the run's own row."""

    new_runs: list[NewRun]
    cancel_runs: list[str]
    terminate_runs: list[str]
    consumed: list[int]
    updates: list[UpdateOutcome]
    new_segment: SegmentStart | None = None


async def _carry_out(engine: Engine, new_child: ChildMaker) -> _Effects:
    effects = _Effects([], [], [], [], [])
    commands = engine.commands
    # Not a snapshot: a child that cannot start fails its state at once, and what follows
    # (a catch, the next map iteration) may append commands that belong to this commit.
    index = 0
    while index < len(commands):
        command = commands[index]
        index += 1
        kind = command.kind
        if kind == "start_child":
            child = await new_child(command)
            if isinstance(child, NewRun):
                effects.new_runs.append(child)
                if command.data.get("detached"):
                    engine.child_started(command.data["id"])
            else:
                engine.child_finished(command.data["id"], NOT_STARTED, None, child)
        elif kind == "cancel_child":
            effects.cancel_runs.append(command.data["id"])
        elif kind == "terminate_child":
            effects.terminate_runs.append(command.data["id"])
        elif kind == "consume_signal":
            effects.consumed.append(command.data["id"])
        elif kind == segments.SWITCH:
            effects.new_segment = SegmentStart(**command.data)
        elif kind == "update_outcome":
            effects.updates.append(UpdateOutcome(**command.data))
    return effects


def _due_at(engine: Engine, row_due: float | None) -> tuple[float | None, bool]:
    """The run's due time after this step, and whether the row's `row_due` (what this driver
    last wrote, None: not known) already says as much."""
    # A running attempt needs a worker again as soon as this one dies (the lease keeps others
    # out until then); without a due time a crashed run would never be claimed. Any due time
    # up to now says that, so one written by an earlier step of this driver can stay.
    for task in engine.s["tasks"].values():
        if task["status"] == "running":
            return engine.now, row_due is not None and row_due <= engine.now
    return engine.next_wakeup(), False


async def prepare(
    engine: Engine,
    run: RunRecord,
    map_rows: MapRowTracker,
    callbacks: CallbackTokens,
    new_child: ChildMaker,
    row_due: float | None = None,
) -> PreparedStep:
    """The Commit of everything `engine` holds (its events and commands), for `run`;
    `row_due`: the due time the run's row holds, as far as the caller knows (None: unknown)."""
    counted = segments.seal(engine)  # the history limit (may end the run, so: first)
    effects = await _carry_out(engine, new_child)
    segments.count_late(engine, counted)  # a child that could not start added events
    state = engine.s
    split = map_rows.split(state)
    tokens = callbacks.changes(state, engine.events, engine.dropped_tasks)
    status = state["status"]
    notify = None
    if status != "running" and run.parent_id:
        notify = {"status": status, "output": state["output"], "error": state["error"]}
    due_at, keep_due = _due_at(engine, row_due)
    commit = Commit(
        state=split.state,
        status=status,
        events=engine.events,
        due_at=due_at,
        output=state["output"],
        error=state["error"],
        new_runs=effects.new_runs,
        cancel_runs=effects.cancel_runs,
        terminate_runs=effects.terminate_runs,
        consumed=effects.consumed,
        notify_parent=notify,
        map_rows=split.rows,
        map_frames_done=split.done_frames,
        callbacks_opened=tokens.opened,
        callbacks_closed=tokens.closed,
        new_segment=effects.new_segment,
        updates=effects.updates,
        keep_due=keep_due,
    )
    return PreparedStep(commit, split, tokens, map_rows, callbacks)
