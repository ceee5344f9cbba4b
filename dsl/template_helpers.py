"""tideflow's own template helpers: JSON, regular expressions, globs, merging and paths.

Kept apart from `dsl.templates` (which builds the one sandbox and installs these) so that each
group of helpers has one home. Every helper is deterministic (no clock, no randomness, no I/O)
and bounded by the evaluation's budget (`dsl.template_limits`):

- Regular expressions run on the `regex` module, which can stop a match after a timeout (the
  standard `re` cannot be interrupted, and a pattern like `(a|aa)+$` backtracks for hours on 60
  characters). Each match gets what is left of the evaluation's time budget, so a catastrophic
  pattern fails the state with `ExpressionLimit` instead of stalling the worker; on the worker's
  event loop (the 5 ms inline budget) it is redone in a thread with the full budget first.
  Patterns are at most MAX_PATTERN characters; the text is already bounded (2 MiB); a
  replacement is refused before its result passes the size bounds.
- `fromjson` reads strict JSON only (no NaN or Infinity), so its result can be kept by a run.

docs/dsl.md lists every helper ("Template helpers"); tests/test_template_helpers.py compares
that list with the sandbox.
"""

from __future__ import annotations

import fnmatch
import json
import time
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from typing import Any

from jinja2.runtime import Undefined

from dsl.template_limits import MAX_BUILT, LimitExceeded, current, text_size

# The longest regular expression or glob pattern a template may use.
MAX_PATTERN = 1000


class HelperError(ValueError):
    """A helper was given something it cannot work with; the state fails with ExpressionError
    and this message."""


# ----------------------------------------------------------------------------- JSON


def _no_constant(name: str) -> Any:
    raise HelperError(f"fromjson: {name} is not JSON data (strict JSON has no NaN or Infinity)")


