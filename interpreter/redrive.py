"""Retry (redrive) and fork of ended runs, decided by the one core.

Both rebuild a run state by re-deciding the recorded history with the core (interpreter/replay.py)
and feeding the recorded activity outcomes, so completed activities are never run again:

- `plan_retry`: the history up to the input that ended the run (the final failure of a step's
  activity, the run timeout firing, the cancel request) is re-decided; the failed step gets a
  fresh first attempt. The run continues under the same id in a new history segment that starts
  with `RunRetried`. Refused when a compensation already ran for the ending (its undo cannot be
  taken back) and when the definition given is not compatible with the history.
- `plan_fork`: the history up to the decision that first entered STATE is re-decided for a new
  run id; the new run executes from there on. Its run state names the original.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from interpreter.core.definition import Definition
from interpreter.core.records import Event
from interpreter.errors import RedriveRefused, RunNotFound
from interpreter.replay import RETRIED_EVENT, ReplayError, _Replayer, decided_events
from interpreter.store.base import NewRun, Reopen, RunRecord, Store

RETRYABLE_STATUSES = ("failed", "timed_out", "cancelled")


@dataclass
class Plan:
    state: dict[str, Any]
    events: list[Event]
    from_state: str | None


def _ending(events: list[dict[str, Any]], status: str) -> int:
    """The index of the recorded input that ended the run."""
    for index in range(len(events) - 1, -1, -1):
        event = events[index]
        kind, payload = event["type"], event.get("payload") or {}
        if status == "cancelled" and kind == "CancelRequested" and "ignored" not in payload:
            return index
        if status == "timed_out" and kind == "TimerFired" and payload.get("kind") == "run_timeout":
            return index
        if status == "failed" and kind == "ActivityFailed" and not payload.get("will_retry"):
            return index
        if kind == RETRIED_EVENT:
            break
    raise RedriveRefused(
        f"this {status} run did not end in an activity failure, the run timeout or a cancel "
        "request, so there is no step to retry",
        hint="fix the definition and start a new run, or fork it from an earlier state "
        "(`tideflow fork RUN --from STATE`)",
    )


def _check_uncompensated(events: list[dict[str, Any]], end: int) -> None:
    done = [
        e for e in events[end:] if e["type"] in ("CompensationStarted", "CompensationCompleted")
    ]
    if done:
        states = sorted({str(e.get("state")) for e in done})
        raise RedriveRefused(
            f"the run compensated already ({', '.join(states)}): the undone steps' results "
            "would be reused as if they still held, so it cannot be retried safely",
            hint="a compensation that ran is not undone; fork the run from the first state to "
            "redo (`tideflow fork RUN --from STATE`), or start a new run",
        )


def plan_retry(
    defn: Definition, run_id: str, status: str, events: list[dict[str, Any]], now: float
) -> Plan:
    if status not in RETRYABLE_STATUSES:
        raise RedriveRefused(
            f"run {run_id!r} is {status}; only failed, timed-out or cancelled runs can be retried",
            hint="a running run goes on by itself; a completed one has nothing to retry",
        )
    decided, endings = decided_events(events)
    end = _ending(decided, status)
    _check_uncompensated(decided, end)
    replayer = _Replayer(defn, run_id, decided, endings)
    result = _walk(replayer, end)
    if not result:
        raise RedriveRefused(
            f"the definition is not compatible with the run's history: {replayer.why}",
            hint="check the edit with `tideflow replay FILE --db ...`; see docs/versioning.md",
        )
    try:
        event = replayer.retry_at(decided[end], now)
    except ReplayError as exc:
        raise RedriveRefused(f"cannot retry run {run_id!r}: {exc}") from None
    _refuse_unsupported(replayer.state)
    event.payload["hash"] = defn.hash
    return Plan(replayer.state, [event], decided[end].get("state"))


def plan_fork(
    defn: Definition, run_id: str, new_id: str, events: list[dict[str, Any]], state_name: str
) -> Plan:
    decided, endings = decided_events(events)
    replayer = _Replayer(defn, new_id, decided, endings)
    try:
        result = replayer.walk(len(decided), entered=state_name)
    except ReplayError as exc:
        raise RedriveRefused(
            f"cannot fork run {run_id!r} from {state_name!r}: {exc}",
            hint="`tideflow history RUN` lists the states the run entered",
        ) from None
    if not result.compatible:
        raise RedriveRefused(f"cannot fork run {run_id!r}: {result.first_difference}")
    state = replayer.state
    if state["status"] != "running":
        raise RedriveRefused(f"run {run_id!r} had ended when it entered {state_name!r}")
    _refuse_unsupported(state)
    state["run"]["forked_from"] = {"run": run_id, "state": state_name}
    state["segment_events"] = len(replayer.emitted)
    return Plan(state, replayer.emitted, state_name)


def _walk(replayer: _Replayer, stop: int) -> bool:
    try:
        result = replayer.walk(stop)
    except ReplayError as exc:
        replayer.why = str(exc)
        return False
    if not result.compatible:
        diff = result.first_difference or {}
        rec = diff.get("recorded") or {}
        replayer.why = f"at event {rec.get('seq')} {rec.get('type')}: {diff.get('reason')}"
        return False
    return True


def _refuse_unsupported(state: dict[str, Any]) -> None:
    for frame in state["frames"].values():
        kind = (frame.get("wait") or {}).get("kind")
        if kind == "map":
            raise RedriveRefused(
                "runs inside a map state cannot be retried or forked yet",
                hint="start a new run",
            )
    if state.get("children"):
        raise RedriveRefused(
            "runs waiting for a child run cannot be retried or forked yet", hint="start a new run"
        )


def retry_run(store: Store, run_id: str, defn: Definition | None, now: float) -> RunRecord:
    """Client.retry: plan with the run's pinned definition (or `defn`, checked by replay) and
    reopen the run in one transaction."""
    record, pinned, events = _load(store, run_id)
    target = pinned if defn is None else defn
    if target.name != record.workflow:
        raise RedriveRefused(
            f"the definition is workflow {target.name!r}, run {run_id!r} is {record.workflow!r}"
        )
    plan = plan_retry(target, run_id, record.status, events, now)
    reopen = Reopen(
        state=plan.state,
        events=plan.events,
        segment=int(plan.state["run"]["segment"]),
        workflow=target.name,
        def_hash=target.hash,
        def_source=target.source,
        def_version=target.version,
        def_file=target.file,
    )
    return store.reopen_run(run_id, record.status, reopen, now)


def fork_run(store: Store, run_id: str, from_state: str, new_id: str, now: float) -> RunRecord:
    """Client.fork: a new run from the original's recorded results up to `from_state`."""
    _record, pinned, events = _load(store, run_id)
    if store.get_run(new_id) is not None:
        raise RedriveRefused(f"a run with id {new_id!r} exists already", hint="pick another --id")
    plan = plan_fork(pinned, run_id, new_id, events, from_state)
    new = NewRun(
        id=new_id,
        workflow=pinned.name,
        def_hash=pinned.hash,
        def_source=pinned.source,
        def_version=pinned.version,
        def_file=pinned.file,
        input=plan.state["input"],
        state=plan.state,
        events=plan.events,
        due_at=now,
    )
    created, fresh = store.create_run(new)
    if not fresh:
        raise RedriveRefused(f"a run with id {new_id!r} exists already", hint="pick another --id")
    return created


def _load(store: Store, run_id: str) -> tuple[RunRecord, Definition, list[dict[str, Any]]]:
    record = store.get_run(run_id)
    if record is None:
        raise RunNotFound(
            f"no run with id {run_id!r}", hint="`tideflow list` shows the runs in this store"
        )
    source, file = store.load_definition(record.def_hash)
    return record, Definition.from_source(source, file), list(store.iter_events(run_id))
