"""PostgreSQL plumbing for the store: clear connect errors, a pool whose operations survive a
server restart, and a LISTEN thread that tells workers when new work arrives.

Kept apart from `postgres.py` so that file holds only what the store does, not how it talks.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

from interpreter.errors import StoreError

try:
    import psycopg
    from psycopg import sql
    from psycopg.conninfo import conninfo_to_dict
    from psycopg_pool import ConnectionPool, PoolTimeout
except ImportError:  # pragma: no cover - an install without the PostgreSQL packages
    raise StoreError(
        "PostgreSQL stores need the psycopg and psycopg-pool packages",
        hint="install them: pip install 'psycopg[binary]' psycopg-pool",
    ) from None

__all__ = ["Database", "Listener", "psycopg", "redact", "server_message"]

T = TypeVar("T")

CONNECT_TIMEOUT = 5  # seconds; a wrong host or port must fail fast, not hang
RETRY_SECONDS = 30.0  # how long an operation keeps retrying while the server is away
RETRY_ENV = "TIDEFLOW_PG_RETRY_SECONDS"  # changes it (0 to 3600)


def retry_seconds() -> float:
    """RETRY_SECONDS, or the number of seconds in TIDEFLOW_PG_RETRY_SECONDS."""
    raw = os.environ.get(RETRY_ENV, "").strip()
    try:
        value = float(raw) if raw else RETRY_SECONDS
    except ValueError:
        raise StoreError(
            f"{RETRY_ENV}={raw!r} is not a number of seconds", hint="set it to 0..3600, or unset it"
        ) from None
    if not 0 <= value <= 3600:
        raise StoreError(f"{RETRY_ENV}={raw!r} is out of range", hint="set it to 0..3600")
    return value


IDLE_LISTEN_POLL = 0.5  # the LISTEN thread checks for close() this often
URL_FORM = "postgresql://user[:password]@host[:port]/database"

# psycopg_pool logs every failed reconnect attempt; the store reports outages itself.
logging.getLogger("psycopg.pool").addHandler(logging.NullHandler())
logging.getLogger("psycopg.pool").propagate = False

# SQLSTATEs after which the connection is gone (class 08) or the server is going away (57P0x).
_CONNECTION_STATES = ("57P01", "57P02", "57P03")


class InDoubt(Exception):
    """Internal: the connection broke while a write may have been committed."""


def describe(url: str) -> str:
    """The URL without its password, for messages."""
    try:
        params = conninfo_to_dict(url)
    except psycopg.Error:
        return "postgresql://..."
    user = str(params.get("user") or "")
    host = str(params.get("host") or "localhost")
    port = str(params.get("port") or "5432")
    db = str(params.get("dbname") or user)
    return f"postgresql://{user + '@' if user else ''}{host}:{port}/{db}"


def redact(url: str) -> str:
    """The URL with its password masked (it is printed, e.g. by `tideflow worker`)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rpartition("@")
    user = netloc[0].partition(":")[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc[2]}"))


def connect_kwargs(url: str) -> dict[str, Any]:
    """Options every connection gets; a connect_timeout written in the URL wins."""
    try:
        params = conninfo_to_dict(url)
    except psycopg.Error as exc:
        raise StoreError(
            f"invalid PostgreSQL URL: {_first_line(exc)}", hint=f"write it as {URL_FORM}"
        ) from None
    kwargs: dict[str, Any] = {"autocommit": True}
    if "connect_timeout" not in params:
        kwargs["connect_timeout"] = CONNECT_TIMEOUT
    return kwargs


def _first_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text.removeprefix("connection failed: ")


def server_message(exc: psycopg.Error) -> str:
    """The server's own sentence, without the echoed SQL and caret psycopg appends."""
    primary = exc.diag.message_primary
    return primary if primary else _first_line(exc)


# What the server, or the network, answers while PostgreSQL restarts: worth waiting for.
_RESTARTING = ("starting up", "shutting down", "in recovery mode", "not yet accepting")
_UNREACHABLE = (
    "refused",
    "timeout expired",
    "timed out",
    "no route",
    "unreachable",
    "could not connect",
    "server closed the connection",
)


