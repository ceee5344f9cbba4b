"""Reading a run's history by segment (continue-as-new), and what `status` says about the
history limit. Light on purpose: `tideflow history` and `status` load no model."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from dsl.history_limits import HISTORY_LIMIT_DEFAULT
from interpreter.errors import TideflowError
from interpreter.store.base import RunRecord, Segment, Store

WARN_FRACTION = 0.8  # `status` warns past this share of the limit


def segment_events(
    store: Store, run_id: str, *, segment: int | None = None, all_segments: bool = False
) -> Iterator[dict[str, Any]]:
    """The events of one segment (default: the current one), or of all with `segment` set on
    each. An unknown segment number is a TideflowError that names the ones there are."""
    chain = store.list_segments(run_id)
    if all_segments:
        return _annotated(store, run_id, chain)
    if segment is None:
        chosen = chain[-1] if chain else Segment(1, 1, 0.0)
    else:
        found = [s for s in chain if s.segment == segment]
        if not found:
            raise TideflowError(
                f"run {run_id!r} has no segment {segment}",
                hint=f"its segments are 1 to {len(chain)}" if chain else "the run has no history",
            )
        chosen = found[0]
    later = [s.first_seq for s in chain if s.segment > chosen.segment]
    return _between(store, run_id, chosen.first_seq, later[0] if later else None)


def _between(store: Store, run_id: str, first: int, stop: int | None) -> Iterator[dict[str, Any]]:
    for event in store.iter_events(run_id, after=first - 1):
        if stop is not None and event["seq"] >= stop:
            return
        yield event


def _annotated(store: Store, run_id: str, chain: list[Segment]) -> Iterator[dict[str, Any]]:
    starts = [s.first_seq for s in chain]
    index = 0
    for event in store.iter_events(run_id):
        while index + 1 < len(starts) and event["seq"] >= starts[index + 1]:
            index += 1
        yield {**event, "segment": chain[index].segment if chain else 1}


def first_input(store: Store, run_id: str) -> Any:
    """The input the run started with (its first RunStarted), before any continue-as-new."""
    for event in store.iter_events(run_id):
        return event["payload"].get("input") if event["type"] == "RunStarted" else None
    return None


def limit_of(definition_source: str) -> int:
    """The definition's history_limit, from its canonical JSON (no model needed)."""
    limit = json.loads(definition_source).get("history_limit")
    return int(limit) if isinstance(limit, int) and limit > 0 else HISTORY_LIMIT_DEFAULT


def history_info(record: RunRecord, definition_source: str, segments: int) -> dict[str, Any]:
    """What `status` shows about the current segment's history and the limit."""
    limit = limit_of(definition_source)
    state = record.state
    events = int(state.get("segment_events", 0))
    info: dict[str, Any] = {
        "segment": int(state.get("run", {}).get("segment", 1)),
        "segments": segments,
        "events": events,
        "limit": limit,
        "warning": None,
    }
    if record.status == "running" and events > WARN_FRACTION * limit:
        info["warning"] = (
            f"this segment holds {events:,} of at most {limit:,} events "
            f"({events / limit:.0%}); at the limit the run fails with HistoryLimitExceeded: "
            "end each round of the loop with a continue_as_new state"
        )
    return info
