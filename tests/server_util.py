"""A real `tideflow server` subprocess on a free port of 127.0.0.1, for the API and UI tests."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from tests.conftest import SAMPLE_ACTIVITIES, SAMPLES
from tests.run_helpers import cli_popen


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Server:
    def __init__(self, proc: subprocess.Popen[str], port: int, token: str | None) -> None:
        self.proc = proc
        self.url = f"http://127.0.0.1:{port}"
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(base_url=self.url, headers=headers, timeout=30)

    def get(self, path: str, **kw: Any) -> httpx.Response:
        return self.http.get(path, **kw)

    def post(self, path: str, **kw: Any) -> httpx.Response:
        return self.http.post(path, **kw)


@contextmanager
def running_server(
    db: str, *extra: str, token: str | None = None, workers: int = 1
) -> Iterator[Server]:
    port = free_port()
    args = ["server", "--db", db, "--port", str(port), "--workers", str(workers)]
    args += ["--workflows", str(SAMPLES), "--activities", str(SAMPLE_ACTIVITIES), *extra]
    if token:
        args += ["--token", token]
    proc = cli_popen(*args)
    server = Server(proc, port, token)
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"server exited: {proc.communicate()}")
            try:
                server.http.get("/openapi.json")
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise AssertionError("server did not answer within 30s") from None
                time.sleep(0.1)
        yield server
    finally:
        server.http.close()
        proc.terminate()
        try:
            proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
