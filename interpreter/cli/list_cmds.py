"""`list`, `cancel`, `terminate` and `prune`: finding runs by a filter (newest first, page by
page) and acting on every run a filter matches, one run per transaction."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from interpreter.cli import _runtime as rt
from interpreter.cli import _ux
from interpreter.cli._common import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    CliError,
    print_json,
    run_id_arg,
    text_arg,
)
from interpreter.core.statuses import TERMINAL_STATUSES

if TYPE_CHECKING:
    from interpreter.client import Client
    from interpreter.store import RunFilter, RunSummary

STATUSES = ("running", *sorted(TERMINAL_STATUSES))
DEFAULT_LIMIT = 100
MAX_LIMIT = 100_000
PRUNE_BATCH = 500

_DURATION = r"^(\d+(?:\.\d+)?)(s|m|h|d|w)$"
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


# ----------------------------------------------------------------- argument types


def duration_arg(value: str) -> float:
    """`30d`, `12h`, `90m`, `45s`, `2w`: a number of seconds."""
    import re

    match = re.match(_DURATION, value.strip())
    if not match:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a duration; write a number and a unit: 45s, 90m, 12h, 30d, 2w"
        )
    return float(match.group(1)) * _UNIT[match.group(2)]


def time_arg(value: str) -> float:
    """A point in time: ISO 8601 (`2026-12-01`, `2026-12-01T10:00:00Z`) or a duration ago
    (`2h`: two hours ago)."""
    import re

    if re.match(_DURATION, value.strip()):
        return time.time() - duration_arg(value)
    from datetime import UTC, datetime

    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a time; give ISO 8601 (2026-12-01 or 2026-12-01T10:00:00Z, "
            "UTC unless an offset is given) or a duration ago (2h, 30m, 7d)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def limit_arg(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if not 1 <= number <= MAX_LIMIT:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number from 1 to {MAX_LIMIT:,}")
    return number


def encode_cursor(run: RunSummary) -> str:
    import base64

    raw = json.dumps([run.created_at, run.id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def cursor_arg(value: str) -> tuple[float, str]:
    import base64

    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
        created, run_id = json.loads(raw)
        if isinstance(created, int | float) and isinstance(run_id, str):
            return float(created), run_id
    except (ValueError, TypeError):
        pass
    raise argparse.ArgumentTypeError(
        f"{value[:40]!r} is not a cursor printed by `tideflow list`; copy the --cursor value "
        "from the previous page"
    )


# ----------------------------------------------------------------- registration

LIST_EXAMPLES = """examples:
  tideflow list
  tideflow list --status failed --since 24h
  tideflow list --workflow order --error PaymentDeclined --output jsonl
  tideflow list --forked-from order-1a2b3c
  tideflow list --limit 20 --cursor <token printed by the previous page>"""

BULK_EXAMPLES = """examples:
  tideflow {name} order-1a2b3c
  tideflow {name} --workflow order --status running --since 1h
  tideflow {name} --error Timeout --yes"""

PRUNE_EXAMPLES = """examples:
  tideflow prune --older-than 30d --dry-run
  tideflow prune --older-than 7d --status completed --yes"""


def add_filters(parser: argparse.ArgumentParser, *, statuses: tuple[str, ...] = STATUSES) -> None:
    group = parser.add_argument_group("filters (combined with AND)")
    group.add_argument(
        "--status",
        action="append",
        choices=(*statuses, "paused"),
        metavar="STATUS",
        help=f"only runs with this status (repeatable): {', '.join(statuses)}, or paused",
    )
    group.add_argument(
        "--workflow",
        type=text_arg,
        metavar="NAME",
        help="only runs of this workflow (checked against the workflows in the store)",
    )
    group.add_argument(
        "--parent", type=run_id_arg, metavar="RUN_ID", help="only children of this run"
    )
    group.add_argument(
        "--forked-from",
        type=run_id_arg,
        metavar="RUN_ID",
        help="only runs forked from this run (`tideflow fork`)",
    )
    group.add_argument(
        "--error", type=text_arg, metavar="TYPE", help="only runs that ended with this error type"
    )
    group.add_argument(
        "--since",
        type=time_arg,
        metavar="TIME",
        help="only runs created at or after TIME: ISO 8601 (UTC) or a duration ago (2h, 7d)",
    )
    group.add_argument(
        "--until", type=time_arg, metavar="TIME", help="only runs created before TIME (as --since)"
    )


def add_run_or_filter(
    parser: argparse.ArgumentParser,
    handler: Callable[[argparse.Namespace], int],
    *,
    statuses: tuple[str, ...] = STATUSES,
) -> None:
    """The arguments of a command that acts on one run by id or on every run a filter matches
    (cancel, terminate, retry, compensate): RUN_ID, the filters, --yes, --json and --db."""
    parser.add_argument(
        "run_id", metavar="RUN_ID", type=run_id_arg, nargs="?", help="the run (or a filter)"
    )
    add_filters(parser, statuses=statuses)
    add_yes(parser)
    rt.add_json_db_handler(parser, handler)


def add_yes(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--yes",
        "-y",
        action="store_true",
        help="do not ask for confirmation (needed when stdin is not a terminal)",
    )


def register(subparsers: Any) -> None:
    lst = subparsers.add_parser(
        "list",
        help="list runs, newest first, with filters and paging",
        description="List runs newest first. At most --limit runs are shown; when there are "
        "more, a --cursor token for the next page is printed on stderr.",
        epilog=LIST_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_filters(lst)
    lst.add_argument(
        "--limit",
        type=limit_arg,
        default=DEFAULT_LIMIT,
        metavar="N",
        help=f"at most N runs (default {DEFAULT_LIMIT})",
    )
    lst.add_argument(
        "--cursor", type=cursor_arg, metavar="TOKEN", help="the next page, from the previous one"
    )
    lst.add_argument(
        "--output",
        choices=("table", "json", "jsonl"),
        help="table (default), json (one array) or jsonl (one object a line)",
    )
    rt.add_json(lst, "same as --output json")
    rt.add_readable(lst)
    rt.add_db(lst)
    lst.set_defaults(handler=cmd_list)

    for name, help_, handler in (
        ("cancel", "cancel runs cooperatively (compensations run; status cancelled)", cmd_cancel),
        ("terminate", "end runs at once (no compensation)", cmd_terminate),
    ):
        bulk = rt.add_family_command(
            subparsers,
            name,
            help_,
            details=": one run by id, or every running run a filter matches (each run's request "
            "is its own transaction, so an interrupted bulk request leaves every run either "
            "requested or untouched).",
            epilog=BULK_EXAMPLES,
        )
        add_run_or_filter(bulk, handler, statuses=("running",))
        if name == "terminate":
            bulk.add_argument(
                "--reason",
                type=text_arg,
                default="terminated by user",
                help="recorded as the run's error message (default: terminated by user)",
            )

    prune = subparsers.add_parser(
        "prune",
        help="delete ended runs and their history, to keep the store bounded",
        description="Delete runs that ended more than --older-than ago, with their events, "
        "inbox, map rows, inputs and heartbeats, in batches of "
        f"{PRUNE_BATCH} (one transaction each). Running runs, and ended children of a "
        "running parent, are kept.",
        epilog=PRUNE_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    prune.add_argument(
        "--older-than",
        type=duration_arg,
        required=True,
        metavar="AGE",
        help="runs that ended longer ago than AGE: 45s, 90m, 12h, 30d, 2w",
    )
    prune.add_argument(
        "--status",
        action="append",
        choices=sorted(TERMINAL_STATUSES),
        metavar="STATUS",
        help=f"only ended runs with this status (repeatable): {', '.join(sorted(TERMINAL_STATUSES))}",
    )
    prune.add_argument("--dry-run", action="store_true", help="count what would go; delete nothing")
    add_yes(prune)
    rt.add_json_db_handler(prune, cmd_prune)


# ----------------------------------------------------------------- the filter


def build_filter(
    client: Client, args: argparse.Namespace, *, running_only: bool = False
) -> RunFilter:
    if args.workflow is not None:
        known = rt.call(client.store.workflow_names)
        if args.workflow not in known:
            close = _ux.did_you_mean(args.workflow, known)
            raise CliError(
                f"no workflow named {args.workflow!r} in this store",
                hint=f"did you mean {close!r}?"
                if close
                else f"known workflows: {', '.join(known[:20]) or 'none yet'}",
            )
    return run_filter(
        args.status or (),
        workflow=args.workflow,
        parent=args.parent,
        forked_from=args.forked_from,
        error=args.error,
        since=args.since,
        until=args.until,
        running_only=running_only,
    )


def run_filter(
    statuses: Sequence[str],
    *,
    workflow: str | None = None,
    parent: str | None = None,
    forked_from: str | None = None,
    error: str | None = None,
    since: float | None = None,
    until: float | None = None,
    running_only: bool = False,
) -> RunFilter:
    """The store's filter for `list`'s options, which are also the server's query parameters
    (`paused` is a status here, a flag of running runs in the store)."""
    from interpreter.store import RunFilter

    paused = True if "paused" in statuses else None
    kept = tuple(s for s in statuses if s != "paused")
    if paused and kept:
        raise CliError(
            "--status paused cannot be combined with other statuses (a paused run is running)",
            hint="give --status paused alone",
        )
    if running_only or paused:
        kept = ("running",)
    return RunFilter(
        statuses=kept,
        workflow=workflow,
        parent_id=parent,
        forked_from=forked_from,
        error_type=error,
        since=since,
        until=until,
        paused=paused,
    )


def has_filter(args: argparse.Namespace) -> bool:
    return any(
        getattr(args, name) is not None
        for name in ("status", "workflow", "parent", "forked_from", "error", "since", "until")
    )


# ----------------------------------------------------------------- list


def summary_json(run: RunSummary) -> dict[str, Any]:
    from interpreter.store.base import fork_link

    return {
        "run_id": run.id,
        "workflow": run.workflow,
        "version": run.version,
        "definition_hash": run.def_hash,
        "status": run.status,
        "paused": run.paused,
        "parent_id": run.parent_id,
        "root_id": run.root_id,
        "forked_from": fork_link(run.forked_from, run.forked_from_state),
        "error": run.error,
        "compensation_held": run.compensation_held,
        "created_at": run.created_at,
        "updated_at": run.updated_at,
        "ended_at": run.ended_at,
    }


def _page(
    client: Client, where: RunFilter, args: argparse.Namespace
) -> tuple[list[RunSummary], str | None]:
    """One page of runs and the next page's cursor (None on the last page)."""
    runs = rt.call(lambda: client.store.find_runs(where, limit=args.limit + 1, before=args.cursor))
    more = len(runs) > args.limit
    runs = runs[: args.limit]
    cursor = encode_cursor(runs[-1]) if more and runs else None
    return runs, cursor


