"""What an editor asks about a workflow buffer: completion candidates, hover docs for keys and
the definition of a state reference. Pure functions over a loaded `SourceDocument` (no I/O,
no LSP library): `tideflow lsp` (interpreter/cli/lsp_cmd.py) turns them into protocol
messages. Lines and columns are 1-based here, as in diagnostics."""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from dsl.diagnostics import Position
from dsl.model import Workflow
from dsl.source import JsonPath, SourceDocument

# Every field the model types as StateName (dsl/model.py): its value names a state.
STATE_REFERENCE_KEYS = frozenset({"next", "default", "on_timeout", "start"})
BUILTIN_ACTIVITIES = ("http",)

_KEY_BEFORE_CURSOR = re.compile(r"""^\s*(?:-\s+)?["']?([A-Za-z_][\w-]*)["']?\s*:\s*(\[[^\]]*)?""")
_LIST_ITEM = re.compile(r"^(\s*)-\s")
_KEY_LINE = re.compile(r"""^(\s*)(?:-\s+)?["']?([A-Za-z_][\w-]*)["']?\s*:(.*)$""")


@dataclass(frozen=True)
class Completion:
    label: str
    kind: str  # "state", "activity" or "signal"
    detail: str


@dataclass(frozen=True)
class Hover:
    text: str  # markdown
    start: Position
    end: Position  # exclusive


# --- scopes -------------------------------------------------------------------------------


def _state_paths(document: SourceDocument) -> Iterator[JsonPath]:
    """The path of every state key at any depth (`(..., "states", name)`)."""
    for path in document.key_positions:
        is_name = len(path) >= 2 and path[-2] == "states" and isinstance(path[-1], str)
        if is_name and isinstance(node_at(document.data, path[:-1]), dict):
            yield path


def node_at(data: Any, path: JsonPath) -> Any:
    """The node at `path` in `data`, None when there is none."""
    node = data
    for part in path:
        in_dict = isinstance(node, dict) and part in node
        in_list = isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        if not (in_dict or in_list):
            return None
        node = node[part]
    return node


def _last_lines(document: SourceDocument) -> dict[JsonPath, int]:
    """For each state path, the last line any node inside it starts on (one pass)."""
    states = set(_state_paths(document))
    last: dict[JsonPath, int] = {}
    for positions in (document.value_positions, document.key_positions):
        for path, position in positions.items():
            for end in range(2, len(path) + 1):
                prefix = path[:end]
                if prefix in states and last.get(prefix, 0) < position.line:
                    last[prefix] = position.line
    return last


def scope_at(document: SourceDocument, line: int) -> JsonPath:
    """The path of the `states` mapping whose names a reference written on `line` can use:
    the one holding the innermost state that spans the line (the top level's otherwise)."""
    best: JsonPath | None = None
    for path, last in _last_lines(document).items():
        first = document.key_positions[path].line
        if first <= line <= last and (best is None or len(path) > len(best)):
            best = path
    return ("states",) if best is None else best[:-1]


def reference_scope(path: JsonPath) -> JsonPath:
    """The `states` mapping a state reference at `path` refers into."""
    if path and path[-1] == "start":
        return (*path[:-1], "states")
    for index in range(len(path) - 2, -1, -1):
        if path[index] == "states":
            return path[: index + 1]
    return ("states",)


def state_names(document: SourceDocument, scope: JsonPath) -> list[str]:
    states = node_at(document.data, scope)
    return [name for name in states if isinstance(name, str)] if isinstance(states, dict) else []


# --- completion -------------------------------------------------------------------------------


def completions(
    document: SourceDocument,
    line_text: str,
    line: int,
    column: int,
    activities: Collection[str] | None = None,
) -> list[Completion]:
    """Candidates for the value being typed at (`line`, `column`) of `line_text` (the
    buffer's current line: the document may be an older parse when the buffer does not
    parse now)."""
    before = line_text[: max(0, column - 1)]
    match = _KEY_BEFORE_CURSOR.match(before)
    key = match.group(1) if match else _enclosing_list_key(document, line, line_text)
    if key is None:
        return []
    if key in STATE_REFERENCE_KEYS:
        scope = scope_at(document, line)
        if key == "start":
            scope = _start_scope(document, line, scope)
        return [Completion(n, "state", "state") for n in state_names(document, scope)]
    if key == "activity":
        names = sorted({*(activities or ()), *BUILTIN_ACTIVITIES})
        return [Completion(n, "activity", "activity") for n in names]
    if key in ("signal", "signals"):
        return [Completion(n, "signal", "signal") for n in _signal_names(document)]
    return []


def _start_scope(document: SourceDocument, line: int, scope: JsonPath) -> JsonPath:
    """`start:` of the top level, a branch or a map state names a state inside it."""
    for path, position in document.key_positions.items():
        if position.line == line and path and path[-1] == "start":
            return reference_scope(path)
    return scope


def _enclosing_list_key(document: SourceDocument, line: int, line_text: str) -> str | None:
    """The key of the block list a `- item` line belongs to (`signals:` above it)."""
    if not _LIST_ITEM.match(line_text):
        return None
    lines = document.text.splitlines()
    indent = len(line_text) - len(line_text.lstrip())
    for previous in reversed(lines[: max(0, line - 1)]):
        found = _KEY_LINE.match(previous)
        if found and len(found.group(1)) <= indent and not found.group(3).strip():
            return found.group(2) if found.group(2) == "signals" else None
        if previous.strip() and len(previous) - len(previous.lstrip()) < indent:
            return None
    return None