def fromjson(value: Any) -> Any:
    """`'{"a": 1}' | fromjson` → {"a": 1}: the JSON text parsed, strictly."""
    if not isinstance(value, str | bytes):
        raise HelperError(f"fromjson: expected a JSON text, got {type(value).__name__}")
    current().spend(1 + len(value) // 4096)
    try:
        return json.loads(value, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise HelperError(f"fromjson: not valid JSON: {exc}") from None
    except RecursionError:
        raise HelperError("fromjson: the JSON is nested too deeply") from None


# ----------------------------------------------------------------------------- regular expressions


@lru_cache(maxsize=256)
def _compiled(pattern: str, ignorecase: bool) -> Any:
    import regex  # imported on first use: most workflows use no regular expression

    if len(pattern) > MAX_PATTERN:
        raise HelperError(
            f"the pattern is {len(pattern):,} characters long (the limit is {MAX_PATTERN:,})"
        )
    try:
        return regex.compile(pattern, regex.IGNORECASE if ignorecase else 0)
    except regex.error as exc:
        raise HelperError(f"invalid regular expression {pattern!r}: {exc}") from None


def pattern_problem(helper: str, pattern: str) -> None:
    """Raise HelperError when `pattern` (written in a template for `helper`) cannot be used."""
    if helper == "glob":
        if len(pattern) > MAX_PATTERN:
            raise HelperError(
                f"the pattern is {len(pattern):,} characters long (the limit is {MAX_PATTERN:,})"
            )
        pattern = fnmatch.translate(pattern)
    _compiled(pattern, False)


def _pattern(value: Any, pattern: Any, ignorecase: bool, what: str) -> Any:
    if not isinstance(value, str):
        raise HelperError(f"{what}: expected a text, got {type(value).__name__}")
    if not isinstance(pattern, str):
        raise HelperError(f"{what}: the pattern must be a text, got {type(pattern).__name__}")
    budget = current()
    budget.spend(1 + len(value) // 4096)
    return _compiled(pattern, bool(ignorecase))


def _seconds_left() -> float:
    """What is left of the evaluation's wall-time budget, for one match (at least 1 ms)."""
    return max(0.001, current().seconds_left())


def _timed(what: str, pattern: str, run: Callable[[float], Any]) -> Any:
    started = time.perf_counter()
    try:
        return run(_seconds_left())
    except TimeoutError:
        spent = (time.perf_counter() - started) * 1000
        raise LimitExceeded(
            f"{what}: the regular expression {pattern!r} ran out of the template budget "
            f"after {spent:.0f} ms (it backtracks too much on this text: simplify nested "
            "repetitions such as (a+)+)",
            out_of_time=True,
        ) from None


def regex_search(value: Any, pattern: Any, ignorecase: bool = False) -> Any:
    """The first part of `value` that `pattern` matches, or none."""
    compiled = _pattern(value, pattern, ignorecase, "regex_search")
    found = _timed("regex_search", pattern, lambda t: compiled.search(value, timeout=t))
    return None if found is None else found.group(0)


def regex_findall(value: Any, pattern: Any, ignorecase: bool = False) -> list[Any]:
    """Every non-overlapping match: texts, or lists of the groups when the pattern has groups
    (as Python's `re.findall`)."""
    compiled = _pattern(value, pattern, ignorecase, "regex_findall")
    found = _timed("regex_findall", pattern, lambda t: compiled.findall(value, timeout=t))
    current().build(text_size(found), "regex_findall")
    return [list(item) if isinstance(item, tuple) else item for item in found]


def regex_replace(
    value: Any, pattern: Any, replacement: Any = "", count: int = 0, ignorecase: bool = False
) -> str:
    """`value` with each match of `pattern` replaced (`\\1`, `\\g<name>` refer to groups);
    `count` > 0 replaces at most that many."""
    compiled = _pattern(value, pattern, ignorecase, "regex_replace")
    if not isinstance(replacement, str):
        raise HelperError("regex_replace: the replacement must be a text")
    if not isinstance(count, int) or count < 0:
        raise HelperError("regex_replace: count must be a whole number >= 0")
    budget = current()
    built = [len(value)]

    def expand(match: Any) -> str:
        text: str = match.expand(replacement)
        built[0] += len(text)
        if built[0] > MAX_BUILT:
            raise LimitExceeded(
                f"regex_replace would build more than {MAX_BUILT:,} characters (the limit)"
            )
        budget.spend()
        return text

    result: str = _timed(
        "regex_replace",
        pattern,
        lambda t: compiled.sub(expand, value, count=count, timeout=t),
    )
    budget.build(len(result), "regex_replace")
    return result


def regex_match_test(value: Any, pattern: Any, ignorecase: bool = False) -> bool:
    """`x is regex_match(p)`: the whole text matches."""
    if not isinstance(value, str):
        return False
    compiled = _pattern(value, pattern, ignorecase, "regex_match")
    return (
        _timed("regex_match", pattern, lambda t: compiled.fullmatch(value, timeout=t)) is not None
    )


def regex_search_test(value: Any, pattern: Any, ignorecase: bool = False) -> bool:
    """`x is regex_search(p)`: some part of the text matches."""
    if not isinstance(value, str):
        return False
    compiled = _pattern(value, pattern, ignorecase, "regex_search")
    return _timed("regex_search", pattern, lambda t: compiled.search(value, timeout=t)) is not None


def glob_test(value: Any, pattern: Any) -> bool:
    """`name is glob('*.csv')`: shell-style wildcards (`*`, `?`, `[abc]`), case-sensitive on
    every system, matched against the whole text."""
    if not isinstance(value, str):
        return False
    if not isinstance(pattern, str):
        raise HelperError(f"glob: the pattern must be a text, got {type(pattern).__name__}")
    if len(pattern) > MAX_PATTERN:
        raise HelperError(
            f"the pattern is {len(pattern):,} characters long (the limit is {MAX_PATTERN:,})"
        )
    compiled = _pattern(value, fnmatch.translate(pattern), False, "glob")
    return _timed("glob", pattern, lambda t: compiled.match(value, timeout=t)) is not None


# ----------------------------------------------------------------------------- objects and paths


def merge(*objects: Any) -> dict[str, Any]:
    """`merge(a, b, ...)` / `a | merge(b)`: one new object with the keys of each, later ones
    winning (a shallow merge: a nested object is replaced, not merged). None is skipped."""
    merged: dict[str, Any] = {}
    for index, item in enumerate(objects):
        if item is None:
            continue
        if not isinstance(item, Mapping):
            raise HelperError(
                f"merge: argument {index + 1} is {type(item).__name__}, not an object"
            )
        current().build(len(merged) + len(item), "merge")
        merged.update(item)
    return merged


def _segments(path: Any) -> Sequence[Any]:
    if isinstance(path, str):
        return path.split(".") if path else []
    if isinstance(path, list | tuple):
        return path
    if isinstance(path, int) and not isinstance(path, bool):
        return [path]
    raise HelperError(f"get: the path must be a text like 'a.b.0' or a list, got {path!r}")


def get(value: Any, path: Any, default: Any = None) -> Any:
    """`get(vars, 'order.payment.id', 'none')`: the value at a path of keys (and list
    positions), or `default` when any step of it is missing (or null)."""
    current().spend()
    node = value
    for segment in _segments(path):
        if isinstance(node, Undefined) or node is None:
            return default
        if isinstance(node, Mapping):
            key = segment if isinstance(segment, str) else str(segment)
            if key not in node:
                return default
            node = node[key]
        elif isinstance(node, list):
            try:
                position = int(segment)
            except (TypeError, ValueError):
                return default
            if not -len(node) <= position < len(node):
                return default
            node = node[position]
        else:
            return default
    return default if isinstance(node, Undefined) or node is None else node


# ----------------------------------------------------------------------------- the tables

FILTERS: dict[str, Callable[..., Any]] = {
    "fromjson": fromjson,
    "regex_search": regex_search,
    "regex_findall": regex_findall,
    "regex_replace": regex_replace,
    "merge": merge,
    "get": get,
}
TESTS: dict[str, Callable[..., Any]] = {
    "regex_match": regex_match_test,
    "regex_search": regex_search_test,
    "glob": glob_test,
}
GLOBALS: dict[str, Callable[..., Any]] = {"merge": merge, "get": get}

# Jinja built-ins that are not deterministic, and are removed: the filter `random` picks an
# item at random, and the test `sameas` compares object identity, which differs between a live
# run and the same run resumed from its stored JSON (`vars.a is sameas(vars.b)`). Every other
# built-in filter, test and global was checked the same way (docs/dsl.md, "Template helpers"):
# the globals lipsum (random text), cycler, joiner and namespace (mutable state) are not
# installed either.
REMOVED_FILTERS = frozenset({"random"})
REMOVED_TESTS = frozenset({"sameas"})
