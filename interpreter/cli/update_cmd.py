"""`tideflow update RUN NAME --data JSON [--id ID] [--timeout S]`: send an update and wait for
the run to apply it; print its value (docs/signals.md, "Updates")."""

from __future__ import annotations

import argparse
import json
from typing import Any

from interpreter.cli import _runtime as rt
from interpreter.cli._common import (
    EXIT_FAILED,
    EXIT_OK,
    parse_json_arg,
    print_error,
    print_json,
    run_id_arg,
    seconds_arg,
    text_arg,
)

DEFAULT_TIMEOUT = 60.0


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "update", help="send an update to a run and wait until it is applied; print its value"
    )
    parser.add_argument("run_id", metavar="RUN_ID", type=run_id_arg)
    parser.add_argument(
        "name", metavar="NAME", type=text_arg, help="an update the workflow declares"
    )
    parser.add_argument("--data", metavar="JSON|@FILE", help="the payload: JSON text or @file.json")
    parser.add_argument(
        "--id",
        dest="update_id",
        metavar="UPDATE_ID",
        type=text_arg,
        help="the update's id (default: a new one); the same id again returns the same "
        "outcome and never applies the update twice",
    )
    parser.add_argument(
        "--timeout",
        metavar="S",
        type=seconds_arg,
        default=DEFAULT_TIMEOUT,
        help=f"seconds to wait for a worker to apply it (default {DEFAULT_TIMEOUT:g}); the "
        "update stays stored after a timeout",
    )
    rt.add_db(parser)
    rt.add_json(parser)
    parser.set_defaults(handler=cmd_update)


def cmd_update(args: argparse.Namespace) -> int:
    import uuid  # here: `tideflow --help` imports every command module

    from interpreter.errors import UpdateRejected

    payload = parse_json_arg(args.data, "--data")
    update_id = uuid.uuid4().hex if args.update_id is None else args.update_id
    client = rt.open_client(args, create=False)
    head = {"run_id": args.run_id, "update": args.name, "id": update_id}

    def send() -> tuple[Any, UpdateRejected | None]:
        try:
            return client.update(
                args.run_id, args.name, payload, update_id=update_id, timeout=args.timeout
            ), None
        except UpdateRejected as exc:  # an outcome, not a failure of the command's arguments
            return None, exc

    value, rejected = rt.call(send)
    if rejected is not None:
        if args.json:
            print_json({**head, "status": "rejected", "message": rejected.message})
        print_error(rejected.message, hint=rejected.hint)
        return EXIT_FAILED
    if args.json:
        print_json({**head, "status": "applied", "value": value})
    else:
        print(
            json.dumps(value, indent=2, ensure_ascii=False) if not isinstance(value, str) else value
        )
    return EXIT_OK