def cmd_list(args: argparse.Namespace) -> int:
    client = rt.open_client(args, create=False)
    where = build_filter(client, args)
    runs, cursor = _page(client, where, args)
    output = "json" if args.json else (args.output or "table")
    if output == "json":
        print_json([summary_json(r) for r in runs])
    elif output == "jsonl":
        for run in runs:
            print_json(summary_json(run))
    else:
        now = time.time()
        colour = _ux.colour_enabled()
        # The fork column only when the page shows a fork: most stores have none, and the
        # table stays as narrow as before.
        forks = any(r.forked_from for r in runs)
        rows, tints = [], []
        for r in runs:
            status = "paused" if r.paused else r.status
            tint = _ux.STATUS_COLOURS.get(status)
            if r.compensation_held:
                status += " (held)"  # its compensations wait: `tideflow status RUN` says more
            took = _ux.duration((r.ended_at or now) - r.created_at)
            rows.append(
                [
                    r.id,
                    r.workflow,
                    status,
                    _ux.show_time(r.created_at, relative=args.relative, now=now),
                    took,
                    r.parent_id or "",
                ]
            )
            tints.append([None, None, tint, "dim", None, None])
            if forks:
                rows[-1].append(
                    f"{r.forked_from} at {r.forked_from_state}" if r.forked_from else ""
                )
                tints[-1].append(None)
        headers = ["RUN ID", "WORKFLOW", "STATUS", "CREATED", "DURATION", "PARENT"]
        headers += ["FORKED FROM"] if forks else []
        width = 10**6 if args.wide else None
        for line in _ux.table(headers, rows, width=width, colours=tints, colour=colour):
            print(line)
    if cursor:
        print(f"more runs: add --cursor {cursor}", file=sys.stderr)
    return EXIT_OK


