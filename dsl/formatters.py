"""Render validation results: text (people), json (tools), github (Actions annotations), sarif
(code scanning). Each formatter takes the results of every checked file and returns the whole
output as one string."""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from dsl.diagnostics import Diagnostic, Severity
from dsl.loader import LOADER_CODES
from dsl.schema_check import SCHEMA_CODES
from dsl.source_file import read_bytes
from dsl.validate import INTERNAL_CODES, ValidationResult

Formatter = Callable[[Sequence[ValidationResult]], str]


def summary(results: Sequence[ValidationResult]) -> tuple[int, int, int]:
    """(files, errors, warnings)."""
    errors = sum(r.errors for r in results)
    warnings = sum(r.warnings for r in results)
    return len(results), errors, warnings


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def summary_line(results: Sequence[ValidationResult]) -> str:
    files, errors, warnings = summary(results)
    return f"{_plural(errors, 'error')}, {_plural(warnings, 'warning')} in {_plural(files, 'file')}"


# --- text --------------------------------------------------------------------------------------


def format_text(
    results: Sequence[ValidationResult], *, sources: Mapping[str, str] | None = None
) -> str:
    """`file:line:col: severity[CODE] message`, the source line with a caret, the hint; then
    the summary line. `sources` maps file names to text for files without a loaded document
    (the file is otherwise read again, best effort)."""
    out: list[str] = []
    for result in results:
        lines = _source_lines(result, sources)
        for d in result.diagnostics:
            out.append(f"{d.file}:{d.line}:{d.column}: {d.severity.value}[{d.code}] {d.message}")
            if lines is not None and 0 < d.line <= len(lines):
                source = lines[d.line - 1].replace("\t", " ").rstrip("\r")
                if source.strip():
                    out.append(f"    {source}")
                    out.append("    " + " " * min(d.column - 1, len(source)) + "^")
            if d.hint:
                out.append(f"  hint: {d.hint}")
    out.append(summary_line(results))
    return "\n".join(out) + "\n"


def _source_lines(result: ValidationResult, sources: Mapping[str, str] | None) -> list[str] | None:
    if not result.diagnostics:
        return None
    if result.document is not None:
        return result.document.text.split("\n")
    if sources is not None and result.file in sources:
        return sources[result.file].split("\n")
    if result.file.startswith("<"):
        return None
    raw, _problem = read_bytes(result.file)
    if raw is None:
        return None
    return raw.decode("utf-8-sig", "replace").split("\n")


# --- json --------------------------------------------------------------------------------------


def format_json(results: Sequence[ValidationResult]) -> str:
    files, errors, warnings = summary(results)
    payload = {
        "files": files,
        "errors": errors,
        "warnings": warnings,
        "diagnostics": [d.to_dict() for r in results for d in r.diagnostics],
    }
    return json.dumps(payload, ensure_ascii=False, indent=2) + "\n"


# --- github ------------------------------------------------------------------------------------


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def format_github(results: Sequence[ValidationResult]) -> str:
    """GitHub Actions workflow commands: each finding becomes an annotation on the file."""
    out: list[str] = []
    for result in results:
        for d in result.diagnostics:
            level = "error" if d.severity is Severity.ERROR else "warning"
            message = d.message + (f"\nhint: {d.hint}" if d.hint else "")
            out.append(
                f"::{level} file={_escape_property(d.file)},line={d.line},col={d.column},"
                f"title={_escape_property(d.code)}::{_escape_data(message)}"
            )
    out.append(summary_line(results))
    return "\n".join(out) + "\n"


# --- sarif -------------------------------------------------------------------------------------


def code_titles() -> dict[str, str]:
    """A short title for every known code (lint's when `dsl.lint` is present)."""
    titles = {**LOADER_CODES, **SCHEMA_CODES, **INTERNAL_CODES}
    try:
        rules = importlib.import_module("dsl.lint.rules").RULES
    except ImportError:
        return titles
    for rule in rules:
        for code in getattr(rule, "codes", {}):
            titles.setdefault(code, str(getattr(rule, "summary", code)))
    return titles


def _rule_doc(code: str) -> str:
    page = "docs/lint.md" if code.startswith("TF2") else "docs/diagnostics.md"
    return f"See {page}#{code.lower()} in the tideflow documentation."


def format_sarif(results: Sequence[ValidationResult]) -> str:
    """SARIF 2.1.0 with one rule per code seen (for GitHub code scanning and other tools)."""
    titles = code_titles()
    diagnostics: list[Diagnostic] = [d for r in results for d in r.diagnostics]
    codes = sorted({d.code for d in diagnostics})
    index = {code: i for i, code in enumerate(codes)}
    rules = [
        {
            "id": code,
            "name": code,
            "shortDescription": {"text": titles.get(code, code)},
            "help": {"text": _rule_doc(code)},
        }
        for code in codes
    ]
    sarif_results: list[dict[str, Any]] = []
    for d in diagnostics:
        text = d.message + (f" (hint: {d.hint})" if d.hint else "")
        sarif_results.append(
            {
                "ruleId": d.code,
                "ruleIndex": index[d.code],
                "level": "error" if d.severity is Severity.ERROR else "warning",
                "message": {"text": text},
                "locations": [
                    {
                        "physicalLocation": {
                            "artifactLocation": {"uri": d.file.replace("\\", "/")},
                            "region": {"startLine": d.line, "startColumn": d.column},
                        }
                    }
                ],
            }
        )
    document = {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "tideflow",
                        "version": _version(),
                        "rules": rules,
                    }
                },
                "results": sarif_results,
            }
        ],
    }
    return json.dumps(document, ensure_ascii=False, indent=2) + "\n"


def _version() -> str:
    from importlib import metadata  # 10-30 ms of start-up: only SARIF output needs it

    try:
        return metadata.version("tideflow")
    except metadata.PackageNotFoundError:
        return "0+unknown"


FORMATTERS: dict[str, Formatter] = {
    "text": format_text,
    "json": format_json,
    "github": format_github,
    "sarif": format_sarif,
}
