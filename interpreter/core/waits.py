"""Sleep and wait states: how long or until when, and which signals a wait takes.

A `wait` names one signal (`signal: approve`, its result is the payload) or several
(`signals: [approve, reject]`, its result is `{signal, payload}` so the workflow knows which
came). Each name keeps its own buffer: a signal that no wait takes stays stored, in order,
until a later wait names it. `sleep` and `wait` take a duration (`duration` / `timeout`) or a
point in time (`until`); any of them may be a template, evaluated when the state runs.
"""

from __future__ import annotations

from typing import Any

from dsl.durations import format_duration
from dsl.model import SleepState, WaitState
from interpreter.core import timing
from interpreter.core.bookkeeping import Bookkeeping
from interpreter.core.records import iso


def deadline(run: Bookkeeping, frame: dict[str, Any], until: Any) -> tuple[float, float]:
    """(delay, due) of a timer set for `until`: due exactly then, or now for a time past."""
    due = max(run.now, timing.timestamp(run, frame, until, "until"))
    return due - run.now, due


def start_sleep(run: Bookkeeping, frame: dict[str, Any], state: SleepState) -> None:
    """The frame sleeps for its duration or until its timestamp."""
    due: float | None = None
    if state.until is not None:
        delay, due = deadline(run, frame, state.until)
    else:
        delay = timing.duration(run, frame, state.duration, "duration", allow_zero=True)
    frame["status"] = "waiting"
    frame["wait"] = {"kind": "sleep", "timer": run.start_timer("sleep", frame, delay, due)}


def signal_names(state: WaitState) -> list[str]:
    if state.signals is not None:
        return list(state.signals)
    return [] if state.signal is None else [state.signal]


def start_wait(run: Bookkeeping, frame: dict[str, Any], state: WaitState) -> None:
    """The frame waits for its signals, with a timer when a timeout or until is given (the
    limit is evaluated before anything is recorded, so a bad one fails the state cleanly)."""
    delay: float | None = None
    due: float | None = None
    if state.until is not None:
        delay, due = deadline(run, frame, state.until)
    elif state.timeout is not None:
        delay = timing.duration(run, frame, state.timeout, "timeout", allow_zero=True)
    wait: dict[str, Any] = {"kind": "signal", "signal": state.signal, "timer": None}
    if state.signals is not None:
        wait["signals"] = list(state.signals)
    if timing.templated(state.timeout) or timing.templated(state.until):
        # What the template gave, for the Timeout message (the file holds only the template).
        wait["limit"] = iso(due) if due is not None else format_duration(delay or 0.0)
    frame["status"] = "waiting"
    frame["wait"] = wait
    if delay is not None:
        wait["timer"] = run.start_timer("wait_timeout", frame, delay, due)


def wants(wait: dict[str, Any], name: str) -> bool:
    """Does this waiting frame take the signal `name`?"""
    names = wait.get("signals")
    return name in names if names is not None else wait.get("signal") == name


def signal_result(wait: dict[str, Any], name: str, payload: Any) -> Any:
    """The wait's result: the payload for `signal:`, `{signal, payload}` for `signals:`."""
    if wait.get("signals") is not None:
        return {"signal": name, "payload": payload}
    return payload


def timeout_message(state: WaitState, wait: dict[str, Any] | None) -> str:
    names = signal_names(state)
    limit = (wait or {}).get("limit")
    if state.until is not None:
        when = f"before {limit or state.until}"
    else:
        when = f"within {limit or state.timeout}"
    if len(names) == 1:
        return f"no signal {names[0]!r} {when}"
    return f"none of the signals {', '.join(names)} came {when}"
