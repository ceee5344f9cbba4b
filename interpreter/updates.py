"""Client.update: check an update, store it once under its id, wait for its outcome.

The checks that need no run state (the update is declared, the payload is JSON data and meets
the update's schema, the id is acceptable) happen here, before anything is stored. The
validator, which reads the run's vars, is decided by the worker through the pure core
(interpreter/core/updates.py); its outcome is committed with the step that made it, and read
back here. Retrying with the same update id returns the same outcome and never applies twice.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import TYPE_CHECKING, Any

from interpreter import clock
from interpreter.core.records import run_id_problem
from interpreter.core.statuses import TERMINAL_STATUSES
from interpreter.errors import (
    InputInvalid,
    RunFinished,
    UpdateRejected,
    UpdateTimeout,
)
from interpreter.store.base import RunRecord, Store, UpdateRecord

if TYPE_CHECKING:
    from interpreter.core.definition import Definition

# How often the caller looks at the update while it waits: every FIRST_POLL seconds for the
# first FAST_FOR seconds (a worker applies an update within tens of milliseconds; each look is
# one or two primary-key reads), then less and less often, up to LAST_POLL.
FIRST_POLL = 0.003
FAST_FOR = 2.0
LAST_POLL = 0.1
RUN_CHECK = 0.05  # how often it also reads the run (is it still running?)


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def check_update(defn: Definition, record: RunRecord, name: str, payload: Any) -> None:
    """InputInvalid unless the workflow declares update `name` and `payload` fits it."""
    from interpreter.client import check_against_schema, check_json_data

    declared = defn.workflow.updates or {}
    if name not in declared:
        raise InputInvalid(
            f"workflow {record.workflow!r} declares no update {name!r}",
            hint=f"declared updates: {', '.join(sorted(declared)) or 'none'}",
        )
    what = f"the payload of update {name!r}"
    check_json_data(payload, what)
    check_against_schema(declared[name].schema_, payload, what)


def submit(
    store: Store, record: RunRecord, name: str, payload: Any, update_id: str | None
) -> UpdateRecord:
    """Store the update (or find the one already stored under `update_id`)."""
    if update_id is not None:
        problem = run_id_problem(update_id)
        if problem:
            raise InputInvalid(
                problem.replace("run id", "update id"),
                hint="an update id is 1 to 200 characters of text",
            )
    update_id = update_id or uuid.uuid4().hex
    stored, created = store.add_update(record.id, update_id, name, payload, clock.wall())
    if not created and (stored.name != name or _canonical(stored.payload) != _canonical(payload)):
        raise InputInvalid(
            f"update id {update_id!r} of run {record.id!r} was already used for "
            + (f"update {stored.name!r}" if stored.name != name else "another payload"),
            hint="give a new update id (or none); the same id is for retrying the same update",
        )
    return stored


def outcome(update: UpdateRecord) -> Any:
    """The update's value, or UpdateRejected; None while it is pending."""
    if update.status == "rejected":
        raise UpdateRejected(
            update.message or f"update {update.name!r} was rejected",
            hint="the run is unchanged; fix the payload (or the run's state) and send it again",
        )
    return update.result


def wait_for(store: Store, update: UpdateRecord, timeout: float | None) -> Any:
    """Wait until the run applied or rejected `update`; return its value."""
    wait = UpdateWait(store, update, timeout)
    while True:
        done, value = wait.look()
        if done:
            return value
        time.sleep(wait.pause())


class UpdateWait:
    """The logic of waiting for an update's outcome, written once for Client.update (which
    sleeps between looks) and AsyncClient.update (which awaits a store change between looks,
    and makes each look in a thread): a round is `look()` (reads the store) and, while the
    update is pending, `pause()` (the seconds until the next look; UpdateTimeout once the
    deadline passed). The run itself is read every `run_check` seconds; the pause starts at
    `first_poll` and, after FAST_FOR seconds, grows to `last_poll`."""

    def __init__(
        self,
        store: Store,
        update: UpdateRecord,
        timeout: float | None,
        *,
        run_check: float = RUN_CHECK,
        first_poll: float = FIRST_POLL,
        last_poll: float = LAST_POLL,
        began: float | None = None,
    ) -> None:
        self.store = store
        self.update = update
        self.timeout = timeout
        self.run_check = run_check
        self.poll = first_poll
        self.last_poll = last_poll
        self.began = clock.monotonic() if began is None else began
        self.deadline = None if timeout is None else self.began + timeout
        self.next_run_check = self.began

    def look(self) -> tuple[bool, Any]:
        """`settled`, reading the run too when its turn has come."""
        check_run = clock.monotonic() >= self.next_run_check
        if check_run:
            self.next_run_check = clock.monotonic() + self.run_check
        return settled(self.store, self.update, check_run)

    def pause(self) -> float:
        """How long to wait before the next look; UpdateTimeout once the deadline passed."""
        now = clock.monotonic()
        if self.deadline is not None and now >= self.deadline:
            raise timed_out(self.update, self.timeout)
        pause = self.poll
        if now - self.began > FAST_FOR:
            self.poll = min(self.last_poll, self.poll * 1.5)
        return pause if self.deadline is None else min(pause, self.deadline - now)


def settled(store: Store, update: UpdateRecord, check_run: bool) -> tuple[bool, Any]:
    """(True, value) once the update was applied (UpdateRejected when rejected); (False, None)
    while it is pending. With `check_run`, also the run's status: an update still pending
    after its run was seen ended can never be applied (its steps stop with it): RunFinished."""
    if update.status != "pending":
        return True, outcome(update)
    current = store.get_update(update.run_id, update.id)
    if current is not None and current.status != "pending":
        return True, outcome(current)
    if not check_run:
        return False, None
    run = store.get_run(update.run_id)
    if run is not None and run.status not in TERMINAL_STATUSES:
        return False, None
    current = store.get_update(update.run_id, update.id)
    if current is not None and current.status != "pending":
        return True, outcome(current)
    status = "deleted" if run is None else run.status
    raise RunFinished(
        f"run {update.run_id!r} ended ({status}) before it applied update "
        f"{update.name!r} (id {update.id!r})",
        hint="the update was not applied; an update needs a running run",
    )


def timed_out(update: UpdateRecord, timeout: float | None) -> UpdateTimeout:
    return UpdateTimeout(
        f"update {update.name!r} (id {update.id!r}) of run {update.run_id!r} was not "
        f"applied within {timeout or 0:g}s",
        hint="is a worker running (`tideflow worker`)? The update stays stored: call "
        f"again with --id {update.id} (Client.update: update_id=) to wait for the same update",
    )
