"""Rules about names that point outside the state machine: signals, schemas, activities, child
workflows."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from dsl.common_schema import certainly_valid
from dsl.diagnostics import Diagnostic
from dsl.lint.context import BUILTIN_ACTIVITIES, LintContext, did_you_mean, join_hints
from dsl.model import ActivityState, ChildState, WaitState
from dsl.resolve import child_references, resolve_child_workflow
from dsl.source import JsonPath
from dsl.template_text import is_template


def check_signals(ctx: LintContext) -> Iterator[Diagnostic]:
    """TF230: a wait names a signal declared under `signals` (or an update under `updates`:
    an update wakes a wait of its name the way a signal does)."""
    declared = {**(ctx.workflow.signals or {}), **(ctx.workflow.updates or {})}
    for scope, name, state in ctx.states():
        if not isinstance(state, WaitState):
            continue
        named: list[tuple[JsonPath, str]] = []
        if state.signal is not None:
            named.append(((*scope.state_path(name), "signal"), state.signal))
        for index, signal in enumerate(state.signals or []):
            named.append(((*scope.state_path(name), "signals", index), signal))
        for path, signal in named:
            if signal in declared:
                continue
            yield ctx.error(
                "TF230",
                path,
                f"wait state {name!r} waits for signal {signal!r}, which is not "
                "declared under signals (or updates)",
                join_hints(
                    did_you_mean(signal, declared),
                    f"declare it: signals: {{{signal}: {{schema: {{type: object}}}}}}",
                ),
            )


def _schema_problem(schema: dict[str, Any]) -> tuple[str, tuple[str | int, ...]] | None:
    if certainly_valid(schema):  # the usual schemas: no jsonschema (dsl/common_schema.py)
        return None
    # Imported here: a workflow without input or signal schemas never needs jsonschema.
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import SchemaError

    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        return exc.message, tuple(exc.path)
    return None


def check_schemas(ctx: LintContext) -> Iterator[Diagnostic]:
    """TF231: input, signal and update schemas are valid JSON Schemas (draft 2020-12)."""
    schemas: list[tuple[JsonPath, dict[str, Any]]] = []
    if ctx.workflow.input_schema is not None:
        schemas.append((("input_schema",), ctx.workflow.input_schema))
    for name, signal in (ctx.workflow.signals or {}).items():
        if signal.schema_ is not None:
            schemas.append((("signals", name, "schema"), signal.schema_))
    for name, update in (ctx.workflow.updates or {}).items():
        if update.schema_ is not None:
            schemas.append((("updates", name, "schema"), update.schema_))
    for path, schema in schemas:
        problem = _schema_problem(schema)
        if problem is not None:
            message, inner = problem
            where = "/".join(str(p) for p in (*path, *inner))
            yield ctx.error(
                "TF231",
                (*path, *inner),
                f"{where} is not a valid JSON Schema: {message}",
                "see https://json-schema.org/understanding-json-schema/ (draft 2020-12)",
            )


def check_activities(ctx: LintContext) -> Iterator[Diagnostic]:
    """TF240: with a registry given, every activity (and compensation) is registered."""
    if ctx.activities is None:
        return
    known = set(ctx.activities) | BUILTIN_ACTIVITIES
    for scope, name, state in ctx.states():
        path = scope.state_path(name)
        uses: list[tuple[JsonPath, str]] = []
        if isinstance(state, ActivityState):
            uses.append(((*path, "activity"), state.activity))
        if isinstance(state, ActivityState | ChildState) and state.compensate is not None:
            uses.append(((*path, "compensate", "activity"), state.compensate.activity))
        for use_path, activity in uses:
            if activity not in known:
                yield ctx.error(
                    "TF240",
                    use_path,
                    f"activity {activity!r} (state {name!r}) is not registered",
                    join_hints(
                        did_you_mean(activity, known),
                        "register it in the worker's activity module, or fix the name",
                    ),
                )


def _real_file(ctx: LintContext) -> Path | None:
    path = Path(ctx.document.file)
    return path.resolve() if ctx.document.file and path.is_file() else None


def _child_uses(ctx: LintContext) -> Iterator[tuple[JsonPath, str, str]]:
    """(path of `workflow`, state name, reference) of every child state with a literal name."""
    for scope, name, state in ctx.states():
        if isinstance(state, ChildState) and not is_template(state.workflow):
            yield (*scope.state_path(name), "workflow"), name, state.workflow


def check_children(ctx: LintContext) -> Iterator[Diagnostic]:
    """TF241: the workflow of every child state can be found."""
    parent = _real_file(ctx)
    if parent is None:
        return  # nothing to resolve against
    searched = ", ".join(str(d) for d in (parent.parent, *ctx.workflow_dirs))
    for path, name, reference in _child_uses(ctx):
        if resolve_child_workflow(reference, parent.parent, ctx.workflow_dirs) is None:
            yield ctx.error(
                "TF241",
                path,
                f"child state {name!r}: workflow {reference!r} cannot be found",
                f"looked in {searched}; give a path relative to this file (e.g. "
                f"./{reference}.yaml), a file named {reference}.yaml, or a workflow whose "
                f"name: is {reference!r}",
            )


def check_child_validity(ctx: LintContext) -> Iterator[Diagnostic]:
    """TF259: a child workflow that is found must itself be valid (its own errors are reported
    under its own file by `tideflow validate`)."""
    from dsl.child_check import child_result, validating

    parent = _real_file(ctx)
    if parent is None:
        return
    with validating(parent):
        for path, name, reference in _child_uses(ctx):
            target = resolve_child_workflow(reference, parent.parent, ctx.workflow_dirs)
            if target is None:
                continue  # TF241
            result = child_result(target, ctx.workflow_dirs)
            if result is None or result.ok:
                continue
            errors = [d for d in result.diagnostics if d.severity.value == "error"]
            first = errors[0]
            shown = (
                target.relative_to(parent.parent)
                if target.is_relative_to(parent.parent)
                else target
            )
            yield ctx.error(
                "TF259",
                path,
                f"child state {name!r}: workflow {reference!r} ({shown}) is invalid: "
                f"{len(errors)} error(s), the first at line {first.position.line}: "
                f"[{first.code}] {first.message}",
                f"fix the child file (tideflow validate shows its diagnostics under {shown})",
            )


def _load_children(path: Path) -> list[str]:
    try:
        data = YAML(typ="safe", pure=True).load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, YAMLError):
        return []
    return child_references(data)


def _cycle_from(
    ctx: LintContext, parent: Path, start: Path, cache: dict[Path, list[str]]
) -> list[Path] | None:
    """A chain of files from `start` back to `parent`, or None."""
    pending: list[tuple[Path, list[Path]]] = [(start, [start])]
    seen = {start}
    while pending:
        current, chain = pending.pop()
        if current == parent:
            return chain
        if current not in cache:
            cache[current] = _load_children(current)
        for reference in cache[current]:
            target = resolve_child_workflow(reference, current.parent, ctx.workflow_dirs)
            if target is not None and (target == parent or target not in seen):
                seen.add(target)
                pending.append((target, [*chain, target]))
    return None


def check_child_cycles(ctx: LintContext) -> Iterator[Diagnostic]:
    """TF242 (warning): a workflow that starts itself, directly or through other workflows."""
    parent = _real_file(ctx)
    if parent is None:
        return
    cache: dict[Path, list[str]] = {}
    for path, name, reference in _child_uses(ctx):
        target = resolve_child_workflow(reference, parent.parent, ctx.workflow_dirs)
        if target is None:
            continue
        chain = _cycle_from(ctx, parent, target, cache)
        if chain is not None:
            names = " -> ".join(p.name for p in (parent, *chain))
            yield ctx.warning(
                "TF242",
                path,
                f"child state {name!r} starts a workflow that starts this one again "
                f"({names}): every run would start another without end",
                "make sure a choice stops the recursion before the child state, or break the cycle",
            )
