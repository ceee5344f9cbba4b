"""The `tideflow` command line: argument parsing and output only; each command is a thin call
into dsl/, the client or the worker. Each subcommand lives in its own module with a
`register(subparsers)` function."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from interpreter.cli import _common

_COMMAND_MODULES = (
    "interpreter.cli.validate_cmd",
    "interpreter.cli.graph_cmd",
    "interpreter.cli.run_cmds",
    "interpreter.cli.inspect_cmds",
    "interpreter.cli.list_cmds",
    "interpreter.cli.watch_cmds",
    "interpreter.cli.completion_cmd",
    "interpreter.cli.callback_cmds",
    "interpreter.cli.update_cmd",
    "interpreter.cli.test_cmd",
    "interpreter.cli.lsp_cmd",
    "interpreter.cli.server_cmd",
)


def build_parser() -> argparse.ArgumentParser:
    import importlib

    from interpreter.cli.help_text import Parser, add_examples

    parser = Parser(
        prog="tideflow",
        description="Durable workflows as YAML state machines.",
        epilog="examples:\n  tideflow run samples/order.yaml --input @samples/inputs/order.json "
        "--activities samples/activities.py\n  tideflow list --status failed\n"
        "  tideflow COMMAND --help",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action=_common.VersionAction)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for name in _COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:  # a command module not written yet
                continue
            raise
        module.register(subparsers)
    add_examples(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from interpreter.cli.help_text import subparser_of

    parser = build_parser()
    args, extras = parser.parse_known_args(argv)
    if extras:
        subparser_of(parser, getattr(args, "command", None)).error(
            f"unrecognized arguments: {' '.join(extras)}"
        )
    try:
        try:
            code: int = args.handler(args)
        except _common.CliError as exc:
            _common.print_error(exc.message, hint=exc.hint)
            code = exc.exit_code
        except UnicodeEncodeError as exc:
            # Last resort: text that is not valid UTF-8 (argv bytes decoded with
            # surrogateescape) reached a store or an encoder that no argument check caught.
            bad = exc.object[exc.start : exc.end]
            _common.print_error(
                f"a value is not valid UTF-8 text ({bad!a}); nothing was done with it",
                hint="check the arguments for bytes that are not UTF-8, and the locale "
                "(LANG/LC_ALL)",
            )
            code = _common.EXIT_USAGE
        sys.stdout.flush()
    except KeyboardInterrupt:
        code = _common.EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader stopped early (`| head`): not an error. Point stdout at devnull so the
        # interpreter's final flush does not fail again (as Python's signal docs recommend).
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        code = _common.EXIT_OK
    return code
