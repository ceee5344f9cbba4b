"""Loading a workflow file: plain JSON data plus the position of every key and value.

Why events instead of `YAML().load()`: building the data from the parser's event stream with
an explicit stack means no recursion (ruamel's C composer overflows the C stack on deeply
nested input and kills the process; its Python composer raises RecursionError), exact caps on
depth, node count and alias expansion (billion laughs), duplicate keys reported with both
positions, and one position per key and value without round-trip objects. The C parser from
ruamel.yaml.clib is used when installed (about 25x faster); otherwise ruamel's pure-Python
parser. JSON is YAML, so `.json` files take the same path.

Every problem becomes one located `Diagnostic` (codes TF001-TF014); nothing raises.
"""

from __future__ import annotations

import copy
import importlib
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError
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
from ruamel.yaml.reader import ReaderError
from ruamel.yaml.resolver import VersionedResolver

from dsl.diagnostics import Diagnostic, Position, Severity
from dsl.source import JsonPath, SourceDocument

MAX_FILE_BYTES = 5 * 1024 * 1024
"""Files above this size are refused (TF007): a workflow is a program, not a data dump."""
MAX_DEPTH = 64
"""Deepest allowed nesting of mappings and lists (TF009)."""
MAX_NODES = 500_000
"""Most values (scalars, mappings, lists) in one document, aliases expanded (TF007)."""
MAX_ALIAS_NODES = 100_000
"""Most values that alias expansion (`*name`) may produce in one document (TF008)."""
_ERROR_REPARSE_LIMIT = 512 * 1024  # re-parse failing files with the pure parser for its messages

LOADER_CODES: dict[str, str] = {
    "TF001": "YAML syntax error",
    "TF002": "Duplicate key",
    "TF003": "Top level is not a mapping",
    "TF004": "Tab used for indentation",
    "TF005": "File is not UTF-8 text",
    "TF006": "Empty file",
    "TF007": "File too large",
    "TF008": "Alias expansion too large or recursive",
    "TF009": "Nesting too deep",
    "TF010": "File cannot be read",
    "TF011": "Key is not a string",
    "TF012": "Unsupported YAML tag",
    "TF013": "More than one YAML document",
    "TF014": "Unquoted template",
}

_TAG = "tag:yaml.org,2002:"
_STR, _INT, _FLOAT, _BOOL, _NULL = (f"{_TAG}{t}" for t in ("str", "int", "float", "bool", "null"))
_TIMESTAMP, _MERGE, _VALUE = (f"{_TAG}{t}" for t in ("timestamp", "merge", "value"))
_MAP, _SEQ = f"{_TAG}map", f"{_TAG}seq"
_TEMPLATE_START = re.compile(r"(?:^|[:\-\[,?]\s*)\{\{")


@dataclass
class LoadResult:
    """`document` is None when the file could not be loaded; `diagnostics` then says why."""

    document: SourceDocument | None
    diagnostics: list[Diagnostic] = field(default_factory=list)


class _Fatal(Exception):
    """Stops loading; the diagnostic is already recorded."""


def load_file(path: str | Path, *, display_name: str | None = None) -> LoadResult:
    """Read and load `path` (size-capped, UTF-8 with optional BOM)."""
    name = display_name if display_name is not None else str(path)
    raw, problem = read_bytes(path)
    if problem is not None:
        return LoadResult(
            None, [_diag(name, "TF010" if problem[0] == "io" else "TF007", *problem[1:])]
        )
    assert raw is not None
    text_or_diag = decode(raw, name)
    if isinstance(text_or_diag, Diagnostic):
        return LoadResult(None, [text_or_diag])
    return load_text(text_or_diag, name)


