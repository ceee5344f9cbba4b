"""The YAML event stream: ruamel.yaml.clib's C parser when installed (about 25x faster),
otherwise ruamel's pure-Python parser. JSON is YAML, so `.json` files take the same path.

Events rather than `YAML().load()`: see dsl/yaml_builder.py for why."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError
from ruamel.yaml.events import (
    MappingEndEvent,
    MappingStartEvent,
    SequenceEndEvent,
    SequenceStartEvent,
)

from dsl import load_limits


def _c_parser() -> Any:
    for name in ("_ruamel_yaml", "ruamel.yaml.clib._ruamel_yaml"):
        try:
            return importlib.import_module(name).CParser
        except ImportError:
            continue
    return None


CPARSER: Any = _c_parser()
"""The C parser class, or None. Read as `yaml_parser.CPARSER` so that a test can switch it off."""


def event_source(text: str) -> Callable[[], Any]:
    """A function returning the next parser event, None at the end."""
    if CPARSER is None:
        events = pure_events(text)
        return lambda: next(events, None)
    get_event: Callable[[], Any] = CPARSER(text).get_event
    return get_event


def pure_events(text: str) -> Iterator[Any]:
    yield from YAML(typ="safe", pure=True).parse(text)


def pure_error(text: str) -> YAMLError | None:
    """The pure parser's error for `text` (its messages are clearer than the C parser's), or
    None when it finds none or the text nests past the depth cap (no reparse that deep)."""
    depth = 0
    try:
        for event in pure_events(text):
            if isinstance(event, MappingStartEvent | SequenceStartEvent):
                depth += 1
                if depth > load_limits.MAX_DEPTH:
                    return None
            elif isinstance(event, MappingEndEvent | SequenceEndEvent):
                depth -= 1
    except YAMLError as exc:
        return exc
    except Exception:
        return None
    return None
