"""What a run may hold: strict JSON data of bounded size.

Every value that enters a run (its input, a signal's payload, an activity's result, a
template's result) is checked here once, where it enters. A value that could not be stored
(NaN, an integer past Python's 4,300-digit limit, a lone surrogate, nesting too deep for the
decoder) would otherwise fail every later commit of the run and stall it; one that is huge
would be rewritten with every step. The size limit is Temporal's payload limit.
"""

from __future__ import annotations

import json
import json.encoder
from collections.abc import Callable
from typing import Any

MAX_VALUE_BYTES = 2 * 1024 * 1024
# One encoder for every check (a check runs for each activity result and evaluated template):
# json.dumps with options builds a new JSONEncoder per call, and JSONEncoder.encode a new C
# encoder per call, which costs as much as encoding a small result; this one is made once.
_STRICT = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _strict_c_encoder() -> Callable[[Any], str]:
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # another Python without the C encoder
        return _STRICT.encode
    # No circular-reference markers: a shared dict would make two threads' checks see each
    # other's containers; a value that contains itself fails with RecursionError instead.
    encode = make(
        None, _STRICT.default, json.encoder.encode_basestring, None, ":", ",", False, False, False
    )

    def encoded(value: Any) -> str:
        if isinstance(value, str):  # the C encoder takes containers and numbers only
            return _STRICT.encode(value)
        return "".join(encode(value, 0))

    return encoded


_encode = _strict_c_encoder()


class NotJsonData(ValueError):
    """`value` cannot be kept in a run; `reason` says why, for an error message."""

    def __init__(self, reason: str, *, too_large: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.too_large = too_large


def encode(value: Any) -> str:
    """`value` as strict, compact JSON text; NotJsonData when it is not JSON data."""
    try:
        text = _encode(value)
        # Encoding to UTF-8 finds lone surrogates and counts the bytes; ASCII text (the usual
        # case) has neither multi-byte characters nor surrogates, so its length is its size.
        size = len(text) if text.isascii() else len(text.encode("utf-8"))
    except RecursionError:
        raise NotJsonData("it is nested too deeply") from None
    except UnicodeEncodeError as exc:
        bad = exc.object[exc.start : exc.end]
        raise NotJsonData(f"it holds invalid Unicode (a lone surrogate {bad!a})") from None
    except ValueError as exc:
        if "Out of range float" in str(exc):
            raise NotJsonData("it holds NaN or Infinity, which JSON cannot represent") from None
        if "Exceeds the limit" in str(exc):
            raise NotJsonData("it holds an integer of more than 4,300 digits") from None
        raise NotJsonData(str(exc)) from None
    except TypeError as exc:
        raise NotJsonData(str(exc)) from None
    if size > MAX_VALUE_BYTES:
        raise NotJsonData(
            f"it is {size:,} bytes of JSON; the limit is {MAX_VALUE_BYTES:,}", too_large=True
        )
    return text


def copy_data(value: Any) -> Any:
    """A fresh copy of JSON data (dicts and lists copied, the immutable rest shared)."""
    if isinstance(value, dict):
        return {key: copy_data(item) for key, item in value.items()}
    if isinstance(value, list):
        return [copy_data(item) for item in value]
    return value


def check(value: Any) -> None:
    """Raise NotJsonData unless `value` can be kept in a run."""
    encode(value)


def parse(text: str) -> Any:
    """Strict JSON text to data: NaN and Infinity are refused, like everything `check` refuses.
    Raises NotJsonData (with the position for syntax errors)."""

    def refuse(name: str) -> Any:
        raise NotJsonData(f"{name} is not JSON (use null or a string)")

    try:
        value = json.loads(text, parse_constant=refuse)
    except json.JSONDecodeError as exc:
        raise NotJsonData(f"{exc.msg} (line {exc.lineno}, column {exc.colno})") from None
    except RecursionError:
        raise NotJsonData("it is nested too deeply") from None
    except ValueError as exc:
        if isinstance(exc, NotJsonData):
            raise
        if "Exceeds the limit" in str(exc):
            raise NotJsonData("it holds an integer of more than 4,300 digits") from None
        raise NotJsonData(str(exc)) from None
    check(value)
    return value
