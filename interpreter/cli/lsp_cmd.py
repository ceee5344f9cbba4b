"""`lsp`: a language server over stdio (pygls). Diagnostics are `tideflow validate`'s, computed
from the editor's buffer on every change; completion, hover and go-to-definition come from
dsl/editor.py. pygls is imported only when the command runs, so `tideflow --help` stays fast."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from interpreter.cli._common import EXIT_OK, EXIT_USAGE, CliError, workflow_dirs


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "lsp",
        help="run the language server (stdio) for editors",
        description="Speak the Language Server Protocol on stdin/stdout: live diagnostics (the "
        "same as tideflow validate), completion of state, activity and signal names, hover "
        "docs for keys, go-to-definition of state references. See docs/editors.md.",
    )
    parser.add_argument(
        "--activities",
        action="append",
        default=[],
        metavar="MODULE_OR_FILE",
        help="a .py file or module that registers activities; their names are completed and "
        "checked (repeatable)",
    )
    parser.add_argument(
        "--workflows",
        action="append",
        default=[],
        metavar="DIR",
        help="where child workflows are looked up by name (repeatable)",
    )
    parser.add_argument(
        "--stdio", action="store_true", help="accepted for editors that pass it (the default)"
    )
    parser.set_defaults(handler=cmd_lsp)


def cmd_lsp(args: argparse.Namespace) -> int:
    try:
        from interpreter.cli.lsp_server import build_server
    except ImportError as exc:
        raise CliError(
            f"tideflow lsp needs the pygls library, which is not installed ({exc})",
            hint='install the extra: pip install "tideflow[lsp]"',
            exit_code=EXIT_USAGE,
        ) from None
    from interpreter.cli.validate_cmd import load_activities

    activities = load_activities(args.activities) if args.activities else None
    dirs: list[Path] = list(workflow_dirs(args.workflows))
    server = build_server(activities, dirs)
    # The protocol owns a copy of stdout (pygls closes it on exit); anything else printed
    # (an activities module's print) goes to stderr instead of corrupting the stream.
    sys.stdout.flush()
    protocol = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    sys.stdout = sys.stderr
    server.start_io(sys.stdin.buffer, protocol)
    return EXIT_OK
