"""`graph`: draw a workflow as a Mermaid flowchart or a Graphviz digraph."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from interpreter.cli import _runtime as rt
from interpreter.cli._common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    CliError,
    run_id_arg,
    workflow_dirs,
    workflow_file,
)

_MAX_SHOWN = 10


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "graph",
        help="draw a workflow (Mermaid or Graphviz DOT)",
        description="Validate a workflow file and print a diagram of its states and transitions. "
        "With --run, draw the definition a run is pinned to, with the states it visited "
        "(filled green), the transitions it took (bold green) and where it stands now "
        "(yellow, marked ▶).",
        epilog="examples:\n  tideflow graph samples/order.yaml > order.mmd\n"
        "  tideflow graph samples/order.yaml --format dot | dot -Tsvg > order.svg\n"
        "  tideflow graph --run order-3f2a9c1d0e4b --db runs.db",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "file",
        metavar="FILE",
        nargs="?",
        help="the workflow file (.yaml, .yml or .json); not with --run",
    )
    parser.add_argument(
        "--run",
        metavar="RUN",
        type=run_id_arg,
        help="draw this run's path and current states (its pinned definition, from --db)",
    )
    rt.add_db(parser)
    parser.add_argument(
        "--format",
        choices=("mermaid", "dot"),
        default="mermaid",
        help="mermaid (default) or dot; render dot with e.g. `dot -Tsvg`",
    )
    parser.add_argument("--output", "-o", metavar="FILE", help="write here instead of stdout")
    parser.add_argument(
        "--workflows",
        metavar="DIR",
        action="append",
        default=[],
        help="where child workflows are looked up by name (repeatable)",
    )
    parser.set_defaults(handler=cmd_graph)


def cmd_graph(args: argparse.Namespace) -> int:
    if args.run is not None:
        if args.file is not None:
            raise CliError(
                "give a workflow FILE or --run RUN, not both",
                hint="--run draws the definition the run is pinned to",
                exit_code=EXIT_USAGE,
            )
        return _write(args, _run_graph(args))
    if args.file is None:
        raise CliError(
            "nothing to draw",
            hint="give a workflow file (tideflow graph FILE) or a run (tideflow graph --run RUN)",
            exit_code=EXIT_USAGE,
        )
    path = workflow_file(args.file)
    dirs = workflow_dirs(args.workflows)
    # Imported here: the parser of every command is built on each start, so it stays cheap.
    from dsl import validate_file
    from dsl.graph import to_dot, to_mermaid

    result = validate_file(path, workflow_dirs=dirs)
    if not result.ok or result.workflow is None:
        errors = [d for d in result.diagnostics if d.severity.value == "error"]
        for d in errors[:_MAX_SHOWN]:
            print(f"{d.file}:{d.line}:{d.column}: error[{d.code}] {d.message}", file=sys.stderr)
        if len(errors) > _MAX_SHOWN:
            print(f"... and {len(errors) - _MAX_SHOWN} more", file=sys.stderr)
        raise CliError(
            f"{args.file} has {len(errors)} error(s); nothing drawn",
            hint=f"run `tideflow validate {args.file}` for the details and hints",
            exit_code=EXIT_FAILED,
        )
    workflow = result.workflow
    return _write(args, to_dot(workflow) if args.format == "dot" else to_mermaid(workflow))


def _run_graph(args: argparse.Namespace) -> str:
    from dsl.graph import to_dot, to_mermaid
    from interpreter.run_graph import trace_of

    args.run_id = args.run  # open_client names the run when the store is missing
    client = rt.open_client(args, create=False)
    try:
        record = rt.call(lambda: client.get(args.run))
        workflow = rt.call(lambda: client.definition_of(record)).workflow
        trace = trace_of(workflow, record, rt.call(lambda: list(client.history(args.run))))
    finally:
        client.close()
    render = to_dot if args.format == "dot" else to_mermaid
    return render(workflow, trace)


def _write(args: argparse.Namespace, text: str) -> int:
    if args.output:
        try:
            Path(args.output).write_text(text, encoding="utf-8")
        except OSError as exc:
            raise CliError(
                f"cannot write {args.output}: {exc.strerror or exc}", exit_code=EXIT_USAGE
            ) from None
    else:
        sys.stdout.write(text)
    return EXIT_OK
