"""`validate_file` / `validate_text`: load, JSON Schema check, build the model, lint.

Each stage runs only when the one before succeeded, so a file gets the diagnostics of the
first stage that fails (plus non-fatal loader findings such as duplicate keys), never a
cascade of follow-on errors.
"""

from __future__ import annotations

import gc
import importlib
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from dsl.diagnostics import Diagnostic, Severity
from dsl.loader import LoadResult, load_file, load_text
from dsl.model import Workflow
from dsl.source import JsonPath, SourceDocument


class _Missing:
    def __repr__(self) -> str:
        return "<no input>"


_MISSING: Any = _Missing()

INTERNAL_CODES: dict[str, str] = {"TF900": "Internal error in a check"}

LintFunction = Callable[..., list[Diagnostic]]


@dataclass
class ValidationResult:
    """The outcome of validating one file."""

    file: str
    document: SourceDocument | None  # None when the file could not be loaded at all
    workflow: Workflow | None  # None when schema/model errors prevent building it
    diagnostics: list[Diagnostic]  # sorted by (file, line, column)

    @property
    def ok(self) -> bool:
        """True when there is no error-severity diagnostic (warnings allowed)."""
        return not any(d.severity is Severity.ERROR for d in self.diagnostics)

    @property
    def errors(self) -> int:
        return sum(d.severity is Severity.ERROR for d in self.diagnostics)

    @property
    def warnings(self) -> int:
        return sum(d.severity is Severity.WARNING for d in self.diagnostics)


def validate_file(
    path: str | Path,
    *,
    activities: Collection[str] | None = None,
    workflow_dirs: Sequence[Path] = (),
    input_data: object = _MISSING,
) -> ValidationResult:
    """Validate a workflow file (YAML or JSON). Never raises for a bad file: every problem,
    including an unreadable file (TF010), is a diagnostic.

    `activities`: registered activity names, when known (lint then checks activity names).
    `workflow_dirs`: where lint looks for child workflows named by `workflow:`.
    `input_data`: when given, also check it against the workflow's `input_schema` (TF110).
    """
    with _collector_paused():
        return _validate(load_file(path), str(path), activities, workflow_dirs, input_data)


def validate_text(
    text: str,
    file: str = "<string>",
    *,
    activities: Collection[str] | None = None,
    workflow_dirs: Sequence[Path] = (),
    input_data: object = _MISSING,
) -> ValidationResult:
    """Like `validate_file` for text already in memory; `file` names it in diagnostics."""
    with _collector_paused():
        return _validate(load_text(text, file), file, activities, workflow_dirs, input_data)


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Validation allocates a few objects per node (data, positions, model, template ASTs)
    and keeps most of them: the cyclic garbage collector would traverse the growing heap
    again and again for little garbage (a fifth of the CPU time of a 5,000-state file). It
    catches up after the validation; the loader's size caps bound what accumulates."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _validate(
    loaded: LoadResult,
    file: str,
    activities: Collection[str] | None,
    workflow_dirs: Sequence[Path],
    input_data: object,
) -> ValidationResult:
    diagnostics = list(loaded.diagnostics)
    document = loaded.document
    workflow: Workflow | None = None
    if document is not None:
        workflow, found = _check_document(document, activities, workflow_dirs, input_data)
        diagnostics.extend(found)
    return ValidationResult(file, document, workflow, _ordered(diagnostics))


def _check_document(
    document: SourceDocument,
    activities: Collection[str] | None,
    workflow_dirs: Sequence[Path],
    input_data: object,
) -> tuple[Workflow | None, list[Diagnostic]]:
    workflow, strict_error = _strict_validation(document.data)
    if workflow is None:
        assert strict_error is not None
        # Imported here, as below: a valid file without --input never needs the schema pass.
        from dsl.schema_check import check_schema

        schema_errors = check_schema(_only_failing_states(document, strict_error))
        if schema_errors:
            return None, schema_errors
        try:
            workflow = Workflow.model_validate(document.data)
        except ValidationError as exc:
            return None, _model_errors(exc, document)
    found: list[Diagnostic] = []
    lint = _lint_function()
    if lint is not None:
        try:
            found.extend(
                lint(workflow, document, activities=activities, workflow_dirs=workflow_dirs)
            )
        except Exception as exc:  # a lint bug must not hide the file's other findings
            found.append(_internal(document, "lint", exc))
    if input_data is not _MISSING and workflow.input_schema is not None:
        from dsl.schema_check import check_input

        found.extend(check_input(document, workflow.input_schema, input_data))
    return workflow, found


