"""Replay: does an edited definition make the same decisions as a recorded history?

The recorded run is re-decided from its start by the ONE core (`interpreter/core`) with the new
definition: the recorded inputs (activity outcomes, attempts started, timers fired, signals,
updates, cancels, child ends) are fed to the engine in recorded order, at their recorded
times, and every event the engine emits is compared with the recorded one. The first event
that differs (or that one side has and the other has not) makes the run incompatible.

A run that continued as new is replayed as its whole chain of segments (the core switches
segments itself). Each decision is re-made at the moment the recorded one was made: the `at`
of a `StateEntered` it recorded, else the time of its first event. The export format (`history --export`) is documented in
docs/versioning.md; `EXPORT_VERSION` is its version field.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from interpreter import retry_resets
from interpreter.core.definition import Definition
from interpreter.core.engine import Engine
from interpreter.core.records import RETRIED_EVENT, Command, Event, new_run_state, open_segment
from interpreter.core.updates import apply_update

EXPORT_FORMAT = "tideflow-history"
EXPORT_VERSION = 1

# Events the worker causes by handing the engine an input; each names the engine call.
_INPUTS = frozenset(
    {
        "ActivityStarted",
        "ActivityInterrupted",
        "ActivityCompleted",
        "ActivityFailed",
        "CompensationCompleted",
        "CompensationFailed",
        "CompensationReleased",
        "TimerFired",
        "SignalReceived",
        "UpdateApplied",
        "CancelRequested",
        "ChildCompleted",
        "ChildFailed",
        "CallbackWaiting",
        "CallbackReceived",
    }
)
# Payload fields that are part of the decision (the rest: ids and times, mapped or ignored).
_COMPARED = {
    "ActivityScheduled": ("activity", "input"),
    "ChildStarted": ("workflow", "input"),
    "TimerStarted": ("kind",),
    "ErrorCaught": ("next",),
    "RunCompleted": ("output",),
    "ContinuedAsNew": ("input",),
    "ActivityFailed": ("will_retry",),
    "CompensationFailed": ("will_retry",),
}
_IDS = ("task", "timer", "child")


class ReplayError(Exception):
    """A history that cannot be replayed at all (not an incompatibility)."""


@dataclass
class ReplayResult:
    run_id: str
    workflow: str
    compatible: bool
    events: int  # recorded events compared
    first_difference: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "workflow": self.workflow,
            "compatible": self.compatible,
            "events": self.events,
            "first_difference": self.first_difference,
            "notes": self.notes,
        }


def export_document(record: Any, source: str, events: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """The stable export of one run's history (see docs/versioning.md)."""
    return {
        "format": EXPORT_FORMAT,
        "version": EXPORT_VERSION,
        "run_id": record.id,
        "workflow": record.workflow,
        "status": record.status,
        "definition": {"hash": record.def_hash, "source": source},
        "input": record.input,
        "events": [
            {k: e.get(k) for k in ("seq", "type", "time", "state", "attempt", "payload")}
            for e in events
        ],
    }


def check_export(doc: Any, where: str) -> dict[str, Any]:
    if not isinstance(doc, dict) or doc.get("format") != EXPORT_FORMAT:
        raise ReplayError(f"{where}: not a tideflow history export (no format {EXPORT_FORMAT!r})")
    if doc.get("version") != EXPORT_VERSION:
        raise ReplayError(
            f"{where}: history export version {doc.get('version')!r} is not supported "
            f"(this tideflow reads version {EXPORT_VERSION})"
        )
    if not isinstance(doc.get("events"), list) or not doc["events"]:
        raise ReplayError(f"{where}: the export holds no events")
    return doc


def replay(defn: Definition, run_id: str, events: list[dict[str, Any]]) -> ReplayResult:
    """Re-decide the recorded `events` (one run, oldest first) with `defn` and compare."""
    return _Replayer(defn, run_id, *decided_events(_whole_chain(events))).run()


