"""The `tideflow` command line: argument parsing and output only; each command is a thin call
into dsl/, the client or the worker. Each subcommand lives in its own module with a
`register(subparsers)` function."""

from __future__ import annotations

import argparse
import gc
import os
import signal
import sys
from collections.abc import Sequence

from interpreter import collector
from interpreter.cli import _common

# The module that registers each command, in the order `tideflow --help` lists them.
# `tideflow COMMAND ...` imports and builds only its command's module, not all fourteen, their
# imports and some 200 arguments (15-30 ms of every start); `tideflow`, `--help` and an unknown
# command build them all. tests/test_cli_help.py checks the table against the modules.
COMMAND_MODULE = {
    "validate": "interpreter.cli.validate_cmd",
    "schema": "interpreter.cli.validate_cmd",
    "graph": "interpreter.cli.graph_cmd",
    "run": "interpreter.cli.run_cmds",
    "start": "interpreter.cli.run_cmds",
    "resume": "interpreter.cli.run_cmds",
    "worker": "interpreter.cli.run_cmds",
    "status": "interpreter.cli.inspect_cmds",
    "history": "interpreter.cli.inspect_cmds",
    "signal": "interpreter.cli.inspect_cmds",
    "query": "interpreter.cli.inspect_cmds",
    "list": "interpreter.cli.list_cmds",
    "cancel": "interpreter.cli.list_cmds",
    "terminate": "interpreter.cli.list_cmds",
    "prune": "interpreter.cli.list_cmds",
    "result": "interpreter.cli.watch_cmds",
    "pause": "interpreter.cli.watch_cmds",
    "unpause": "interpreter.cli.watch_cmds",
    "completion": "interpreter.cli.completion_cmd",
    "complete": "interpreter.cli.callback_cmds",
    "heartbeat": "interpreter.cli.callback_cmds",
    "update": "interpreter.cli.update_cmd",
    "replay": "interpreter.cli.replay_cmd",
    "retry": "interpreter.cli.redrive_cmds",
    "fork": "interpreter.cli.redrive_cmds",
    "compensate": "interpreter.cli.redrive_cmds",
    "test": "interpreter.cli.test_cmd",
    "lsp": "interpreter.cli.lsp_cmd",
    "server": "interpreter.cli.server_cmd",
}
_COMMAND_MODULES = tuple(dict.fromkeys(COMMAND_MODULE.values()))


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The `tideflow` parser: with every command, or only with `command`'s module's when
    `command` names one."""
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
    only = COMMAND_MODULE.get(command) if command is not None else None
    for name in _COMMAND_MODULES if only is None else (only,):
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:  # a command module not written yet
                continue
            raise
        module.register(subparsers)
    add_examples(subparsers)
    return parser


def _command_word(argv: Sequence[str]) -> str | None:
    """The command `argv` runs: its first word (the top-level options, -h and --version,
    come before the command and build the whole parser)."""
    return argv[0] if argv and not argv[0].startswith("-") else None


def main(argv: Sequence[str] | None = None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    with collector.start_up():  # the parser and its modules live until the process ends
        from interpreter.cli.help_text import subparser_of

        parser = build_parser(_command_word(argv))
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


def console_main() -> None:
    """`tideflow` and `python -m interpreter`: run the command, then end the process with its
    exit status."""
    try:
        code = main()
    except KeyboardInterrupt:  # a Ctrl-C landing as main returns, past its own handler
        code = _common.EXIT_INTERRUPTED
    if code == _common.EXIT_INTERRUPTED:
        _ignore_sigint()
    # The process ends here. Frozen, the objects of every loaded library are left out of the
    # collections Python runs on its way out, which would walk them all for nothing (5% of
    # `tideflow validate`, 8% of `tideflow status`). What is still collected, and every
    # atexit handler and flush, runs as before.
    gc.freeze()
    sys.exit(code)


def _ignore_sigint() -> None:
    """Ctrl-C was handled and the exit status says so; from here on the process only ends. A
    SIGINT that lands while it does (a second Ctrl-C, or one sent as the run ended) would
    otherwise end it by the signal (exit -2 to a parent) instead of with status 130: through
    the default disposition that finalization restores, or as a KeyboardInterrupt from
    Python's own handler. signal.signal itself first runs a handler still pending, which
    raises that KeyboardInterrupt: that Ctrl-C changes nothing now, so set SIG_IGN again."""
    for _ in range(3):
        try:
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            return
        except KeyboardInterrupt:
            continue
