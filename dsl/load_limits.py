"""The caps on what a workflow file may hold, shared by reading, parsing and building.

The builder reads them through this module (not `from ... import`) so that tests can lower a
cap with monkeypatch."""

from __future__ import annotations

MAX_FILE_BYTES = 5 * 1024 * 1024
"""Files above this size are refused (TF007): a workflow is a program, not a data dump."""
MAX_DEPTH = 64
"""Deepest allowed nesting of mappings and lists (TF009)."""
MAX_NODES = 500_000
"""Most values (scalars, mappings, lists) in one document, aliases expanded (TF007)."""
MAX_ALIAS_NODES = 100_000
"""Most values that alias expansion (`*name`) may produce in one document (TF008)."""


def too_large(size: int) -> tuple[str, str]:
    """The TF007 message and hint for a file or text of `size` bytes."""
    limit = MAX_FILE_BYTES // (1024 * 1024)
    return (
        f"file is too large ({size / (1024 * 1024):.1f} MB; the limit is {limit} MB)",
        "split the workflow into child workflows (type: child)",
    )
