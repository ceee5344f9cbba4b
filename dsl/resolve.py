"""Finding the file of a child workflow (used by lint and by the engine).

A child's `workflow` is either a relative file path (it contains a `/` or ends in .yaml, .yml or
.json), resolved from the parent file's directory, or a workflow name, looked up in the parent's
directory and then in each workflow directory: first `<dir>/<name>.yaml|.yml|.json`, then any
workflow file there whose top-level `name:` equals it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

WORKFLOW_SUFFIXES = (".yaml", ".yml", ".json")
# Only a top-level `name:` line (column 0): nested keys called name are indented.
_YAML_NAME = re.compile(
    r"""^name:[ \t]*(?P<q>["']?)(?P<name>[A-Za-z0-9_.\-]+)(?P=q)[ \t]*(?:\#.*)?$""", re.MULTILINE
)


def is_path_reference(name: str) -> bool:
    return "/" in name or "\\" in name or name.endswith(WORKFLOW_SUFFIXES)


def declared_name(path: Path) -> str | None:
    """The top-level `name` of a workflow file, read cheaply; None when unreadable."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    if path.suffix == ".json":
        try:
            data: Any = json.loads(text)
        except ValueError:
            return None
        name = data.get("name") if isinstance(data, dict) else None
        return name if isinstance(name, str) else None
    match = _YAML_NAME.search(text)
    return match.group("name") if match else None


def _search_dirs(base_dir: Path | None, workflow_dirs: Sequence[Path]) -> Iterator[Path]:
    seen: set[Path] = set()
    for directory in (base_dir, *workflow_dirs):
        if directory is None:
            continue
        key = directory.resolve()
        if key not in seen and directory.is_dir():
            seen.add(key)
            yield directory


def resolve_child_workflow(
    name: str, base_dir: Path | None, workflow_dirs: Sequence[Path] = ()
) -> Path | None:
    """The resolved file of child workflow `name`, or None when it cannot be found."""
    if is_path_reference(name):
        candidate = Path(name)
        if candidate.is_absolute():
            return candidate.resolve() if candidate.is_file() else None
        for directory in _search_dirs(base_dir, workflow_dirs):
            if (directory / candidate).is_file():
                return (directory / candidate).resolve()
        return None
    for directory in _search_dirs(base_dir, workflow_dirs):
        for suffix in WORKFLOW_SUFFIXES:
            candidate = directory / f"{name}{suffix}"
            if candidate.is_file():
                return candidate.resolve()
        for candidate in sorted(directory.iterdir()):
            if (
                candidate.suffix in WORKFLOW_SUFFIXES
                and candidate.is_file()
                and declared_name(candidate) == name
            ):
                return candidate.resolve()
    return None


def child_references(data: Any) -> list[str]:
    """The `workflow` of every child state in raw workflow data (nested machines included)."""
    found: list[str] = []
    pending: list[Any] = [data]
    on_exit = data.get("on_exit") if isinstance(data, dict) else None
    if isinstance(on_exit, dict):  # exit handlers are state machines too
        pending.extend(on_exit.values())
    while pending:
        machine = pending.pop()
        states = machine.get("states") if isinstance(machine, dict) else None
        if not isinstance(states, dict):
            continue
        for state in states.values():
            if not isinstance(state, dict):
                continue
            if state.get("type") == "child" and isinstance(state.get("workflow"), str):
                found.append(state["workflow"])
            if state.get("type") == "map":
                pending.append(state)
            branches = state.get("branches")
            if isinstance(branches, list):
                pending.extend(branches)
    return found