# ----------------------------------------------------------------- bulk requests


def confirm(count: int, what: str, args: argparse.Namespace, *, subject: str | None = None) -> None:
    """Ask before `what` is done to `count` matching runs (or to `subject`, one named run)."""
    if args.yes:
        return
    target = subject or f"{count:,} run(s)"
    if not sys.stdin.isatty():
        matched = "" if subject else f"{count:,} run(s) match; "
        raise CliError(
            f"{matched}refusing to {what} {subject or 'them'} without confirmation",
            hint="add --yes to confirm (stdin is not a terminal, so nobody can be asked)",
        )
    sys.stderr.write(f"{what} {target}? [y/N] ")
    sys.stderr.flush()
    answer = sys.stdin.readline().strip().lower()
    if answer not in ("y", "yes"):
        raise CliError(
            "nothing done", hint="answer y to go ahead, or pass --yes", exit_code=EXIT_FAILED
        )


def bulk_request(
    args: argparse.Namespace,
    verb: str,
    act: Any,
    *,
    default_statuses: tuple[str, ...] | None = None,
) -> int:
    """Apply `act(client, run_id)` to every run matching the filter, one run (one transaction)
    at a time, walking the matching runs newest first by keyset pages. Without
    `default_statuses` only running runs match (cancel, terminate); with them (retry), the
    filter's --status, or else those statuses."""
    if args.run_id is not None and has_filter(args):
        raise CliError(
            f"give either a RUN_ID or filter options to {verb}, not both",
            hint=f"`tideflow {verb} RUN_ID`, or `tideflow {verb} --workflow NAME ...`",
        )
    if not has_filter(args):
        raise CliError(
            f"{verb} needs a RUN_ID or at least one filter option",
            hint=f"e.g. `tideflow {verb} RUN_ID` or `tideflow {verb} --workflow NAME --yes`",
        )
    client = rt.open_client(args, create=False)
    if default_statuses is None:
        where = build_filter(client, args, running_only=True)
        which = "running "
    else:
        if not args.status:
            args.status = list(default_statuses)
        where = build_filter(client, args)
        which = ""
    count = rt.call(lambda: client.store.count_runs(where))
    print(f"{count:,} {which}run(s) match", file=sys.stderr)
    if count:
        confirm(count, verb, args)
    done = skipped = 0
    progress = sys.stderr.isatty()
    before: tuple[float, str] | None = None
    try:
        while count:
            with rt.translated_errors():
                batch = client.store.find_runs(where, limit=200, before=before)
            for run in batch:
                try:
                    with rt.translated_errors():
                        act(client, run.id)
                    done += 1
                except CliError as refused:  # ended meanwhile, or refused (retry)
                    skipped += 1
                    if default_statuses is not None:
                        print(f"\n{run.id}: {refused.message}", file=sys.stderr)
                if progress:
                    sys.stderr.write(f"\r{verb}: {done + skipped:,}/{count:,}")
            if len(batch) < 200:
                break
            before = (batch[-1].created_at, batch[-1].id)
    except KeyboardInterrupt:
        sys.stderr.write(
            f"\ninterrupted: {verb} done for {done:,} run(s); the rest are untouched\n"
        )
        return EXIT_INTERRUPTED
    if progress and count:
        sys.stderr.write("\n")
    if args.json:
        print_json({"matched": count, "done": done, "skipped": skipped})
    else:
        why = "refused or changed meanwhile" if default_statuses else "ended meanwhile"
        print(f"{verb}: {done:,} run(s) done, {skipped:,} skipped ({why})")
    return EXIT_OK