def is_transient(exc: psycopg.Error) -> bool:
    """A connect error that a server restart gives (not a wrong URL, login or database)."""
    low = _first_line(exc).lower()
    return any(s in low for s in _RESTARTING + _UNREACHABLE)


def connect_error(exc: psycopg.Error, url: str) -> StoreError:
    """A StoreError that says which of the usual mistakes this is."""
    target = describe(url)
    text = _first_line(exc)
    low = text.lower()
    if any(s in low for s in _RESTARTING):
        return StoreError(
            f"PostgreSQL at {target} is restarting and did not come back in time: {text}",
            hint=f"wait for the server, then retry; {RETRY_ENV} sets how long tideflow waits",
        )
    if "password authentication failed" in low or ("role" in low and "does not exist" in low):
        return StoreError(
            f"PostgreSQL at {target} refused the login: {text}",
            hint="check the user and password in the URL (or PGPASSWORD / ~/.pgpass)",
        )
    if "no pg_hba.conf entry" in low:
        return StoreError(
            f"PostgreSQL at {target} does not accept this client: {text}",
            hint="allow this host/user in pg_hba.conf, or connect as another user",
        )
    if "database" in low and "does not exist" in low:
        return StoreError(
            f"PostgreSQL at {target}: {text}",
            hint="create it (`createdb NAME`) or fix the database name at the end of the URL",
        )
    if any(s in low for s in (*_UNREACHABLE, "resolve host", "translate host")):
        return StoreError(
            f"cannot reach PostgreSQL at {target}: {text}",
            hint="is the server running and listening there? check the host and port in the URL",
        )
    if "invalid" in low and ("connection option" in low or "integer value" in low or "uri" in low):
        return StoreError(f"invalid PostgreSQL URL: {text}", hint=f"write it as {URL_FORM}")
    return StoreError(
        f"cannot connect to PostgreSQL at {target}: {text}", hint=f"the URL looks like {URL_FORM}"
    )


def is_connection_error(exc: BaseException) -> bool:
    if isinstance(exc, PoolTimeout | psycopg.InterfaceError):
        return True
    if isinstance(exc, psycopg.OperationalError):
        state = exc.sqlstate
        return state is None or state.startswith("08") or state in _CONNECTION_STATES
    return False


def is_retryable(exc: BaseException) -> bool:
    """Rolled back for sure: a serialisation failure or a deadlock (class 40)."""
    return isinstance(exc, psycopg.errors.TransactionRollback)


