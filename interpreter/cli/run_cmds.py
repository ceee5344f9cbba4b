"""`run`, `start`, `resume`, `worker`: creating and executing runs."""

from __future__ import annotations

import argparse
import shlex
import signal
import sys
from typing import TYPE_CHECKING, Any

from interpreter.cli import _runtime as rt
from interpreter.cli._common import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    CliError,
    int_range_arg,
    new_run_id_arg,
    parse_json_arg,
    print_json,
    run_id_arg,
    seconds_arg,
    workflow_dirs,
    workflow_file,
)
from interpreter.cli.progress import Progress
from interpreter.core.statuses import TERMINAL_STATUSES

if TYPE_CHECKING:
    from interpreter.store import RunRecord

# More runs than this at once would be more threads and connections than one process can use.
MAX_CONCURRENCY = 10_000


def register(subparsers: Any) -> None:
    run = subparsers.add_parser(
        "run", help="validate, start and execute a workflow in this process, wait for the end"
    )
    _add_start_args(run)
    _add_grace(run)
    run.set_defaults(handler=cmd_run)

    start = subparsers.add_parser(
        "start",
        help="create a run (a worker executes it) and print its id",
        description="Create a run for the workers to execute and print its id. With "
        "--activities, every activity the workflow names must be registered by them; without, "
        "the activities are left to the workers (the run waits until one offers them).",
    )
    _add_start_args(start)
    start.set_defaults(handler=cmd_start)

    resume = subparsers.add_parser(
        "resume", help="execute an existing run in the foreground until it ends"
    )
    resume.add_argument("run_id", metavar="RUN_ID", type=run_id_arg, help="the run to go on with")
    rt.add_activities(resume)
    rt.add_db(resume)
    _add_workflows(resume)
    _add_grace(resume)
    rt.add_json(resume)
    resume.set_defaults(handler=cmd_resume)

    worker = subparsers.add_parser(
        "worker", help="execute runs from the store until SIGINT/SIGTERM"
    )
    rt.add_activities(worker)
    rt.add_db(worker)
    worker.add_argument(
        "--concurrency",
        type=int_range_arg(1, MAX_CONCURRENCY),
        default=200,
        metavar="N",
        help=f"runs driven at once, 1 to {MAX_CONCURRENCY:,} (default 200)",
    )
    _add_workflows(worker)
    _add_grace(worker)
    worker.add_argument(
        "--log-format",
        choices=("text", "json", "none"),
        default="none",
        help="log one line per run event on stderr, as text or JSON (default none)",
    )
    worker.set_defaults(handler=cmd_worker)


def _add_workflows(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--workflows",
        metavar="DIR",
        action="append",
        default=[],
        help="where child workflows are looked up by name (repeatable)",
    )


def _add_grace(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--grace",
        type=seconds_arg,
        default=10.0,
        metavar="SECONDS",
        help="on Ctrl-C/SIGTERM, how long activities in flight may finish, 0 to 86,400 "
        "(default 10); a second signal stops at once",
    )


def _add_start_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="FILE", help="the workflow file (.yaml, .yml or .json)")
    parser.add_argument(
        "--input", metavar="JSON|@FILE", help="the run input: JSON text or @file.json"
    )
    rt.add_activities(parser)
    rt.add_db(parser)
    parser.add_argument(
        "--id",
        dest="run_id",
        metavar="RUN_ID",
        type=new_run_id_arg,
        help="the run id (starting an existing id returns that run)",
    )
    _add_workflows(parser)
    rt.add_json(parser)


def _prepare(args: argparse.Namespace, *, executes: bool) -> tuple[Any, RunRecord, bool]:
    """Validate, check activities and create the run. `start` without --activities leaves the
    activities to the workers (another machine, another pool), so it checks none."""
    from interpreter.client import load_definition

    input_ = parse_json_arg(args.input, "--input")
    path = workflow_file(args.file)
    dirs = workflow_dirs(args.workflows)
    registered = rt.load_activities(args.activities)
    defn = rt.call(lambda: load_definition(path, dirs))
    if executes or args.activities:
        rt.require_activities(defn, registered)
    client = rt.open_client(args)
    record, created = rt.call(lambda: client.start_run(defn, input_, run_id=args.run_id))
    return client, record, created


