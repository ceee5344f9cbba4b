"""`tideflow graph --run RUN`: where a run has been and where it stands, as a dsl.graph Trace.

Read from the run's current history segment and its state: each StateEntered event is a
visited state (the top level, an exit handler, or a nested frame: a parallel branch or a map
item), two in a row in one frame a transition taken, and the states of the active frames are
current. A nested frame that has ended is gone from the run's state, so its machine is not
known any more: its states are matched by name among the nested machines (every machine with a
state of that name is marked; names are unique within one machine).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from dsl.graph import StateKey, Trace, state_keys

if TYPE_CHECKING:
    from dsl.model import Workflow
    from interpreter.store import RunRecord

Path = tuple[tuple[str | None, int | str], ...]


def trace_of(workflow: Workflow, record: RunRecord, events: Iterable[dict[str, Any]]) -> Trace:
    state = record.state
    frames: dict[str, Any] = state.get("frames", {})
    nested: dict[str, list[StateKey]] = defaultdict(list)
    for key in state_keys(workflow):
        if key[0] and key[0][0][0] is not None:
            nested[key[1]].append(key)

    def machine_of(frame_id: str) -> Path | None:
        frame = frames.get(frame_id)
        return None if frame is None else tuple((m[0], m[1]) for m in frame["machine"])

    trace = Trace()
    last: dict[str, list[StateKey]] = {}  # per frame: the keys of the state it was last in
    for event in events:
        if event["type"] != "StateEntered" or not event.get("state"):
            continue
        name, payload = event["state"], event.get("payload") or {}
        keys: list[StateKey]
        if "frame" in payload:
            where = "f:" + str(payload["frame"])
            machine = machine_of(str(payload["frame"]))
            keys = [(machine, name)] if machine is not None else list(nested.get(name, []))
        elif "handler" in payload:
            where = "h:" + str(payload["handler"])
            keys = [(((None, payload["handler"]),), name)]
        else:
            where, keys = "root", [((), name)]
        trace.visited.update(keys)
        for before in last.get(where, []):
            trace.taken.update((before, key) for key in keys if key[0] == before[0])
        last[where] = keys
    if record.status == "running":
        from interpreter.run_status import current_states

        for current in current_states(state):
            frame = current.get("frame")
            machine = machine_of(frame) if frame else None
            if machine is not None:
                trace.current.add((machine, current["state"]))
    return trace
