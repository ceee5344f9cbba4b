"""Date and time helpers for templates: pure functions of their arguments, never the wall clock.

A time in a template is an ISO 8601 / RFC 3339 text with a time zone (`2026-12-02T09:30:00Z`,
`2026-12-02T10:30:00+01:00`); a date alone (`2026-12-02`) means its midnight in UTC. The engine
gives templates `now` (the moment the current state was entered, as recorded in the run), so
every helper is deterministic: a resumed run computes exactly what an uninterrupted one did.
Helpers return times as texts (UTC ones end in `Z`) so that results stay JSON data.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dsl.durations import DurationError, parse_duration

# A zone key as the IANA database spells them (Europe/Paris, America/Argentina/Buenos_Aires,
# Etc/GMT+3, UTC); anything else is refused before zoneinfo looks for a file.
_ZONE_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9_+\-]*(?:/[A-Za-z0-9_+\-]+){0,3}$")
MAX_FORMAT_LENGTH = 200
# strftime directives that give the same text on every machine (the C library's own, such as
# %s, or the locale's, such as %c, would not; the process keeps the C locale).
_DIRECTIVES = "aAbBdHIjmMpSfzZGuVUwWyY%"
_DIRECTIVE = re.compile(r"%(.?)")
# datetime's own range, with a margin so that adding a duration never overflows.
_MIN_YEAR, _MAX_YEAR = 2, 9998


class TimeValueError(ValueError):
    """A value a time helper cannot use; the message names the helper and the value."""


def parse_time(value: Any, helper: str | None = "to_time") -> datetime:
    """`value` (an ISO 8601 text with a time zone, or a date) as an aware datetime. Errors
    start with `helper: ` when a helper name is given."""
    at = f"{helper}: " if helper else ""
    if not isinstance(value, str):
        raise TimeValueError(
            f"{at}expected an RFC 3339 timestamp text, got {type(value).__name__} {value!r}"
        )
    text = value.strip()
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise TimeValueError(
            f"{at}{value!r} is not an RFC 3339 timestamp (e.g. 2026-12-02T09:30:00Z)"
        ) from None
    if parsed.tzinfo is None:
        if len(text) == 10:  # a date alone: its midnight in UTC
            return parsed.replace(tzinfo=UTC)
        raise TimeValueError(f"{at}{value!r} has no time zone (add Z or +00:00)")
    if not _MIN_YEAR <= parsed.year <= _MAX_YEAR:
        raise TimeValueError(f"{at}{value!r} is outside the years {_MIN_YEAR}-{_MAX_YEAR}")
    return parsed


def format_iso(moment: datetime) -> str:
    """The text form every helper returns: ISO 8601, `Z` for UTC."""
    text = moment.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def zone(name: Any, helper: str) -> tzinfo:
    if not isinstance(name, str) or len(name) > 64 or not _ZONE_KEY.match(name):
        raise TimeValueError(
            f"{helper}: {name!r} is not a time zone name (use e.g. UTC or Europe/Paris)"
        )
    if name.upper() == "UTC":
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise TimeValueError(
            f"{helper}: unknown time zone {name!r} (use an IANA name such as Europe/Paris)"
        ) from None


def _seconds(value: Any, helper: str) -> float:
    """A duration (30s, 1h30m, PT5M, a number of seconds); a leading minus makes it negative."""
    sign = 1.0
    if isinstance(value, str) and value.strip().startswith("-"):
        sign, value = -1.0, value.strip()[1:]
    try:
        return sign * parse_duration(value)
    except DurationError as exc:
        raise TimeValueError(f"{helper}: {exc}") from None


def _shifted(moment: datetime, seconds: float, helper: str) -> str:
    try:
        result = moment + timedelta(seconds=seconds)
    except OverflowError:
        raise TimeValueError(f"{helper}: the result is outside the calendar") from None
    if not _MIN_YEAR <= result.year <= _MAX_YEAR:
        raise TimeValueError(f"{helper}: the result is outside the years {_MIN_YEAR}-{_MAX_YEAR}")
    return format_iso(result)


def to_time(value: Any, tz: Any = None) -> str:
    """The timestamp normalised (UTC, ending in Z), or in the zone `tz` when given."""
    moment = parse_time(value, "to_time")
    return format_iso(moment.astimezone(UTC if tz is None else zone(tz, "to_time")))


def add_duration(value: Any, duration: Any) -> str:
    """`value` plus `duration` (negative durations, e.g. '-1h', go back)."""
    return _shifted(
        parse_time(value, "add_duration"), _seconds(duration, "add_duration"), "add_duration"
    )


def subtract_duration(value: Any, duration: Any) -> str:
    """`value` minus `duration`."""
    helper = "subtract_duration"
    return _shifted(parse_time(value, helper), -_seconds(duration, helper), helper)


def time_diff(value: Any, other: Any) -> float:
    """Seconds from `other` to `value` (positive when `value` is later)."""
    delta = parse_time(value, "time_diff") - parse_time(other, "time_diff")
    return delta.total_seconds()


def time_before(value: Any, other: Any) -> bool:
    return parse_time(value, "time_before") < parse_time(other, "time_before")


def time_after(value: Any, other: Any) -> bool:
    return parse_time(value, "time_after") > parse_time(other, "time_after")


def format_time(value: Any, fmt: Any = "%Y-%m-%dT%H:%M:%SZ", tz: Any = "UTC") -> str:
    """strftime-style text of `value` in the zone `tz` (default UTC)."""
    if not isinstance(fmt, str) or len(fmt) > MAX_FORMAT_LENGTH:
        raise TimeValueError(
            f"format_time: the format must be a text of at most {MAX_FORMAT_LENGTH} characters"
        )
    bad = next((d for d in _DIRECTIVE.findall(fmt) if not d or d not in _DIRECTIVES), None)
    if bad == "":
        raise TimeValueError("format_time: a % ends the format (write %% for a percent sign)")
    if bad is not None:
        raise TimeValueError(
            f"format_time: %{bad} is not allowed (it depends on the machine); use "
            + " ".join(f"%{d}" for d in _DIRECTIVES)
        )
    moment = parse_time(value, "format_time").astimezone(zone(tz, "format_time"))
    return moment.strftime(fmt)


def start_of_day(value: Any, tz: Any = "UTC") -> str:
    """Midnight of the day `value` falls on in the zone `tz`, with that zone's offset."""
    where = zone(tz, "start_of_day")
    local = parse_time(value, "start_of_day").astimezone(where)
    return format_iso(datetime(local.year, local.month, local.day, tzinfo=where))


def start_of_month(value: Any, tz: Any = "UTC") -> str:
    """Midnight of the first day of the month `value` falls in, in the zone `tz`."""
    where = zone(tz, "start_of_month")
    local = parse_time(value, "start_of_month").astimezone(where)
    return format_iso(datetime(local.year, local.month, 1, tzinfo=where))


# The template filters, by name (`{{ now | add_duration('1h') }}`); docs/dsl.md lists them.
FILTERS: dict[str, Callable[..., Any]] = {
    "to_time": to_time,
    "add_duration": add_duration,
    "subtract_duration": subtract_duration,
    "time_diff": time_diff,
    "time_before": time_before,
    "time_after": time_after,
    "format_time": format_time,
    "start_of_day": start_of_day,
    "start_of_month": start_of_month,
}
