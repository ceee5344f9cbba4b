"""Lease owners: who holds a run, and whether that holder is provably gone.

An owner id is `host:pid:nonce`. Leases expire on their own (another machine's dead worker is
detected that way); a holder on this same host whose process no longer exists is dead at once,
so `tideflow resume` after a kill -9 does not wait for the lease to run out.
"""

from __future__ import annotations

import functools
import os
import threading
import time
from collections.abc import Callable, Iterable


@functools.cache
def _host() -> str:
    # Asked for on first use: opening a store (`tideflow status`, `list`) needs no host name,
    # and importing socket is 6% of the instructions of `tideflow status`.
    import socket

    return socket.gethostname()


def host_prefix() -> str:
    """How every owner id of this host begins."""
    return f"{_host()}:"


def new_owner_id() -> str:
    import uuid  # here: `tideflow status` and `list` open a store but hold no lease

    return f"{host_prefix()}{os.getpid()}:{uuid.uuid4().hex[:8]}"


def owner_is_dead(owner: str) -> bool:
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host != _host() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return False


DEAD_OWNER_RECHECK = 1.0


class DeadOwners:
    """The lease holders on this host whose process is gone, re-checked at most once a second
    (a worker polls often; probing every holder's pid on every poll would be waste)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._checked_at = -DEAD_OWNER_RECHECK
        self._owners: list[str] = []

    def get(self, holders: Callable[[], Iterable[str]]) -> list[str]:
        """`holders()` lists the live-leased owners on this host (a store query)."""
        with self._lock:
            if time.monotonic() - self._checked_at < DEAD_OWNER_RECHECK:
                return self._owners
        owners = [owner for owner in holders() if owner_is_dead(owner)]
        with self._lock:
            self._checked_at, self._owners = time.monotonic(), owners
        return owners