class Database:
    """A connection pool plus the retry policy every store operation goes through."""

    def __init__(self, url: str, *, max_size: int = 8) -> None:
        self.url = url
        self.target = describe(url)
        self.kwargs = connect_kwargs(url)
        self.round_trips = 0  # statements sent (BEGIN and COMMIT included); bench/scale.py reads it
        self.pool: ConnectionPool[psycopg.Connection[Any]] = ConnectionPool(
            url,
            kwargs=self.kwargs,
            min_size=1,
            max_size=max_size,
            open=False,
            timeout=CONNECT_TIMEOUT,
            reconnect_timeout=RETRY_SECONDS * 2,
            name="tideflow",
        )

    def connect(self) -> psycopg.Connection[Any]:
        """One direct connection, with a clear error when that is impossible. While the server
        is restarting or unreachable, retry for retry_seconds() (saying so once on stderr): a
        command run during a restart waits for it, like a running store operation does."""
        deadline = time.monotonic() + retry_seconds()
        delay = 0.1
        told = False
        while True:
            try:
                return psycopg.connect(self.url, **self.kwargs)
            except psycopg.Error as exc:
                remaining = deadline - time.monotonic()
                if not is_transient(exc) or remaining <= 0:
                    raise connect_error(exc, self.url) from None
                if not told:
                    told = True
                    print(
                        f"tideflow: PostgreSQL at {self.target} is not answering "
                        f"({_first_line(exc)}); retrying for up to {retry_seconds():g} s",
                        file=sys.stderr,
                    )
            time.sleep(min(delay, remaining))
            delay = min(delay * 2, 2.0)

    def open(self) -> None:
        self.pool.open(wait=False)

    def close(self) -> None:
        self.pool.close(timeout=1.0)

    def run(
        self,
        op: Callable[[psycopg.Connection[Any]], T],
        *,
        resolve: Callable[[psycopg.Connection[Any]], tuple[bool, T]] | None = None,
    ) -> T:
        """Run `op` on a pooled connection; retry it while the server is away.

        A write whose connection broke may or may not have committed. If `resolve` is given it
        is asked first on the next attempt: `(True, value)` means the write had landed."""
        budget = retry_seconds()
        deadline = time.monotonic() + budget
        delay = 0.1
        in_doubt = False
        while True:
            try:
                with self.pool.connection() as conn:
                    try:
                        if in_doubt and resolve is not None:
                            landed, value = resolve(conn)
                            if landed:
                                return value
                        return op(conn)
                    except psycopg.Error as exc:
                        if is_connection_error(exc) and not conn.closed:
                            conn.close()  # never hand a half-dead connection out again
                        raise
            except psycopg.Error as exc:
                if is_connection_error(exc):
                    in_doubt = True
                elif not is_retryable(exc):
                    raise StoreError(
                        f"PostgreSQL at {self.target}: {server_message(exc)}"
                    ) from None
                reason = _first_line(exc)
            except PoolTimeout as exc:
                reason = _first_line(exc)
            if time.monotonic() + delay > deadline:
                raise StoreError(
                    f"lost the connection to PostgreSQL at {self.target} and could not get it "
                    f"back within {budget:g} s ({reason})",
                    hint="check that the server is running; runs continue where they stopped once it is back",
                )
            time.sleep(delay)
            delay = min(delay * 2, 2.0)


class Listener:
    """A thread on its own connection that LISTENs on the store's channel and calls every
    subscriber when something is NOTIFYed (and once after each reconnect, since
    notifications sent while it was away are lost)."""

    def __init__(self, url: str, kwargs: dict[str, Any], channel: str) -> None:
        self.url = url
        self.kwargs = kwargs
        self.channel = channel
        self._callbacks: list[tuple[Callable[[], None], frozenset[str]]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def subscribe(
        self, callback: Callable[[], None], ignore: frozenset[str] = frozenset()
    ) -> Callable[[], None]:
        """Call `callback` on every notification whose payload (what changed) is not in
        `ignore`, and after each reconnect."""
        entry = (callback, ignore)
        with self._lock:
            self._callbacks.append(entry)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._loop, name="tideflow-listen", daemon=True
                )
                self._thread.start()

        def unsubscribe() -> None:
            with self._lock:
                if entry in self._callbacks:
                    self._callbacks.remove(entry)

        return unsubscribe

    def close(self) -> None:
        # Not joined: the thread notices within IDLE_LISTEN_POLL and closing a store (every CLI
        # command does) should not wait for that.
        self._stop.set()

    def _fire(self, what: str | None = None) -> None:
        """`what`: the notification's payload; None after a reconnect (anything may have
        changed meanwhile)."""
        with self._lock:
            callbacks = [c for c, ignore in self._callbacks if what is None or what not in ignore]
        for callback in callbacks:
            # A callback whose event loop has closed raises: a wake-up nobody waits for.
            with contextlib.suppress(Exception):
                callback()

    def _loop(self) -> None:
        delay = 0.1
        while not self._stop.is_set():
            try:
                with psycopg.connect(self.url, **self.kwargs) as conn:
                    conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self.channel)))
                    delay = 0.1
                    self._fire()
                    while not self._stop.is_set():
                        for notice in conn.notifies(timeout=IDLE_LISTEN_POLL, stop_after=1):
                            self._fire(notice.payload)
            except psycopg.Error:
                self._stop.wait(delay)
                delay = min(delay * 2, 2.0)
