"""Building plain JSON data, and the position of every key and value, from the YAML event
stream.

Why events instead of `YAML().load()`: building the data from the parser's event stream with
an explicit stack means no recursion (ruamel's C composer overflows the C stack on deeply
nested input and kills the process; its Python composer raises RecursionError), exact caps on
depth, node count and alias expansion (billion laughs), duplicate keys reported with both
positions, and one position per key and value without round-trip objects.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NoReturn

from ruamel.yaml.events import (
    AliasEvent,
    DocumentStartEvent,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
)
from ruamel.yaml.nodes import ScalarNode

from dsl import load_limits
from dsl.diagnostics import Diagnostic, Position, error_at
from dsl.source import JsonPath, SourceDocument
from dsl.yaml_scalars import (
    BOOL,
    FLOAT,
    INT,
    MAP,
    MERGE,
    NULL,
    SEQ,
    STR,
    TAG,
    TIMESTAMP,
    VALUE,
    resolver,
    to_bool,
    to_float,
    to_int,
)


class Fatal(Exception):
    """Stops building; the diagnostic is already in `Builder.diagnostics`."""


class _Frame:
    """An open mapping or list. `path` is None inside discarded content (bad keys, duplicates)."""

    __slots__ = (
        "anchor",
        "count",
        "entry_start",
        "expect_key",
        "is_key",
        "is_map",
        "key",
        "key_positions",
        "merge_pending",
        "merges",
        "path",
        "position",
        "skip",
        "value",
        "value_mark",
    )

    def __init__(
        self, is_map: bool, path: JsonPath | None, position: Position, anchor: str | None
    ) -> None:
        self.is_map = is_map
        self.value: Any = {} if is_map else []
        self.path = path
        self.position = position
        self.anchor = anchor
        self.count = 1
        self.entry_start = 0
        self.is_key = False
        # mapping state
        self.expect_key = True
        self.key = ""
        self.skip = False
        self.merge_pending = False
        self.value_mark = 0
        self.key_positions: dict[str, Position] = {}
        # (value, entries relative to it, position, number of explicit keys before it)
        self.merges: list[tuple[Any, list[_Entry], Position, int]] = []


_Entry = tuple[JsonPath, bool, Position]  # (path, is_key, position)


@dataclass
class _Anchor:
    value: Any
    entries: list[_Entry]  # relative to the anchored value
    count: int


class Builder:
    def __init__(self, text: str, file: str) -> None:
        self.text = text
        self.file = file
        self.diagnostics: list[Diagnostic] = []
        self.entries: list[_Entry] = []
        self.stack: list[_Frame] = []
        self.anchors: dict[str, _Anchor] = {}
        self.open_anchors: set[str] = set()
        self.nodes = 0
        self.alias_nodes = 0
        self.documents = 0
        self.root: Any = None
        self.root_position = Position(1, 1)
        self.has_root = False
        self.root_is_empty = False
        self.yaml11 = False
        self.resolver = resolver((1, 2))
        self.resolved: dict[str, str] = {}

    # -- driver --

    def build(self, next_event: Callable[[], Any]) -> None:
        while (event := next_event()) is not None:
            kind = type(event)
            if kind is ScalarEvent:
                self.scalar(event)
            elif kind is MappingStartEvent:
                if event.flow_style and self.text.startswith("{{", event.start_mark.index):
                    self.unquoted_template(event, next_event)
                else:
                    self.start(event, is_map=True)
            elif kind is SequenceStartEvent:
                self.start(event, is_map=False)
            elif kind is MappingEndEvent or kind is SequenceEndEvent:
                self.end()
            elif kind is AliasEvent:
                self.alias(event)
            elif kind is DocumentStartEvent:
                self.documents += 1
                if self.documents > 1:
                    self.fatal(
                        "TF013",
                        "the file contains more than one YAML document (a second --- starts here)",
                        "put each workflow in its own file",
                        _pos(event.start_mark),
                    )
                version = getattr(event, "version", None)
                self.yaml11 = version == (1, 1)
                self.resolver = resolver((1, 1) if self.yaml11 else (1, 2))
                self.resolved.clear()

    def document(self) -> SourceDocument | None:
        """The loaded document, or None when there is none (TF006 empty, TF003 not a mapping,
        added to `diagnostics`)."""
        if not self.has_root or self.root_is_empty:
            self.diagnostics.append(
                error_at(
                    self.file,
                    "TF006",
                    "the file is empty",
                    'a workflow needs at least dsl: "1.0", name: and states:',
                )
            )
            return None
        if not isinstance(self.root, dict):
            got = _json_type(self.root)
            self.diagnostics.append(
                error_at(
                    self.file,
                    "TF003",
                    f"the top level must be a mapping (dsl:, name:, states: ...), not {got}",
                    "start the file with keys such as dsl: and name:",
                    self.root_position,
                )
            )
            return None
        values: dict[JsonPath, Position] = {}
        keys: dict[JsonPath, Position] = {}
        for path, is_key, position in self.entries:
            (keys if is_key else values)[path] = position
        return SourceDocument(self.file, self.text, self.root, values, keys)

    # -- diagnostics --

    def error(self, code: str, message: str, hint: str | None, position: Position) -> None:
        self.diagnostics.append(error_at(self.file, code, message, hint, position))

    def fatal(self, code: str, message: str, hint: str | None, position: Position) -> NoReturn:
        self.error(code, message, hint, position)
        raise Fatal

    # -- placement --

    def child_path(self) -> JsonPath | None:
        if not self.stack:
            return ()
        top = self.stack[-1]
        if top.path is None:
            return None
        if top.is_map:
            if top.expect_key or top.skip:
                return None
            if top.merge_pending:
                return (*top.path, "<<")
            return (*top.path, top.key)
        return (*top.path, len(top.value))

    def count(self, nodes: int, position: Position) -> None:
        self.nodes += nodes
        if self.nodes > load_limits.MAX_NODES:
            self.fatal(
                "TF007",
                f"the document has more than {load_limits.MAX_NODES:,} values",
                "split the workflow into child workflows (type: child)",
                position,
            )

    def place(self, value: Any, count: int, position: Position) -> None:
        if not self.stack:
            self.root, self.has_root, self.root_position = value, True, position
            return
        top = self.stack[-1]
        top.count += count
        if not top.is_map:
            top.value.append(value)
            return
        if top.merge_pending:
            entries = self.entries[top.value_mark :]
            del self.entries[top.value_mark :]
            prefix = len(top.path) + 1 if top.path is not None else 0
            relative = [(p[prefix:], k, pos) for p, k, pos in entries]
            top.merges.append((value, relative, position, len(top.value)))
        elif not top.skip:
            top.value[top.key] = value
        top.expect_key, top.skip, top.merge_pending = True, False, False

    # -- scalars --

    def scalar(self, event: Any) -> None:
        position = _pos(event.start_mark)
        top = self.stack[-1] if self.stack else None
        if top is not None and top.is_map and top.expect_key:
            tag = self.tag_of(event)
            if tag == MERGE:
                self.count(1, position)
                top.count += 1
                top.merge_pending, top.expect_key = True, False
                top.value_mark = len(self.entries)
                return
            key = self.key_text(event.value, tag, position)
            if event.anchor:
                self.anchors[event.anchor] = _Anchor(key, [], 1)
            self.key(top, key, position)
            return
        value = self.convert(event, position)
        self.count(1, position)
        path = self.child_path()
        if path is not None:
            self.entries.append((path, False, position))
        if not self.stack:
            self.root_is_empty = value is None and event.value == "" and bool(event.implicit[0])
        if event.anchor:
            self.anchors[event.anchor] = _Anchor(value, [((), False, position)], 1)
        self.place(value, 1, position)

    def key_text(self, text: str, tag: str, position: Position) -> str:
        if tag not in (STR, INT):
            kind = {NULL: "null", BOOL: "a boolean", FLOAT: "a number"}.get(tag, "not a string")
            self.error(
                "TF011",
                f"the key {text!r} is read as {kind}; keys must be strings",
                f'put the key in quotes: "{text}":',
                position,
            )
        return text

    def key(self, top: _Frame, key: str, position: Position) -> None:
        top.count += 1
        self.count(1, position)
        first = top.key_positions.get(key)
        if first is not None:
            self.error(
                "TF002",
                f'duplicate key "{key}"',
                f"it is already defined at line {first.line}; keep one of them",
                position,
            )
            top.skip = True
        else:
            top.key_positions[key] = position
            if top.path is not None:
                self.entries.append(((*top.path, key), True, position))
        top.key, top.expect_key = key, False

    def tag_of(self, event: Any) -> str:
        tag = event.tag
        if tag is not None and tag != "!":
            return str(tag)
        if not event.implicit[0]:
            return STR
        resolved = self.resolved.get(event.value)
        if resolved is None:
            resolved = str(self.resolver.resolve(ScalarNode, event.value, (True, False)))
            self.resolved[event.value] = resolved
        return resolved

    def convert(self, event: Any, position: Position) -> Any:
        text: str = event.value
        tag = self.tag_of(event)
        if tag in (STR, TIMESTAMP, VALUE):
            return text  # timestamps stay as written: the DSL wants RFC 3339 strings
        try:
            if tag == NULL:
                return None
            if tag == BOOL:
                return to_bool(text)
            if tag == INT:
                return to_int(text, yaml11=self.yaml11)
            if tag == FLOAT:
                return to_float(text)
        except ValueError:
            self.error(
                "TF012",
                f"{text!r} is not a valid {tag.removeprefix(TAG)}",
                "remove the explicit tag or fix the value",
                position,
            )
            return text
        self.unsupported_tag(tag, position)
        return text

    def unsupported_tag(self, tag: str, position: Position) -> None:
        shown = "!!" + tag.removeprefix(TAG) if tag.startswith(TAG) else tag
        self.error(
            "TF012",
            f"the YAML tag {shown} is not supported",
            "workflow files hold plain JSON data: remove the tag",
            position,
        )

    # -- collections --

    def start(self, event: Any, *, is_map: bool) -> None:
        position = _pos(event.start_mark)
        if len(self.stack) >= load_limits.MAX_DEPTH:
            self.fatal(
                "TF009",
                f"the document is nested more than {load_limits.MAX_DEPTH} levels deep",
                "flatten the structure or move parts into child workflows",
                position,
            )
        self.count(1, position)
        tag = event.tag
        if tag is not None and str(tag) not in ("!", MAP if is_map else SEQ):
            self.unsupported_tag(str(tag), position)
        top = self.stack[-1] if self.stack else None
        is_key = top is not None and top.is_map and top.expect_key
        if is_key:
            self.error(
                "TF011",
                "a mapping or list cannot be a key; keys must be strings",
                "use a plain name as the key",
                position,
            )
        path = None if is_key else self.child_path()
        frame = _Frame(is_map, path, position, event.anchor)
        frame.is_key = is_key
        frame.entry_start = len(self.entries)
        if path is not None:
            self.entries.append((path, False, position))
        if event.anchor:
            self.open_anchors.add(event.anchor)
        self.stack.append(frame)

    def end(self) -> None:
        frame = self.stack.pop()
        if frame.merges:
            self.apply_merges(frame)
        if frame.anchor:
            self.open_anchors.discard(frame.anchor)
            entries: list[_Entry] = []
            if frame.path is not None:
                cut = len(frame.path)
                entries = [(p[cut:], k, pos) for p, k, pos in self.entries[frame.entry_start :]]
            self.anchors[frame.anchor] = _Anchor(frame.value, entries, frame.count)
        if frame.is_key:
            top = self.stack[-1]
            top.count += frame.count
            top.key, top.expect_key, top.skip = "", False, True
            return
        self.place(frame.value, frame.count, frame.position)

    def apply_merges(self, frame: _Frame) -> None:
        """`<<: *base` merges: explicit keys win, then earlier merges; merged keys keep the
        place of their `<<` line."""
        explicit: dict[str, Any] = frame.value
        explicit_keys = list(explicit)
        merged: dict[str, Any] = {}
        new_entries: list[_Entry] = []
        done = 0
        for value, relative, position, before in frame.merges:
            for key in explicit_keys[done:before]:
                merged[key] = explicit[key]
            done = before
            sources = value if isinstance(value, list) else [value]
            for index, source in enumerate(sources):
                if not isinstance(source, dict):
                    self.error(
                        "TF012",
                        "<< (merge) needs a mapping or a list of mappings",
                        "merge an anchored mapping: <<: *defaults",
                        position,
                    )
                    continue
                skip = 1 if isinstance(value, list) else 0
                for key, item_value in source.items():
                    if key in explicit or key in merged:
                        continue
                    merged[key] = item_value
                    if frame.path is None:
                        continue
                    for rel, is_key, pos in relative:
                        if len(rel) > skip and rel[skip] == key and (not skip or rel[0] == index):
                            new_entries.append(((*frame.path, *rel[skip:]), is_key, pos))
        for key in explicit_keys[done:]:
            merged[key] = explicit[key]
        frame.value = merged
        self.entries.extend(new_entries)

    # -- aliases --

    def alias(self, event: Any) -> None:
        position = _pos(event.start_mark)
        name = event.anchor
        if name in self.open_anchors:
            self.fatal(
                "TF008",
                f"the alias *{name} is used inside its own anchor (a recursive structure)",
                "workflow data cannot contain cycles",
                position,
            )
        anchor = self.anchors.get(name)
        if anchor is None:
            self.fatal(
                "TF001",
                f"YAML syntax error: undefined alias *{name}",
                f"define the anchor &{name} before using *{name}",
                position,
            )
        self.alias_nodes += anchor.count
        if self.alias_nodes > load_limits.MAX_ALIAS_NODES:
            self.fatal(
                "TF008",
                f"aliases expand to more than {load_limits.MAX_ALIAS_NODES:,} values (an alias bomb?)",
                "use fewer nested aliases",
                position,
            )
        self.count(anchor.count, position)
        top = self.stack[-1] if self.stack else None
        if top is not None and top.is_map and top.expect_key:
            if isinstance(anchor.value, str):
                self.key(top, anchor.value, position)
            else:
                self.error(
                    "TF011", f"the alias *{name} used as a key is not a string", None, position
                )
                top.key, top.expect_key, top.skip = "", False, True
            return
        path = self.child_path()
        if path is not None:
            self.entries.append((path, False, position))
            self.entries.extend((path + rel, k, pos) for rel, k, pos in anchor.entries if rel)
        value = anchor.value
        if isinstance(value, dict | list):
            value = copy.deepcopy(value)  # callers may mutate the data; aliases must not share
        self.place(value, anchor.count, position)

    # -- templates --

    def unquoted_template(self, event: Any, next_event: Callable[[], Any]) -> None:
        """`key: {{ x }}` parses as a nested flow mapping. Report it and keep the raw text as
        the string the author meant, so the other checks still run."""
        start = event.start_mark.index
        end = start
        depth = 1
        while (inner := next_event()) is not None:
            kind = type(inner)
            if kind is MappingStartEvent or kind is SequenceStartEvent:
                depth += 1
            elif kind is MappingEndEvent or kind is SequenceEndEvent:
                depth -= 1
                if depth == 0:
                    end = inner.end_mark.index
                    break
        raw = self.text[start:end]
        position = _pos(event.start_mark)
        self.error(
            "TF014",
            "a template must be quoted: YAML reads an unquoted {{ ... }} as a nested mapping",
            f'write it in quotes: "{raw}"' if len(raw) < 60 else 'write it in quotes: "{{ ... }}"',
            position,
        )
        top = self.stack[-1] if self.stack else None
        if top is not None and top.is_map and top.expect_key:
            self.key(top, raw, position)
            return
        self.count(1, position)
        path = self.child_path()
        if path is not None:
            self.entries.append((path, False, position))
        self.place(raw, 1, position)


def _pos(mark: Any) -> Position:
    return Position(mark.line + 1, mark.column + 1)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "a mapping"
