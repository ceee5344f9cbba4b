"""`tideflow worker --log-format text|json`: one line on stderr per run event the worker
commits (after the commit: a logged event is in the store)."""

from __future__ import annotations

import json
import sys
import time
from typing import TYPE_CHECKING, TextIO

from interpreter.cli._ux import absolute_time

if TYPE_CHECKING:
    from interpreter.core.records import Event
    from interpreter.store import RunRecord

LOG_FORMATS = ("text", "json", "none")


class EventLog:
    def __init__(self, fmt: str, stream: TextIO | None = None) -> None:
        self.fmt = fmt
        self.stream = stream or sys.stderr

    def __call__(self, run: RunRecord, events: list[Event]) -> None:
        now = time.time()
        first_seq = run.next_seq - len(events)
        lines = []
        for offset, event in enumerate(events):
            seq = first_seq + offset
            if self.fmt == "json":
                lines.append(
                    json.dumps(
                        {
                            "time": now,
                            "run_id": run.id,
                            "workflow": run.workflow,
                            "seq": seq,
                            "type": event.type,
                            "state": event.state,
                            "attempt": event.attempt,
                        },
                        ensure_ascii=False,
                    )
                )
            else:
                where = f" state={event.state}" if event.state else ""
                attempt = f" attempt={event.attempt}" if event.attempt else ""
                lines.append(
                    f"{absolute_time(now)} run={run.id} seq={seq} {event.type}{where}{attempt}"
                )
        self.stream.write("".join(line + "\n" for line in lines))
        self.stream.flush()
