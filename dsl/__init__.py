"""tideflow's workflow language: load, check and model workflow files.

    from dsl import validate_file
    result = validate_file("order.yaml")
    if not result.ok:
        for d in result.diagnostics:
            print(f"{d.file}:{d.line}:{d.column}: {d.severity.value}[{d.code}] {d.message}")

`validate_file` / `validate_text` run every check (loading, JSON Schema, model, lint) and
return a `ValidationResult`; `result.workflow` is the typed `Workflow` when it could be built.
`load_schema()` returns the committed JSON Schema. Diagnostic codes: docs/diagnostics.md.
This package never imports `interpreter`.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dsl.diagnostics import Diagnostic, Position, Severity
    from dsl.model import Workflow
    from dsl.schema_check import load_schema
    from dsl.source import SourceDocument
    from dsl.validate import ValidationResult, validate_file, validate_text

# Loaded on first use: `import dsl.durations` (the engine does) must not pay for the YAML
# loader, jsonschema and lint on every CLI start.
_WHERE = {
    "Diagnostic": "dsl.diagnostics",
    "Position": "dsl.diagnostics",
    "Severity": "dsl.diagnostics",
    "Workflow": "dsl.model",
    "load_schema": "dsl.schema_check",
    "SourceDocument": "dsl.source",
    "ValidationResult": "dsl.validate",
    "validate_file": "dsl.validate",
    "validate_text": "dsl.validate",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'dsl' has no attribute {name!r}")
    return getattr(import_module(module), name)


__all__ = [
    "Diagnostic",
    "Position",
    "Severity",
    "SourceDocument",
    "ValidationResult",
    "Workflow",
    "load_schema",
    "validate_file",
    "validate_text",
]
