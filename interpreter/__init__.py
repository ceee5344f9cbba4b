"""tideflow's interpreter: the durable engine, its stores, activities, client and CLI.

Public API (pinned by tests/test_public_api.py):

    from interpreter import activity, ActivityContext, ApplicationError, Client
"""

from interpreter.activities import ActivityContext, activity, load_activity_modules
from interpreter.client import Client
from interpreter.errors import (
    ApplicationError,
    InputInvalid,
    ResultTimeout,
    RunFinished,
    RunIdConflict,
    RunNotFound,
    StoreError,
    TideflowError,
    WorkflowInvalid,
)

__all__ = [
    "ActivityContext",
    "ApplicationError",
    "Client",
    "InputInvalid",
    "ResultTimeout",
    "RunFinished",
    "RunIdConflict",
    "RunNotFound",
    "StoreError",
    "TideflowError",
    "WorkflowInvalid",
    "activity",
    "load_activity_modules",
]
