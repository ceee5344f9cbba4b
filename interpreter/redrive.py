"""Retry (redrive) and fork of ended runs, decided by the one core.

Both rebuild a run state by re-deciding the recorded history with the core (interpreter/replay.py)
and feeding the recorded activity outcomes, so completed activities are never run again:

- `plan_retry`: the history up to the input that ended the run (the final failure of a step's
  activity, an expired callback or wait, a child run's end, the run timeout firing, the cancel
  request) is re-decided, and the run is made to go on from there (interpreter/retry_resets.py
  says how, per kind). A run that failed on an error of its own decisions (a template that
  failed, no choice matched) is re-decided at that step by the edited definition given with
  `--definition`. The run continues under the same id in a new history segment that starts
  with `RunRetried`. Refused when a compensation already ran for the ending (its undo cannot be
  taken back), when the run ended in its own `fail` state, and when the definition given is not
  compatible with the history. A failed child run is retried together with its parent, in one
  transaction, so the parent waits for the same child, which keeps its own completed steps.
- `plan_fork`: the history up to the decision that first entered STATE is re-decided for a new
  run id; the new run executes from there on. Its run state names the original.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from interpreter.core.callbacks import CALLBACK
from interpreter.core.definition import Definition
from interpreter.core.records import NOT_STARTED, RETRIED_EVENT, Event
from interpreter.errors import RedriveRefused, RunNotFound
from interpreter.replay import ReplayError, _Replayer, decided_events
from interpreter.store.base import RunRecord, Store
from interpreter.store.writes import NewRun, Reopen

RETRYABLE_STATUSES = ("failed", "timed_out", "cancelled")


# Errors of the run's own decisions: the fix is an edit of the definition.
DECISION_ERRORS = frozenset(
    {"ExpressionError", "InvalidDuration", "InvalidValue", "NoChoiceMatched"}
)
# Commands a re-decided step may make that the retry cannot carry out itself.
_WORKER_COMMANDS = frozenset({"start_child", "cancel_child", "terminate_child"})


@dataclass
class Plan:
    state: dict[str, Any]
    events: list[Event]
    from_state: str | None
    children: list[str] = field(default_factory=list)  # child runs to retry with this one


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
    defn: Definition,
    run_id: str,
    status: str,
    events: list[dict[str, Any]],
    now: float,
    pinned: Definition | None = None,
) -> Plan:
    """`defn`: the definition the run goes on with; `pinned`: the one it ran with (default
    `defn`), which finds the step that ended it."""
    if status not in RETRYABLE_STATUSES:
        raise RedriveRefused(
            f"run {run_id!r} is {status}; only failed, timed-out or cancelled runs can be retried",
            hint="a running run goes on by itself; a completed one has nothing to retry",
        )
    decided, endings = decided_events(events)
    end, redecide = _retry_point(pinned or defn, run_id, decided, endings, status)
    if redecide:
        _check_new_definition(defn, pinned or defn, run_id, decided)
    _check_uncompensated(decided, end)
    replayer = _Replayer(defn, run_id, decided, endings)
    result = _walk(replayer, end)
    if not result:
        raise RedriveRefused(
            f"the definition is not compatible with the run's history: {replayer.why}",
            hint="check the edit with `tideflow replay FILE --db ...`; see docs/versioning.md",
        )
    commands_before = len(replayer.commands)
    try:
        made = replayer.retry_at(decided[end], now, redecide=redecide)
    except ReplayError as exc:
        raise RedriveRefused(f"cannot retry run {run_id!r}: {exc}") from None
    if redecide:
        _check_redecided(replayer, run_id, made, commands_before)
    children = _children_to_retry(decided[end])
    _refuse_unsupported(replayer.state, set(children))
    made[0].payload["hash"] = defn.hash
    return Plan(replayer.state, made, decided[end].get("state"), children)


def _retry_point(
    pinned: Definition,
    run_id: str,
    decided: list[dict[str, Any]],
    endings: dict[int, Any],
    status: str,
) -> tuple[int, bool]:
    """(index of the recorded input or step that ended the run, whether the retry re-decides
    it with a new definition)."""
    if status == "failed":
        point = _failing_decision(pinned, run_id, decided, endings)
        if point is not None:
            return point
    return _ending(decided, status), False


def _failing_decision(
    pinned: Definition, run_id: str, decided: list[dict[str, Any]], endings: dict[int, Any]
) -> tuple[int, bool] | None:
    """Where the decision that failed the run began, found by re-deciding the history with
    the run's own definition; None when that does not find it (the caller falls back)."""
    last = decided[-1]
    if last["type"] != "RunFailed":
        return None
    replayer = _Replayer(pinned, run_id, decided, endings)
    if not _walk(replayer, len(decided)):
        return None
    fail_at = _end_chain_start(decided)
    start = max(i for i in replayer.starts if i <= fail_at)
    err = (last.get("payload") or {}).get("error") or {}
    ending = decided[start]
    kind, payload = ending["type"], ending.get("payload") or {}
    if err.get("type") in DECISION_ERRORS and not (
        kind == "ActivityFailed" and (payload.get("error") or {}).get("type") == err.get("type")
    ):
        if start == 0:
            raise RedriveRefused(
                f"run {run_id!r} failed as it started ({err.get('type')}: {err.get('message')}), "
                "before any step: there is nothing to keep",
                hint="fix the definition and start a new run",
            )
        return start, True
    if kind == "ActivityFailed" and not payload.get("will_retry"):
        return start, False
    if kind == "ChildFailed":
        return start, False
    if kind == "TimerFired" and payload.get("kind") == "wait_timeout":
        return start, False
    failed_in = [
        e["state"]
        for e in decided[start : fail_at + 1]
        if e["type"] == "StateEntered" and (e.get("payload") or {}).get("type") == "fail"
    ]
    if failed_in:
        raise RedriveRefused(
            f"run {run_id!r} ended in its fail state {failed_in[-1]!r}: that was the workflow's "
            f"own decision ({err.get('type')}), not a failure a retry could get past",
            hint="fork the run from an earlier state to decide again "
            "(`tideflow fork RUN --from STATE`), or fix the definition and start a new run",
        )
    return None


