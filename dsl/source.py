"""A loaded document: plain JSON-like data plus the line/column of every node."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dsl.diagnostics import Position

JsonPath = tuple[str | int, ...]


@dataclass
class SourceDocument:
    """`data` holds only dict/list/str/int/float/bool/None. `value_positions[path]` is where the
    value at `path` starts; `key_positions[path]` is where its mapping key starts."""

    file: str
    text: str
    data: Any
    value_positions: dict[JsonPath, Position] = field(default_factory=dict)
    key_positions: dict[JsonPath, Position] = field(default_factory=dict)

    def locate(self, path: JsonPath, *, key: bool = False) -> Position:
        """Position of `path` (its key when `key` and it has one), else of the nearest ancestor."""
        probe = tuple(path)
        while True:
            if key and probe in self.key_positions:
                return self.key_positions[probe]
            if probe in self.value_positions:
                return self.value_positions[probe]
            if probe in self.key_positions:
                return self.key_positions[probe]
            if not probe:
                return Position(1, 1)
            probe = probe[:-1]
