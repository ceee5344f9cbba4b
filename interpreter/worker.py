"""The worker: the only place that does I/O for runs.

It claims due runs from the store under a lease, drives each one (engine decisions, activity
attempts, timers, signals, children) and writes every step as one fenced transaction. A run it
only waits on for a long time (a far timer, a signal) is released, so one worker can keep
thousands of sleeping runs without holding them.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from interpreter import clock, collector, step_commit
from interpreter.activities.context import ActivityContext
from interpreter.callbacks import CallbackTokens
from interpreter.capped_waits import CappedWaits
from interpreter.children import new_child_run
from interpreter.core.definition import Definition
from interpreter.core.engine import Engine
from interpreter.core.records import Command, Event
from interpreter.decisions import Decision, DecisionLog, inbox_decision, outcome_decision
from interpreter.errors import StoreDamaged
from interpreter.executor import ActivityRunner, Outcome
from interpreter.expressions import NeedsMoreTime, full_budget, inline_budget
from interpreter.group_commit import GroupCommit
from interpreter.map_rows import MapRowTracker
from interpreter.store.base import LeaseLost, RunRecord, Store
from interpreter.store.leases import new_owner_id
from interpreter.store.writes import NewRun
from interpreter.wake_flag import WakeFlag, settle

# A run is kept (not released) while its next timer is at most this far away.
HOLD_SECONDS = 2.0
LEASE_SECONDS = 15.0
DRIVER_RETRY_SECONDS = 5.0
# With a store that notifies (PostgreSQL LISTEN), the poll is only a fallback.
IDLE_POLL_SECONDS = 1.0
# Notifications a worker cannot act on: a run's end (its parent hears of it by its inbox).
NOTHING_TO_DO = frozenset({"end"})

EventSink = Callable[[RunRecord, list[Event]], None]
_STOPPED_AGAIN = "(stopped a second time)"


class Worker:
    def __init__(
        self,
        store: Store,
        *,
        concurrency: int = 200,
        root_id: str | None = None,
        poll_interval: float = 0.05,
        lease_seconds: float = LEASE_SECONDS,
        workflow_dirs: tuple[Path, ...] = (),
        on_events: EventSink | None = None,
        threads: int = 64,
        activities: frozenset[str] | set[str] | None = None,
    ) -> None:
        self.store = store
        # The activities this worker offers (None: any); it claims only runs it can carry on.
        self.activities = None if activities is None else frozenset(activities)
        self.can_run = None if self.activities is None else self.activities.__contains__
        self.owner = new_owner_id()
        self.concurrency = concurrency
        self.root_id = root_id
        self.poll_interval = poll_interval
        self.lease_seconds = lease_seconds
        self.workflow_dirs = workflow_dirs
        self.on_events = on_events
        self.runner = ActivityRunner(threads)
        # Decisions whose templates need more than the inline budget, one at a time (see
        # interpreter/decisions.py).
        self.slow_decisions = asyncio.Semaphore(1)
        self.commits = GroupCommit(store, alone=lambda: len(self._drivers) <= 1)
        self.capped_waits = CappedWaits()
        self._definitions: dict[str, Definition] = {}
        self._drivers: dict[str, _RunDriver] = {}
        self._stopping = asyncio.Event()
        # Set by a second stop(): give up the attempts still running without waiting the grace.
        self._stop_now = asyncio.Event()
        # Set when a driver ends (its run finished or was released) or the store notifies new
        # work: look for work at once.
        self._look_for_work = WakeFlag()
        self.steps = 0
        # Whoever adds work calls notify() (tests on virtual time): poll only for timers.
        self.timers_only = False
        self.idle_poll = IDLE_POLL_SECONDS
        self.step_wait = 0.5  # a driver's longest wait while attempts run
        # Set when a run's driver met an error that makes going on unsafe (StoreDamaged):
        # run() stops and raises it.
        self.fatal: StoreDamaged | None = None

    # ----------------------------------------------------------------- public
    def definition(self, def_hash: str) -> Definition:
        defn = self._definitions.get(def_hash)
        if defn is None:
            source, file = self.store.load_definition(def_hash)
            defn = Definition.from_source(source, file)
            self._definitions[def_hash] = defn
        return defn

    def is_driving(self, run_id: str) -> bool:
        """This worker holds the run right now (so it is still running)."""
        return run_id in self._drivers

    def has_drivers(self) -> bool:
        return bool(self._drivers)

    def notify(self) -> None:
        """New work or a signal for a run this worker may hold: look at once."""
        self._look_for_work.set()

    def stop(self) -> None:
        """Stop claiming runs and let running attempts finish within the grace; called a second
        time (a second SIGINT/SIGTERM), abandon them at once."""
        if self._stopping.is_set():
            self._stop_now.set()
        self._stopping.set()
        self._look_for_work.set()

    async def run(self, until: Callable[[], bool] | None = None, grace: float = 10.0) -> None:
        """Claim and drive runs until `until()` is true or stop() is called."""
        tasks: set[asyncio.Task[None]] = set()
        last_renew = clock.monotonic()
        loop = asyncio.get_running_loop()
        subscribe = getattr(self.store, "subscribe", None)
        unsubscribe = (
            subscribe(
                lambda: loop.call_soon_threadsafe(self._look_for_work.set), ignore=NOTHING_TO_DO
            )
            if subscribe is not None
            else None
        )
        pace = contextlib.ExitStack()  # the collector's pace while this worker runs
        pace.enter_context(collector.worker_pace())
        try:
            while not self._stopping.is_set() and not (until and until()):
                now = clock.wall()
                held = len(self._drivers)  # runs held before this round's claim
                free = self.concurrency - held
                due = None
                if free > 0:
                    due = self.store.next_due(self.root_id, self.owner, activities=self.activities)
                    if due is not None and due <= now:
                        for record in self.store.claim(
                            self.owner,
                            self.lease_seconds,
                            now,
                            root_id=self.root_id,
                            limit=free,
                            activities=self.activities,
                        ):
                            driver = _RunDriver(self, record)
                            self._drivers[record.id] = driver
                            task = asyncio.create_task(driver.drive())
                            tasks.add(task)
                            task.add_done_callback(tasks.discard)
                # Runs claimed just now have their attention cleared by the claim, and their
                # drivers read the inbox first: only runs held before need the look.
                if held:
                    for run_id in self.store.needs_attention(self.owner):
                        woken = self._drivers.get(run_id)
                        if woken is not None:
                            woken.wake_up()
                if clock.monotonic() - last_renew > self.lease_seconds / 3:
                    last_renew = clock.monotonic()
                    self._renew_leases()
                wait = self.poll_interval
                if unsubscribe is not None or self.timers_only:  # poll only for timers
                    wait = self.idle_poll if due is None else due - clock.wall()
                    wait = min(self.idle_poll, max(self.poll_interval, wait))
                await self._look_for_work.wait(wait)
                self._look_for_work.clear()
        finally:
            if unsubscribe is not None:
                unsubscribe()
            try:
                await self._shut_down(tasks, grace)
            finally:
                self.runner.close()
                pace.close()
        if self.fatal is not None:
            raise self.fatal

    def _renew_leases(self) -> None:
        """Every held run's lease in one store call: one call per run blocked the loop for a
        round trip each on PostgreSQL (at 200 runs, 1.6 to 4 s every 5 s without a step)."""
        drivers = list(self._drivers.values())
        if not drivers:
            return
        renewed = self.store.renew_leases(
            self.owner,
            [(driver.run.id, driver.run.lease_token) for driver in drivers],
            clock.wall() + self.lease_seconds,
        )
        for driver in drivers:
            if driver.run.id not in renewed:
                driver.lose_lease()

    async def _shut_down(self, tasks: set[asyncio.Task[None]], grace: float) -> None:
        """Let the attempts in flight finish within `grace`, then abandon the rest: their runs
        are released at once and the next worker restarts them (a sync activity's thread cannot
        be stopped; it is a daemon and dies with this process)."""
        for driver in list(self._drivers.values()):
            driver.begin_shutdown()
        deadline = clock.monotonic() + grace
        why = f"after the {grace:g}s grace"
        try:
            while tasks and not self._stop_now.is_set():
                remaining = deadline - clock.monotonic()
                if remaining <= 0:
                    break
                stop_now = asyncio.ensure_future(self._stop_now.wait())
                try:
                    await asyncio.wait(
                        {*tasks, stop_now}, timeout=remaining, return_when=asyncio.FIRST_COMPLETED
                    )
                finally:
                    stop_now.cancel()
        except asyncio.CancelledError:
            # `tideflow run` interrupted again: asyncio.run cancels this task (and the drivers).
            self._abandon(_STOPPED_AGAIN)
            raise
        self._abandon(_STOPPED_AGAIN if self._stop_now.is_set() else why)
        if tasks:  # the drivers release their runs now
            await asyncio.wait(tasks, timeout=5)

    def _abandon(self, why: str) -> None:
        """Give up every attempt still running, with one line that says so."""
        count = sum(driver.abandon() for driver in list(self._drivers.values()))
        if count:
            attempts = "1 activity attempt" if count == 1 else f"{count} activity attempts"
            again = "it" if count == 1 else "they"
            print(
                f"tideflow worker: abandoning {attempts} still running {why}; {again} will run "
                "again on the next worker (same idempotency key)",
                file=sys.stderr,
            )

    # ----------------------------------------------------------------- child runs
    def new_child_run(
        self, parent: RunRecord, parent_defn: Definition, command: Command
    ) -> NewRun | dict[str, Any]:
        """A NewRun for a `start_child` command, or an error dict when it cannot start."""
        made = new_child_run(self.store, parent, parent_defn, command, self.workflow_dirs)
        if isinstance(made, dict):
            return made
        child, definition = made
        self._definitions[definition.hash] = definition  # its driver needs it soon
        return child


def _frame_shape(engine: Engine) -> list[tuple[str, str | None, str]]:
    return [(fid, f["state"], f["status"]) for fid, f in engine.s["frames"].items()]


def _signal_waits(engine: Engine) -> set[tuple[str, str, int]]:
    """(frame, state, visit) of every wait for a signal in progress."""
    return {
        (fid, frame["state"], frame["visits"].get(frame["state"], 0))
        for fid, frame in engine.s["frames"].items()
        if frame["status"] == "waiting" and (frame.get("wait") or {}).get("kind") == "signal"
    }


class _RunDriver:
    """Drives one claimed run until it ends, is released, or the lease is lost."""

    def __init__(self, worker: Worker, record: RunRecord) -> None:
        self.w = worker
        self.run = record
        self.defn: Definition  # loaded in _drive, where a failure is handled
        # Something the driver must look at came (a signal or cancel, lost lease, shutdown):
        # set by wake_up(), which also ends the driver's wait.
        self.woken = False
        self._waiter: asyncio.Future[None] | None = None
        self.running: dict[str, tuple[asyncio.Future[Outcome], ActivityContext]] = {}
        self.stopping = False
        self.paused = False  # `tideflow pause`: start nothing new, hand the run back
        self.lease_lost = False
        self._last_hb: dict[str, float] = {}
        # Heartbeat details not yet written (throttled); flushed when the attempt ends so the
        # next attempt sees the latest details, not the first of the last throttle window.
        self._unsaved_hb: dict[str, Any] = {}
        self._committed_shape: list[tuple[str, str | None, str]] = []
        # The due time this driver last wrote to the run's row (None: not known yet).
        self._row_due: float | None = None
        self.map_rows = MapRowTracker()
        self.callbacks = CallbackTokens()
        self.decisions = DecisionLog(worker.slow_decisions)

    def wake_up(self) -> None:
        self.woken = True
        settle(self._waiter)

    def _attempt_ended(self) -> None:
        """An attempt's outcome is set: end the wait (the loop then collects the outcomes)."""
        settle(self._waiter)

    async def _wait(self, timeout: float) -> None:
        """Until an attempt ends, wake_up() is called or `timeout` passes. One future instead of
        asyncio.wait over a fresh task per round (this runs once per step); the longest wait
        shares the worker's timer (capped_waits.py), a sooner one has a timer of its own."""
        if self.woken or any(future.done() for future, _ in self.running.values()):
            return
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        self._waiter = waiter
        timer = loop.call_later(timeout, settle, waiter) if timeout < self.w.step_wait else None
        if timer is None:
            self.w.capped_waits.add(waiter, self.w.step_wait)
        try:
            await waiter  # an attempt's outcome settles it too (see _launch)
        finally:
            if timer is None:
                self.w.capped_waits.discard(waiter)
            else:
                timer.cancel()
            self._waiter = None

    def lose_lease(self) -> None:
        """The renewal found the run terminated, or taken over after our lease ran out: stop at
        once, so activities in flight see ctx.cancelled instead of running on for nobody."""
        self.lease_lost = True
        self.wake_up()

    def begin_shutdown(self) -> None:
        """Start no more attempts; release the run once none is running."""
        self.stopping = True
        self.wake_up()

    def abandon(self) -> int:
        """Cancel the attempts still running (the run is then released with them marked
        running, so the next owner restarts them); return how many there were. One that has
        just finished is kept: its outcome is committed first."""
        count = 0
        for task_id, (future, ctx) in list(self.running.items()):
            # Cancelled counts as abandoned: on a second Ctrl-C asyncio may cancel the attempt's
            # task before this runs.
            if not future.done() or future.cancelled():
                ctx._request_cancel()
                future.cancel()
                del self.running[task_id]
                count += 1
        self.wake_up()
        return count

    async def drive(self) -> None:
        try:
            await self._drive()
        except LeaseLost:
            self._cancel_running()
        except asyncio.CancelledError:
            # Only asyncio.run's clean-up cancels a driver (`tideflow run` interrupted twice):
            # hand the run over at once rather than after its lease expires.
            self.w._abandon(_STOPPED_AGAIN)
            with contextlib.suppress(Exception):
                self.w.store.release(self.run.id, self.w.owner, self.run.lease_token, clock.wall())
            raise
        except StoreDamaged as exc:  # going on would lose steps: stop the whole worker
            self._cancel_running()
            self.w.fatal = exc
            self.w.stop()
            self.w.stop()  # at once: nothing an attempt in flight does could be recorded
        except Exception as exc:  # a bug or a store failure: keep the worker alive, retry later
            self._cancel_running()
            print(
                f"tideflow worker: run {self.run.id} failed to advance "
                f"({type(exc).__name__}: {exc}); retrying in {DRIVER_RETRY_SECONDS:g}s",
                file=sys.stderr,
            )
            with contextlib.suppress(Exception):
                self.w.store.release(
                    self.run.id,
                    self.w.owner,
                    self.run.lease_token,
                    clock.wall() + DRIVER_RETRY_SECONDS,
                )
        finally:
            if self.w._drivers.get(self.run.id) is self:
                del self.w._drivers[self.run.id]
            self.w._look_for_work.set()

    async def _drive(self) -> None:
        self.defn = self.w.definition(self.run.def_hash)
        state = self.run.state
        rows = self.w.store.load_map_rows(self.run.id) if MapRowTracker.needs_rows(state) else None
        self.map_rows.restore(state, self.run.input, rows)
        self.callbacks.restore(state)
        engine = self._engine()
        self._committed_shape = _frame_shape(engine)
        engine, _ = await self._decide(engine, Engine.restart_interrupted)
        check_inbox = True
        inbox_read_for: set[tuple[str, str, int]] = set()
        while True:
            # A signal that came while no frame waited for it stays buffered: look again as soon
            # as a frame starts a new wait, not only when something new arrives.
            waits = _signal_waits(engine)
            if check_inbox or not waits <= inbox_read_for:
                inbox_read_for = waits
                engine = await self._read_inbox(engine)
                check_inbox = False
            if not self.paused and engine.timers_due():
                engine, _ = await self._decide(engine, Engine.fire_due_timers)
            started: list[dict[str, Any]] = []
            if not (self.stopping or self.paused):
                engine, started = await self._decide(
                    engine, lambda e: e.start_due_tasks(self.w.can_run)
                )
                self.callbacks.issue(started)
            await self._commit(engine)
            for task in started:
                self._launch(task)
            if self.run.status != "running":
                self._cancel_running()
                return
            self._cancel_unwanted()
            next_wake = engine.next_wakeup(self.w.can_run)
            now = clock.wall()
            if not self.running and (
                self.stopping
                or self.paused
                or next_wake is None
                or next_wake - now > HOLD_SECONDS
                or self._needs_other_worker(engine)
            ):
                if not _signal_waits(engine) <= inbox_read_for:
                    continue  # a wait began after the inbox was read: it may hold its signal
                due = engine.next_wakeup()  # tasks for another worker keep the run due
                if any(t["status"] == "running" for t in engine.s["tasks"].values()):
                    due = now  # attempts cut off by a shutdown: the next owner restarts them
                self.w.store.release(self.run.id, self.w.owner, self.run.lease_token, due)
                return
            cap = self.w.step_wait
            timeout = cap if next_wake is None else max(0.0, min(cap, next_wake - now))
            await self._wait(timeout)
            if self.lease_lost:
                raise LeaseLost(self.run.id)
            if self.woken:
                self.woken = False
                check_inbox = True
                self.paused = self.w.store.is_paused(self.run.id)
            engine = self._engine()
            for task_id, (future, _ctx) in list(self.running.items()):
                if future.done():
                    del self.running[task_id]
                    self._flush_heartbeat(task_id)
                    engine, _ = await self._decide(
                        engine, outcome_decision(task_id, future.result())
                    )
                    self.w.steps += 1

    def _needs_other_worker(self, engine: Engine) -> bool:
        """A pending task names an activity this worker does not offer."""
        can_run = self.w.can_run
        return can_run is not None and any(
            t["status"] in ("ready", "backoff") and not can_run(t["activity"])
            for t in engine.s["tasks"].values()
        )

    def _engine(self) -> Engine:
        return Engine(self.defn, self.run.state, clock.wall())

    async def _decide(self, engine: Engine, decision: Decision) -> tuple[Engine, Any]:
        """Apply one input to the engine, off the loop if a template needs long (see
        interpreter/decisions.py)."""
        inline, result = self.decisions.decide(engine, decision)
        if inline:
            return engine, result
        return await self.decisions.redo(self._engine_from_committed)

    def _engine_from_committed(self) -> Engine:
        """An engine on the state as this driver last committed it."""
        record = self.w.store.get_run(self.run.id)
        if record is None:
            raise LeaseLost(self.run.id)
        rows = self.w.store.load_map_rows(self.run.id)
        self.map_rows.restore(record.state, record.input, rows)
        self.run.state = record.state
        return self._engine()

    async def _read_inbox(self, engine: Engine) -> Engine:
        items, cancel = self.w.store.read_inbox(self.run.id)
        if cancel:
            engine, _ = await self._decide(engine, Engine.cancel)
        for item in items:
            engine, _ = await self._decide(
                engine, inbox_decision(item.kind, item.id, item.name, item.payload)
            )
        return engine

    async def _commit(self, engine: Engine) -> None:
        # A wait without a timeout records no event, yet its frame now waits: persist that too
        # (status shows it), but skip idle rounds where nothing changed at all.
        if (
            not engine.events
            and not engine.commands
            and _frame_shape(engine) == self._committed_shape
        ):
            self.decisions.committed()  # nothing to keep: what the store holds is current
            return
        step = await step_commit.prepare(
            engine, self.run, self.map_rows, self.callbacks, self._new_child_run, self._row_due
        )
        events = list(engine.events)
        await self.w.commits.commit(self.run, self.w.owner, step.commit, engine.now)
        if not step.commit.keep_due:
            self._row_due = step.commit.due_at
        self.decisions.committed()
        step.committed()
        self.run.state = engine.s  # the store keeps the split document; the engine the whole one
        self._committed_shape = _frame_shape(engine)
        engine.events.clear()
        engine.commands.clear()
        engine.dropped_tasks.clear()
        if self.w.on_events is not None and events:
            self.w.on_events(self.run, events)

    async def _new_child_run(self, command: Command) -> NewRun | dict[str, Any]:
        """The child run of a `start_child` command. Starting it evaluates the child's `vars`:
        a template there that needs more than the inline budget is evaluated again in a
        thread, one at a time, like a slow decision (the construction has no side effect)."""
        try:
            with inline_budget():
                return self.w.new_child_run(self.run, self.defn, command)
        except NeedsMoreTime:
            pass

        def build() -> NewRun | dict[str, Any]:
            with full_budget():
                return self.w.new_child_run(self.run, self.defn, command)

        async with self.w.slow_decisions:
            return await asyncio.to_thread(build)

    def _launch(self, task: dict[str, Any]) -> None:
        loop = asyncio.get_running_loop()
        task_id = task["id"]
        # Heartbeat details live in the store (written outside the step transactions); only a
        # later or interrupted attempt can have any.
        details = None
        if task["attempt"] > 1 or task.get("interrupted"):
            details = self.w.store.heartbeat_details(self.run.id, task_id)

        def on_heartbeat(value: Any) -> None:
            # A cancelled attempt may still heartbeat after the worker's loop closed: the
            # heartbeat is no longer wanted and must not raise into the activity.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._heartbeat, task_id, value)

        ctx = ActivityContext(
            run_id=self.run.id,
            workflow=self.defn.name,
            state=task["state"],
            attempt=task["attempt"],
            idempotency_key=task["key"],
            heartbeat_details=details,
            on_heartbeat=on_heartbeat,
            callback_token=self.callbacks.token_for(task_id),
        )
        self.running[task_id] = (self.w.runner.start(task, ctx, self._attempt_ended), ctx)

    def _heartbeat(self, task_id: str, details: Any) -> None:
        now = clock.wall()
        if details is None:
            return
        if now - self._last_hb.get(task_id, 0.0) < 1.0 and task_id in self._last_hb:
            self._unsaved_hb[task_id] = details
            return
        self._last_hb[task_id] = now
        self._unsaved_hb.pop(task_id, None)
        with contextlib.suppress(Exception):
            self.w.store.record_heartbeat(self.run.id, task_id, details, now)

    def _flush_heartbeat(self, task_id: str) -> None:
        details = self._unsaved_hb.pop(task_id, None)
        self._last_hb.pop(task_id, None)
        if details is not None:
            with contextlib.suppress(Exception):
                self.w.store.record_heartbeat(self.run.id, task_id, details, clock.wall())

    def _cancel_unwanted(self) -> None:
        """Attempts whose task the engine dropped (sibling failed, run cancelled) see ctx.cancelled."""
        for task_id, (future, ctx) in list(self.running.items()):
            # Gone, or no longer running (a callback completed while its activity still ran).
            task = self.run.state["tasks"].get(task_id)
            if task is None or task["status"] != "running":
                ctx._request_cancel()
                future.cancel()
                del self.running[task_id]

    def _cancel_running(self) -> None:
        for future, ctx in self.running.values():
            ctx._request_cancel()
            future.cancel()
        self.running.clear()
