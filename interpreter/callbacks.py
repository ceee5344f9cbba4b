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
from typing import Any

from interpreter.core.callbacks import is_callback, pending_attempts
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


class CallbackTokens:
    """One run driver's tokens: the tokens of the attempts it starts, and which attempts'
    tokens the next commit opens or closes."""

    def __init__(self) -> None:
        self._pending: set[tuple[str, int]] = set()
        self._tokens: dict[str, str] = {}
        self._opened: list[tuple[str, int, str, str]] = []

    def restore(self, state: dict[str, Any]) -> None:
        """The attempts whose tokens the committed `state` still waits for."""
        self._pending = pending_attempts(state)

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
        self, state: dict[str, Any]
    ) -> tuple[list[tuple[str, int, str, str]], list[tuple[str, int]], set[tuple[str, int]]]:
        """(opened, closed, pending after) for a commit of `state`."""
        pending = pending_attempts(state)
        closed = sorted(self._pending - pending)
        return list(self._opened), closed, pending

    def committed(self, pending: set[tuple[str, int]]) -> None:
        self._pending = pending
        self._opened.clear()
