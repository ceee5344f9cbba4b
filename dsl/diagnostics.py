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
