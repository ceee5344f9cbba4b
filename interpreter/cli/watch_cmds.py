"""Waiting for and following runs: `result` (block until a run ends, without executing it),
`history --follow` and `status --watch` (stream new events as they are written), and the
history table with each step's duration. `pause` / `unpause` live here too: they steer a run
that something else executes.

Following reads the events after the last one shown: one indexed read of (run_id, seq) every
FOLLOW_POLL seconds; on PostgreSQL the store's LISTEN/NOTIFY wakes the reader early when a
worker announces news (a signal, a child's result, a run's end).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from interpreter.cli import _runtime as rt
from interpreter.cli import _ux
from interpreter.cli._common import EXIT_FAILED, EXIT_OK, print_json, run_id_arg, seconds_arg
from interpreter.core.statuses import TERMINAL_STATUSES

if TYPE_CHECKING:
    from interpreter.client import Client

FOLLOW_POLL = 0.25  # seconds between reads of new events while following

RESULT_EXAMPLES = """examples:
  tideflow result order-1a2b3c
  tideflow result order-1a2b3c --timeout 30 --json

exit codes: 0 completed, 1 ended otherwise, 3 still running after --timeout, 4 no such run"""

PAUSE_EXAMPLES = """examples:
  tideflow {name} order-1a2b3c"""


def register(subparsers: Any) -> None:
    result = subparsers.add_parser(
        "result",
        help="wait until a run ends (some worker executes it) and print its output",
        description="Block until the run ends and print its result as `run` does. Nothing is "
        "executed here: a worker (or `tideflow run`/`resume` elsewhere) must drive the run.",
        epilog=RESULT_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    result.add_argument("run_id", metavar="RUN_ID", type=run_id_arg, help="the run to wait for")
    result.add_argument(
        "--timeout",
        type=seconds_arg,
        metavar="SECONDS",
        help="give up after SECONDS (exit 3); default: wait as long as it takes",
    )
    rt.add_json_db_handler(result, cmd_result)

    for name, help_, handler in (
        (
            "pause",
            "pause a run: it starts no new activity or timer until unpaused",
            cmd_pause,
        ),
        ("unpause", "let a paused run go on", cmd_unpause),
    ):
        parser = rt.add_family_command(
            subparsers,
            name,
            help_,
            details=". An activity already running finishes and is recorded; the pause is kept "
            "in the store, so it holds across workers and restarts. `tideflow status` shows it.",
            epilog=PAUSE_EXAMPLES,
        )
        parser.add_argument("run_id", metavar="RUN_ID", type=run_id_arg, help="the run")
        rt.add_json_db_handler(parser, handler)


# ----------------------------------------------------------------- result


def result_json(record: Any) -> dict[str, Any]:
    return {
        "run_id": record.id,
        "workflow": record.workflow,
        "status": record.status,
        "output": record.output,
        "error": record.error,
    }


def cmd_result(args: argparse.Namespace) -> int:
    from interpreter.cli.progress import Progress

    client = rt.open_client(args, create=False)
    rt.call(lambda: client.get(args.run_id))  # an unknown id fails now, not after a wait
    waiter = _Waiter(client)
    deadline = None if args.timeout is None else time.monotonic() + args.timeout
    try:
        while True:
            record = rt.call(lambda: client.get(args.run_id))
            if record.status in TERMINAL_STATUSES:
                break
            if deadline is not None and time.monotonic() >= deadline:
                from interpreter.errors import ResultTimeout

                with rt.translated_errors():
                    raise ResultTimeout(
                        f"run {args.run_id!r} is still {record.status} after {args.timeout:g}s",
                        hint="wait longer (--timeout), or check that a worker runs: "
                        f"tideflow status {args.run_id}",
                    )
            waiter.wait(
                FOLLOW_POLL if deadline is None else min(FOLLOW_POLL, deadline - time.monotonic())
            )
    finally:
        waiter.close()
    out = result_json(record)
    if args.json:
        print_json(out)
    else:
        Progress(enabled=False).summary(out)
    return EXIT_OK if record.status == "completed" else EXIT_FAILED


# ----------------------------------------------------------------- pause


def _pause(args: argparse.Namespace, paused: bool) -> int:
    client = rt.open_client(args, create=False)
    changed = rt.call(lambda: client.pause(args.run_id) if paused else client.unpause(args.run_id))
    word = "paused" if paused else "unpaused"
    if args.json:
        print_json({"run_id": args.run_id, "paused": paused, "changed": changed})
    elif changed:
        detail = (
            "; an activity in flight finishes and is recorded, nothing new starts"
            if paused
            else "; a worker picks it up again"
        )
        print(f"run {args.run_id} {word}{detail}")
    else:
        print(f"run {args.run_id} was already {word}")
    return EXIT_OK


def cmd_pause(args: argparse.Namespace) -> int:
    return _pause(args, True)


def cmd_unpause(args: argparse.Namespace) -> int:
    return _pause(args, False)


# ----------------------------------------------------------------- following


class _Waiter:
    """Sleeps between reads; a PostgreSQL store's notifications end the sleep early."""

    def __init__(self, client: Client) -> None:
        import threading

        self._event = threading.Event()
        subscribe = getattr(client.store, "subscribe", None)
        self._unsubscribe: Callable[[], None] | None = (
            subscribe(self._event.set) if subscribe is not None else None
        )

    def wait(self, seconds: float) -> None:
        self._event.wait(max(0.0, seconds))
        self._event.clear()

    def close(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()


def follow_events(
    client: Client,
    run_id: str,
    emit: Callable[[dict[str, Any]], None],
    *,
    follow: bool,
    initial: Iterable[dict[str, Any]] | None = None,
) -> None:
    """The run's events through `emit` (`initial`, else all of them); with `follow`, then the
    new ones as they are written, until the run has ended and its last event was shown."""
    last = 0
    waiter = _Waiter(client) if follow else None
    try:
        while True:
            ended = follow and rt.call(lambda: client.get(run_id)).status in TERMINAL_STATUSES
            with rt.translated_errors():
                source = client.store.iter_events(run_id, after=last)
                if initial is not None:
                    source, initial = iter(initial), None
                for event in source:
                    emit(event)
                    last = event["seq"]
            if not follow or ended:
                return
            assert waiter is not None
            waiter.wait(FOLLOW_POLL)
    finally:
        if waiter is not None:
            waiter.close()


_ENDINGS = ("Completed", "Failed", "Fired", "TimedOut", "Cancelled", "Terminated", "Received")


def _start_of(event_type: str) -> str | None:
    """The event type whose time starts the step `event_type` ends (ActivityCompleted:
    ActivityStarted); None when it ends nothing."""
    for ending in _ENDINGS:
        if event_type.endswith(ending) and event_type != ending:
            prefix = event_type[: -len(ending)]
            return "RunStarted" if prefix == "Run" else f"{prefix}Started"
    return None


class HistoryTable:
    """History rows for a terminal: SEQ, TIME, TYPE, STATE, ATT, DURATION and the payload
    folded to what is left of the width."""

    def __init__(self, *, wide: bool, relative: bool) -> None:
        self.wide = wide
        self.relative = relative
        self.colour = _ux.colour_enabled()
        self.started: dict[tuple[str, str | None], float] = {}
        self.width = _ux.terminal_width()
        self.fixed = 5 + 2 + 24 + 1 + 22 + 1 + 18 + 1 + 3 + 2 + 8 + 2

    def header(self) -> str:
        text = f"{'SEQ':>5}  {'TIME':<24} {'TYPE':<22} {'STATE':<18} {'ATT':>3}  {'DURATION':>8}  PAYLOAD"
        return _ux.paint(text, "bold", self.colour)

    def rows(self, event: dict[str, Any]) -> Iterable[str]:
        kind, state, at = event["type"], event["state"], event["time"]
        took = ""
        start = _start_of(kind)
        if start is not None:
            began = self.started.get((start, state if start != "RunStarted" else None))
            if began is not None:
                took = _ux.duration(at - began)
        if kind.endswith("Started") or kind == "StateEntered":
            self.started[(kind, state if kind != "RunStarted" else None)] = at
        when = _ux.show_time(at, relative=self.relative, now=time.time())
        tint = "red" if "Failed" in kind or kind in ("RunTerminated", "RunTimedOut") else None
        columns = (
            f"{event['seq']:>5}  {when:<24} {_ux.paint(f'{kind:<22}', tint, self.colour)} "
            f"{state or '':<18} {event['attempt'] or '':>3}  {took:>8}"
        )
        room = self.width - self.fixed
        if room >= 40:  # the payload beside the columns, folded to what is left
            payload = _ux.fold_json(event["payload"], room, wide=self.wide)
            yield f"{columns}  {payload[0]}"
            indent = self.fixed
        else:  # a narrow terminal: the payload below the row
            yield columns.rstrip()
            indent = 7
            payload = _ux.fold_json(event["payload"], self.width - indent, wide=self.wide)
        for more in payload[0 if indent == 7 else 1 :]:
            yield " " * indent + more


def print_history(
    client: Client, args: argparse.Namespace, events: Iterable[dict[str, Any]] | None = None
) -> int:
    """`history`: `events` (default: the whole history), then with --follow the new ones."""
    follow = getattr(args, "follow", False)
    if args.json and follow:
        # Following: one object a line (JSON Lines), flushed as each event comes.
        def emit_jsonl(event: dict[str, Any]) -> None:
            sys.stdout.write(json.dumps(event, ensure_ascii=False) + "\n")
            sys.stdout.flush()

        follow_events(client, args.run_id, emit_jsonl, follow=True, initial=events)
        return EXIT_OK
    if args.json:
        # Streamed: one array, written event by event, so huge histories stay cheap.
        out = sys.stdout
        out.write("[")
        first = True

        def emit_json(event: dict[str, Any]) -> None:
            nonlocal first
            out.write(("" if first else ",") + "\n" + json.dumps(event, ensure_ascii=False))
            first = False

        follow_events(client, args.run_id, emit_json, follow=False, initial=events)
        out.write("\n]\n")
        return EXIT_OK
    view = HistoryTable(wide=args.wide, relative=args.relative)
    print(view.header())

    def emit(event: dict[str, Any]) -> None:
        for line in view.rows(event):
            print(line)
        if follow:
            sys.stdout.flush()

    follow_events(client, args.run_id, emit, follow=follow, initial=events)
    return EXIT_OK


def watch_status(client: Client, args: argparse.Namespace, show: Callable[[], None]) -> int:
    """`status --watch`: the status now, then each new event as it is written, then the
    status at the end."""
    show()
    info = rt.call(lambda: client.get(args.run_id))
    if info.status in TERMINAL_STATUSES:
        return EXIT_OK
    print("\nwatching (Ctrl-C to stop):")
    sys.stdout.flush()
    view = HistoryTable(wide=False, relative=False)
    start_after = info.next_seq - 1

    def emit(event: dict[str, Any]) -> None:
        if event["seq"] <= start_after:
            list(view.rows(event))  # remember start times for the durations; not shown again
            return
        for line in view.rows(event):
            print(line)
        sys.stdout.flush()

    follow_events(client, args.run_id, emit, follow=True)
    print()
    show()
    return EXIT_OK
