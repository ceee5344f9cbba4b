"""The built-in `http` activity against a real HTTP server on 127.0.0.1 (started by the tests)."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from conftest import SAMPLE_ACTIVITIES, SAMPLES, run_cli
from run_helpers import assert_clean, history, of_type, one_json, run_to_end, write_workflow

from interpreter import Client


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # keep pytest output clean
        pass

    def _send(self, status: int, body: Any, content_type: str = "application/json") -> None:
        data = (json.dumps(body) if content_type == "application/json" else str(body)).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _route(self) -> None:
        path, _, query = self.path.partition("?")
        with self.server.lock:
            self.server.hits[path] += 1
            hits = self.server.hits[path]
        parts = path.strip("/").split("/")
        if path == "/json":
            self._send(200, {"hello": "world", "query": query})
        elif path == "/data":
            self._send(200, {"items": [1, 2, 3], "source": "test server"})
        elif path == "/fail":
            self._send(500, "the server is failing", "text/plain")
        elif path == "/text":
            self._send(200, "plain words", "text/plain")
        elif path == "/echo":
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length).decode() if length else ""
            self._send(
                200,
                {
                    "method": self.command,
                    "body": json.loads(raw) if raw else None,
                    "content_type": self.headers.get("Content-Type"),
                    "x_test": self.headers.get("X-Test"),
                },
            )
        elif parts[0] == "status":
            self._send(int(parts[1]), f"body of a {parts[1]}", "text/plain")
        elif parts[0] == "flaky":
            # /flaky/<key>/<n>: the first n requests answer 503.
            if hits <= int(parts[2]):
                self._send(503, "try again later", "text/plain")
            else:
                self._send(200, {"ok": True, "hits": hits})
        elif path == "/redirect-ftp":
            self.send_response(302)
            self.send_header("Location", "ftp://127.0.0.1/file")
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif path == "/slow":
            time.sleep(1.0)
            self._send(200, {"slow": True})
        else:
            self._send(404, "no such page", "text/plain")

    do_GET = _route
    do_POST = _route
    do_PUT = _route


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.hits: Counter[str] = Counter()
        self.lock = threading.Lock()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


def _serve(port: int) -> Iterator[_Server]:
    yield from _served(_Server(port))


def _served(server: _Server) -> Iterator[_Server]:
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def server() -> Iterator[_Server]:
    yield from _serve(0)


HTTP_WF = """
    name: http_call
    states:
      call:
        type: activity
        activity: http
        input: "{{ input.request }}"
        retry: {max_attempts: 3, initial_interval: 10ms, backoff: 1}
        timeout: {start_to_close: 10s}
        result: response
        end: true
