"""Validating the child workflows a workflow starts (lint TF259, `tideflow validate`).

A parent is only as valid as its children: a child file that is found but does not validate
would otherwise surface only when a run reaches the child state. Each child is validated once
per file version (path, size, modification time), and a chain of children that leads back to a
file being validated stops there (TF242 reports the cycle).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dsl.validate import ValidationResult

_VALIDATING: ContextVar[frozenset[Path]] = ContextVar("tideflow_validating", default=frozenset())
_CACHE: dict[tuple[Path, int, int, tuple[Path, ...]], ValidationResult] = {}
_CACHE_SIZE = 256


@contextmanager
def validating(path: Path) -> Iterator[None]:
    """Mark `path` as being validated (its children must not validate it again)."""
    token = _VALIDATING.set(_VALIDATING.get() | {path})
    try:
        yield
    finally:
        _VALIDATING.reset(token)


def child_result(path: Path, workflow_dirs: Sequence[Path]) -> ValidationResult | None:
    """The validation of child file `path`, or None when it is already being validated up the
    chain (a cycle) or cannot be read (then TF241 or the child's own run says why)."""
    if path in _VALIDATING.get():
        return None
    try:
        stat = path.stat()
    except OSError:
        return None
    key = (path, stat.st_size, stat.st_mtime_ns, tuple(workflow_dirs))
    cached = _CACHE.get(key)
    if cached is not None:
        return cached
    from dsl.validate import validate_file  # dsl.validate runs lint, which calls this

    with validating(path):
        result = validate_file(path, workflow_dirs=workflow_dirs)
    if len(_CACHE) >= _CACHE_SIZE:
        _CACHE.clear()
    _CACHE[key] = result
    return result
