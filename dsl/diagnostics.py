"""Diagnostics: what every check yields (located, coded, with a hint)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, order=True)
class Position:
    """1-based line and column inside a file."""

    line: int = 1
    column: int = 1


@dataclass(frozen=True)
class Diagnostic:
    """One finding. `code` is stable and documented in docs/diagnostics.md."""

    code: str
    severity: Severity
    message: str
    file: str
    position: Position = field(default_factory=Position)
    hint: str | None = None
    # JSON path of the offending node inside the document, e.g. ("states", "charge", "next").
    path: tuple[str | int, ...] = ()

    @property
    def line(self) -> int:
        return self.position.line

    @property
    def column(self) -> int:
        return self.position.column

    def to_dict(self) -> dict[str, object]:
        return {
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "severity": self.severity.value,
            "code": self.code,
            "message": self.message,
            "hint": self.hint,
            "path": "/".join(str(p) for p in self.path),
        }


def has_errors(diagnostics: list[Diagnostic], *, strict: bool = False) -> bool:
    return any(d.severity is Severity.ERROR or strict for d in diagnostics)


def error_at(
    file: str, code: str, message: str, hint: str | None, position: Position | None = None
) -> Diagnostic:
    """An error-severity diagnostic at `position` (the file's start when not known)."""
    return Diagnostic(code, Severity.ERROR, message, file, position or Position(1, 1), hint)


def position_of_index(text: str, index: int) -> Position:
    """The line and column of character `index` of `text` (clamped into the text)."""
    index = max(0, min(index, len(text)))
    line = text.count("\n", 0, index) + 1
    return Position(line, index - (text.rfind("\n", 0, index) + 1) + 1)
