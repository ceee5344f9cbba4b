"""Continue-as-new and the history limit: a run's history comes in segments.

A `continue_as_new` state ends the current segment (`ContinuedAsNew`, its last event) and
starts the same pinned definition again under the same run id, with a new input and a fresh
run state (`RunStarted`, the first event of the next segment). Both happen in one decision, so
one commit writes the old segment's end, the new segment's start and the new state together:
a crash leaves either the old segment running or the new one started, never both or neither.
The worker learns of the switch from a `continue_as_new` command (the index of the first event
of the new segment, its number and input), which the store records as a row of `segments`.

Each segment may record at most `history_limit` events (default 51,200). The count lives in the
run state (`segment_events`), brought up to date before each commit (`seal`): a step that
reaches the cap is written, and the run then fails at once with HistoryLimitExceeded (like a
timeout: no compensation, which would only add events past the cap).

Like the rest of the core: no I/O, no clock; `now` comes from the caller.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dsl.history_limits import HISTORY_LIMIT_DEFAULT
from dsl.model import ContinueAsNewState
from interpreter.core import saga
from interpreter.core.bookkeeping import Bookkeeping, Transitions
from interpreter.core.definition import Definition
from interpreter.core.records import Command, error, iso, new_run_state

SWITCH = "continue_as_new"  # the command that tells the worker a new segment starts


def segment_of(state: dict[str, Any]) -> int:
    """The segment a run state belongs to (1 for a run that never continued as new)."""
    return int(state.get("run", {}).get("segment", 1))


def history_limit(defn: Definition) -> int:
    return defn.workflow.history_limit or HISTORY_LIMIT_DEFAULT


def switch_of(run: Bookkeeping) -> Command | None:
    """The segment switch decided since the last commit, if any (at most one: see `switched`)."""
    for command in run.commands:
        if command.kind == SWITCH:
            return command
    return None


def switched(run: Bookkeeping) -> bool:
    """A new segment started in this decision: stop stepping, so the switch is committed before
    the new segment's first state runs (a loop of segments never runs inside one decision)."""
    return bool(run.commands) and switch_of(run) is not None


def continue_as_new(
    run: Bookkeeping,
    flow: Transitions,
    frame: dict[str, Any],
    state: ContinueAsNewState,
    start: Callable[[], None],
) -> None:
    """`frame` reached a continue_as_new state; `start` is the engine's start of a run."""
    # Lint TF290 refuses it (an exit handler too: the outcome is known); a definition built by
    # hand may not.
    if frame["parent"] is not None or frame.get("exit"):
        flow.frame_failed(
            frame,
            error(
                "ContinueAsNewNotAllowed",
                f"continue_as_new state {frame['state']!r} is inside a parallel branch or map "
                "body; it can only stand at the top level",
            ),
        )
        return
    new_input = run.s["input"] if state.input is None else run.eval(frame, state.input, "input")
    new_input = with_defaults(run.defn.workflow.input_schema, new_input)  # as a new run's
    problem = input_problem(run.defn.workflow.input_schema, new_input)
    if problem is not None:
        flow.frame_failed(
            frame,
            error(
                "InputInvalid",
                f"the input of continue_as_new state {frame['state']!r} does not satisfy "
                f"input_schema: {problem}",
                {"input": new_input},
            ),
        )
        return
    segment = segment_of(run.s) + 1
    run.emit("ContinuedAsNew", frame["state"], payload={"segment": segment, "input": new_input})
    saga.drop_everything(run)  # a live child is cancelled: nothing would wait for it
    saga.close_detached(run)  # the segment ends: detached children get their policy (as Temporal)
    first_event = len(run.events)
    run.commands.append(
        Command(SWITCH, {"segment": segment, "first_event": first_event, "input": new_input})
    )
    info = {**run.s["run"], "segment": segment, "segment_started_at": iso(run.now)}
    fresh = new_run_state(run.defn, info["id"], new_input, run.now)
    # Ids keep counting, so frame and task ids (and idempotency keys) never repeat across
    # segments of the run.
    fresh.update(run=info, ids=run.s["ids"], segment_events=0)
    run.s.clear()
    run.s.update(fresh)
    start()
    for event in run.events[first_event:]:
        if event.type == "RunStarted":
            event.payload["segment"] = segment


def with_defaults(schema: dict[str, Any] | None, value: Any) -> Any:
    if not schema:
        return value
    from dsl.input_schema import with_defaults as fill

    return fill(schema, value)


def input_problem(schema: dict[str, Any] | None, value: Any) -> str | None:
    """Why `value` does not satisfy `schema`, or None."""
    if not schema:
        return None
    from jsonschema.exceptions import best_match

    from dsl.input_schema import validator  # formats checked, as for a new run's input

    err = best_match(validator(schema).iter_errors(value))
    if err is None:
        return None
    pointer = "/" + "/".join(str(p) for p in err.absolute_path)
    return f"at {pointer}: {err.message}"


def count_new_run(run: Bookkeeping) -> None:
    """A run just started: its first events count towards segment 1."""
    run.s["segment_events"] = len(run.events)


def seal(run: Bookkeeping) -> int:
    """Before a commit: count its events into the current segment, and fail the run when the
    segment reaches the history limit. Returns how many of the commit's events are counted."""
    switch = switch_of(run)
    new = len(run.events) - (switch.data["first_event"] if switch else 0)
    count = int(run.s.get("segment_events", 0)) + new
    limit = history_limit(run.defn)
    if count >= limit and run.s["status"] == "running":
        saga.end_run_now(
            run,
            "failed",
            error(
                "HistoryLimitExceeded",
                f"segment {segment_of(run.s)} of the run reached the history limit of "
                f"{limit:,} events",
                {
                    "limit": limit,
                    "events": count,
                    "segment": segment_of(run.s),
                    "hint": "end each round of a long loop with a continue_as_new state, so "
                    "every segment starts a fresh history (or raise history_limit)",
                },
            ),
        )
        count += 1  # RunFailed
    run.s["segment_events"] = count
    return len(run.events)


def count_late(run: Bookkeeping, counted: int) -> None:
    """Events added to the commit after `seal` (a child that could not start) count too."""
    run.s["segment_events"] = int(run.s.get("segment_events", 0)) + len(run.events) - counted
