"""Shared CLI pieces: exit codes, the error type commands raise, output helpers."""

from __future__ import annotations

import json
import sys
from importlib import metadata
from typing import Any

EXIT_OK = 0
EXIT_FAILED = 1  # the run ended otherwise, or the checked files have errors
EXIT_USAGE = 2  # invalid file, input or arguments; nothing was created


class CliError(Exception):
    """A failure the CLI reports as one clear message (never a traceback)."""

    def __init__(self, message: str, *, hint: str | None = None, exit_code: int = EXIT_USAGE):
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.exit_code = exit_code


def version() -> str:
    try:
        return metadata.version("tideflow")
    except metadata.PackageNotFoundError:
        return "0+unknown"


def print_error(message: str, *, hint: str | None = None) -> None:
    print(f"error: {message}", file=sys.stderr)
    if hint:
        print(f"  hint: {hint}", file=sys.stderr)


def print_json(value: Any) -> None:
    json.dump(value, sys.stdout, ensure_ascii=False, default=str)
    sys.stdout.write("\n")
