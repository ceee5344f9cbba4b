"""`ActivityContext`: what an activity knows about the step it runs for."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from interpreter import clock
from interpreter.jsondata import NotJsonData, check


class ActivityContext:
    """Passed as the first argument to activities that take two parameters.

    `idempotency_key` is the same for every attempt of one step visit, so side effects can be
    made idempotent. `heartbeat_details` holds what the previous attempt last reported.
    `callback_token` (states with `completion: callback`, else None) is the token that
    completes this attempt: send it to whoever answers (`tideflow complete TOKEN`).
    """

    def __init__(
        self,
        *,
        run_id: str,
        workflow: str,
        state: str,
        attempt: int,
        idempotency_key: str,
        heartbeat_details: Any = None,
        on_heartbeat: Callable[[Any], None] | None = None,
        callback_token: str | None = None,
    ) -> None:
        self.run_id = run_id
        self.workflow = workflow
        self.state = state
        self.attempt = attempt
        self.idempotency_key = idempotency_key
        self.heartbeat_details = heartbeat_details
        self.callback_token = callback_token
        self._on_heartbeat = on_heartbeat
        # A flag, not a threading.Event: only ever set (on the worker's loop) and read (by the
        # activity); nobody waits on it, and an Event (a lock and a condition) cost a few
        # microseconds per step.
        self._cancel_requested = False
        self.last_heartbeat = clock.monotonic()
        # What this attempt last reported (a HeartbeatTimeout error carries it).
        self._reported: Any = None

    def heartbeat(self, details: Any = None) -> None:
        """Report progress; keeps a `heartbeat` timeout from firing. Details must be JSON data
        (a ValueError says why not)."""
        if details is not None:
            # Checked here, in the activity's own call: the store writes them later, on the
            # worker's loop, where a failure could only be dropped.
            try:
                check(details)
            except NotJsonData as exc:
                raise ValueError(f"heartbeat details must be JSON data: {exc.reason}") from None
        self.last_heartbeat = clock.monotonic()
        if details is not None:
            self._reported = details
        if self._on_heartbeat is not None:
            self._on_heartbeat(details)

    @property
    def cancelled(self) -> bool:
        """True once the step is no longer wanted (run cancelled, sibling branch failed)."""
        return self._cancel_requested

    def _request_cancel(self) -> None:
        self._cancel_requested = True
