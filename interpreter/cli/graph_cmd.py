"""`graph`: draw a workflow as a Mermaid flowchart or a Graphviz digraph."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from interpreter.cli._common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    CliError,
    workflow_dirs,
    workflow_file,
)

_MAX_SHOWN = 10


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "graph",
        help="draw a workflow (Mermaid or Graphviz DOT)",
        description="Validate a workflow file and print a diagram of its states and transitions.",
    )
    parser.add_argument("file", metavar="FILE", help="the workflow file (.yaml, .yml or .json)")
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
    text = to_dot(workflow) if args.format == "dot" else to_mermaid(workflow)
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
