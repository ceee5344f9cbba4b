"""Readable terminal output: tables that fit the terminal, JSON payloads folded at token
boundaries (never cut mid-value unless asked for less), relative times, durations, colour on a
terminal (honouring NO_COLOR) and "did you mean" suggestions.

Written here rather than with `rich`: the CLI needs a handful of these (a table, a fold, five
colours), `rich` costs ~60 ms of import on every `status`/`list`, and its tables re-wrap cells
in ways that break copying a run id out of the output.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Sequence
from typing import Any, TextIO

# ----------------------------------------------------------------- colour

_CODES = {"green": "32", "red": "31", "yellow": "33", "blue": "34", "dim": "2", "bold": "1"}
STATUS_COLOURS = {
    "completed": "green",
    "failed": "red",
    "timed_out": "red",
    "terminated": "red",
    "cancelled": "yellow",
    "running": "blue",
    "paused": "yellow",
}


def colour_enabled(stream: TextIO | None = None) -> bool:
    """Colour only on a terminal, never with NO_COLOR set (https://no-color.org) or TERM=dumb."""
    stream = stream or sys.stdout
    if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    return bool(getattr(stream, "isatty", lambda: False)())


def paint(text: str, colour: str | None, enabled: bool) -> str:
    if not enabled or colour is None:
        return text
    return f"\x1b[{_CODES[colour]}m{text}\x1b[0m"


def terminal_width() -> int:
    """The terminal's width (COLUMNS wins, as for every tool); 120 when not a terminal."""
    import shutil  # with its compression modules: only for commands that print tables

    return max(40, shutil.get_terminal_size((120, 24)).columns)


# ----------------------------------------------------------------- times


def absolute_time(ts: float | None) -> str:
    if ts is None:
        return "-"
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + "Z"


def duration(seconds: float) -> str:
    """1.25s, 340ms, 2m05s, 3h04m: short and exact enough to compare steps."""
    if seconds < 0:
        seconds = 0.0
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.2f}s" if seconds < 10 else f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h{minutes:02d}m"
    return f"{hours // 24}d{hours % 24:02d}h"


def relative_time(ts: float | None, now: float) -> str:
    if ts is None:
        return "-"
    delta = now - ts
    if abs(delta) < 1:
        return "just now"
    return f"{duration(delta)} ago" if delta > 0 else f"in {duration(-delta)}"


def show_time(ts: float | None, *, relative: bool, now: float) -> str:
    return relative_time(ts, now) if relative else absolute_time(ts)


# ----------------------------------------------------------------- payloads

FOLD_LINES = 4  # lines of a folded payload before the rest is summed up


def _json_tokens(text: str) -> Iterable[str]:
    """`text` (compact JSON) in pieces that end after a `,` or `:` outside strings: the
    places a fold may break a line."""
    start, in_string, escaped = 0, False, False
    for index, char in enumerate(text):
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in ",:":
            yield text[start : index + 1]
            start = index + 1
    if start < len(text):
        yield text[start:]


def fold_json(value: Any, width: int, *, wide: bool, max_lines: int = FOLD_LINES) -> list[str]:
    """`value` as compact JSON in lines of at most `width` characters, broken after a `,` or
    `:` (a token longer than a line, such as a long string, is broken at the width). With `wide`, one line, whole. More
    than `max_lines`: the last line says how much is left out and how to see it."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    if wide or len(text) <= width:
        return [text]
    lines: list[str] = []
    current = ""
    consumed = 0
    for whole in _json_tokens(text):
        # A token longer than a line (a long string) is folded too: nothing is dropped.
        for token in [whole[i : i + width] for i in range(0, len(whole), width)]:
            if current and len(current) + len(token) > width:
                lines.append(current)
                consumed += len(current)
                current = ""
                if len(lines) == max_lines:
                    left = len(text) - consumed
                    lines.append(f"… {left:,} more characters (--wide shows them)")
                    return lines
            current += token
    if current:
        lines.append(current)
    return lines


# ----------------------------------------------------------------- tables


def table(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    flexible: int | None = None,
    width: int | None = None,
    colours: Sequence[Sequence[str | None]] | None = None,
    colour: bool = False,
) -> list[str]:
    """Rows in aligned columns that fit `width` (the terminal's). The `flexible` column (by
    default the last) takes what is left and is folded onto continuation lines, never cut;
    the others keep their full text, since run ids must stay copyable."""
    width = width or terminal_width()
    count = len(headers)
    flexible = count - 1 if flexible is None else flexible
    widths = [max([len(headers[i])] + [len(row[i]) for row in rows]) for i in range(count)]
    fixed = sum(w for i, w in enumerate(widths) if i != flexible) + 2 * (count - 1)
    widths[flexible] = max(12, min(widths[flexible], width - fixed))

    def cells(row: Sequence[str], row_colours: Sequence[str | None] | None) -> list[str]:
        flex_text = row[flexible]
        pieces = [
            flex_text[i : i + widths[flexible]] for i in range(0, len(flex_text), widths[flexible])
        ] or [""]
        lines = []
        for line_no, piece in enumerate(pieces):
            parts = []
            for i in range(count):
                text = piece if i == flexible else (row[i] if line_no == 0 else "")
                padded = text if i == count - 1 else text.ljust(widths[i])
                tint = row_colours[i] if row_colours and line_no == 0 else None
                parts.append(paint(padded, tint, colour))
            lines.append("  ".join(parts).rstrip())
        return lines

    out = cells(headers, ["bold"] * count if colour else None)
    for index, row in enumerate(rows):
        out += cells(row, colours[index] if colours else None)
    return out


# ----------------------------------------------------------------- suggestions


def did_you_mean(word: str, choices: Iterable[str]) -> str | None:
    """The closest of `choices` to a misspelt `word`, if one is close enough."""
    import difflib  # only on a mistake: not part of every command's start-up

    matches = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return matches[0] if matches else None