def _strict_model(data: Any) -> Workflow | None:
    """The fast path for valid files. The schema is generated from the model, and data the
    model accepts in strict mode (no coercion) also satisfies the schema (a property test
    checks this), so the slow jsonschema pass only runs for files with problems, where it
    produces the located, readable diagnostics. Validation of a 1,000-state file: 10 ms
    instead of 300 ms."""
    return _strict_validation(data)[0]


def _strict_validation(data: Any) -> tuple[Workflow | None, ValidationError | None]:
    try:
        return Workflow.model_validate(data, strict=True), None
    except ValidationError as exc:
        return None, exc


def _only_failing_states(document: SourceDocument, error: ValidationError) -> SourceDocument:
    """`document` with only the top-level states the strict model rejected, for the
    jsonschema pass: a state the model accepts satisfies the schema (the same property as
    above, state by state: the schema checks each state on its own), so one typo in a
    5,000-state file costs the schema pass one state, not 5,000. When an error is not inside
    one state (a top-level key, `states` itself), the whole document is checked."""
    failing: set[str] = set()
    for detail in error.errors():
        loc = detail["loc"]
        if len(loc) < 2 or loc[0] != "states" or not isinstance(loc[1], str):
            return document
        failing.add(loc[1])
    states = document.data.get("states") if isinstance(document.data, dict) else None
    if not isinstance(states, dict) or not failing <= states.keys():
        return document
    kept = {name: state for name, state in states.items() if name in failing}
    data = {**document.data, "states": kept}
    return SourceDocument(
        document.file, document.text, data, document.value_positions, document.key_positions
    )


def _lint_function() -> LintFunction | None:
    """`dsl.lint.lint`, imported lazily so that loading and the schema check work alone."""
    try:
        module = importlib.import_module("dsl.lint")
    except ModuleNotFoundError as exc:
        if exc.name == "dsl.lint":
            return None
        raise
    function: LintFunction | None = getattr(module, "lint", None)
    return function


def _model_errors(exc: ValidationError, document: SourceDocument) -> list[Diagnostic]:
    """The schema accepted the data but pydantic did not: the two have drifted apart."""
    found: list[Diagnostic] = []
    paths = [_data_path(document.data, error["loc"]) for error in exc.errors()]
    for error, path in zip(exc.errors(), paths, strict=True):
        if any(len(other) > len(path) and other[: len(path)] == path for other in paths):
            continue  # a union member that refused the whole value; another found the problem
        where = ".".join(str(p) for p in path) or "the top level"
        found.append(
            Diagnostic(
                "TF108",
                Severity.ERROR,
                f"{where}: {error['msg']} (the JSON Schema accepted it but the model did not)",
                document.file,
                document.locate(path),
                "this is a tideflow bug: the schema and the model disagree; please report it",
                path,
            )
        )
    return found


def _data_path(data: Any, loc: tuple[int | str, ...]) -> JsonPath:
    """pydantic's error location without the union tag it inserts after each state name
    (("states", "a", "activity", "retry") is the path ("states", "a", "retry"))."""
    path: list[str | int] = []
    node: Any = data
    tag_expected = False
    for part in loc:
        if tag_expected and isinstance(node, dict) and node.get("type") == part:
            tag_expected = False
            continue
        tag_expected = len(path) >= 1 and path[-1] == "states"
        if _union_tag(node, part):
            continue
        if isinstance(node, dict):
            node = node.get(part)
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        else:
            node = None
        path.append(part)
    return tuple(path)


def _union_tag(node: Any, part: int | str) -> bool:
    """pydantic names the member of a plain union it tried (`RetryPolicy`,
    `list[RetryPolicy]`): a class name where the data has no such key."""
    return (
        isinstance(part, str)
        and not (isinstance(node, dict) and part in node)
        and (part[:1].isupper() or "[" in part)
    )


def _internal(document: SourceDocument, stage: str, exc: Exception) -> Diagnostic:
    return Diagnostic(
        "TF900",
        Severity.ERROR,
        f"internal error in {stage}: {type(exc).__name__}: {exc}",
        document.file,
        hint="this is a tideflow bug; please report it with the file",
    )


def _ordered(diagnostics: list[Diagnostic]) -> list[Diagnostic]:
    unique: dict[tuple[Any, ...], Diagnostic] = {}
    for d in diagnostics:
        unique.setdefault((d.code, d.file, d.position, d.message), d)
    return sorted(unique.values(), key=lambda d: (d.file, d.line, d.column, d.code))
