"""Child processes a benchmark starts, each in its own process group, so that stopping one also
stops whatever it started (a peer's script leaves a Temporal server and worker behind if it is
killed; a group kill takes them too)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from typing import Any


def start_group(command: list[str], **popen: Any) -> subprocess.Popen[Any]:
    """Popen in a new session: the child leads a process group of its own."""
    return subprocess.Popen(command, start_new_session=True, **popen)


def _signal_group(pgid: int, sig: int) -> bool:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return False
    return True


def stop_group(proc: subprocess.Popen[Any], grace: float = 5.0) -> None:
    """SIGTERM to the child's whole group, SIGKILL to the group after `grace` seconds, then
    reap the child. Safe to call when the child (or the group) has already gone."""
    pgid = proc.pid  # the leader of a new session: its pid is the group id
    if _signal_group(pgid, signal.SIGTERM):
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and group_alive(pgid):
            time.sleep(0.05)
        _signal_group(pgid, signal.SIGKILL)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def group_alive(pgid: int) -> bool:
    """Some member of the group still runs (zombies waiting to be reaped do not count)."""
    try:
        import psutil
    except ImportError:  # without psutil: a signal 0 to the group (zombies count as alive)
        return _signal_group(pgid, 0)
    for proc in psutil.process_iter(["status"]):
        try:
            if os.getpgid(proc.pid) == pgid and proc.info["status"] != psutil.STATUS_ZOMBIE:
                return True
        except (ProcessLookupError, psutil.Error):
            continue
    return False