# Events of a failing run's compensations, recorded between its failure and its RunFailed.
_COMPENSATING = frozenset(
    {"CompensationStarted", "CompensationCompleted", "CompensationFailed", "RetryScheduled"}
)


def _end_chain_start(decided: list[dict[str, Any]]) -> int:
    """The index of the first event recorded once the run was failing: its first exit handler,
    its first compensation, or its RunFailed."""
    index = len(decided) - 1
    for i in range(len(decided) - 1, -1, -1):
        kind = decided[i]["type"]
        if kind == RETRIED_EVENT:
            break
        if kind == "ExitHandlerStarted":
            index = i
    while index > 0:
        before = decided[index - 1]
        started = (before.get("payload") or {}).get("kind")
        if before["type"] in _COMPENSATING or (
            before["type"] in ("ActivityStarted", "ActivityInterrupted")
            and started == "compensation"
        ):
            index -= 1
        else:
            break
    return index


def _check_new_definition(
    defn: Definition, pinned: Definition, run_id: str, decided: list[dict[str, Any]]
) -> None:
    if defn.hash != pinned.hash:
        return
    err = (decided[-1].get("payload") or {}).get("error") or {}
    raise RedriveRefused(
        f"run {run_id!r} failed on an error of its definition ({err.get('type')}: "
        f"{err.get('message')}); retried with the same definition it would fail the same way",
        hint="fix the definition and retry onto it: `tideflow retry RUN --definition FIXED.yaml` "
        "(replay checks the edit against the run's history first)",
    )


