"""Reading a workflow source: bytes from disk under the size cap, then UTF-8 text.

Each problem is one located diagnostic (TF005 encoding, TF007 size, TF010 unreadable)."""

from __future__ import annotations

import os
from pathlib import Path

from dsl import load_limits
from dsl.diagnostics import Diagnostic, Position, error_at, position_of_index


def read_source(path: str | Path, file: str) -> str | Diagnostic:
    """The text of `path`, or the diagnostic (named `file`) saying why it cannot be had."""
    raw, problem = read_bytes(path)
    if problem is not None:
        kind, message, hint = problem
        return error_at(file, "TF010" if kind == "io" else "TF007", message, hint)
    assert raw is not None
    return decode(raw, file)


def read_bytes(path: str | Path) -> tuple[bytes | None, tuple[str, str, str | None] | None]:
    """The file's bytes, or (kind, message, hint) where kind is "io" or "size"."""
    try:
        with open(path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            if size > load_limits.MAX_FILE_BYTES:
                return None, ("size", *load_limits.too_large(size))
            raw = handle.read(load_limits.MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        return None, ("io", f"file not found: {path}", "check the path")
    except IsADirectoryError:
        return None, ("io", f"{path} is a directory, not a file", None)
    except PermissionError:
        return None, ("io", f"permission denied reading {path}", "check the file's permissions")
    except OSError as exc:
        return None, ("io", f"cannot read {path}: {exc.strerror or exc}", None)
    if len(raw) > load_limits.MAX_FILE_BYTES:
        return None, ("size", *load_limits.too_large(len(raw)))
    return raw, None


def decode(raw: bytes, file: str) -> str | Diagnostic:
    """UTF-8 text (a UTF-8 BOM is dropped), or a TF005 diagnostic locating the first bad byte."""
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return error_at(
            file, "TF005", "file is UTF-16 encoded, not UTF-8", "save the file as UTF-8"
        )
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        line_start = raw.rfind(b"\n", 0, exc.start) + 1
        column = len(raw[line_start : exc.start].decode("utf-8", "replace")) + 1
        return error_at(
            file,
            "TF005",
            f"file is not valid UTF-8 (byte 0x{raw[exc.start]:02x})",
            "save the file as UTF-8",
            Position(line, column),
        )


def check_text(text: str, file: str) -> Diagnostic | None:
    """Text handed over in memory gets the checks a file gets: encodable as UTF-8 (no lone
    surrogates) and under the size cap."""
    try:
        encoded_size = len(text.encode("utf-8"))
    except UnicodeEncodeError as exc:
        return error_at(
            file,
            "TF005",
            f"text contains an invalid character (U+{ord(text[exc.start]):04X}, a lone surrogate)",
            "save the file as UTF-8",
            position_of_index(text, exc.start),
        )
    if encoded_size > load_limits.MAX_FILE_BYTES:
        return error_at(file, "TF007", *load_limits.too_large(encoded_size))
    return None