def _signal_names(document: SourceDocument) -> list[str]:
    """What a wait can name: the signals declared under `signals`, then the updates under
    `updates` (an accepted update also wakes a wait for its name, as lint TF230 allows)."""
    data = document.data if isinstance(document.data, dict) else {}
    names: list[str] = []
    for section in ("signals", "updates"):
        declared = data.get(section)
        if isinstance(declared, dict):
            names.extend(n for n in declared if isinstance(n, str) and n not in names)
    return names


# --- definition -----------------------------------------------------------------------------


def _value_at(document: SourceDocument, line: int, column: int) -> JsonPath | None:
    """The path of the string scalar under (`line`, `column`)."""
    lines = document.text.splitlines()
    raw = lines[line - 1] if 0 < line <= len(lines) else ""
    for path, position in document.value_positions.items():
        if position.line != line or position.column > column:
            continue
        value = node_at(document.data, path)
        if not isinstance(value, str):
            continue
        quoted = raw[position.column - 1 : position.column]
        width = len(value) + (2 if quoted in ("'", '"') else 0)
        if column <= position.column + width:
            return path
    return None


def definition(document: SourceDocument, line: int, column: int) -> Position | None:
    """Where the state named by the reference under the cursor is declared."""
    path = _value_at(document, line, column)
    if path is None or not path or path[-1] not in STATE_REFERENCE_KEYS:
        return None
    name = node_at(document.data, path)
    target = (*reference_scope(path), name)
    return document.key_positions.get(target)


# --- hover ----------------------------------------------------------------------------------


def hover(document: SourceDocument, line: int, column: int) -> Hover | None:
    """The model's description of the key under the cursor; on a state reference, the
    state it names (its type and description)."""
    lines = document.text.splitlines()
    raw = lines[line - 1] if 0 < line <= len(lines) else ""
    for path, position in document.key_positions.items():
        if position.line != line or not path or not isinstance(path[-1], str):
            continue
        key = path[-1]
        width = len(key) + (2 if raw[position.column - 1 : position.column] in ("'", '"') else 0)
        if not position.column <= column < position.column + width:
            continue
        text = describe(document.data, path)
        if text is None:
            return None
        return Hover(text, position, Position(line, position.column + width))
    return _reference_hover(document, line, column)


def _reference_hover(document: SourceDocument, line: int, column: int) -> Hover | None:
    path = _value_at(document, line, column)
    if path is None or not path or path[-1] not in STATE_REFERENCE_KEYS:
        return None
    name = node_at(document.data, path)
    state = node_at(document.data, (*reference_scope(path), name))
    start = document.value_positions[path]
    end = Position(line, start.column + len(name))
    if not isinstance(state, dict):
        return Hover(f"**{name}**: no such state here", start, end)
    text = f"**{name}**: a state" + (f" of type `{state['type']}`" if "type" in state else "")
    if isinstance(state.get("description"), str):
        text += f"\n\n{state['description']}"
    return Hover(text, start, end)


def describe(data: Any, path: JsonPath) -> str | None:
    """Markdown for the key at `path`: its name, its type and the model's description."""
    candidates: list[Any] = [Workflow]
    node: Any = data
    described: tuple[str, Any] | None = None
    for part in path:
        models = _models(candidates, node)
        described = None
        if isinstance(part, int):
            candidates = [arg for c in candidates for arg in _list_items(c)]
        elif models:
            found = _field(models, part)
            if found is None:
                return None
            described = found
            candidates = [found[1].annotation]
        else:  # a name in a dict[str, X] (a state's name, a variable)
            candidates = [arg for c in candidates for arg in _dict_values(c)]
            if not candidates:
                return None
        node = node_at(node, (part,))
    if described is None:
        if len(path) >= 2 and path[-2] == "states" and isinstance(node, dict):
            kind = node.get("type")
            return f"**{path[-1]}**: a state" + (f" of type `{kind}`" if kind else "")
        return None
    name, info = described
    text = f"**{name}**"
    if info.description:
        text += f": {info.description}"
    return text


def _field(models: list[type[BaseModel]], key: str) -> tuple[str, Any] | None:
    for model in models:
        for name, info in model.model_fields.items():
            if (info.alias or name) == key:
                return key, info
    return None


def _models(candidates: list[Any], node: Any) -> list[type[BaseModel]]:
    """The model classes among `candidates` (unions unwrapped), the one whose `type` matches
    the data first."""
    found: list[type[BaseModel]] = []
    for candidate in candidates:
        for member in _unwrap(candidate):
            if isinstance(member, type) and issubclass(member, BaseModel):
                found.append(member)
    kind = node.get("type") if isinstance(node, dict) else None
    if kind is not None:
        typed = [m for m in found if _type_literal(m) == kind]
        if typed:
            return typed
    return found


def _type_literal(model: type[BaseModel]) -> object:
    field = model.model_fields.get("type")
    if field is None:
        return None
    args = typing.get_args(field.annotation)
    return args[0] if args else None


def _unwrap(annotation: Any) -> list[Any]:
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(annotation)[0])
    if origin is typing.Union or origin is types.UnionType:
        return [m for arg in typing.get_args(annotation) for m in _unwrap(arg)]
    return [annotation]


def _list_items(annotation: Any) -> list[Any]:
    return [
        typing.get_args(m)[0]
        for m in _unwrap(annotation)
        if typing.get_origin(m) is list and typing.get_args(m)
    ]


def _dict_values(annotation: Any) -> list[Any]:
    return [
        typing.get_args(m)[1]
        for m in _unwrap(annotation)
        if typing.get_origin(m) is dict and len(typing.get_args(m)) == 2
    ]