def read_bytes(path: str | Path) -> tuple[bytes | None, tuple[str, str, str | None] | None]:
    """The file's bytes, or (kind, message, hint) where kind is "io" or "size"."""
    try:
        with open(path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            if size > MAX_FILE_BYTES:
                return None, _too_large(size)
            raw = handle.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        return None, ("io", f"file not found: {path}", "check the path")
    except IsADirectoryError:
        return None, ("io", f"{path} is a directory, not a file", None)
    except PermissionError:
        return None, ("io", f"permission denied reading {path}", "check the file's permissions")
    except OSError as exc:
        return None, ("io", f"cannot read {path}: {exc.strerror or exc}", None)
    if len(raw) > MAX_FILE_BYTES:
        return None, _too_large(len(raw))
    return raw, None


def _too_large(size: int) -> tuple[str, str, str]:
    limit = MAX_FILE_BYTES // (1024 * 1024)
    return (
        "size",
        f"file is too large ({size / (1024 * 1024):.1f} MB; the limit is {limit} MB)",
        "split the workflow into child workflows (type: child)",
    )


def decode(raw: bytes, file: str) -> str | Diagnostic:
    """UTF-8 text (a UTF-8 BOM is dropped), or a TF005 diagnostic locating the first bad byte."""
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return _diag(file, "TF005", "file is UTF-16 encoded, not UTF-8", "save the file as UTF-8")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        line_start = raw.rfind(b"\n", 0, exc.start) + 1
        column = len(raw[line_start : exc.start].decode("utf-8", "replace")) + 1
        return _diag(
            file,
            "TF005",
            f"file is not valid UTF-8 (byte 0x{raw[exc.start]:02x})",
            "save the file as UTF-8",
            Position(line, column),
        )


def load_text(text: str, file: str = "<string>") -> LoadResult:
    """Load YAML or JSON text. Never raises."""
    try:
        encoded_size = len(text.encode("utf-8"))
    except UnicodeEncodeError as exc:
        return LoadResult(
            None,
            [
                _diag(
                    file,
                    "TF005",
                    f"text contains an invalid character (U+{ord(text[exc.start]):04X}, a lone surrogate)",
                    "save the file as UTF-8",
                    position_of_index(text, exc.start),
                )
            ],
        )
    if encoded_size > MAX_FILE_BYTES:
        return LoadResult(None, [_diag(file, "TF007", *_too_large(encoded_size)[1:])])
    builder = _Builder(text, file)
    try:
        builder.build(_event_source(text))
    except _Fatal:
        return LoadResult(None, builder.diagnostics)
    except YAMLError as exc:
        syntax = _syntax_diagnostic(text, file, exc)
        if any(d.code == "TF014" and d.line == syntax.line for d in builder.diagnostics):
            return LoadResult(None, builder.diagnostics)  # the unquoted template says it better
        return LoadResult(None, [*builder.diagnostics, syntax])
    except RecursionError:  # cannot happen with the event builder; kept as a last guard
        hint = "flatten the structure or move parts into child workflows"
        return LoadResult(None, [_diag(file, "TF009", "the document is nested too deeply", hint)])
    except Exception as exc:  # a parser bug must still not reach the user as a traceback
        hint = "this is a parser bug; please report it with the file"
        return LoadResult(None, [_diag(file, "TF001", f"the YAML parser failed: {exc}", hint)])
    return builder.result()


def position_of_index(text: str, index: int) -> Position:
    index = max(0, min(index, len(text)))
    line = text.count("\n", 0, index) + 1
    return Position(line, index - (text.rfind("\n", 0, index) + 1) + 1)


def _diag(
    file: str, code: str, message: str, hint: str | None, position: Position | None = None
) -> Diagnostic:
    return Diagnostic(code, Severity.ERROR, message, file, position or Position(1, 1), hint)


# --- parsing -------------------------------------------------------------------------------


def _c_parser() -> Any:
    for name in ("_ruamel_yaml", "ruamel.yaml.clib._ruamel_yaml"):
        try:
            return importlib.import_module(name).CParser
        except ImportError:
            continue
    return None


_CPARSER = _c_parser()


def _event_source(text: str) -> Callable[[], Any]:
    """A function returning the next parser event, None at the end."""
    if _CPARSER is None:
        events = _pure_events(text)
        return lambda: next(events, None)
    get_event: Callable[[], Any] = _CPARSER(text).get_event
    return get_event


def _pure_events(text: str) -> Iterator[Any]:
    yield from YAML(typ="safe", pure=True).parse(text)


def _syntax_diagnostic(text: str, file: str, exc: YAMLError) -> Diagnostic:
    # The C parser's messages are terser ("found character that cannot start any token"):
    # re-parse a failing, not too big file with the pure parser for its wording.
    if _CPARSER is not None and len(text) <= _ERROR_REPARSE_LIMIT:
        exc = _pure_error(text) or exc
    if isinstance(exc, ReaderError):
        char = f"U+{exc.character:04X}" if isinstance(exc.character, int) else repr(exc.character)
        return _diag(
            file,
            "TF001",
            f"YAML syntax error: control character {char} is not allowed",
            "remove it; inside double quotes it can be written as an escape like \\u0001",
            position_of_index(text, exc.position),
        )
    if not isinstance(exc, MarkedYAMLError):
        return _diag(file, "TF001", f"YAML syntax error: {exc}", None)
    mark = exc.problem_mark or exc.context_mark
    position = Position(mark.line + 1, mark.column + 1) if mark is not None else Position(1, 1)
    problem = (exc.problem or "invalid YAML").strip()
    if _char_at(text, position) == "\t" and "cannot start any token" in problem:
        return _diag(
            file,
            "TF004",
            "tab character used for indentation",
            "YAML indentation must use spaces; replace the tab with spaces",
            position,
        )
    message = f"YAML syntax error: {problem}"
    if exc.context and exc.context_mark is not None and exc.context_mark is not mark:
        ctx = exc.context_mark
        message += f" ({exc.context.strip()} at line {ctx.line + 1}, column {ctx.column + 1})"
    lines = {position.line}
    if exc.context_mark is not None:
        lines.add(exc.context_mark.line + 1)
    return _diag(
        file, "TF001", message, _syntax_hint(f"{exc.context} {problem}", text, lines), position
    )


def _pure_error(text: str) -> YAMLError | None:
    depth = 0
    try:
        for event in _pure_events(text):
            if isinstance(event, MappingStartEvent | SequenceStartEvent):
                depth += 1
                if depth > MAX_DEPTH:
                    return None
            elif isinstance(event, MappingEndEvent | SequenceEndEvent):
                depth -= 1
    except YAMLError as exc:
        return exc
    except Exception:
        return None
    return None


def _char_at(text: str, position: Position) -> str:
    lines = text.split("\n", position.line)
    if position.line - 1 >= len(lines):
        return ""
    line = lines[position.line - 1]
    return line[position.column - 1] if 0 < position.column <= len(line) else ""


def _syntax_hint(problem: str, text: str, lines: set[int]) -> str | None:
    source_lines = text.split("\n")
    for number in sorted(lines):
        if 0 < number <= len(source_lines) and _TEMPLATE_START.search(source_lines[number - 1]):
            return 'quote templates: write "{{ ... }}" in quotes, YAML reads a bare { as a mapping'
    if "mapping values are not allowed" in problem:
        return 'a plain value cannot contain ": ": put it in quotes, or fix the indentation'
    if "could not find expected ':'" in problem:
        return "a key needs a colon after it; quote multi-line text or use a | block"
    if "block end" in problem or "expected key" in problem or "expected <block" in problem:
        return "check the indentation: the keys of one mapping must line up"
    if "']'" in problem:
        return "a [ ... ] list is not closed, or items are not separated by commas"
    if "'}'" in problem:
        return "a { ... } mapping is not closed, or entries are not separated by commas"
    if "end of stream" in problem and "quoted" in problem:
        return "a quoted string is not closed"
    if "<stream end>" in problem:
        return "the file ends inside a value: close the open [ ], { } or quote"
    if "unknown escape" in problem:
        return "inside double quotes write \\\\ for a backslash, or use single quotes"
    if "cannot start any token" in problem:
        return "values starting with @, ` or % must be quoted"
    return None


# --- building the data ----------------------------------------------------------------------


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


class _Builder:
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
        self.resolver = _resolver((1, 2))
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
                self.resolver = _resolver((1, 1) if self.yaml11 else (1, 2))
                self.resolved.clear()

    def result(self) -> LoadResult:
        if not self.has_root or self.root_is_empty:
            return LoadResult(
                None,
                [
                    *self.diagnostics,
                    _diag(
                        self.file,
                        "TF006",
                        "the file is empty",
                        'a workflow needs at least dsl: "1.0", name: and states:',
                    ),
                ],
            )
        if not isinstance(self.root, dict):
            got = _json_type(self.root)
            return LoadResult(
                None,
                [
                    *self.diagnostics,
                    _diag(
                        self.file,
                        "TF003",
                        f"the top level must be a mapping (dsl:, name:, states: ...), not {got}",
                        "start the file with keys such as dsl: and name:",
                        self.root_position,
                    ),
                ],
            )
        values: dict[JsonPath, Position] = {}
        keys: dict[JsonPath, Position] = {}
        for path, is_key, position in self.entries:
            (keys if is_key else values)[path] = position
        document = SourceDocument(self.file, self.text, self.root, values, keys)
        return LoadResult(document, self.diagnostics)

    # -- diagnostics --

    def error(self, code: str, message: str, hint: str | None, position: Position) -> None:
        self.diagnostics.append(_diag(self.file, code, message, hint, position))

    def fatal(self, code: str, message: str, hint: str | None, position: Position) -> NoReturn:
        self.error(code, message, hint, position)
        raise _Fatal

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
        if self.nodes > MAX_NODES:
            self.fatal(
                "TF007",
                f"the document has more than {MAX_NODES:,} values",
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
            if tag == _MERGE:
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
        if tag not in (_STR, _INT):
            kind = {_NULL: "null", _BOOL: "a boolean", _FLOAT: "a number"}.get(tag, "not a string")
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
            return _STR
        resolved = self.resolved.get(event.value)
        if resolved is None:
            resolved = str(self.resolver.resolve(ScalarNode, event.value, (True, False)))
            self.resolved[event.value] = resolved
        return resolved

    def convert(self, event: Any, position: Position) -> Any:
        text: str = event.value
        tag = self.tag_of(event)
        if tag in (_STR, _TIMESTAMP, _VALUE):
            return text  # timestamps stay as written: the DSL wants RFC 3339 strings
        try:
            if tag == _NULL:
                return None
            if tag == _BOOL:
                return _to_bool(text)
            if tag == _INT:
                return _to_int(text, yaml11=self.yaml11)
            if tag == _FLOAT:
                return _to_float(text)
        except ValueError:
            self.error(
                "TF012",
                f"{text!r} is not a valid {tag.removeprefix(_TAG)}",
                "remove the explicit tag or fix the value",
                position,
            )
            return text
        self.unsupported_tag(tag, position)
        return text

    def unsupported_tag(self, tag: str, position: Position) -> None:
        shown = "!!" + tag.removeprefix(_TAG) if tag.startswith(_TAG) else tag
        self.error(
            "TF012",
            f"the YAML tag {shown} is not supported",
            "workflow files hold plain JSON data: remove the tag",
            position,
        )

    # -- collections --

    def start(self, event: Any, *, is_map: bool) -> None:
        position = _pos(event.start_mark)
        if len(self.stack) >= MAX_DEPTH:
            self.fatal(
                "TF009",
                f"the document is nested more than {MAX_DEPTH} levels deep",
                "flatten the structure or move parts into child workflows",
                position,
            )
        self.count(1, position)
        tag = event.tag
        if tag is not None and str(tag) not in ("!", _MAP if is_map else _SEQ):
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
        if self.alias_nodes > MAX_ALIAS_NODES:
            self.fatal(
                "TF008",
                f"aliases expand to more than {MAX_ALIAS_NODES:,} values (an alias bomb?)",
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


_RESOLVERS: dict[tuple[int, int], VersionedResolver] = {}


def _resolver(version: tuple[int, int]) -> VersionedResolver:
    resolver = _RESOLVERS.get(version)
    if resolver is None:
        resolver = _RESOLVERS[version] = VersionedResolver(version=version)
    return resolver


def _to_bool(text: str) -> bool:
    lowered = text.lower()
    if lowered in ("true", "yes", "on", "y"):
        return True
    if lowered in ("false", "no", "off", "n"):
        return False
    raise ValueError(text)


def _to_int(text: str, *, yaml11: bool) -> int:
    cleaned = text.replace("_", "")
    sign = -1 if cleaned.startswith("-") else 1
    digits = cleaned.lstrip("+-")
    if ":" in digits:  # YAML 1.1 sexagesimal
        total = 0
        for part in digits.split(":"):
            total = total * 60 + int(part)
        return sign * total
    for prefix, base in (("0b", 2), ("0o", 8), ("0x", 16)):
        if digits.lower().startswith(prefix):
            return sign * int(digits[2:], base)
    if yaml11 and len(digits) > 1 and digits.startswith("0"):
        return sign * int(digits, 8)
    return sign * int(digits, 10)


def _to_float(text: str) -> float:
    cleaned = text.replace("_", "")
    sign = -1.0 if cleaned.startswith("-") else 1.0
    digits = cleaned.lstrip("+-")
    if digits.lower() == ".inf":
        return sign * float("inf")
    if digits.lower() == ".nan":
        return float("nan")
    if ":" in digits:
        total = 0.0
        for part in digits.split(":"):
            total = total * 60 + float(part)
        return sign * total
    return sign * float(digits)


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