def _check_redecided(replayer: _Replayer, run_id: str, made: list[Event], before: int) -> None:
    """The edited definition's decision at the failed step must go on, and must need nothing
    the worker does (a retry writes its events, it does not start child runs)."""
    if replayer.state["status"] != "running":
        ended = next(
            (e for e in made if e.type.startswith("Run") and e.type != RETRIED_EVENT), None
        )
        err = (ended.payload.get("error") if ended else None) or {}
        raise RedriveRefused(
            f"the edited definition ends run {run_id!r} at the same step too "
            f"({err.get('type')}: {err.get('message')}); nothing was changed",
            hint="check the fix with `tideflow test`, then retry again",
        )
    kinds = {c.kind for c in replayer.commands[before:]} & _WORKER_COMMANDS
    if kinds:
        raise RedriveRefused(
            f"the edited definition's decision at the failed step of run {run_id!r} starts or "
            "stops a child run at once, which a retry cannot carry out",
            hint="fork the run from the failed step instead (`tideflow fork RUN --from STATE`)",
        )


def _children_to_retry(ending: dict[str, Any]) -> list[str]:
    payload = ending.get("payload") or {}
    if ending["type"] == "ChildFailed" and payload.get("status") != NOT_STARTED:
        return [str(payload.get("child"))]
    return []


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


def _refuse_unsupported(state: dict[str, Any], retried_children: set[str] | None = None) -> None:
    # A run inside a map goes on: the rebuilt state holds the map's items and results whole,
    # and the first commit after it writes them as map rows (interpreter/map_rows.py), as for
    # a state written before map rows existed; the ended run's rows were deleted at its end.
    if set(state.get("children") or {}) - (retried_children or set()):
        raise RedriveRefused(
            "runs waiting for a child run cannot be retried or forked yet", hint="start a new run"
        )


def retry_run(store: Store, run_id: str, defn: Definition | None, now: float) -> RunRecord:
    """Client.retry: plan with the run's pinned definition (or `defn`, checked by replay) and
    reopen the run, with the failed child runs it waits for, in one transaction."""
    return store.reopen_runs(_reopens(store, run_id, defn, now), now)[0]


def _reopens(
    store: Store, run_id: str, defn: Definition | None, now: float
) -> list[tuple[str, str, Reopen]]:
    """The run's reopen, then those of the child runs retried with it (depth first)."""
    record, pinned, events = _load(store, run_id)
    target = pinned if defn is None else defn
    if target.name != record.workflow:
        raise RedriveRefused(
            f"the definition is workflow {target.name!r}, run {run_id!r} is {record.workflow!r}"
        )
    plan = plan_retry(target, run_id, record.status, events, now, pinned)
    reopen = Reopen(
        state=plan.state,
        events=plan.events,
        segment=int(plan.state["run"]["segment"]),
        workflow=target.name,
        def_hash=target.hash,
        def_source=target.source,
        def_version=target.version,
        def_file=target.file,
        callbacks_reopened=_waiting_callbacks(plan.state),
    )
    found = [(run_id, record.status, reopen)]
    for child_id in plan.children:
        found += _child_reopens(store, run_id, child_id, now)
    return found


def _child_reopens(
    store: Store, parent_id: str, child_id: str, now: float
) -> list[tuple[str, str, Reopen]]:
    """A failed child run is retried with its parent (it keeps its completed steps); one that
    runs again already (retried by hand) or completed since tells the parent when it ends (its
    news waits in the parent's inbox)."""
    child = store.get_run(child_id)
    if child is None:
        raise RedriveRefused(
            f"run {parent_id!r} waits for child run {child_id!r}, which is no longer in the store",
            hint="fork the parent from the child state (`tideflow fork RUN --from STATE`)",
        )
    if child.status in ("running", "completed"):
        return []
    try:
        return _reopens(store, child_id, None, now)
    except RedriveRefused as exc:
        raise RedriveRefused(
            f"run {parent_id!r} failed because child run {child_id!r} did, and the child "
            f"cannot be retried: {exc.message}",
            hint=exc.hint,
        ) from None


def _waiting_callbacks(state: dict[str, Any]) -> list[tuple[str, int]]:
    """(task, attempt) of the callback waits the retry makes wait again: their tokens open."""
    return sorted(
        (task_id, int(task["attempt"]))
        for task_id, task in state["tasks"].items()
        if task.get("status") == CALLBACK
    )


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
