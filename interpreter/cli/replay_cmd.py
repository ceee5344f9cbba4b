"""`replay FILE`: check an edited definition against recorded histories (the runs of its
workflow in a store, or `history --export` files); and the export behind `history --export`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from interpreter.cli import _runtime as rt
from interpreter.cli._common import (
    EXIT_FAILED,
    EXIT_OK,
    CliError,
    print_json,
    workflow_dirs,
    workflow_file,
)
from interpreter.core.statuses import TERMINAL_STATUSES

STATUSES = ("running", *sorted(TERMINAL_STATUSES))


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "replay",
        help="check an edited definition against recorded histories (exit 1 if any differs)",
        epilog="examples:\n  tideflow history order-1a2b3c --export order-1a2b3c.json\n"
        "  tideflow replay order.v2.yaml --history order-1a2b3c.json\n"
        "  tideflow replay order.v2.yaml --db postgresql://tf@db/tf --status running --json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("file", metavar="FILE", help="the edited workflow (.yaml or .json)")
    parser.add_argument(
        "--history",
        metavar="EXPORT",
        action="append",
        default=[],
        help="a `history --export` file to check against (repeatable); without it, the runs "
        "of the workflow in --db",
    )
    parser.add_argument("--status", choices=STATUSES, help="only the store's runs with this status")
    parser.add_argument(
        "--workflows",
        metavar="DIR",
        action="append",
        default=[],
        help="where child workflows are found (repeatable)",
    )
    rt.add_db(parser)
    rt.add_json(parser)
    parser.set_defaults(handler=cmd_replay)


def export_history(client: Any, run_id: str, path: str) -> dict[str, Any]:
    """Write the run's history as an export document; returns it."""
    from interpreter.replay import export_document

    record = client.get(run_id)
    source, _file = client.store.load_definition(record.def_hash)
    doc = export_document(record, source, client.history(run_id, all_segments=True))
    try:
        Path(path).write_text(json.dumps(doc, ensure_ascii=False, indent=1) + "\n", "utf-8")
    except OSError as exc:
        raise CliError(f"cannot write {path}: {exc.strerror}") from None
    return doc


def _recorded(args: argparse.Namespace, name: str) -> list[tuple[str, list[dict[str, Any]]]]:
    from interpreter.replay import ReplayError, check_export

    out = []
    if args.history:
        for path in args.history:
            try:
                doc = json.loads(Path(path).read_text("utf-8"))
                doc = check_export(doc, path)
            except OSError as exc:
                raise CliError(f"cannot read {path}: {exc.strerror}") from None
            except (ValueError, ReplayError) as exc:
                raise CliError(
                    f"{path}: {exc}", hint="export one with `tideflow history RUN --export FILE`"
                ) from None
            if doc.get("workflow") != name:
                raise CliError(
                    f"{path}: the export is a run of workflow {doc.get('workflow')!r}, not {name!r}"
                )
            out.append((str(doc.get("run_id")), doc["events"]))
        return out
    # Closed here, as the replay goes on without it: left to the collector, a PostgreSQL
    # store's pool could be finalized in one of its own threads ("cannot join current thread").
    client = rt.open_client(args, create=False)
    try:
        for record in rt.call(lambda: client.list_runs(status=args.status, workflow=name)):
            with rt.translated_errors():
                out.append((record.id, list(client.history(record.id, all_segments=True))))
    finally:
        client.close()
    return out


def cmd_replay(args: argparse.Namespace) -> int:
    from interpreter.client import load_definition
    from interpreter.replay import ReplayError, replay

    defn = rt.call(lambda: load_definition(workflow_file(args.file), workflow_dirs(args.workflows)))
    results = []
    for run_id, events in _recorded(args, defn.name):
        try:
            results.append(replay(defn, run_id, events).to_json())
        except ReplayError as exc:
            raise CliError(f"run {run_id}: {exc}") from None
    bad = [r for r in results if not r["compatible"]]
    if args.json:
        print_json({"workflow": defn.name, "compatible": not bad, "runs": results})
        return EXIT_FAILED if bad else EXIT_OK
    if not results:
        print(f"no recorded runs of workflow {defn.name!r} to check")
    for r in results:
        if r["compatible"]:
            print(f"ok            {r['run_id']}  ({r['events']} events replayed)")
            continue
        diff = r["first_difference"]
        at = diff["recorded"] or diff["replayed"] or {}
        where = f"event {at.get('seq')}" if at.get("seq") is not None else "after the last event"
        print(
            f"INCOMPATIBLE  {r['run_id']}  at {where} {at.get('type')} "
            f"(state {at.get('state')!r}): {diff['reason']}"
        )
    print(f"{len(results) - len(bad)} of {len(results)} runs compatible with {args.file}")
    return EXIT_FAILED if bad else EXIT_OK
