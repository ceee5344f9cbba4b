"""`retry RUN [--definition FILE]` and `fork RUN --from STATE [--id NEW]`: continue an ended
run from the step that ended it, or start a new run from a state of an old one. Both reuse the
recorded activity results (interpreter/redrive.py); a worker (or `resume`) executes the rest.
`compensate RUN` gives up on a run that failed with its compensations held: they run
(interpreter/release.py), and it ends failed again."""

from __future__ import annotations

import argparse
from typing import Any

from interpreter.cli import _runtime as rt
from interpreter.cli import list_cmds
from interpreter.cli._common import (
    EXIT_OK,
    new_run_id_arg,
    print_json,
    run_id_arg,
    text_arg,
    workflow_dirs,
    workflow_file,
)

# The statuses a retry can continue from (interpreter/redrive.py).
RETRYABLE = ("failed", "timed_out", "cancelled")


def register(subparsers: Any) -> None:
    retry: argparse.ArgumentParser = subparsers.add_parser(
        "retry",
        help="continue a failed, timed-out or cancelled run from the step that ended it",
        description="Continue a failed, timed-out or cancelled run from the step that ended it, "
        "keeping the results of completed activities; then a worker (or resume) executes it. "
        "Give one RUN_ID, or filter options to retry every ended run they match (by default "
        "those failed, timed out or cancelled), one transaction per run.",
        epilog="examples:\n  tideflow retry booking_saga-1a2b3c\n"
        "  tideflow retry order-1a2b3c --definition order.v2.yaml --json\n"
        "  tideflow retry --workflow order --error PaymentGatewayDown --since 2h --yes\n"
        "  tideflow resume order-1a2b3c --activities samples/activities.py",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    list_cmds.add_run_or_filter(retry, cmd_retry)
    retry.add_argument(
        "--definition",
        metavar="FILE",
        help="move the run to this edited definition (only if replay finds it compatible)",
    )

    fork: argparse.ArgumentParser = subparsers.add_parser(
        "fork",
        help="start a new run from a state of a run, reusing its results up to there",
        epilog="examples:\n  tideflow fork order-1a2b3c --from ship\n"
        "  tideflow fork order-1a2b3c --from charge --id order-1a2b3c-again --json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    fork.add_argument("run_id", metavar="RUN_ID", type=run_id_arg)
    fork.add_argument(
        "--from",
        dest="from_state",
        metavar="STATE",
        required=True,
        type=text_arg,
        help="the state to execute from (the first time the run entered it)",
    )
    fork.add_argument(
        "--id",
        dest="new_id",
        metavar="NEW_ID",
        type=new_run_id_arg,
        help="the new run's id (default: the workflow name and a random suffix)",
    )
    rt.add_db(fork)
    rt.add_json(fork)
    fork.set_defaults(handler=cmd_fork)

    compensate: argparse.ArgumentParser = subparsers.add_parser(
        "compensate",
        help="give up on a failed run whose compensations are held: run them, newest first",
        description="Give up on a run that failed with its compensations held (a workflow with "
        "`saga: {on_failure: hold}`): it reopens, runs the held compensations newest first, "
        "then ends failed again with its original error; a worker (or resume) executes them. "
        "Afterwards the run can no longer be retried. Asks for confirmation unless --yes. "
        "Give one RUN_ID, or filter options to compensate every failed run they match.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    list_cmds.add_run_or_filter(compensate, cmd_compensate)


def cmd_retry(args: argparse.Namespace) -> int:
    from interpreter.client import load_definition

    defn = None
    if args.definition:
        defn = rt.call(lambda: load_definition(workflow_file(args.definition), workflow_dirs([])))
    if args.run_id is None or list_cmds.has_filter(args):
        return list_cmds.bulk_request(
            args,
            "retry",
            lambda client, run_id: client.retry(run_id, definition=defn),
            default_statuses=RETRYABLE,
        )
    client = rt.open_client(args, create=False)
    record = rt.call(lambda: client.retry(args.run_id, definition=defn))
    if args.json:
        print_json(
            {"run_id": record.id, "status": record.status, "definition_hash": record.def_hash}
        )
    else:
        print(f"run {record.id} continues from its failed step")
        print(f"  execute it: tideflow resume {record.id} --activities ... (or a worker)")
    return EXIT_OK


def cmd_fork(args: argparse.Namespace) -> int:
    client = rt.open_client(args, create=False)
    record = rt.call(lambda: client.fork(args.run_id, args.from_state, new_id=args.new_id))
    if args.json:
        print_json({"run_id": record.id, "forked_from": args.run_id, "state": args.from_state})
    else:
        print(record.id)
    return EXIT_OK


def cmd_compensate(args: argparse.Namespace) -> int:
    if args.run_id is None or list_cmds.has_filter(args):
        return list_cmds.bulk_request(
            args,
            "compensate",
            lambda client, run_id: client.compensate(run_id),
            default_statuses=("failed",),
        )
    client = rt.open_client(args, create=False)
    held = rt.call(lambda: client.get(args.run_id)).state.get("held") or []
    if held:  # undoing is final: ask first (a refusal needs no question)
        subject = f"run {args.run_id} ({', '.join(held)})"
        list_cmds.confirm(1, "compensate", args, subject=subject)
    record = rt.call(lambda: client.compensate(args.run_id))
    if args.json:
        print_json({"run_id": record.id, "status": record.status, "compensating": held})
    else:
        print(f"run {record.id} compensates {', '.join(held)} (newest first), then ends failed")
        print(f"  execute it: tideflow resume {record.id} --activities ... (or a worker)")
    return EXIT_OK
