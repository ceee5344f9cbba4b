"""The public Python API, pinned: adding or removing a name is a deliberate change made here."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest
from run_helpers import run_to_end, write_workflow

import dsl
import interpreter
from interpreter import (
    ActivityContext,
    ApplicationError,
    CallbackRefused,
    Client,
    InputInvalid,
    ResultTimeout,
    RunFinished,
    RunIdConflict,
    RunNotFound,
    StoreError,
    TideflowError,
    UpdateRejected,
    UpdateTimeout,
    WorkflowInvalid,
)

INTERPRETER_API = [
    "ActivityContext",
    "ApplicationError",
    "AsyncClient",
    "AsyncRunHandle",
    "CallbackRefused",
    "Client",
    "InputInvalid",
    "ResultTimeout",
    "RunFinished",
    "RunHandle",
    "RunIdConflict",
    "RunNotFound",
    "StoreError",
    "TideflowError",
    "UpdateRejected",
    "UpdateTimeout",
    "WorkflowInvalid",
    "activity",
    "load_activity_modules",
]

DSL_API = [
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

CLIENT_METHODS = {
    "cancel",
    "close",
    "complete_callback",
    "fail_callback",
    "heartbeat_callback",
    "execute",
    "get",
    "history",
    "list_runs",
    "query",
    "result",
    "signal",
    "start",
    "start_run",
    "status",
    "terminate",
    "update",
}


def test_interpreter_all_is_pinned() -> None:
    assert interpreter.__all__ == INTERPRETER_API
    for name in INTERPRETER_API:
        assert getattr(interpreter, name) is not None


def test_dsl_all_is_pinned() -> None:
    assert dsl.__all__ == DSL_API
    for name in DSL_API:
        assert getattr(dsl, name) is not None


def test_exception_tree() -> None:
    for error in (
        ApplicationError,
        CallbackRefused,
        InputInvalid,
        ResultTimeout,
        RunFinished,
        RunIdConflict,
        RunNotFound,
        StoreError,
        UpdateRejected,
        UpdateTimeout,
        WorkflowInvalid,
    ):
        assert issubclass(error, TideflowError)
    assert issubclass(UpdateTimeout, ResultTimeout)
    err = ApplicationError("nope", type="Declined", non_retryable=True, details={"a": 1})
    assert (err.message, err.type, err.non_retryable, err.details) == (
        "nope",
        "Declined",
        True,
        {"a": 1},
    )
    plain = ApplicationError("x")
    assert (plain.type, plain.non_retryable, plain.details) == ("ApplicationError", False, None)
    assert TideflowError("m", hint="h").hint == "h"


def test_client_methods() -> None:
    public = {
        name
        for name, _ in inspect.getmembers(Client, inspect.isfunction)
        if not name.startswith("_")
    }
    assert public >= CLIENT_METHODS
    assert list(inspect.signature(Client.start).parameters) == [
        "self",
        "workflow",
        "input",
        "run_id",
    ]
    assert "timeout" in inspect.signature(Client.result).parameters


def test_activity_context_fields() -> None:
    ctx = ActivityContext(
        run_id="r",
        workflow="w",
        state="s",
        attempt=2,
        idempotency_key="k",
        heartbeat_details={"p": 1},
    )
    assert (ctx.run_id, ctx.workflow, ctx.state, ctx.attempt, ctx.idempotency_key) == (
        "r",
        "w",
        "s",
        2,
        "k",
    )
    assert ctx.heartbeat_details == {"p": 1}
    assert ctx.cancelled is False
    ctx.heartbeat({"p": 2})


def test_client_works_as_a_context_manager_and_reports_missing_runs(tmp_path: Path) -> None:
    wf = write_workflow(tmp_path, "name: tiny\nstates:\n  done: {type: succeed, output: 42}\n")
    with Client(str(tmp_path / "store.db")) as client:
        run = run_to_end(client, wf)
        assert (run.status, run.output) == ("completed", 42)
        assert client.result(run.id, timeout=1).output == 42
        with pytest.raises(RunNotFound):
            client.get("nope")
        with pytest.raises(RunFinished):
            client.cancel(run.id)
        with pytest.raises(WorkflowInvalid) as info:
            client.start(write_workflow(tmp_path, "name: bad\nstates: {}\n", name="bad.yaml"))
        assert info.value.diagnostics


def test_result_timeout(tmp_path: Path) -> None:
    wf = write_workflow(
        tmp_path, "name: napper\nstates:\n  nap: {type: sleep, duration: 1h, end: true}\n"
    )
    with Client(str(tmp_path / "store.db")) as client:
        run_id = client.start(wf)
        with pytest.raises(ResultTimeout):
            client.result(run_id, timeout=0.1)
