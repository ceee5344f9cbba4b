"""Callback tokens (`completion: callback`) outside the pure core: making them, checking the
ones people send back, and telling the store which attempts' tokens open and close.

A token is `tfcb_` + 43 URL-safe characters (256 bits from `secrets`). The store keeps only its
sha256, so a copy of the store cannot complete anything. The decisions (what a completion, a
failure, a heartbeat or a timeout does to the run) are in interpreter/core/callbacks.py.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from typing import Any

from interpreter.core.callbacks import CALLBACK, is_callback, pending_attempts
from interpreter.core.records import Event
from interpreter.errors import InputInvalid

TOKEN_PREFIX = "tfcb_"
_TOKEN = re.compile(r"tfcb_[A-Za-z0-9_-]{43}")


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """The sha256 the store keeps of `token`; InputInvalid when it is not a token at all."""
    if not isinstance(token, str) or _TOKEN.fullmatch(token.strip()) is None:
        shown = repr(token)[:40] if isinstance(token, str) else type(token).__name__
        raise InputInvalid(
            f"malformed callback token {shown}: expected {TOKEN_PREFIX} followed by 43 "
            "letters, digits, - or _",
            hint="pass the token exactly as the activity got it in ctx.callback_token",
        )
    return hashlib.sha256(token.strip().encode()).hexdigest()


@dataclass(slots=True)
class TokenChanges:
    """What one commit does to a run's tokens: the attempts it opens, as (task, attempt, state,
    token sha256), the attempts it closes, as (task, attempt), and the open attempts after it
    that were not open before."""

    opened: list[tuple[str, int, str, str]]
    closed: list[tuple[str, int]]
    still_open: list[tuple[str, int]]


def _waits_for_token(task: dict[str, Any] | None, attempt: int) -> bool:
    return (
        task is not None
        and task["attempt"] == attempt
        and is_callback(task)
        and task["status"] in ("running", CALLBACK)
    )


class CallbackTokens:
    """One run driver's tokens: the tokens of the attempts it starts, and which attempts'
    tokens the next commit opens or closes.

    A commit looks only at the tasks that step changed (those its events name, and those it
    dropped with their frames), not at every task of the run: a map of 1,000 callback items
    waiting costs a step no more than one."""

    def __init__(self) -> None:
        self._pending: dict[str, int] = {}  # task id -> its attempt whose token is open
        self._tokens: dict[str, str] = {}
        self._opened: list[tuple[str, int, str, str]] = []

    def restore(self, state: dict[str, Any]) -> None:
        """The attempts whose tokens the committed `state` still waits for."""
        self._pending = dict(pending_attempts(state))

    def issue(self, started: list[dict[str, Any]]) -> None:
        """A fresh token for every callback attempt just started (an interrupted attempt that
        runs again gets a new one; the old one still addresses the same attempt)."""
        for task in started:
            if is_callback(task):
                token = new_token()
                self._tokens[task["id"]] = token
                self._opened.append((task["id"], task["attempt"], task["state"], hash_token(token)))

    def token_for(self, task_id: str) -> str | None:
        return self._tokens.pop(task_id, None)

    def changes(
        self, state: dict[str, Any], events: list[Event], dropped: list[str]
    ) -> TokenChanges:
        """The token changes of a commit of `state` with `events`; `dropped`: the tasks the
        step removed without an event of their own (saga.drop_waits_of). Every other change
        of a callback attempt (started, waiting, received, completed, failed, retried,
        interrupted) is an event naming its task."""
        tasks = state["tasks"]
        closed: list[tuple[str, int]] = []
        if self._pending:
            touched = {event.payload.get("task") for event in events}
            touched.update(dropped)
            for task_id in touched:
                if not isinstance(task_id, str):
                    continue  # an event that names no task
                attempt = self._pending.get(task_id)
                if attempt is not None and not _waits_for_token(tasks.get(task_id), attempt):
                    closed.append((task_id, attempt))
        still_open = [
            (task_id, attempt)
            for task_id, attempt, _, _ in self._opened
            if _waits_for_token(tasks.get(task_id), attempt)
        ]
        return TokenChanges(list(self._opened), sorted(closed), still_open)

    def committed(self, changes: TokenChanges) -> None:
        for task_id, attempt in changes.closed:
            if self._pending.get(task_id) == attempt:
                del self._pending[task_id]
        self._pending.update(changes.still_open)
        self._opened.clear()