def _finish(client: Any, record: RunRecord, args: argparse.Namespace) -> int:
    progress = Progress(enabled=sys.stderr.isatty() and not args.json)
    progress.begin(record)
    dirs = workflow_dirs(args.workflows)
    try:
        final = rt.call(
            lambda: client.execute(
                record.id, workflow_dirs=dirs, on_events=progress, grace=args.grace
            )
        )
    except KeyboardInterrupt:
        return _interrupted(client, record.id, args)
    result = {
        "run_id": final.id,
        "workflow": final.workflow,
        "status": final.status,
        "output": final.output,
        "error": final.error,
    }
    if args.json:
        print_json(result)
    else:
        progress.summary(result, took=(final.ended_at or final.updated_at) - final.created_at)
        for failed in (final.state.get("exit") or {}).get("errors", []):
            err = failed["error"]
            print(f"exit handler {failed['handler']} failed: {err['type']}: {err['message']}")
    return EXIT_OK if final.status == "completed" else EXIT_FAILED


def _interrupted(client: Any, run_id: str, args: argparse.Namespace) -> int:
    """Ctrl-C while executing: the run is durable, so say how to continue it."""
    try:
        status = client.get(run_id).status
    except Exception:  # the store went away too: the run is where its last commit left it
        status = "running"
    again = ["tideflow", "resume", run_id]
    for spec in args.activities:
        again += ["--activities", spec]
    for directory in args.workflows:
        again += ["--workflows", directory]
    if args.db:
        again += ["--db", args.db]
    if status == "running":
        print(
            f"interrupted; run {run_id} is still running — continue it with: {shlex.join(again)}",
            file=sys.stderr,
        )
    else:
        print(f"interrupted; run {run_id} already ended ({status})", file=sys.stderr)
    if args.json:
        print_json({"run_id": run_id, "status": status, "interrupted": True})
    return EXIT_INTERRUPTED


def cmd_run(args: argparse.Namespace) -> int:
    client, record, created = _prepare(args, executes=True)
    if not created and record.status in TERMINAL_STATUSES:
        # Not silently the old result: this invocation did not run anything.
        print(
            f"run {record.id} already ended ({record.status}); not run again, showing its "
            "stored result (give another --id, or none, to run the workflow anew)",
            file=sys.stderr,
        )
    return _finish(client, record, args)


def cmd_start(args: argparse.Namespace) -> int:
    _client, record, created = _prepare(args, executes=False)
    if args.json:
        print_json(
            {
                "run_id": record.id,
                "workflow": record.workflow,
                "status": record.status,
                "created": created,
            }
        )
    else:
        print(record.id)
        if not created:
            print(
                f"run {record.id} already exists ({record.status}); not started again",
                file=sys.stderr,
            )
    return EXIT_OK


def cmd_resume(args: argparse.Namespace) -> int:
    workflow_dirs(args.workflows)
    registered = rt.load_activities(args.activities)
    client = rt.open_client(args, create=False)
    record = rt.call(lambda: client.get(args.run_id))
    rt.require_activities(rt.call(lambda: client.definition_of(record)), registered)
    return _finish(client, record, args)


def cmd_worker(args: argparse.Namespace) -> int:
    import asyncio

    from interpreter.worker import Worker

    dirs = workflow_dirs(args.workflows)
    offered = rt.load_activities(args.activities)
    client = rt.open_client(args)
    from interpreter.cli.event_log import EventLog

    worker = Worker(
        client.store,
        concurrency=args.concurrency,
        workflow_dirs=dirs,
        activities=offered,
        on_events=None if args.log_format == "none" else EventLog(args.log_format),
    )

    async def main() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, worker.stop)
        print(f"worker {worker.owner} on {client.store.url}; Ctrl-C to stop", file=sys.stderr)
        if not args.activities:
            # A worker only claims runs whose activities it offers: say so, or it looks stuck.
            print(
                "note: no --activities given: this worker runs only the built-in http activity;"
                " runs that need others wait for a worker that offers them",
                file=sys.stderr,
            )
        await worker.run(grace=args.grace)

    try:
        rt.call(lambda: asyncio.run(main()))
    except CliError as exc:
        # The reason a worker stopped by itself belongs in its log, beside its start line.
        print(f"worker stopped: {exc}", file=sys.stderr)
        raise
    print("worker stopped", file=sys.stderr)
    return EXIT_OK
