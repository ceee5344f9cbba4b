"""tideflow's interpreter: the durable engine, its stores, activities, client and CLI.

Public API (pinned by tests/test_public_api.py):

    from interpreter import activity, ActivityContext, ApplicationError, Client
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from interpreter.errors import (
    ApplicationError,
    CallbackRefused,
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

if TYPE_CHECKING:
    from interpreter.activities import ActivityContext, activity, load_activity_modules
    from interpreter.async_client import AsyncClient
    from interpreter.client import Client
    from interpreter.handles import AsyncRunHandle, RunHandle

# Loaded on first use: every `tideflow` command imports this package (interpreter.cli lives
# in it), and `tideflow --help` or `status` must not pay for the engine, the workflow model
# and Jinja2, which the client and the activities pull in.
_WHERE = {
    "ActivityContext": "interpreter.activities",
    "activity": "interpreter.activities",
    "load_activity_modules": "interpreter.activities",
    "Client": "interpreter.client",
    "AsyncClient": "interpreter.async_client",
    "RunHandle": "interpreter.handles",
    "AsyncRunHandle": "interpreter.handles",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'interpreter' has no attribute {name!r}")
    return getattr(import_module(module), name)


__all__ = [
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
