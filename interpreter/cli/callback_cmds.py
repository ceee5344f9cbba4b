"""`complete` and `heartbeat`: answering a callback task (`completion: callback`) with the token
its activity sent out.

Exit codes: 0 applied (a worker moves the run on when it comes); 1 the token is unknown, was
already used, or is late (its attempt ended); 2 the token is malformed, the arguments are
invalid, or the store cannot be used. A refused token changes nothing.
"""

from __future__ import annotations

import argparse
from typing import Any

from interpreter.cli import _runtime as rt
from interpreter.cli._common import EXIT_OK, CliError, parse_json_arg, print_json, text_arg


def register(subparsers: Any) -> None:
    done = subparsers.add_parser(
        "complete",
        help="complete a callback task with its token: --result JSON, or --error TYPE",
        description="Complete the attempt a callback token addresses. Exit 0: applied; "
        "1: unknown, already used or late token; 2: malformed token or bad arguments.",
    )
    done.add_argument("token", metavar="TOKEN", type=text_arg)
    outcome = done.add_mutually_exclusive_group(required=True)
    outcome.add_argument("--result", metavar="JSON|@FILE", help="the state's result")
    outcome.add_argument("--error", metavar="TYPE", type=text_arg, help="fail the attempt")
    done.add_argument("--message", type=text_arg, default="", help="with --error: the message")
    done.add_argument("--details", metavar="JSON|@FILE", help="with --error: the details")
    rt.add_db(done)
    rt.add_json(done)
    done.set_defaults(handler=cmd_complete)

    beat = subparsers.add_parser(
        "heartbeat",
        help="tell a callback task that its outside party is alive (resets its heartbeat timeout)",
    )
    beat.add_argument("token", metavar="TOKEN", type=text_arg)
    beat.add_argument("--details", metavar="JSON|@FILE", help="progress details (JSON)")
    rt.add_db(beat)
    rt.add_json(beat)
    beat.set_defaults(handler=cmd_heartbeat)


def cmd_complete(args: argparse.Namespace) -> int:
    if args.error is None and (args.message or args.details is not None):
        raise CliError(
            "--message and --details go with --error", hint="use --result JSON to complete"
        )
    details = parse_json_arg(args.details, "--details")
    result = parse_json_arg(args.result, "--result") if args.error is None else None
    client = rt.open_client(args, create=False)
    if args.error is None:
        target = rt.call(lambda: client.complete_callback(args.token, result))
    else:
        target = rt.call(
            lambda: client.fail_callback(args.token, args.error, args.message, details)
        )
    outcome = "completed" if args.error is None else "failed"
    return _report(args, target, outcome)


def cmd_heartbeat(args: argparse.Namespace) -> int:
    details = parse_json_arg(args.details, "--details")
    client = rt.open_client(args, create=False)
    target = rt.call(lambda: client.heartbeat_callback(args.token, details))
    return _report(args, target, "heartbeat")


def _report(args: argparse.Namespace, target: dict[str, Any], outcome: str) -> int:
    if args.json:
        print_json({**target, "outcome": outcome})
    else:
        what = "heartbeat recorded for" if outcome == "heartbeat" else f"{outcome}:"
        print(
            f"{what} state {target['state']} of run {target['run_id']} "
            f"(attempt {target['attempt']}); a worker applies it"
        )
    return EXIT_OK
