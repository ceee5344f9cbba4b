"""The pure decision core: given a definition, the persisted run state and one input (an activity
outcome, a fired timer, a signal, a child's end, a cancel request), it moves the run forward
and records what happened as history events and commands for the worker.

No I/O, no clock, no randomness: `now` comes in from the caller and every decision lands in
the state the caller persists together with the events. Resuming after a crash is therefore
"load the state, keep deciding"; live and resumed runs share every line.

The run state is one JSON document (see `new_run_state`). Several state machines can be active
at once (the top level, parallel branches, map iterations): each is a *frame* with its own
current state and vars. Activities (steps and compensations) are *tasks*; sleeps, signal
timeouts and the run timeout are *timers*.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dsl.model import (
    ActivityState,
    AnyState,
    ChildState,
    ChoiceState,
    CompensateState,
    Compensation,
    ContinueAsNewState,
    FailState,
    MapState,
    ParallelState,
    SetState,
    SleepState,
    SucceedState,
    WaitState,
)
from interpreter.core import (
    callbacks,
    exits,
    fanout,
    saga,
    segments,
    timing,
    updates,
    var_paths,
    waits,
)
from interpreter.core.bookkeeping import Bookkeeping
from interpreter.core.definition import Retry
from interpreter.core.fail_state import failure_of
from interpreter.core.records import NEVER_RETRIED, NO_RESULT, NOT_STARTED, Command, error, iso
from interpreter.expressions import ExpressionError


class Engine(Bookkeeping):
    """Applies one input at a time to `state` (mutated in place); collects events/commands.
    The bookkeeping (frames, tasks, timers, events) is inherited; parallel branches, maps and
    child runs are in fanout.py, cancellation, compensation and the run's end in saga.py."""

    # ----------------------------------------------------------------- entry points
    def start(self) -> None:
        wf = self.defn.workflow
        self.emit("RunStarted", payload={"input": self.s["input"], "hash": self.defn.hash})
        root = self.new_frame([], None, None, vars_={}, locals_={})
        self.s["root"] = root["id"]
        try:
            # Through eval: vars without a template are rendered once per definition.
            root["vars"] = self.eval(root, wf.vars, "vars") if wf.vars else {}
        except ExpressionError as exc:
            saga.fail_run(self, self, error(exc.kind, exc.message))
            return
        if wf.timeout is not None:
            try:
                limit = timing.duration(self, root, wf.timeout, "timeout")
            except ExpressionError as exc:
                saga.fail_run(self, self, error(exc.kind, exc.message, _details(exc)))
                return
            self.start_timer("run_timeout", None, limit)
        # The first state is entered but not run: the worker runs it, so commands such as
        # starting a child are carried out by the one place that handles commands.
        self.enter(root, self.defn.machine([])[1])

    def advance(self) -> None:
        """Step every ready frame until all of them wait on something."""
        while self.s["status"] == "running":
            ready = [f for f in self.s["frames"].values() if f["status"] == "ready"]
            if segments.switched(self):
                return  # the new segment's first state runs in the next step
            if not ready:
                if updates.wake_buffered(self, self):
                    continue  # an applied update woke a wait that began since
                return
            for frame in ready:
                if frame["status"] == "ready" and frame["id"] in self.s["frames"]:
                    self._run_state(frame)

    def start_due_tasks(self, can_run: Callable[[str], bool] | None = None) -> list[dict[str, Any]]:
        """Mark due tasks as running (ActivityStarted) and return them for execution. A task
        whose activity `can_run` rejects stays ready for a worker that offers it."""
        started = []
        for task in self.s["tasks"].values():
            if task["status"] in ("ready", "backoff") and task["due"] <= self.now:
                if can_run is not None and not can_run(task["activity"]):
                    continue
                task["status"] = "running"
                task["started_at"] = self.now
                self.emit(
                    "ActivityStarted",
                    task["state"],
                    task["attempt"],
                    {"task": task["id"], "activity": task["activity"], "kind": task["kind"]},
                )
                started.append(task)
        return started

    def restart_interrupted(self) -> list[str]:
        """Tasks that were running when the previous worker died start again (same attempt,
        same idempotency key)."""
        ids = [t["id"] for t in self.s["tasks"].values() if t["status"] == "running"]
        for task_id in ids:
            task = self.s["tasks"][task_id]
            task["status"] = "ready"
            task["due"] = self.now
            task["interrupted"] = True
            self.emit(
                "ActivityInterrupted",
                task["state"],
                task["attempt"],
                {"task": task_id, "activity": task["activity"]},
            )
        return ids

    def task_completed(self, task_id: str, result: Any) -> None:
        waiting = self.s["tasks"].get(task_id)
        if waiting is not None and callbacks.activity_returned(self, waiting, result):
            return  # the state now waits for its callback token (core/callbacks.py)
        task = self.s["tasks"].pop(task_id, None)
        if task is None:
            return  # cancelled meanwhile; the outcome is no longer wanted
        if task["kind"] == "compensation":
            self.emit(
                "CompensationCompleted",
                task["state"],
                task["attempt"],
                {"task": task_id, "activity": task["activity"]},
            )
            saga.next_compensation(self, self)
        else:
            self.emit(
                "ActivityCompleted",
                task["state"],
                task["attempt"],
                {"task": task_id, "result": result},
            )
            frame = self.s["frames"][task["frame"]]
            frame["status"] = "ready"
            frame["wait"] = None
            self.complete_state(frame, result)
        self.advance()

    def task_failed(self, task_id: str, err: dict[str, Any], non_retryable: bool = False) -> None:
        task = self.s["tasks"].get(task_id)
        if task is None:
            return
        kind = "CompensationFailed" if task["kind"] == "compensation" else "ActivityFailed"
        retry = Retry.from_json(task["retry"])
        decision = None
        if err["type"] not in NEVER_RETRIED:
            counts = task.get("retry_counts") or [task["attempt"] - 1] + [0] * (len(retry.rest))
            decision = retry.decide(err, counts, task["attempt"], non_retryable)
            task["retry_counts"] = counts
            if decision.error is not None:
                err = decision.error
        if decision is not None and decision.retry:
            delay = decision.delay
            deadline = task.get("deadline")
            if deadline is None or self.now + delay < deadline:
                self.emit(
                    kind,
                    task["state"],
                    task["attempt"],
                    {"task": task_id, "error": err, "will_retry": True},
                )
                task["attempt"] += 1
                task["status"] = "backoff"
                task["due"] = self.now + delay
                payload = {"task": task_id, "delay": delay, "due": iso(task["due"])}
                if retry.rest:
                    payload["policy"] = decision.rule
                self.emit("RetryScheduled", task["state"], task["attempt"], payload)
                return
            err = error(
                "Timeout",
                f"schedule_to_close timeout of {task['state']!r} leaves no time for another attempt",
                {"last_error": err},
            )
        del self.s["tasks"][task_id]
        self.emit(kind, task["state"], task["attempt"], {"task": task_id, "error": err})
        if task["kind"] == "compensation":
            self.s["compensation"]["errors"].append(
                {"activity": task["activity"], "state": task["state"], "error": err}
            )
            saga.next_compensation(self, self)
        else:
            frame = self.s["frames"][task["frame"]]
            frame["wait"] = None
            frame["status"] = "ready"
            self.state_error(frame, err)
        self.advance()

    def timers_due(self) -> bool:
        """Whether fire_due_timers would change anything now: a timer or a callback wait is
        due, a frame is ready (a new segment's first state) or an update's wake is buffered.
        The worker asks before every step, so a step with none skips the decision."""
        s, now = self.s, self.now
        for timer in s["timers"].values():
            if timer["due"] <= now:
                return True
        for frame in s["frames"].values():
            if frame["status"] == "ready":
                return True
        return callbacks.any_expired(self) or bool(s.get(updates.WAKES))

    def fire_due_timers(self) -> None:
        callbacks.expire_due(self, self)
        for timer_id, timer in sorted(self.s["timers"].items(), key=lambda kv: kv[1]["due"]):
            if timer["due"] > self.now or timer_id not in self.s["timers"]:
                continue
            del self.s["timers"][timer_id]
            self.emit(
                "TimerFired", timer.get("state"), payload={"timer": timer_id, "kind": timer["kind"]}
            )
            if timer["kind"] == "run_timeout":
                saga.end_run_now(
                    self, "timed_out", error("Timeout", "the run exceeded its timeout")
                )
                break  # every other timer went with the run; its timeout handler may run
            frame = self.s["frames"].get(timer["frame"])
            if frame is None:
                continue
            if timer["kind"] == exits.EXIT_TIMER:
                self._end_handler(frame, None, exits.timed_out(self, frame))
                continue
            frame["status"] = "ready"
            if timer["kind"] == "sleep":
                frame["wait"] = None
                self.complete_state(frame, NO_RESULT)
            elif timer["kind"] == "wait_timeout":
                wait, frame["wait"] = frame["wait"], None
                state = self.state(frame)
                assert isinstance(state, WaitState)
                if state.on_timeout:
                    self.enter(frame, state.on_timeout)
                else:
                    self.state_error(frame, error("Timeout", waits.timeout_message(state, wait)))
        self.advance()

    def offer_signal(self, signal_id: Any, name: str, payload: Any) -> bool:
        """Deliver a stored signal to the oldest frame waiting for it; False to keep it buffered."""
        if self.deliver_signal(signal_id, name, payload):
            self.advance()
            return True
        return False

    def deliver_signal(self, signal_id: Any, name: str, payload: Any) -> bool:
        """offer_signal without advancing. `signal_id` None: an update of that name wakes the
        wait (core/updates.py), with no inbox item to consume."""
        for frame in self.s["frames"].values():
            wait = frame.get("wait")
            if (
                frame["status"] == "waiting"
                and wait
                and wait["kind"] == "signal"
                and waits.wants(wait, name)
            ):
                if signal_id is not None:
                    self.commands.append(Command("consume_signal", {"id": signal_id}))
                self.emit(
                    "SignalReceived",
                    frame["state"],
                    payload={"signal": name, "payload": payload, "frame": frame["id"]},
                )
                if wait.get("timer"):
                    self.s["timers"].pop(wait["timer"], None)
                frame["status"] = "ready"
                frame["wait"] = None
                self.complete_state(frame, waits.signal_result(wait, name, payload))
                return True
        return False

    def callback_input(self, item_id: Any, task_id: str, body: Any) -> None:
        """A completion, failure or heartbeat sent with a callback token (core/callbacks.py)."""
        callbacks.apply(self, self, item_id, task_id, body)
        self.advance()

    def child_started(self, child_id: str) -> None:
        """The worker created a detached child's run (see fanout.child_started)."""
        fanout.child_started(self, self, child_id)
        self.advance()

    def child_finished(self, child_id: str, status: str, output: Any, err: Any) -> None:
        fanout.detached_ended(self, child_id)
        frame_id = self.s["children"].pop(child_id, None)
        frame = self.s["frames"].get(frame_id) if frame_id else None
        if frame is None:
            return
        frame["status"] = "ready"
        frame["wait"] = None
        if status == "completed":
            self.emit(
                "ChildCompleted", frame["state"], payload={"child": child_id, "output": output}
            )
            self.complete_state(frame, output)
        else:
            self.emit(
                "ChildFailed",
                frame["state"],
                payload={"child": child_id, "status": status, "error": err},
            )
            what = (
                f"child run {child_id} could not be started: {err['message']}"
                if status == NOT_STARTED
                else f"child run {child_id} ended {status}"
            )
            self.state_error(
                frame,
                error("ChildFailed", what, {"child": child_id, "status": status, "error": err}),
            )
        self.advance()

    def cancel(self, reason: str = "cancel requested") -> None:
        if self.s["status"] != "running" or self.s.get("cancelling"):
            return
        if exits.exiting(self.s):
            # The outcome is known: the handlers finish, and a cancel cannot change it.
            self.s["cancelling"] = True
            self.emit("CancelRequested", payload={"reason": reason, "ignored": "run is exiting"})
            return
        self.s["cancelling"] = True
        comp = self.s["compensation"]
        if comp is not None and comp["reason"] == "failed":
            # Already ending: its compensations go on, and the failure stays the outcome.
            self.emit("CancelRequested", payload={"reason": reason, "ignored": "run is failing"})
            return
        self.emit("CancelRequested", payload={"reason": reason})
        saga.drop_everything(self)
        saga.begin_compensation(self, self, "cancelled", error("Cancelled", reason))

    def release_held(self) -> None:
        """`tideflow compensate` on a run that failed with its compensations held (saga.py)."""
        saga.release_held(self, self)
        self.advance()

    def next_wakeup(self, can_run: Callable[[str], bool] | None = None) -> float | None:
        if any(f["status"] == "ready" for f in self.s["frames"].values()):
            return self.now  # a new segment's first state waits to run (see segments.py)
        times = [t["due"] for t in self.s["timers"].values()] + callbacks.wakeups(self)
        times += [
            t["due"]
            for t in self.s["tasks"].values()
            if t["status"] in ("ready", "backoff") and (can_run is None or can_run(t["activity"]))
        ]
        return min(times) if times else None

    # ----------------------------------------------------------------- frames and states
    # ----------------------------------------------------------------- states
    def _run_state(self, frame: dict[str, Any]) -> None:
        state = self.state(frame)
        try:
            self._dispatch(frame, state)
        except ExpressionError as exc:
            self.state_error(frame, error(exc.kind, exc.message, _details(exc)))

    def _dispatch(self, frame: dict[str, Any], state: AnyState) -> None:
        if isinstance(state, ActivityState):
            self._schedule_step(frame, state)
        elif isinstance(state, ChoiceState):
            for choice in state.choices:
                if self.eval(frame, choice.when, "when") is True:
                    self.enter(frame, choice.next)
                    return
            if state.default is None:
                self.state_error(
                    frame,
                    error(
                        "NoChoiceMatched",
                        f"no choice of {frame['state']!r} matched and it has no default",
                    ),
                )
            else:
                self.enter(frame, state.default)
        elif isinstance(state, SetState):
            values = self.eval(frame, state.vars, "vars")
            frame["vars"] = var_paths.assign_all(frame["vars"], values, frame["state"])
            self.complete_state(frame, NO_RESULT)
        elif isinstance(state, SleepState):
            waits.start_sleep(self, frame, state)
        elif isinstance(state, WaitState):
            waits.start_wait(self, frame, state)
        elif isinstance(state, ParallelState):
            fanout.start_parallel(self, self, frame, state)
        elif isinstance(state, MapState):
            fanout.start_map(self, self, frame, state)
        elif isinstance(state, ChildState):
            fanout.start_child(self, self, frame, state)
        elif isinstance(state, CompensateState):
            frame["status"] = "waiting"
            frame["wait"] = {"kind": "compensation"}
            saga.begin_compensation(self, self, "state", None, frame["id"])
        elif isinstance(state, SucceedState):
            if state.output is not None:
                self._frame_done(frame, self.eval(frame, state.output, "output"))
            else:
                self._frame_done(frame, self._fallback_output(frame))
        elif isinstance(state, ContinueAsNewState):
            segments.continue_as_new(self, self, frame, state, self.start)
        elif isinstance(state, FailState):
            self.frame_failed(frame, failure_of(self, frame, state))

    def _schedule_step(self, frame: dict[str, Any], state: ActivityState) -> None:
        input_ = self.eval(frame, state.input, "input")
        task = self.new_task(
            kind="step",
            frame=frame,
            state_name=frame["state"],
            activity=state.activity,
            input_=input_,
            retry=timing.retry_policy(self, frame, state.retry),
            timeouts=timing.timeouts(self, frame, state.timeout),
            key=self.idempotency_key(frame),
        )
        if state.completion == callbacks.CALLBACK:
            task["completion"] = callbacks.CALLBACK
        frame["status"] = "waiting"
        frame["wait"] = {"kind": "task", "task": task["id"]}
        self.emit(
            "ActivityScheduled",
            frame["state"],
            1,
            {
                "task": task["id"],
                "activity": state.activity,
                "input": input_,
                "idempotency_key": task["key"],
            },
        )

    def complete_state(self, frame: dict[str, Any], result: Any) -> None:
        """The current state finished with `result` (or NO_RESULT): store it, record the
        compensation, then follow next/end."""
        state = self.state(frame)
        if result is not NO_RESULT:
            name = getattr(state, "result", None)
            if name:
                try:
                    frame["vars"] = var_paths.assign(frame["vars"], name, result)
                except var_paths.VarPathError as exc:
                    self.state_error(
                        frame,
                        error(
                            "ExpressionError", f"state {frame['state']!r}, result: {exc.message}"
                        ),
                    )
                    return
            frame["last"], frame["has_last"] = result, True
        comp: Compensation | None = getattr(state, "compensate", None)
        if comp is not None:
            try:
                comp_input = self.eval(frame, comp.input, "compensate input")
                comp_retry = timing.retry_policy(self, frame, comp.retry)
                comp_timeouts = timing.timeouts(self, frame, comp.timeout)
            except ExpressionError as exc:
                self.state_error(frame, error(exc.kind, exc.message, _details(exc)))
                return
            self.s["comp_stack"].append(
                {
                    "activity": comp.activity,
                    "input": comp_input,
                    "state": frame["state"],
                    "key": self.idempotency_key(frame) + "-c",
                    "retry": comp_retry.to_json(),
                    "timeouts": comp_timeouts,
                }
            )
        nxt = getattr(state, "next", None)
        if nxt:
            self.enter(frame, nxt)
        else:
            self._frame_done(frame, self._fallback_output(frame))

    def _fallback_output(self, frame: dict[str, Any]) -> Any:
        if (
            frame["parent"] is None
            and not frame.get("exit")
            and self.defn.workflow.output is not None
        ):
            return self.eval(frame, self.defn.workflow.output, "output")
        return frame["last"] if frame["has_last"] else frame["vars"]

    def state_error(self, frame: dict[str, Any], err: dict[str, Any]) -> None:
        state = self.state(frame)
        for catcher in getattr(state, "catch", None) or []:
            if "*" in catcher.errors or err["type"] in catcher.errors:
                self.emit(
                    "ErrorCaught", frame["state"], payload={"error": err, "next": catcher.next}
                )
                if catcher.result:
                    try:
                        frame["vars"] = var_paths.assign(frame["vars"], catcher.result, err)
                    except var_paths.VarPathError as exc:
                        where = f"state {frame['state']!r}, catch result"
                        self.frame_failed(
                            frame, error("ExpressionError", f"{where}: {exc.message}")
                        )
                        return
                self.enter(frame, catcher.next)
                return
        self.frame_failed(frame, err)

    def _frame_done(self, frame: dict[str, Any], output: Any) -> None:
        frame["status"] = "done"
        frame["wait"] = None
        if frame.get("exit"):
            self._end_handler(frame, output, None)
            return
        if frame["parent"] is None:
            saga.finish_run(self, "completed", output, None)
            return
        fanout.branch_done(self, self, frame, output)

    def frame_failed(self, frame: dict[str, Any], err: dict[str, Any]) -> None:
        if frame.get("exit"):
            self._end_handler(frame, None, err)
            return
        if frame["parent"] is None:
            saga.fail_run(self, self, err)
            return
        fanout.branch_failed(self, self, frame, err)

    def _end_handler(self, frame: dict[str, Any], output: Any, err: dict[str, Any] | None) -> None:
        """An exit handler's frame ended: drop what it left, then the next handler or the end."""
        saga.drop_frames_under(self, frame["id"])
        saga.drop(self, {frame["id"]})
        outcome = exits.handler_ended(self, frame, output, err)
        if outcome is not None:
            saga.finish_run(self, *outcome)


def _details(exc: ExpressionError) -> Any:
    """The error's details: the field and value of an InvalidValue / InvalidDuration."""
    return getattr(exc, "details", None)
