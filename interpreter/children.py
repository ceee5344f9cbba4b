"""Child runs: the NewRun a `start_child` command creates, with its definition loaded from the
workflow file it names (next to the parent's file, or in --workflows directories)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from interpreter.core.definition import Definition
from interpreter.core.records import Command
from interpreter.errors import InputInvalid
from interpreter.new_runs import started_run
from interpreter.store.base import RunRecord, Store
from interpreter.store.writes import NewRun

MAX_CHILD_DEPTH = 32


def new_child_run(
    store: Store,
    parent: RunRecord,
    parent_defn: Definition,
    command: Command,
    workflow_dirs: tuple[Path, ...],
) -> tuple[NewRun, Definition] | dict[str, Any]:
    """The NewRun of a `start_child` command and the child's definition, or an error dict
    when it cannot start."""
    data = command.data
    if parent.depth + 1 > MAX_CHILD_DEPTH:
        return {
            "type": "ChildDepthExceeded",
            "message": f"child workflows nest deeper than {MAX_CHILD_DEPTH} levels",
            "details": {"workflow": data["workflow"]},
        }
    try:
        child_defn = _load_child_definition(data["workflow"], parent_defn, workflow_dirs)
    except _ChildLoadError as exc:
        return {
            "type": exc.kind,
            "message": str(exc),
            "details": {"workflow": data["workflow"]},
        }
    if store.get_run(data["id"]) is not None:
        # Starting it would only find the other run, whose result never comes here.
        return {
            "type": "ChildIdInUse",
            "message": f"a run with id {data['id']!r} already exists; give each child its own id",
            "details": {"child": data["id"], "workflow": data["workflow"]},
        }
    from interpreter.client import prepare_input  # the client imports the worker, which imports us

    try:
        child_input = prepare_input(
            child_defn.workflow.input_schema, data["input"], f"the input of child {data['id']!r}"
        )
    except InputInvalid as exc:
        return {
            "type": "InputInvalid",
            "message": exc.message,
            "details": {"child": data["id"], "workflow": data["workflow"]},
        }
    child = started_run(child_defn, data["id"], child_input, parent=parent)
    return child, child_defn


class _ChildLoadError(Exception):
    """`kind`: WorkflowNotFound (no file) or ChildWorkflowInvalid (a file that does not
    validate)."""

    def __init__(self, message: str, kind: str = "WorkflowNotFound") -> None:
        super().__init__(message)
        self.kind = kind


def _load_child_definition(name: str, parent: Definition, dirs: tuple[Path, ...]) -> Definition:
    from dsl.resolve import resolve_child_workflow
    from interpreter.client import (
        load_definition,
    )  # the client imports the worker, which imports us
    from interpreter.errors import WorkflowInvalid

    base = Path(parent.file).parent if parent.file else Path.cwd()
    path = resolve_child_workflow(name, base, list(dirs))
    if path is None:
        raise _ChildLoadError(
            f"child workflow {name!r} not found next to {parent.file or 'the parent'} or in --workflows dirs"
        )
    try:
        # load_definition validates a file once per process and content (a changed child file
        # is validated again when the next child starts): a map of 100 children, or 200 test
        # cases, do not lint the same child 100 times.
        return load_definition(path, workflow_dirs=dirs)
    except WorkflowInvalid as exc:
        errors = [d for d in exc.diagnostics if d.severity.value == "error"]
        where = (
            f"{path.name}:{errors[0].line}:{errors[0].column} [{errors[0].code}] " if errors else ""
        )
        raise _ChildLoadError(
            f"child workflow {name!r} was found ({path}) but is invalid: {len(errors)} error(s), "
            f"the first: {where}{errors[0].message if errors else 'unknown error'}; "
            f"run tideflow validate {path}",
            "ChildWorkflowInvalid",
        ) from None
