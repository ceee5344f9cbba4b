"""Keeping a run's large parts out of the state document that every step rewrites.

The run state is one JSON document, written again by each commit. Three parts of it are big
and change little: the run input (the store keeps it in the run's `input` column anyway), and
each active map's `items` and `results` lists (one entry per item). Left in the document, a map
of n items costs O(n) per step and O(n^2) in all.

The worker therefore commits the document without them and writes each item and each iteration
result once, as rows keyed by (run, map frame, kind, index), in the same transaction
(`Commit.map_rows`). When a worker claims a run it puts the rows back into the in-memory state,
so the engine always sees the whole state. No other reader needs these parts: `status`,
`query` and `list` use frames, vars and the run's input column.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# (map frame id, index, "item" | "result", value)
MapRow = tuple[str, int, str, Any]
_STRIPPED = ("items", "results")


@dataclass(slots=True)
class _Written:
    """Result rows written for one map frame: every index below `low`, and those in `above`."""

    low: int = 0
    above: set[int] = field(default_factory=set)

    def settle(self) -> None:
        while self.low in self.above:
            self.above.discard(self.low)
            self.low += 1


@dataclass(slots=True)
class Split:
    state: dict[str, Any]  # what the store writes as the run's state
    rows: list[MapRow]
    done_frames: list[str]  # maps that ended (or were dropped): their rows can go
    _written: dict[str, _Written]


def _is_map_wait(frame: dict[str, Any]) -> bool:
    wait = frame.get("wait")
    return isinstance(wait, dict) and wait.get("kind") == "map"


class MapRowTracker:
    """Per run driver: which map rows are in the store already."""

    def __init__(self) -> None:
        self._written: dict[str, _Written] = {}

    def restore(self, state: dict[str, Any], input_: Any, rows: list[MapRow] | None) -> None:
        """Complete a state loaded from the store (`rows`: the run's map rows, or None when
        `needs_rows` said none are needed)."""
        state["input"] = input_
        by_frame: dict[str, list[MapRow]] = {}
        for row in rows or []:
            by_frame.setdefault(row[0], []).append(row)
        self._written = {}
        for frame_id, frame in state["frames"].items():
            if not _is_map_wait(frame):
                continue
            wait = frame["wait"]
            written = _Written()
            if "items" not in wait:
                items: list[Any] = [None] * wait["total"]
                results: list[Any] = [None] * wait["total"]
                for _, index, kind, value in by_frame.get(frame_id, []):
                    if kind == "item":
                        items[index] = value
                    else:
                        results[index] = value
                        written.above.add(index)
                wait["items"], wait["results"] = items, results
                written.settle()
                self._written[frame_id] = written
            # A map from a state written whole (older tideflow) is written as rows at the next
            # commit: it has no _Written entry yet.

    @staticmethod
    def needs_rows(state: dict[str, Any]) -> bool:
        return any(_is_map_wait(f) and "items" not in f["wait"] for f in state["frames"].values())

    def split(self, state: dict[str, Any]) -> Split:
        frames = state["frames"]
        rows: list[MapRow] = []
        written_now: dict[str, _Written] = {}
        out_frames: dict[str, Any] = {}
        for frame_id, frame in frames.items():
            if not _is_map_wait(frame):
                out_frames[frame_id] = frame
                continue
            wait = frame["wait"]
            before = self._written.get(frame_id)
            if before is None:
                rows.extend((frame_id, i, "item", item) for i, item in enumerate(wait["items"]))
                before = _Written()
            written = _Written(before.low, set(before.above))
            running = {frames[c]["slot"] for c in wait["running"] if c in frames}
            results = wait["results"]
            # Only indexes from the low-water mark up to the next one to launch can be new.
            for index in range(written.low, wait["next_index"]):
                if index not in written.above and index not in running:
                    rows.append((frame_id, index, "result", results[index]))
                    written.above.add(index)
            written.settle()
            written_now[frame_id] = written
            out_frames[frame_id] = {
                **frame,
                "wait": {k: v for k, v in wait.items() if k not in _STRIPPED},
            }
        done = [frame_id for frame_id in self._written if frame_id not in written_now]
        return Split({**state, "frames": out_frames, "input": None}, rows, done, written_now)

    def committed(self, split: Split) -> None:
        """The split's rows are in the store."""
        self._written = split._written
