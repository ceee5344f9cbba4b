"""Lease owners: who holds a run, and whether that holder is provably gone.

An owner id is `host:pid:nonce`. Leases expire on their own (another machine's dead worker is
detected that way); a holder on this same host whose process no longer exists is dead at once,
so `tideflow resume` after a kill -9 does not wait for the lease to run out.
"""

from __future__ import annotations

import os
import socket
import uuid

_HOST = socket.gethostname()
HOST_PREFIX = f"{_HOST}:"


def new_owner_id() -> str:
    return f"{_HOST}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def owner_is_dead(owner: str) -> bool:
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host != _HOST or not pid_text.isdigit():
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
