"""Which fields of the settings blocks (retry policies, timeouts) are templates, and of which
kind, in one table that the template rules (`template_values`, dsl/lint/expressions.py), TF256
(a template where none is evaluated, dsl/lint/data_rules.py) and the duration rules
(dsl/lint/values.py) read.

The kinds:
- DURATION: a duration, or a template giving one (evaluated in the state's scope when it runs);
  which fields these are is read from the model (the fields typed `Duration`);
- PREDICATE: a template with names of its own (a retry policy's `when` sees `error` and
  `attempt`, not the state's scope), checked by its own rule (TF284, dsl/lint/retries.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Literal

from pydantic import BaseModel

from dsl import model
from dsl.model import Duration, RetryPolicy, Timeouts
from dsl.source import JsonPath

Kind = Literal["duration", "predicate"]
DURATION: Kind = "duration"
PREDICATE: Kind = "predicate"


def duration_fields(owner: type[BaseModel]) -> tuple[str, ...]:
    """The fields of `owner` that the model types as durations."""
    return tuple(
        name
        for name, field in owner.model_fields.items()
        if field.annotation in (Duration, Duration | None)
    )


# The template fields of each settings block, by kind.
BLOCK_FIELDS: dict[type[BaseModel], dict[str, Kind]] = {
    RetryPolicy: {**dict.fromkeys(duration_fields(RetryPolicy), DURATION), "when": PREDICATE},
    Timeouts: dict.fromkeys(duration_fields(Timeouts), DURATION),
}

# Every field name the model types as a duration, in any block or state (TF210 checks them).
DURATION_KEYS = frozenset(
    name
    for owner in vars(model).values()
    if isinstance(owner, type) and issubclass(owner, BaseModel)
    for name in duration_fields(owner)
)


def block_fields(path: JsonPath, owner: Any) -> Iterator[tuple[JsonPath, Any, Kind]]:
    """The template fields of the `retry` and `timeout` blocks of `owner` (a state, its
    compensation, the defaults), with their kind; only strings (the template rules skip the
    rest anyway)."""
    blocks = [(path, owner)]
    comp = getattr(owner, "compensate", None)
    if comp is not None:
        blocks.append(((*path, "compensate"), comp))
    for base, block in blocks:
        for section in ("retry", "timeout"):
            settings = getattr(block, section, None)
            if settings is None or isinstance(settings, str | int | float):
                continue  # a wait's timeout is a duration itself (listed by the caller)
            listed = isinstance(settings, list)  # a list of policies: each at its index
            for index, policy in enumerate(settings if listed else [settings]):
                at = (*base, section, index) if listed else (*base, section)
                kinds = BLOCK_FIELDS[type(policy)]
                for key, value in policy:
                    if key in kinds and isinstance(value, str):
                        yield (*at, key), value, kinds[key]
