"""The exception tree of tideflow's Python API.

TideflowError
├── ApplicationError        raised by activities to fail an attempt with a chosen type
├── ActivityRegistryError   unknown or duplicate activity, module that does not load
├── WorkflowInvalid         the workflow file has errors (carries the diagnostics)
├── InputInvalid            the run input, a signal payload or a run id is not acceptable
│                           (violates the schema, is not JSON data, an empty run id, ...)
├── RunIdConflict           start with the id of a run of another workflow/definition/input
├── StoreError              the store cannot be opened or used
│   ├── StoreVersionError   written by a newer tideflow
│   ├── NotAStore           the file is not a tideflow store
│   ├── StoreNotFound       no store there, and the caller asked not to create one
│   ├── StoreBusy           locked longer than the busy timeout
│   └── StoreDamaged        the store's file is corrupt, or was deleted or replaced under us
├── RunNotFound
├── CallbackRefused         a callback token that is unknown, already used or late (its
│                           attempt ended); a malformed one is InputInvalid
├── RunFinished             a signal/cancel aimed at a run that already ended (or an update
│                           whose run ended before applying it)
├── RedriveRefused          a retry or fork that cannot be done safely (the run compensated
│                           already, an incompatible definition, no step to retry)
├── CompensateRefused       `compensate` on a run that holds no compensations (not failed,
│                           or its failure compensated at once, or they ran already)
├── UpdateRejected          the update's validator (or one of its templates) rejected it
└── ResultTimeout           Client.result waited longer than asked
    └── UpdateTimeout       Client.update waited longer than asked (the update stays stored)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class TideflowError(Exception):
    """Base of every error tideflow raises on purpose. `hint` says how to fix it."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class ApplicationError(TideflowError):
    """Raise from an activity to fail the attempt with an explicit error `type`.

    `non_retryable=True` ends the step at once (no further attempts); `details` must be JSON.
    """

    def __init__(
        self,
        message: str,
        *,
        type: str | None = None,
        non_retryable: bool = False,
        details: Any = None,
    ) -> None:
        super().__init__(message)
        self.type = type or "ApplicationError"
        self.non_retryable = non_retryable
        self.details = details


class ActivityRegistryError(TideflowError):
    pass


class WorkflowInvalid(TideflowError):
    def __init__(self, message: str, diagnostics: list[Any]) -> None:
        super().__init__(message)
        self.diagnostics = diagnostics


class InputInvalid(TideflowError):
    pass


class RunIdConflict(TideflowError):
    """`start(run_id=...)` named an existing run that has another workflow, definition or
    input (the same ones return the existing run: starting is idempotent)."""


class StoreError(TideflowError):
    pass


class StoreVersionError(StoreError):
    pass


class NotAStore(StoreError):
    pass


class StoreNotFound(StoreError):
    pass


class StoreBusy(StoreError):
    pass


class StoreDamaged(StoreError):
    """Going on would lose or corrupt runs: a worker stops instead of retrying."""


class RunNotFound(TideflowError):
    pass


class RunFinished(TideflowError):
    pass


class RedriveRefused(TideflowError):
    pass


class CompensateRefused(TideflowError):
    pass


class ResultTimeout(TideflowError):
    pass


class CallbackRefused(TideflowError):
    """`complete`/`heartbeat` named a token that cannot be applied; nothing was changed.
    `reason`: "unknown" (no such token), "used" (already completed), "late" (its attempt
    ended: timed out, retried, cancelled, or the run ended)."""

    def __init__(self, message: str, *, reason: str, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.reason = reason


class UpdateRejected(TideflowError):
    """The run rejected the update (its validator was false or failed): nothing changed."""


class UpdateTimeout(ResultTimeout):
    """The update was stored but not applied within the timeout; it may still be applied, and
    a call with the same update id waits for it again."""


def safe_text(value: object, render: Callable[[object], str] = str) -> str:
    """str() (or repr()) of an object from user code, whose own __str__ may raise."""
    try:
        return render(value)
    except Exception as exc:
        return f"<{type(value).__name__}: its {render.__name__}() raised {type(exc).__name__}>"
