"""`status`, `history`, `signal`, `query`: looking at and talking to runs that already exist
(`list`, `cancel`, `terminate` and `prune` are in list_cmds.py, following in watch_cmds.py,
`update` in update_cmd.py)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from interpreter.cli import _runtime as rt
from interpreter.cli import _ux
from interpreter.cli._common import (
    EXIT_OK,
    CliError,
    parse_json_arg,
    print_json,
    run_id_arg,
    text_arg,
)


def register(subparsers: Any) -> None:
    def command(
        name: str, help_: str, handler: Any, *, run_id: bool = True, json_: bool = True
    ) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = subparsers.add_parser(name, help=help_)
        if run_id:
            parser.add_argument("run_id", metavar="RUN_ID", type=run_id_arg, help="the run")
        rt.add_db(parser)
        if json_:
            rt.add_json(parser)
        parser.set_defaults(handler=handler)
        return parser

    status = command(
        "status", "show a run: status, current state(s), vars, output, error, version", cmd_status
    )
    status.add_argument(
        "--watch", action="store_true", help="then show each new event until the run ends"
    )
    rt.add_readable(status)
    history = command(
        "history",
        "show a run's event history with each step's duration (its current segment; "
        "--segment N or --all for earlier ones)",
        cmd_history,
    )
    which = history.add_mutually_exclusive_group()
    which.add_argument(
        "--segment", type=_segment_arg, metavar="N", help="the events of segment N (1 = first)"
    )
    which.add_argument(
        "--all", action="store_true", dest="all_segments", help="every segment, oldest first"
    )
    history.add_argument(
        "--export",
        metavar="FILE",
        help="write the whole history with its definition and input for `tideflow replay`",
    )
    history.add_argument(
        "--follow",
        "-f",
        action="store_true",
        help="keep printing new events as they are written until the run ends (--json: JSON Lines)",
    )
    rt.add_readable(history)
    sig = command("signal", "send a signal to a run", cmd_signal)
    sig.add_argument("name", metavar="NAME", type=text_arg, help="a signal the workflow declares")
    sig.add_argument("--data", metavar="JSON|@FILE", help="the payload: JSON text or @file.json")
    qry = command("query", "evaluate a declared query against the run's current state", cmd_query)
    qry.add_argument("name", metavar="NAME", type=text_arg, help="a query the workflow declares")
    qry.add_argument(
        "--data", metavar="JSON|@FILE", help="the query's args: JSON text or @file.json"
    )


def _segment_arg(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a segment number (1, 2, ...), got {text!r}")
    return int(text)


def cmd_status(args: argparse.Namespace) -> int:
    client = rt.open_client(args, create=False)

    def show() -> None:
        info = rt.call(lambda: client.status(args.run_id))
        if args.json:
            print_json(info)
        else:
            _show_status(info, args)
        sys.stdout.flush()

    if args.watch:
        from interpreter.cli.watch_cmds import watch_status

        return watch_status(client, args, show)
    show()
    return EXIT_OK


def _show_status(info: dict[str, Any], args: argparse.Namespace) -> None:
    colour = _ux.colour_enabled()
    now = time.time()

    def when(ts: float | None) -> str:
        return _ux.show_time(ts, relative=args.relative, now=now)

    width = _ux.terminal_width() - 11
    print(f"run        {info['run_id']}")
    print(
        f"workflow   {info['workflow']} (version {info['version'] or '-'}, definition {info['definition_hash'][:12]})"
    )
    shown = "paused" if info.get("paused") else info["status"]
    print(f"status     {_ux.paint(shown, _ux.STATUS_COLOURS.get(shown), colour)}")
    for cur in info["current"]:
        detail = cur["waiting_for"] or ("its worker" if info.get("worker") else "a worker")
        if cur.get("activity"):
            progress = {
                "ready": "not started: needs a worker that offers it",
                "backoff": "waiting to retry",
                "running": "running",
                "callback": "waiting for its callback (tideflow complete TOKEN)",
            }.get(cur.get("task_status", ""), cur.get("task_status", ""))
            detail = f"activity {cur['activity']}, attempt {cur['attempt']}, {progress}"
        elif cur["waiting_for"] in ("signal", "update", "signal_or_update"):
            detail = _wait_detail(cur)
        elif cur.get("child"):
            detail = f"child run {cur['child']}"
        print(f"current    {cur['state']} (waiting for {detail})")
    if info["status"] == "running":
        print(f"worker     {_worker_line(info)}")
    if info["parent_id"]:
        print(f"parent     {info['parent_id']}")
    if info["forked_from"]:
        print(f"forked     from {info['forked_from']['run']} at {info['forked_from']['state']}")
    if info["forks"]:
        more = info["fork_count"] - len(info["forks"])
        print(
            f"forks      {', '.join(info['forks'])}"
            + (
                f" and {more:,} more (`tideflow list --forked-from {info['run_id']}`)"
                if more
                else ""
            )
        )
    if info["retried"]:
        print(f"retried    {info['retried']} time{'s' if info['retried'] != 1 else ''}")
    for child in info["children"]:
        policy = info["detached"].get(child)
        print(f"child      {child}" + (f" (detached, parent_close: {policy})" if policy else ""))
    for decided in info["decisions"]:
        outcome = "met" if decided["met"] else "not met"
        print(f"decided    {decided['state']}: {decided['rule']} {outcome}: {decided['reason']}")
    history = info["history"]
    earlier = history["segments"] - 1
    print(
        f"history    segment {history['segment']}"
        + (f" ({earlier} earlier: history --segment N or --all)" if earlier else "")
        + f", {history['events']:,} of at most {history['limit']:,} events"
    )
    if history["warning"]:
        print(f"warning    {history['warning']}")
    print(f"created    {when(info['created_at'])}")
    print(f"updated    {when(info['updated_at'])}")
    if info["ended_at"]:
        print(f"ended      {when(info['ended_at'])}")
        print(f"took       {_ux.duration(info['ended_at'] - info['created_at'])}")
    for label, value in (("vars", info["vars"]), ("output", info["output"])):
        if label == "output" and value is None:
            continue
        lines = _ux.fold_json(value, width, wide=args.wide)
        print(f"{label:<10} {lines[0]}")
        for line in lines[1:]:
            print(" " * 11 + line)
    if info["error"]:
        error = f"{info['error']['type']}: {info['error']['message']}"
        print(f"error      {_ux.paint(error, 'red', colour)}")
    if info.get("compensation_held"):
        undo = ", ".join(info["compensation_held"])
        print(f"held       compensation of {undo} (not run; newest first)")
        print(
            f"           fix and `tideflow retry {info['run_id']}`, or give up: "
            f"`tideflow compensate {info['run_id']}`"
        )
    exits = info.get("exit_handlers")
    if exits is not None:
        if exits["running"]:
            print(f"exiting    handler {exits['running']} runs (outcome {exits['outcome']})")
        for failed in exits["errors"]:
            err = failed["error"]
            print(f"exit error handler {failed['handler']}: {err['type']}: {err['message']}")


def _wait_detail(cur: dict[str, Any]) -> str:
    """`signal go`, `update finish`, `one of the signals a, b`, or, for a wait that takes
    both, `one of signal approve, update nudge`."""
    kinds = [kind for kind in ("signal", "update") if kind in cur]
    if len(kinds) == 1:
        names = cur[kinds[0]]
        if isinstance(names, list):  # a wait for the first of several
            return f"one of the {kinds[0]}s " + ", ".join(names)
        return f"{kinds[0]} {names}"
    return "one of " + ", ".join(f"{kind} {name}" for kind in kinds for name in cur[kind])


def _worker_line(info: dict[str, Any]) -> str:
    """Who drives the run, or why nobody does."""
    if info.get("paused"):
        return "none: paused (`tideflow unpause` lets it go on)"
    if info.get("worker"):
        return str(info["worker"])
    current = info["current"]
    needs_one = not current or any(
        (cur.get("activity") and cur.get("task_status") != "callback")
        or cur.get("waiting_for") is None
        for cur in current
    )
    if not needs_one:  # timers, signals, children: a worker takes it up when one comes
        kinds = sorted({str(cur["waiting_for"]).replace("_", " ") for cur in current})
        return f"none needed until its {' / '.join(kinds)} comes"
    return "none: waiting for a worker (start one with `tideflow worker --activities ...`)"


def cmd_history(args: argparse.Namespace) -> int:
    from interpreter.cli.watch_cmds import print_history

    if args.follow and (args.segment is not None or args.all_segments):
        raise CliError(
            "--follow shows the current segment as it grows; it cannot be combined with "
            "--segment or --all",
            hint="drop --follow to see an earlier segment",
        )
    client = rt.open_client(args, create=False)
    if args.export:
        from interpreter.cli.replay_cmd import export_history

        doc = rt.call(lambda: export_history(client, args.run_id, args.export))
        print(f"exported {len(doc['events'])} events of run {args.run_id} to {args.export}")
        return EXIT_OK
    chain = rt.call(lambda: client.segments(args.run_id))
    events = rt.call(
        lambda: client.history(args.run_id, segment=args.segment, all_segments=args.all_segments)
    )
    if len(chain) > 1 and not args.all_segments and not args.json:
        shown = args.segment or chain[-1].segment
        print(
            f"segment {shown} of {len(chain)} (continue-as-new); the others: "
            "--segment N, or --all for the whole chain"
        )
    return print_history(client, args, events)


def cmd_signal(args: argparse.Namespace) -> int:
    payload = parse_json_arg(args.data, "--data")
    client = rt.open_client(args, create=False)
    signal_id = rt.call(lambda: client.signal(args.run_id, args.name, payload))
    if args.json:
        print_json({"run_id": args.run_id, "signal": args.name, "id": signal_id})
    else:
        print(f"signal {args.name} stored for {args.run_id}")
    return EXIT_OK


def cmd_query(args: argparse.Namespace) -> int:
    query_args = parse_json_arg(args.data, "--data")
    client = rt.open_client(args, create=False)
    value = rt.call(lambda: client.query(args.run_id, args.name, query_args))
    if args.json:
        print_json({"run_id": args.run_id, "query": args.name, "value": value})
    else:
        print(
            json.dumps(value, indent=2, ensure_ascii=False) if not isinstance(value, str) else value
        )
    return EXIT_OK
