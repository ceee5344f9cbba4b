"""Turning a YAML parser error into one located diagnostic (TF001 syntax, TF004 tab) whose
hint says how to fix the usual causes (unquoted templates, indentation, unclosed brackets)."""

from __future__ import annotations

import re

from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.reader import ReaderError

from dsl import yaml_parser
from dsl.diagnostics import Diagnostic, Position, error_at, position_of_index

_ERROR_REPARSE_LIMIT = 512 * 1024  # re-parse failing files with the pure parser for its messages
_TEMPLATE_START = re.compile(r"(?:^|[:\-\[,?]\s*)\{\{")


def syntax_diagnostic(text: str, file: str, exc: YAMLError) -> Diagnostic:
    # The C parser's messages are terser ("found character that cannot start any token"):
    # re-parse a failing, not too big file with the pure parser for its wording.
    if yaml_parser.CPARSER is not None and len(text) <= _ERROR_REPARSE_LIMIT:
        exc = yaml_parser.pure_error(text) or exc
    if isinstance(exc, ReaderError):
        char = f"U+{exc.character:04X}" if isinstance(exc.character, int) else repr(exc.character)
        return error_at(
            file,
            "TF001",
            f"YAML syntax error: control character {char} is not allowed",
            "remove it; inside double quotes it can be written as an escape like \\u0001",
            position_of_index(text, exc.position),
        )
    if not isinstance(exc, MarkedYAMLError):
        return error_at(file, "TF001", f"YAML syntax error: {exc}", None)
    mark = exc.problem_mark or exc.context_mark
    position = Position(mark.line + 1, mark.column + 1) if mark is not None else Position(1, 1)
    problem = (exc.problem or "invalid YAML").strip()
    if _char_at(text, position) == "\t" and "cannot start any token" in problem:
        return error_at(
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
    return error_at(
        file, "TF001", message, _syntax_hint(f"{exc.context} {problem}", text, lines), position
    )


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
