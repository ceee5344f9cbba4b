"""Durations, timestamps and limits that may be templates.

A literal value is checked by `tideflow validate` (TF210/TF211, TF213, ...) and used as
written. A template is evaluated when its state runs (right after it is entered, in the frame's
context, so `now` is the time the state was entered) and checked then: a value that is not a
duration, is negative, longer than 100 years or not finite fails the state with a catchable
`InvalidDuration`; a timestamp or limit that is not one fails it with `InvalidValue`. Both name
the field and the value. Pure: the bookkeeping's `now` is the only time used.
"""

from __future__ import annotations

import math
from typing import Any

from dsl.durations import MAX_DURATION_SECONDS, DurationError, parse_duration
from dsl.model import RetrySpec, Timeouts
from dsl.template_text import is_template
from dsl.timefuncs import TimeValueError, parse_time
from interpreter.core.bookkeeping import Bookkeeping
from interpreter.core.definition import DEFAULT_MAP_CONCURRENCY, Retry
from interpreter.expressions import InvalidDuration, InvalidValue

RETRY_DURATIONS = ("initial_interval", "max_interval")
TIMEOUT_DURATIONS = ("start_to_close", "schedule_to_close", "heartbeat")


def templated(value: Any) -> bool:
    return isinstance(value, str) and is_template(value)


def _where(frame: dict[str, Any] | None, field: str) -> str:
    state = frame.get("state") if frame else None
    return f"state {state!r}, {field}" if state else field


def checked_duration(value: Any, where: str, field: str, *, allow_zero: bool = False) -> float:
    """`value` (what a template gave) as seconds, or InvalidDuration naming field and value."""
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        try:
            seconds = parse_duration(value)
        except DurationError as exc:
            raise InvalidDuration(f"{where}: {exc}", field, value) from None
    else:
        raise InvalidDuration(
            f"{where}: expected a duration such as 30s, 5m or a number of seconds, got {value!r}",
            field,
            value,
        )
    if seconds < 0 or (seconds == 0 and not allow_zero):
        least = "zero or more" if allow_zero else "greater than zero"
        raise InvalidDuration(
            f"{where}: the duration must be {least} (got {value!r})", field, value
        )
    return seconds


def duration(
    run: Bookkeeping,
    frame: dict[str, Any],
    value: Any,
    field: str,
    *,
    allow_zero: bool = False,
) -> float:
    """Seconds of a duration field: a literal as written, a template evaluated and checked."""
    if not templated(value):
        return parse_duration(value)
    return checked_duration(
        run.eval(frame, value, field), _where(frame, field), field, allow_zero=allow_zero
    )


def timestamp(run: Bookkeeping, frame: dict[str, Any], value: Any, field: str) -> float:
    """Epoch seconds of an `until` field (a literal or a template), checked to be a timestamp
    with a time zone no more than 100 years away."""
    got = run.eval(frame, value, field) if templated(value) else value
    where = _where(frame, field)
    try:
        seconds = parse_time(got, None).timestamp()
    except TimeValueError as exc:
        raise InvalidValue(f"{where}: {exc}", field, got) from None
    if abs(seconds - run.now) > MAX_DURATION_SECONDS:
        raise InvalidValue(
            f"{where}: {got!r} is more than 100 years away, past what tideflow schedules",
            field,
            got,
        )
    return seconds


def map_concurrency(run: Bookkeeping, frame: dict[str, Any], value: Any) -> int:
    """A map's concurrency: the default, a literal, or a template giving a whole number >= 1."""
    if value is None:
        return DEFAULT_MAP_CONCURRENCY
    if isinstance(value, int) and not isinstance(value, bool):
        return value  # a literal: the model checked it is at least 1
    got = run.eval(frame, value, "concurrency")  # a text that is no template is TF251
    number = got
    if isinstance(got, str) and got.strip().isdigit():
        number = int(got.strip())
    elif isinstance(got, float) and math.isfinite(got) and got.is_integer():
        number = int(got)
    if isinstance(number, bool) or not isinstance(number, int) or not 1 <= number <= 1_000_000:
        raise InvalidValue(
            f"{_where(frame, 'concurrency')}: expected a whole number from 1 to 1,000,000, "
            f"got {got!r}",
            "concurrency",
            got,
        )
    return number


def _evaluated(
    run: Bookkeeping, frame: dict[str, Any], block: Any, keys: tuple[str, ...], section: str
) -> Any:
    """`block` (a RetryPolicy or Timeouts, a list of retry policies, or None) with its templated
    durations evaluated."""
    if block is None:
        return None
    if isinstance(block, list):  # retry policies by error: each at its index
        return [
            _evaluated(run, frame, item, keys, f"{section}[{index}]")
            for index, item in enumerate(block)
        ]
    update = {
        key: duration(run, frame, getattr(block, key), f"{section}.{key}")
        for key in keys
        if templated(getattr(block, key))
    }
    return block.model_copy(update=update) if update else block


def _any_templated(blocks: tuple[Any, ...], keys: tuple[str, ...]) -> bool:
    flat = [item for b in blocks for item in (b if isinstance(b, list) else [b])]
    return any(b is not None and templated(getattr(b, k)) for b in flat for k in keys)


def retry_policy(run: Bookkeeping, frame: dict[str, Any], policy: RetrySpec | None) -> Retry:
    """The retry policies of a step or compensation, with templated intervals evaluated."""
    defaults = run.defn.workflow.defaults
    base = defaults.retry if defaults else None
    if not run.defn.templated(
        policy, base, RETRY_DURATIONS, lambda: _any_templated((policy, base), RETRY_DURATIONS)
    ):
        return run.defn.retry_for(policy)  # literal: resolved once per definition
    return run.defn.resolve_retry(
        _evaluated(run, frame, policy, RETRY_DURATIONS, "retry"),
        _evaluated(run, frame, base, RETRY_DURATIONS, "defaults.retry"),
    )


def timeouts(
    run: Bookkeeping, frame: dict[str, Any], block: Timeouts | None
) -> dict[str, float | None]:
    """The timeouts of a step or compensation in seconds, with templated ones evaluated."""
    defaults = run.defn.workflow.defaults
    base = defaults.timeout if defaults else None
    if not run.defn.templated(
        block, base, TIMEOUT_DURATIONS, lambda: _any_templated((block, base), TIMEOUT_DURATIONS)
    ):
        return run.defn.timeouts_for(block)
    return run.defn.resolve_timeouts(
        _evaluated(run, frame, block, TIMEOUT_DURATIONS, "timeout"),
        _evaluated(run, frame, base, TIMEOUT_DURATIONS, "defaults.timeout"),
    )
