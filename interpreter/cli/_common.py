"""Shared CLI pieces: exit codes, the error type commands raise, output helpers."""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from interpreter import jsondata

EXIT_OK = 0
EXIT_FAILED = 1  # the run ended otherwise, or the checked files have errors
EXIT_USAGE = 2  # invalid file, input or arguments; nothing was created
EXIT_STILL_RUNNING = 3  # `result --timeout` passed and the run has not ended
EXIT_NOT_FOUND = 4  # no run with that id in the store (not "the run failed")
EXIT_INTERRUPTED = 130  # Ctrl-C (128 + SIGINT), as shells report it


class CliError(Exception):
    """A failure the CLI reports as one clear message (never a traceback)."""

    def __init__(self, message: str, *, hint: str | None = None, exit_code: int = EXIT_USAGE):
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.exit_code = exit_code


def version() -> str:
    from importlib import metadata  # 10-30 ms of start-up: imported only for --version

    try:
        return metadata.version("tideflow")
    except metadata.PackageNotFoundError:
        return "0+unknown"


class VersionAction(argparse.Action):
    """`--version`, looking the version up only when asked (argparse's own "version" action
    needs the text when the parser is built, i.e. on every command)."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        super().__init__(
            option_strings, dest, nargs=0, help="show program's version number and exit"
        )

    def __call__(self, parser: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> None:
        sys.stdout.write(f"tideflow {version()}\n")  # stdout, as argparse's action prints it
        parser.exit()


def print_error(message: str, *, hint: str | None = None) -> None:
    print(f"error: {message}", file=sys.stderr)
    if hint:
        print(f"  hint: {hint}", file=sys.stderr)


def print_json(value: Any) -> None:
    json.dump(value, sys.stdout, ensure_ascii=False, default=str)
    sys.stdout.write("\n")


# ----------------------------------------------------------------- argument checks


def text_arg(value: str) -> str:
    """argparse type of a name, a reason or a run id: text that is valid UTF-8. Bytes that are
    not (a wrong locale, a binary file pasted) reach Python as lone surrogates, which no store
    can keep."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise argparse.ArgumentTypeError(
            f"{value!a} is not valid UTF-8 text; check the value and the locale (LANG/LC_ALL)"
        ) from None
    return value


def run_id_arg(value: str) -> str:
    """argparse type of a RUN_ID naming a run that exists: non-empty UTF-8 text."""
    value = text_arg(value)
    if not value:
        raise argparse.ArgumentTypeError("run id must not be empty")
    return value


def new_run_id_arg(value: str) -> str:
    """argparse type of `--id`: a run id as Client.start_run accepts it."""
    from interpreter.core.records import run_id_problem

    problem = run_id_problem(run_id_arg(value))
    if problem:
        raise argparse.ArgumentTypeError(problem)
    return value


def db_arg(value: str) -> str:
    """argparse type of `--db`: not empty (an empty value would silently pick the default)."""
    if not value.strip():
        raise argparse.ArgumentTypeError(
            "the store must not be empty; give a file path, sqlite:///file or postgresql://..."
        )
    return value


MAX_SECONDS_ARG = 86_400.0  # a day: past it a timer would overflow the event loop's clock


def seconds_arg(value: str) -> float:
    """argparse type of a duration in seconds: a finite number from 0 to MAX_SECONDS_ARG."""
    try:
        seconds = float(value)
    except ValueError:
        seconds = math.nan
    if not math.isfinite(seconds) or not 0 <= seconds <= MAX_SECONDS_ARG:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a number of seconds from 0 to {MAX_SECONDS_ARG:,.0f} "
            "(e.g. 10 or 2.5)"
        )
    return seconds


def int_range_arg(low: int, high: int) -> Callable[[str], int]:
    """argparse type of a whole number from `low` to `high`."""

    def parse(value: str) -> int:
        try:
            number = int(value)
        except ValueError:
            number = low - 1
        if not low <= number <= high:
            raise argparse.ArgumentTypeError(
                f"{value!r} is not a whole number from {low:,} to {high:,}"
            )
        return number

    return parse


def workflow_file(file: str) -> Path:
    """FILE of run/start/graph: an existing file, else a usage error saying what is wrong."""
    path = Path(file)
    if not path.is_file():
        problem = "is a directory" if path.is_dir() else "does not exist"
        raise CliError(
            f"workflow file {file} {problem}",
            hint="give the path of a .yaml, .yml or .json workflow file",
        )
    return path


def workflow_dirs(dirs: Sequence[str]) -> tuple[Path, ...]:
    """`--workflows DIR`s: each must be an existing directory."""
    for directory in dirs:
        if not Path(directory).is_dir():
            problem = "does not exist" if not Path(directory).exists() else "is a file"
            raise CliError(
                f"--workflows {directory}: not a directory ({problem})",
                hint="give the directory that holds the child workflow files",
            )
    return tuple(Path(d) for d in dirs)


def parse_json_arg(text: str | None, what: str) -> Any:
    """`JSON` or `@file.json` given to option `what`; None when not given. The value must be
    JSON data a run can keep (see interpreter.jsondata)."""
    if text is None:
        return None
    source = what
    if text.startswith("@"):
        if not text[1:]:
            raise CliError(
                f"{what}: missing file name after @", hint=f"write {what} @path/to/file.json"
            )
        path = Path(text[1:])
        try:
            # At most the limit plus one byte: `@/dev/zero` or a huge file is refused, not read.
            with path.open("rb") as file:
                raw = file.read(jsondata.MAX_VALUE_BYTES + 1)
            if len(raw) > jsondata.MAX_VALUE_BYTES:
                raise CliError(
                    f"{what} file {path} is larger than "
                    f"{jsondata.MAX_VALUE_BYTES // (1024 * 1024)} MiB, the most a run keeps",
                    hint="pass a smaller value; keep large data outside the run and pass a reference",
                )
            text = raw.decode("utf-8")
        except FileNotFoundError:
            raise CliError(f"{what} file {path} does not exist", hint="check the path") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise CliError(
                f"cannot read {what} file {path}: {getattr(exc, 'strerror', None) or exc}"
            ) from None
        source = f"{what} file {path}"
    try:
        return jsondata.parse(text)
    except jsondata.NotJsonData as exc:
        hint = (
            "pass JSON text, or @path/to/file.json (no NaN or Infinity, integers of at "
            "most 4,300 digits, at most 2 MiB)"
        )
        if source == what and _looks_like_a_file(text):
            hint = f"to read the file, put @ before its name: {what} @{text}"
        raise CliError(f"{source} is not valid JSON data: {exc.reason}", hint=hint) from None


def _looks_like_a_file(text: str) -> bool:
    """`--input order.json` (a file name given as the JSON text itself)."""
    candidate = text.strip()
    if not candidate or candidate[0] in '{["' or "\n" in candidate or len(candidate) > 4096:
        return False
    try:
        return candidate.endswith((".json", ".JSON")) or Path(candidate).is_file()
    except (OSError, ValueError):
        return False
