"""`status`, `history`, `list`, `cancel`, `terminate`, `signal`, `query`: looking at and steering
runs that already exist (`update` is in update_cmd.py)."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from typing import Any

from interpreter.cli import _runtime as rt
from interpreter.cli._common import EXIT_OK, parse_json_arg, print_json, run_id_arg, text_arg
from interpreter.core.records import TERMINAL_STATUSES

STATUSES = ("running", *sorted(TERMINAL_STATUSES))


def register(subparsers: Any) -> None:
    def command(
        name: str, help_: str, handler: Any, *, run_id: bool = True, json_: bool = True
    ) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = subparsers.add_parser(name, help=help_)
        if run_id:
            parser.add_argument("run_id", metavar="RUN_ID", type=run_id_arg)
        rt.add_db(parser)
        if json_:
            rt.add_json(parser)
        parser.set_defaults(handler=handler)
        return parser

    command(
        "status", "show a run: status, current state(s), vars, output, error, version", cmd_status
    )
    hist = command(
        "history",
        "show a run's event history (its current segment; --segment N or --all for earlier ones)",
        cmd_history,
    )
    which = hist.add_mutually_exclusive_group()
    which.add_argument(
        "--segment", type=_segment_arg, metavar="N", help="the events of segment N (1 = first)"
    )
    which.add_argument(
        "--all", action="store_true", dest="all_segments", help="every segment, oldest first"
    )
    hist.add_argument(
        "--export",
        metavar="FILE",
        help="write the whole history with its definition and input for `tideflow replay`",
    )
    lst = command("list", "list runs", cmd_list, run_id=False)
    lst.add_argument(
        "--status", choices=STATUSES, help=f"only runs with this status: {', '.join(STATUSES)}"
    )
    lst.add_argument("--workflow", type=text_arg, help="only runs of this workflow")
    command(
        "cancel", "cancel a run cooperatively (compensations run; status cancelled)", cmd_cancel
    )
    term = command("terminate", "end a run at once (no compensation)", cmd_terminate)
    term.add_argument("--reason", type=text_arg, default="terminated by user")
    sig = command("signal", "send a signal to a run", cmd_signal)
    sig.add_argument("name", metavar="NAME", type=text_arg)
    sig.add_argument("--data", metavar="JSON|@FILE", help="the payload: JSON text or @file.json")
    qry = command("query", "evaluate a declared query against the run's current state", cmd_query)
    qry.add_argument("name", metavar="NAME", type=text_arg)
    qry.add_argument(
        "--data", metavar="JSON|@FILE", help="the query's args: JSON text or @file.json"
    )


def _segment_arg(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a segment number (1, 2, ...), got {text!r}")
    return int(text)


def _time(ts: float | None) -> str:
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + "Z"


def cmd_status(args: argparse.Namespace) -> int:
    client = rt.open_client(args, create=False)
    info = rt.call(lambda: client.status(args.run_id))
    if args.json:
        print_json(info)
        return EXIT_OK
    print(f"run        {info['run_id']}")
    print(
        f"workflow   {info['workflow']} (version {info['version'] or '-'}, definition {info['definition_hash'][:12]})"
    )
    print(f"status     {info['status']}")
    for cur in info["current"]:
        detail = cur["waiting_for"] or "nothing"
        if cur.get("activity"):
            progress = {
                "ready": "not started: needs a worker that offers it",
                "backoff": "waiting to retry",
                "running": "running",
                "callback": "waiting for its callback (tideflow complete TOKEN)",
            }.get(cur.get("task_status", ""), cur.get("task_status", ""))
            detail = f"activity {cur['activity']}, attempt {cur['attempt']}, {progress}"
        elif isinstance(cur.get("signal"), list):  # a wait for the first of several
            detail = "one of the signals " + ", ".join(cur["signal"])
        elif cur.get("signal"):
            detail = f"signal {cur['signal']}"
        elif cur.get("child"):
            detail = f"child run {cur['child']}"
        print(f"current    {cur['state']} (waiting for {detail})")
    if info["parent_id"]:
        print(f"parent     {info['parent_id']}")
    if info["forked_from"]:
        print(f"forked     from {info['forked_from']['run']} at {info['forked_from']['state']}")
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
    print(f"created    {_time(info['created_at'])}")
    print(f"updated    {_time(info['updated_at'])}")
    if info["ended_at"]:
        print(f"ended      {_time(info['ended_at'])}")
    print(f"vars       {json.dumps(info['vars'], ensure_ascii=False)}")
    if info["output"] is not None:
        print(f"output     {json.dumps(info['output'], ensure_ascii=False)}")
    if info["error"]:
        print(f"error      {info['error']['type']}: {info['error']['message']}")
    exits = info.get("exit_handlers")
    if exits is not None:
        if exits["running"]:
            print(f"exiting    handler {exits['running']} runs (outcome {exits['outcome']})")
        for failed in exits["errors"]:
            err = failed["error"]
            print(f"exit error handler {failed['handler']}: {err['type']}: {err['message']}")
    return EXIT_OK


def cmd_history(args: argparse.Namespace) -> int:
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
    # The history is read page by page while it prints: a store error can come mid-way.
    with rt.translated_errors():
        if args.json:
            # Streamed: one array, written event by event, so huge histories stay cheap.
            out = sys.stdout
            out.write("[")
            for index, event in enumerate(events):
                out.write(("," if index else "") + "\n" + json.dumps(event, ensure_ascii=False))
            out.write("\n]\n")
            return EXIT_OK
        if len(chain) > 1 and not args.all_segments:
            shown = args.segment or chain[-1].segment
            print(
                f"segment {shown} of {len(chain)} (continue-as-new); the others: "
                "--segment N, or --all for the whole chain"
            )
        print(f"{'SEQ':>5}  {'TIME':<24} {'TYPE':<22} {'STATE':<18} {'ATT':>3}  PAYLOAD")
        for event in events:
            payload = json.dumps(event["payload"], ensure_ascii=False)
            if len(payload) > 100:
                payload = payload[:97] + "..."
            print(
                f"{event['seq']:>5}  {_time(event['time']):<24} {event['type']:<22} {event['state'] or '':<18} {event['attempt'] or '':>3}  {payload}"
            )
    return EXIT_OK


def cmd_list(args: argparse.Namespace) -> int:
    from interpreter.client import describe

    client = rt.open_client(args, create=False)
    runs = rt.call(lambda: client.list_runs(status=args.status, workflow=args.workflow))
    if args.json:
        print_json(
            [
                {k: v for k, v in describe(r).items() if k not in ("vars", "input", "current")}
                for r in runs
            ]
        )
        return EXIT_OK
    print(f"{'RUN ID':<40} {'WORKFLOW':<18} {'STATUS':<10} {'CREATED':<24} PARENT")
    for r in runs:
        fork = r.state.get("run", {}).get("forked_from")
        link = r.parent_id or (f"fork of {fork['run']} at {fork['state']}" if fork else "")
        print(f"{r.id:<40} {r.workflow:<18} {r.status:<10} {_time(r.created_at):<24} {link}")
    return EXIT_OK


def cmd_cancel(args: argparse.Namespace) -> int:
    client = rt.open_client(args, create=False)
    rt.call(lambda: client.cancel(args.run_id))
    if args.json:
        print_json({"run_id": args.run_id, "cancel_requested": True})
    else:
        print(f"cancel requested for {args.run_id}; compensations run when a worker picks it up")
    return EXIT_OK


def cmd_terminate(args: argparse.Namespace) -> int:
    client = rt.open_client(args, create=False)
    record = rt.call(lambda: client.terminate(args.run_id, args.reason))
    if args.json:
        print_json({"run_id": record.id, "status": record.status})
    else:
        print(f"run {record.id} {record.status}")
    return EXIT_OK


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