def cmd_cancel(args: argparse.Namespace) -> int:
    if args.run_id is None or has_filter(args):
        return bulk_request(args, "cancel", lambda client, run_id: client.cancel(run_id))
    client = rt.open_client(args, create=False)
    rt.call(lambda: client.cancel(args.run_id))
    if args.json:
        print_json({"run_id": args.run_id, "cancel_requested": True})
    else:
        print(f"cancel requested for {args.run_id}; compensations run when a worker picks it up")
    return EXIT_OK


def cmd_terminate(args: argparse.Namespace) -> int:
    if args.run_id is None or has_filter(args):
        return bulk_request(
            args, "terminate", lambda client, run_id: client.terminate(run_id, args.reason)
        )
    client = rt.open_client(args, create=False)
    record = rt.call(lambda: client.terminate(args.run_id, args.reason))
    if args.json:
        print_json({"run_id": record.id, "status": record.status})
    else:
        print(f"run {record.id} {record.status}")
    return EXIT_OK


# ----------------------------------------------------------------- prune


def cmd_prune(args: argparse.Namespace) -> int:
    from interpreter.store import RunFilter

    client = rt.open_client(args, create=False)
    where = RunFilter(statuses=tuple(args.status or ()), ended_before=time.time() - args.older_than)
    from dataclasses import replace

    count = rt.call(
        lambda: client.store.count_runs(
            replace(where, statuses=where.statuses or tuple(sorted(TERMINAL_STATUSES)))
        )
    )
    if args.dry_run:
        if args.json:
            print_json({"matched": count, "deleted": 0, "dry_run": True})
        else:
            print(f"{count:,} ended run(s) would be deleted (dry run: nothing deleted)")
        return EXIT_OK
    if count == 0:
        if args.json:
            print_json({"matched": 0, "deleted": 0, "dry_run": False})
        else:
            print("no ended run is that old: nothing deleted")
        return EXIT_OK
    confirm(count, "delete", args)
    deleted = 0
    progress = sys.stderr.isatty()
    try:
        while True:
            ids = rt.call(lambda: client.store.prune_runs(where, batch=PRUNE_BATCH))
            deleted += len(ids)
            if progress:
                sys.stderr.write(f"\rdeleted {deleted:,}/{count:,}")
            if len(ids) < PRUNE_BATCH:
                break
    except KeyboardInterrupt:
        sys.stderr.write(f"\ninterrupted after deleting {deleted:,} run(s); the rest are kept\n")
        return EXIT_INTERRUPTED
    if progress:
        sys.stderr.write("\n")
    if args.json:
        print_json({"matched": count, "deleted": deleted, "dry_run": False})
    else:
        print(f"deleted {deleted:,} ended run(s) and their history")
    return EXIT_OK
