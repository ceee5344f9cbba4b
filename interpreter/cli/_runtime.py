"""Argument helpers shared by the commands that touch runs: --db, --activities, --input."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

from interpreter import collector
from interpreter.cli._common import (
    EXIT_FAILED,
    EXIT_NOT_FOUND,
    EXIT_STILL_RUNNING,
    EXIT_USAGE,
    CliError,
    db_arg,
)
from interpreter.errors import (
    ActivityRegistryError,
    InputInvalid,
    ResultTimeout,
    RunFinished,
    RunIdConflict,
    RunNotFound,
    StoreError,
    StoreNotFound,
    TideflowError,
    WorkflowInvalid,
)

# The client (and the store and records behind it) is imported by the commands that open a
# store, not by `tideflow --help` or `validate`; the model only by those that load a workflow.
if TYPE_CHECKING:
    from interpreter.client import Client
    from interpreter.core.definition import Definition

T = TypeVar("T")


def add_db(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--db",
        metavar="URL",
        type=db_arg,
        help="store: a file path, sqlite:///file or postgresql://... (default: TIDEFLOW_DB, else .tideflow/tideflow.db)",
    )


def add_activities(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--activities",
        metavar="PATH_OR_MODULE",
        action="append",
        default=[],
        help="a .py file or importable module that registers activities (repeatable)",
    )


def add_json(
    parser: argparse.ArgumentParser, help_: str = "machine-readable output on stdout"
) -> None:
    parser.add_argument("--json", action="store_true", help=help_)


def add_family_command(
    subparsers: Any, name: str, help_: str, *, details: str, epilog: str
) -> argparse.ArgumentParser:
    """A command of a family registered in one loop (cancel/terminate, pause/unpause): its
    description is its help line, capitalised, then the family's `details`; `{name}` in the
    family's `epilog` (its examples) becomes the command's name."""
    return subparsers.add_parser(  # type: ignore[no-any-return]
        name,
        help=help_,
        description=f"{help_[0].upper()}{help_[1:]}{details}",
        epilog=epilog.format(name=name),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def add_json_db_handler(
    parser: argparse.ArgumentParser, handler: Callable[[argparse.Namespace], int]
) -> None:
    """--json, --db and the handler: how a command that reads or changes runs ends."""
    add_json(parser)
    add_db(parser)
    parser.set_defaults(handler=handler)


def add_readable(parser: argparse.ArgumentParser) -> None:
    """--wide and --relative: how tables show payloads and times."""
    parser.add_argument(
        "--wide", action="store_true", help="show payloads whole instead of folded to the terminal"
    )
    parser.add_argument(
        "--relative", action="store_true", help="show times relative to now (3m ago)"
    )


def load_activities(specs: list[str]) -> set[str]:
    from interpreter.activities import load_activity_modules

    try:
        return load_activity_modules(specs)
    except ActivityRegistryError as exc:
        raise CliError(exc.message, hint=exc.hint) from None


def require_activities(defn: Definition, registered: set[str]) -> None:
    missing = sorted(defn.activity_names() - registered)
    if missing:
        raise CliError(
            f"workflow {defn.name!r} needs activities nobody registered: {', '.join(missing)}",
            hint="pass the module or .py file that defines them with --activities",
        )


@contextmanager
def translated_errors() -> Iterator[None]:
    """Turn tideflow's own exceptions into one clear CLI message with the right exit code."""
    try:
        yield
    except WorkflowInvalid as exc:
        from dsl.formatters import format_text
        from dsl.validate import ValidationResult

        files = sorted({d.file for d in exc.diagnostics})
        results = [
            ValidationResult(f, None, None, [d for d in exc.diagnostics if d.file == f])
            for f in files
        ]
        raise CliError(
            f"{exc.message}:\n" + format_text(results).rstrip(),
            hint="run `tideflow validate` on the file for details",
        ) from None
    except (InputInvalid, RunIdConflict, StoreError) as exc:
        raise CliError(exc.message, hint=exc.hint, exit_code=EXIT_USAGE) from None
    except RunNotFound as exc:
        raise CliError(exc.message, hint=exc.hint, exit_code=EXIT_NOT_FOUND) from None
    except ResultTimeout as exc:
        raise CliError(exc.message, hint=exc.hint, exit_code=EXIT_STILL_RUNNING) from None
    except RunFinished as exc:
        raise CliError(exc.message, hint=exc.hint, exit_code=EXIT_FAILED) from None
    except TideflowError as exc:
        raise CliError(exc.message, hint=exc.hint, exit_code=EXIT_FAILED) from None


def open_client(args: argparse.Namespace, *, create: bool = True) -> Client:
    """The store of --db. `create=False` for commands that only read or steer existing runs:
    a store that does not exist is then an error, not a new empty file."""
    # The client's modules and its store live as long as the command (interpreter/collector.py).
    with collector.start_up(), translated_errors():
        from interpreter.client import Client

        try:
            return Client(getattr(args, "db", None), create=create)
        except StoreNotFound as exc:
            if getattr(args, "run_id", None):
                exc.message += f", so it holds no run {args.run_id!r}"
            raise


def call(function: Callable[[], T]) -> T:
    with translated_errors():
        return function()