def decided_events(events: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], dict[int, Any]]:
    """The history as the core decided it: what a retry took back (from the input that ended
    the run up to its `RunRetried`) is left out; those inputs are returned by seq."""
    out: list[dict[str, Any]] = []
    endings: dict[int, Any] = {}
    for event in events:
        if event["type"] == RETRIED_EVENT:
            point = int((event.get("payload") or {}).get("retry_point") or 0)
            endings.update({int(e["seq"]): e for e in out if int(e.get("seq") or 0) == point})
            out = [e for e in out if int(e.get("seq") or 0) < point]
        out.append(event)
    return out, endings


def _whole_chain(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if not events or events[0]["type"] != "RunStarted":
        raise ReplayError("the history does not start with RunStarted (export it with --all)")
    return events


def _parse_at(text: Any) -> float | None:
    if not isinstance(text, str):
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _brief(event: dict[str, Any] | Event | None) -> dict[str, Any] | None:
    if event is None:
        return None
    if isinstance(event, Event):
        return {"type": event.type, "state": event.state, "payload": event.payload}
    return {
        "seq": event.get("seq"),
        "type": event["type"],
        "state": event.get("state"),
        "payload": event.get("payload"),
    }


class _Replayer:
    def __init__(
        self,
        defn: Definition,
        run_id: str,
        events: list[dict[str, Any]],
        endings: dict[int, Any] | None = None,
    ) -> None:
        self.endings = endings or {}
        self.why = ""
        self.defn = defn
        self.run_id = run_id
        self.recorded = events
        self.pending: deque[Event] = deque()
        self.ids: dict[str, str] = {}  # recorded task/timer/child id -> the replay's
        self.state: dict[str, Any] = {}
        self.emitted: list[Event] = []
        # Where each decision began: the index of the recorded input fed, of the first event
        # of a ready frame's step, or of a RunRetried (0: the run's start).
        self.starts: list[int] = [0]
        self.commands: list[Command] = []  # the commands of the decisions re-made so far

    def run(self) -> ReplayResult:
        return self.walk(len(self.recorded))

    def walk(self, stop: int, entered: str | None = None) -> ReplayResult:
        """Re-decide the recorded events before index `stop` (an input there is not fed); with
        `entered`, stop once the decision that first entered that state is matched whole.
        `self.emitted` holds the events re-decided so far, `self.state` the state."""
        first = self.recorded[0]
        input_ = (first.get("payload") or {}).get("input")
        now = self._decision_now(0)
        self.state = new_run_state(self.defn, self.run_id, input_, now)
        engine = Engine(self.defn, self.state, now)
        engine.start()
        self.starts = [0]
        self._collect(engine)
        compared = 0
        reached = False
        for index, rec in enumerate(self.recorded[:stop]):
            if reached and not self.pending:
                break
            if not self.pending and rec["type"] == RETRIED_EVENT:
                # Before a ready frame is stepped: a retry that re-decides a step makes that
                # step itself, after its RunRetried.
                retried = rec.get("payload") or {}
                ending = self.endings.get(int(retried.get("retry_point") or 0))
                if ending is not None:
                    self.starts.append(index)
                    try:
                        made = self.retry_at(
                            ending, float(rec["time"]), redecide=bool(retried.get("redecide"))
                        )
                    except ReplayError as exc:
                        return self._differ(compared, rec, None, str(exc))
                    self.pending.extend(made)
            if not self.pending and any(
                f["status"] == "ready" for f in self.state["frames"].values()
            ):
                # A state entered but not yet run: the worker's next step runs it.
                self.starts.append(index)
                step = Engine(self.defn, self.state, self._decision_now(index))
                step.advance()
                self._collect(step)
            if not self.pending and rec["type"] in _INPUTS:
                self.starts.append(index)
                try:
                    self._feed(rec, self._decision_now(index))
                except ReplayError as exc:
                    return self._differ(compared, rec, None, str(exc))
            if not self.pending:
                return self._differ(
                    compared, rec, None, "the new definition does not record this event"
                )
            mine = self.pending.popleft()
            why = self._mismatch(rec, mine)
            if why:
                return self._differ(compared, rec, mine, why)
            compared += 1
            if entered is not None and rec["type"] == "StateEntered" and rec["state"] == entered:
                reached = True
        if entered is not None:
            if not reached:
                raise ReplayError(f"the run never entered state {entered!r}")
            while self.pending:  # the rest of that decision is the new run's too
                self.pending.popleft()
        elif self.pending and stop == len(self.recorded):
            return self._differ(
                compared, None, self.pending[0], "the new definition records more events here"
            )
        return ReplayResult(self.run_id, self.defn.name, True, compared)

    def retry_at(self, ending: dict[str, Any], now: float, redecide: bool = False) -> list[Event]:
        """The state as it was just before `ending` (the recorded input, or first event of a
        step, that ended the run), made to go on (interpreter/retry_resets.py says how, per
        kind of ending). Returns the events that open the new segment: `RunRetried`, then with
        `redecide` the events of the ending's decision re-made by this definition."""
        state = self.state
        if not redecide:
            try:
                retry_resets.reset(state, ending, self.ids, self.recorded, now)
            except retry_resets.ResetError as exc:
                raise ReplayError(str(exc)) from None
        for task in state["tasks"].values():
            if task["status"] in ("ready", "backoff"):
                task["due"] = min(task["due"], now)
        segment = open_segment(state, now)
        payload = {"segment": segment, "retry_point": ending.get("seq")}
        payload["from"] = ending["type"]
        if redecide:
            payload["redecide"] = True
        made = [Event(RETRIED_EVENT, ending.get("state"), None, payload)]
        if redecide:
            before = len(self.emitted)
            if ending["type"] in _INPUTS:
                self._feed(ending, now, queue=False)
            else:  # the step of a frame left ready (a first state, a new segment's)
                step = Engine(self.defn, state, now)
                step.advance()
                self._collect(step, queue=False)
            made += self.emitted[before:]
            state["segment_events"] = len(made)
        return made

    def _decision_now(self, index: int) -> float:
        """When the decision that recorded event `index` was made: the `at` of a StateEntered
        it recorded (up to the next input), else the event's time."""
        for rec in self.recorded[index:]:
            if rec["type"] == "StateEntered":
                at = _parse_at((rec.get("payload") or {}).get("at"))
                if at is not None:
                    return at
            if rec is not self.recorded[index] and rec["type"] in _INPUTS:
                break
        return float(self.recorded[index]["time"])

    def _collect(self, engine: Engine, queue: bool = True) -> None:
        """Take the step's events; carry out what the worker does within the same decision
        (a detached child's run is created: the engine hears at once that it started)."""
        index = 0
        while index < len(engine.commands):
            command = engine.commands[index]
            index += 1
            if command.kind == "start_child" and command.data.get("detached"):
                engine.child_started(command.data["id"])
        if queue:
            self.pending.extend(engine.events)
        self.emitted.extend(engine.events)
        self.commands.extend(engine.commands)

    def _differ(
        self, compared: int, rec: dict[str, Any] | None, mine: Event | None, why: str
    ) -> ReplayResult:
        return ReplayResult(
            self.run_id,
            self.defn.name,
            False,
            compared,
            {"reason": why, "recorded": _brief(rec), "replayed": _brief(mine)},
        )

    def _mismatch(self, rec: dict[str, Any], mine: Event) -> str | None:
        if rec["type"] != mine.type:
            return f"recorded {rec['type']}, the new definition records {mine.type}"
        if rec.get("state") != mine.state:
            return f"recorded state {rec.get('state')!r}, the new definition {mine.state!r}"
        payload = rec.get("payload") or {}
        for key in _COMPARED.get(mine.type, ()):
            if payload.get(key) != mine.payload.get(key):
                return f"{mine.type} differs in {key!r}"
        for key in _IDS:
            if key in payload and key in mine.payload:
                self.ids[str(payload[key])] = str(mine.payload[key])
        return None

    def _id(self, payload: dict[str, Any], key: str) -> str:
        recorded = str(payload.get(key))
        if recorded not in self.ids:
            raise ReplayError(f"the new definition has no {key} {recorded!r} to feed")
        return self.ids[recorded]

    def _callback_body(self, rec: dict[str, Any], task: str) -> dict[str, Any]:
        """The completion a `CallbackReceived` applied. Its body is not recorded with it: the
        outcome is the task's next recorded end (ActivityCompleted's result, ActivityFailed's
        error), which the core records from that body. Heartbeats are not inputs here: they
        only move the wait's due time, and a wait that expired is recorded as ActivityFailed."""
        body: dict[str, Any] = {"attempt": rec.get("attempt")}
        recorded_task = str((rec.get("payload") or {}).get("task"))
        start = self.recorded.index(rec) + 1
        for later in self.recorded[start:]:
            later_payload = later.get("payload") or {}
            if str(later_payload.get("task")) != recorded_task:
                continue
            if later["type"] == "ActivityCompleted":
                return {**body, "kind": "complete", "result": later_payload.get("result")}
            if later["type"] == "ActivityFailed":
                return {**body, "kind": "fail", "error": later_payload.get("error")}
        raise ReplayError(f"the outcome of the callback of task {task!r} is not recorded")

    def _feed(self, rec: dict[str, Any], now: float, queue: bool = True) -> None:
        """Hand the engine the input that caused the recorded event `rec`."""
        kind, payload = rec["type"], rec.get("payload") or {}
        s = self.state
        if kind == "ActivityStarted":
            due = [t["due"] for t in s["tasks"].values() if t["status"] in ("ready", "backoff")]
            if due:
                now = max(now, min(due))
        elif kind == "TimerFired":
            timer = s["timers"].get(self._id(payload, "timer"))
            if timer is not None:
                now = max(now, timer["due"])
        engine = Engine(self.defn, s, now)
        if kind == "ActivityStarted":
            engine.start_due_tasks()
        elif kind == "ActivityInterrupted":
            engine.restart_interrupted()
        elif kind in ("ActivityCompleted", "CompensationCompleted"):
            engine.task_completed(self._id(payload, "task"), payload.get("result"))
        elif kind in ("ActivityFailed", "CompensationFailed"):
            # The history does not say why a failure was final (a non-retryable error or the
            # last attempt): one the recorded run did not retry is fed as non-retryable.
            err = payload.get("error") or {}
            engine.task_failed(self._id(payload, "task"), err, not payload.get("will_retry"))
        elif kind == "TimerFired":
            engine.fire_due_timers()
        elif kind == "SignalReceived":
            engine.offer_signal(0, payload.get("signal", ""), payload.get("payload"))
        elif kind == "UpdateApplied":
            apply_update(
                engine,
                engine,
                0,
                str(payload.get("id")),
                str(payload.get("update")),
                payload.get("payload"),
            )
        elif kind == "CancelRequested":
            engine.cancel(payload.get("reason", "cancel requested"))
        elif kind == "CompensationReleased":
            if not self.state.get("held"):
                raise ReplayError("the new definition holds no compensation to release here")
            engine.release_held()
        elif kind == "CallbackWaiting":  # the callback activity returned
            engine.task_completed(self._id(payload, "task"), payload.get("returned"))
        elif kind == "CallbackReceived":
            task = self._id(payload, "task")
            engine.callback_input(0, task, self._callback_body(rec, task))
        else:  # ChildCompleted / ChildFailed
            child = self._id(payload, "child")
            if kind == "ChildCompleted":
                engine.child_finished(child, "completed", payload.get("output"), None)
            else:
                engine.child_finished(
                    child, payload.get("status", "failed"), None, payload.get("error")
                )
        self._collect(engine, queue)
