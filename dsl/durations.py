"""Duration parsing: `100ms`, `30s`, `5m`, `2h`, `7d`, `1h30m`, ISO 8601 (`PT1H30M`) or seconds."""

from __future__ import annotations

import math
import re

_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_COMPACT = re.compile(r"^(?:\d+(?:\.\d+)?(?:ms|s|m|h|d|w))+$")
_COMPACT_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_ISO = re.compile(
    r"^P(?:(?P<w>\d+(?:\.\d+)?)W)?(?:(?P<d>\d+(?:\.\d+)?)D)?"
    r"(?:T(?:(?P<h>\d+(?:\.\d+)?)H)?(?:(?P<m>\d+(?:\.\d+)?)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?$"
)

DURATION_HELP = "use e.g. 100ms, 30s, 5m, 2h, 7d, 1h30m, PT1H30M, or a number of seconds"
# Temporal's longest timer is about 100 years too; beyond it a due time is not a real date.
MAX_DURATION_SECONDS = 100 * 365 * 86400.0


class DurationError(ValueError):
    """A value that is not a duration."""


def parse_duration(value: object) -> float:
    """Return the duration in seconds; raise DurationError when `value` is not a duration, is
    not finite or is longer than 100 years.

    Zero and negative values parse (lint reports them separately, with a clearer message).
    """
    seconds = _parse(value)
    if math.isnan(seconds) or math.isinf(seconds):
        raise DurationError(f"{value!r} is not a finite duration")
    if abs(seconds) > MAX_DURATION_SECONDS:
        raise DurationError(
            f"{value!r} is longer than 100 years, the longest duration tideflow schedules"
        )
    return seconds


def _parse(value: object) -> float:
    if isinstance(value, bool):
        raise DurationError(f"{value!r} is not a duration")
    if isinstance(value, int | float):
        return float(value)
    if not isinstance(value, str):
        raise DurationError(f"{value!r} is not a duration")
    text = value.strip()
    if not text:
        raise DurationError("empty duration")
    try:
        return float(text)
    except ValueError:
        pass
    lowered = text.lower()
    if _COMPACT.match(lowered):
        return sum(float(n) * _UNIT_SECONDS[u] for n, u in _COMPACT_PART.findall(lowered))
    iso = _ISO.match(text.upper())
    if iso and text.upper() not in ("P", "PT"):
        parts = {k: float(v) for k, v in iso.groupdict().items() if v is not None}
        return (
            parts.get("w", 0.0) * 604800
            + parts.get("d", 0.0) * 86400
            + parts.get("h", 0.0) * 3600
            + parts.get("m", 0.0) * 60
            + parts.get("s", 0.0)
        )
    raise DurationError(f"{value!r} is not a duration")


def format_duration(seconds: float) -> str:
    """A short human form, e.g. `1h30m`, `250ms`."""
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    out = []
    rest = seconds
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if rest >= size:
            count = int(rest // size)
            out.append(f"{count}{unit}")
            rest -= count * size
    if rest or not out:
        out.append(f"{rest:g}s")
    return "".join(out)