"""


def call(client: Client, tmp_path: Path, request: dict[str, Any]) -> Any:
    return run_to_end(client, write_workflow(tmp_path, HTTP_WF), {"request": request})


def test_get_json(client: Client, tmp_path: Path, server: _Server) -> None:
    run = call(client, tmp_path, {"url": f"{server.base}/json", "params": {"q": "tide"}})
    assert run.status == "completed", run.error
    assert run.output["status"] == 200
    assert run.output["json"] == {"hello": "world", "query": "q=tide"}
    assert run.output["headers"]["content-type"] == "application/json"


def test_get_text(client: Client, tmp_path: Path, server: _Server) -> None:
    run = call(client, tmp_path, {"url": f"{server.base}/text"})
    assert run.status == "completed", run.error
    assert run.output["text"] == "plain words"
    assert "json" not in run.output


def test_post_json_body_and_headers(client: Client, tmp_path: Path, server: _Server) -> None:
    run = call(
        client,
        tmp_path,
        {
            "method": "post",
            "url": f"{server.base}/echo",
            "json": {"a": 1, "b": [True, None]},
            "headers": {"X-Test": "yes"},
        },
    )
    assert run.status == "completed", run.error
    assert run.output["json"] == {
        "method": "POST",
        "body": {"a": 1, "b": [True, None]},
        "content_type": "application/json",
        "x_test": "yes",
    }


def test_expect_list_accepts_and_rejects(client: Client, tmp_path: Path, server: _Server) -> None:
    ok = call(client, tmp_path, {"url": f"{server.base}/status/201", "expect": [201, 202]})
    assert ok.status == "completed", ok.error
    assert ok.output["status"] == 201
    unexpected = call(client, tmp_path, {"url": f"{server.base}/json", "expect": [201]})
    assert unexpected.status == "failed"
    assert unexpected.error["type"] == "HttpError"
    assert unexpected.error["details"]["status"] == 200
    assert server.hits["/json"] == 1, "a status outside `expect` below 500 is not retried"


def test_5xx_is_retried_then_succeeds(client: Client, tmp_path: Path, server: _Server) -> None:
    run = call(client, tmp_path, {"url": f"{server.base}/flaky/k1/2"})
    assert run.status == "completed", run.error
    assert run.output["json"] == {"ok": True, "hits": 3}
    assert server.hits["/flaky/k1/2"] == 3
    failed = of_type(history(client, run.id), "ActivityFailed")
    assert [f["payload"]["error"]["type"] for f in failed] == ["HttpError", "HttpError"]
    assert failed[0]["payload"]["error"]["details"]["status"] == 503


def test_404_is_a_non_retryable_http_error_with_status_and_body(
    client: Client, tmp_path: Path, server: _Server
) -> None:
    run = call(client, tmp_path, {"url": f"{server.base}/missing"})
    assert run.status == "failed"
    assert run.error["type"] == "HttpError"
    assert run.error["details"] == {"status": 404, "body": "no such page"}
    assert "404" in run.error["message"]
    assert server.hits["/missing"] == 1
    assert not of_type(history(client, run.id), "RetryScheduled")


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_connection_refused_is_retryable(client: Client, tmp_path: Path) -> None:
    run = call(client, tmp_path, {"url": f"http://127.0.0.1:{_closed_port()}/x"})
    assert run.status == "failed"
    assert run.error["type"] == "HttpConnectionError"
    events = history(client, run.id)
    assert len(of_type(events, "ActivityStarted")) == 3
    assert len(of_type(events, "RetryScheduled")) == 2


def test_timeout_is_retryable(client: Client, tmp_path: Path, server: _Server) -> None:
    started = time.monotonic()
    run = call(client, tmp_path, {"url": f"{server.base}/slow", "timeout": "200ms"})
    assert run.status == "failed"
    assert run.error["type"] == "HttpTimeout"
    assert time.monotonic() - started < 3
    assert len(of_type(history(client, run.id), "RetryScheduled")) == 2
    assert server.hits["/slow"] == 3


@pytest.mark.parametrize(
    ("request_", "words"),
    [
        ({"method": "GET"}, "url"),
        ({"url": "http://127.0.0.1:1/", "expect": "200"}, "expect"),
        ({"url": "http://127.0.0.1:1/", "json": {}, "body": "x"}, "not both"),
    ],
)
def test_bad_http_input_fails_at_once(
    client: Client, tmp_path: Path, request_: dict[str, Any], words: str
) -> None:
    run = call(client, tmp_path, request_)
    assert run.status == "failed"
    assert run.error["type"] == "HttpError"
    assert words in run.error["message"]
    assert len(of_type(history(client, run.id), "ActivityStarted")) == 1


# --------------------------------------------------------------------------- the sample


@pytest.fixture
def sample_server() -> Iterator[_Server]:
    """The sample's input points at 127.0.0.1:8765; use that port when it is free (bound at
    once, not probed first: a parallel test may take it in between)."""
    try:
        server = _Server(8765)
    except OSError:
        server = _Server(0)
    yield from _served(server)


def _sample_input(server: _Server, tmp_path: Path, name: str) -> str:
    source = SAMPLES / "inputs" / f"{name}.json"
    if server.server_address[1] == 8765:
        return f"@{source}"
    data = json.loads(source.read_text())
    data["url"] = data["url"].replace("http://127.0.0.1:8765", server.base)
    copy = tmp_path / f"{name}.json"
    copy.write_text(json.dumps(data))
    return f"@{copy}"


def test_sample_http_fetch(store_url: str, tmp_path: Path, sample_server: _Server) -> None:
    proc = run_cli(
        "run",
        str(SAMPLES / "http_fetch.yaml"),
        "--input",
        _sample_input(sample_server, tmp_path, "http_fetch"),
        "--activities",
        str(SAMPLE_ACTIVITIES),
        "--db",
        store_url,
        "--json",
    )
    assert_clean(proc, 0)
    out = one_json(proc)
    assert out["status"] == "completed"
    assert out["output"] == {"status": 200, "body": {"items": [1, 2, 3], "source": "test server"}}
    # The built-in activity needs no --activities at all.
    bare = run_cli(
        "run",
        str(SAMPLES / "http_fetch.yaml"),
        "--input",
        _sample_input(sample_server, tmp_path, "http_fetch"),
        "--db",
        store_url,
        "--json",
    )
    assert_clean(bare, 0)


def test_sample_http_fetch_fails_after_four_attempts(
    store_url: str, tmp_path: Path, sample_server: _Server
) -> None:
    proc = run_cli(
        "run",
        str(SAMPLES / "http_fetch.yaml"),
        "--input",
        _sample_input(sample_server, tmp_path, "http_fetch_fails"),
        "--db",
        store_url,
        "--json",
    )
    assert_clean(proc, 1)
    out = one_json(proc)
    assert out["status"] == "failed"
    assert out["error"]["type"] == "FetchFailed"
    assert out["error"]["details"] == {"cause": "HttpError"}
    assert sample_server.hits["/fail"] == 4


@pytest.mark.parametrize(
    ("request_", "words"),
    [
        ({"url": "notaurl"}, "must be an http:// or https:// URL, not 'notaurl'"),
        ({"url": "file:///etc/passwd"}, "must be an http:// or https:// URL"),
        ({"path": "/json", "headers": {"bad name": "x"}}, "header name 'bad name' is not valid"),
        (
            {"path": "/json", "headers": {"X-Test": "a\r\nX-Evil: 1"}},
            "the value of header 'X-Test'",
        ),
        ({"path": "/json", "headers": {"X-Test": 5}}, "the value of header 'X-Test'"),
        ({"path": "/json", "headers": ["X-Test"]}, "`headers` must be an object"),
        ({"path": "/json", "method": "GET /x HTTP/1.1\r\n"}, "`method` must be an HTTP method"),
        ({"path": "/json", "method": 5}, "`method` must be an HTTP method"),
        ({"path": "/json", "params": "q"}, "`params` must be an object"),
    ],
)
def test_invalid_requests_are_input_errors_not_retried(
    client: Client, tmp_path: Path, server: _Server, request_: dict[str, Any], words: str
) -> None:
    if "path" in request_:  # a copy: the parameters are shared by every store
        request_ = {**request_, "url": server.base + request_["path"]}
    run = call(client, tmp_path, request_)
    assert run.status == "failed"
    assert run.error["type"] == "HttpError", run.error
    assert run.error["message"].startswith("http input: ")
    assert words in run.error["message"]
    assert len(of_type(history(client, run.id), "ActivityStarted")) == 1
    assert not server.hits, "nothing reached the server"


def test_a_redirect_to_another_protocol_is_not_retried(
    client: Client, tmp_path: Path, server: _Server
) -> None:
    run = call(client, tmp_path, {"url": f"{server.base}/redirect-ftp"})
    assert run.status == "failed"
    assert run.error["type"] == "HttpError", run.error
    assert "ftp://" in run.error["message"]
    assert server.hits["/redirect-ftp"] == 1
