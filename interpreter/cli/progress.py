"""Progress lines on stderr while a run executes in the foreground (only on a terminal): the
first state, the steps as they happen, a countdown while a timer or a retry wait runs, and the
total time at the end."""

from __future__ import annotations

import json
import sys
import time
from typing import TYPE_CHECKING, Any

from interpreter.cli._ux import duration

if TYPE_CHECKING:
    from interpreter.core.records import Event
    from interpreter.store import RunRecord

_SHOWN = {
    "StateEntered",
    "RetryScheduled",
    "TimerStarted",
    "ActivityFailed",
    "CompensationStarted",
    "CompensationFailed",
    "ChildStarted",
    "SignalReceived",
    "ErrorCaught",
    "ExitHandlerStarted",
    "ExitHandlerFailed",
    "ContinuedAsNew",
}


class Progress:
    def __init__(self, enabled: bool) -> None:
        import threading  # not part of every command's start-up

        self.enabled = enabled
        self._lock = threading.Lock()
        self._waiting: tuple[str, float] | None = None  # (what, until) of the countdown
        self._ticker: Any = None  # the countdown's thread, started on the first wait
        self._countdown_shown = False

    def begin(self, run: RunRecord) -> None:
        """The run's first state(s), which were entered when it was created."""
        if not self.enabled:
            return
        frames = run.state.get("frames", {}).values()
        states = sorted({f["state"] for f in frames if f.get("state")})
        print(f"  {run.id} started at {', '.join(states) or '-'}", file=sys.stderr)

    def __call__(self, run: RunRecord, events: list[Event]) -> None:
        if not self.enabled:
            return
        with self._lock:
            self._clear_countdown()
            for event in events:
                if event.type not in _SHOWN:
                    continue
                detail = ""
                p = event.payload
                if event.type == "RetryScheduled":
                    delay = float(p.get("delay", 0))
                    detail = f" attempt {event.attempt} in {delay:g}s"
                    self._count_down(f"retry of {event.state}", delay)
                elif event.type == "TimerStarted":
                    delay = float(p.get("delay", 0))
                    detail = f" {p.get('kind')} {delay:g}s"
                    self._count_down(f"{p.get('kind')} in {event.state}", delay)
                elif event.type in ("ActivityFailed", "CompensationFailed", "ExitHandlerFailed"):
                    err = p.get("error") or {}
                    detail = f" {err.get('type')}: {err.get('message')}"
                if event.type.startswith("ExitHandler"):
                    detail = f" {p.get('handler')}{detail}"
                print(f"  {run.id} {event.type:<20} {event.state or ''}{detail}", file=sys.stderr)

    def _count_down(self, what: str, delay: float) -> None:
        if delay < 1:
            return
        self._waiting = (what, time.monotonic() + delay)
        if self._ticker is None:
            import threading

            self._ticker = threading.Thread(target=self._tick, daemon=True)
            self._ticker.start()

    def _tick(self) -> None:
        while True:
            time.sleep(0.5)
            with self._lock:
                if self._waiting is None:
                    continue
                what, until = self._waiting
                left = until - time.monotonic()
                if left <= 0:
                    self._clear_countdown()
                    continue
                sys.stderr.write(f"\r  waiting: {what}, {duration(left)} left   ")
                sys.stderr.flush()
                self._countdown_shown = True

    def _clear_countdown(self) -> None:
        self._waiting = None
        if self._countdown_shown:
            sys.stderr.write("\r\x1b[2K")
            self._countdown_shown = False

    def summary(self, result: dict[str, Any], took: float | None = None) -> None:
        with self._lock:
            self._clear_countdown()
        after = f" in {duration(took)}" if took is not None else ""
        print(f"run {result['run_id']} {result['status']}{after}")
        if result["error"]:
            err = result["error"]
            print(f"error: {err.get('type')}: {err.get('message')}")
        if result["output"] is not None:
            print(json.dumps(result["output"], indent=2, ensure_ascii=False))
