"""`tideflow server`'s HTTP API against a real server subprocess on 127.0.0.1, on SQLite and
PostgreSQL: every endpoint, the error shapes, and the security rules (tokens, body limits,
malformed JSON, unknown runs: a clear 4xx with nothing stored)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from interpreter.client import Client
from interpreter.server import MAX_BODY_BYTES
from interpreter.server_openapi import COMMITTED, render
from tests.conftest import run_cli
from tests.run_helpers import wait_for
from tests.server_util import Server, free_port, running_server

TOKEN = "s3cret-token-for-tests"
APPROVAL = {"request_id": "r1", "amount": 5, "requester": "ann", "timeout": "1h"}


@pytest.fixture
def server(store_url: str) -> Iterator[Server]:
    with running_server(store_url, token=TOKEN) as srv:
        yield srv


def _runs(store_url: str) -> list[str]:
    with Client(store_url) as client:
        return [r.id for r in client.list_runs()]


def _error(resp: httpx.Response, status: int, type_: str) -> dict[str, object]:
    assert resp.status_code == status, resp.text
    error: dict[str, object] = resp.json()["error"]
    assert error["type"] == type_
    assert error["message"]
    assert isinstance(error["exit_code"], int)
    return error


def test_committed_openapi_is_current() -> None:
    assert COMMITTED.read_text(encoding="utf-8") == render(), (
        "regenerate with: python -m interpreter.server_openapi"
    )


def test_start_signal_query_describe_history(server: Server, store_url: str) -> None:
    resp = server.post("/runs", json={"workflow": "approval", "input": APPROVAL, "run_id": "a1"})
    assert resp.status_code == 201, resp.text
    assert resp.json() == {
        "run_id": "a1",
        "workflow": "approval",
        "status": "running",
        "created": True,
    }
    again = server.post("/runs", json={"workflow": "approval", "input": APPROVAL, "run_id": "a1"})
    assert again.status_code == 200 and again.json()["created"] is False
    wait_for(
        lambda: (
            server.post("/runs/a1/query", json={"name": "status"}).json()["value"]["status"]
            == "awaiting_approval"
        )
    )
    sent = server.post(
        "/runs/a1/signal", json={"name": "approve", "payload": {"approved": True, "by": "bo"}}
    )
    assert sent.status_code == 202, sent.text
    wait_for(lambda: server.get("/runs/a1").json()["status"] == "completed", timeout=30)
    info = server.get("/runs/a1").json()
    assert info["output"]["status"] == "approved" and info["output"]["decided_by"] == "bo"
    events = server.get("/runs/a1/history").json()["events"]
    types = [e["type"] for e in events]
    assert types[0] == "RunStarted" and "SignalReceived" in types
    assert types[-1] == "RunCompleted"
    # Followed with Server-Sent Events: the same events, then `end`.
    with server.http.stream("GET", "/runs/a1/history", params={"follow": "1"}) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        body = "".join(stream.iter_text())
    sse = [json.loads(line[6:]) for line in body.splitlines() if line.startswith("data: ")]
    assert [e["type"] for e in sse[:-1]] == types and sse[-1] == {"status": "completed"}
    listed = server.get("/runs", params={"workflow": "approval", "status": "completed"}).json()
    assert [r["run_id"] for r in listed["runs"]] == ["a1"] and listed["cursor"] is None
    graph = server.get("/runs/a1/graph").json()["graph"]
    assert "wait_for_decision" in json.dumps(graph)
    assert server.get("/definitions").json()["definitions"][0]["workflow"] == "approval"


def test_list_pages(server: Server) -> None:
    for i in range(3):
        assert (
            server.post(
                "/runs", json={"workflow": "approval", "input": APPROVAL, "run_id": f"p{i}"}
            ).status_code
            == 201
        )
    first = server.get("/runs", params={"limit": "2"}).json()
    assert len(first["runs"]) == 2 and first["cursor"]
    rest = server.get("/runs", params={"limit": "2", "cursor": first["cursor"]}).json()
    assert len(rest["runs"]) == 1 and rest["cursor"] is None
    ids = {r["run_id"] for r in first["runs"] + rest["runs"]}
    assert ids == {"p0", "p1", "p2"}
    _error(server.get("/runs", params={"limit": "0"}), 422, "InputInvalid")
    _error(server.get("/runs", params={"status": "nope"}), 422, "InputInvalid")
    _error(server.get("/runs", params={"cursor": "garbage"}), 422, "InputInvalid")
    _error(server.get("/runs", params={"since": "yesterday"}), 422, "InputInvalid")
    # The same filter as `tideflow list`: a paused run is running, so the two cannot combine.
    both = server.get("/runs", params=[("status", "paused"), ("status", "failed")])
    _error(both, 422, "InputInvalid")
    assert "status=paused cannot be combined" in both.json()["error"]["message"]
    assert server.get("/runs", params={"status": "paused"}).json()["runs"] == []
    assert server.get("/runs", params={"since": "1h", "status": "running"}).json()["runs"]
    assert server.get("/runs", params={"status": "failed"}).json()["runs"] == []


def test_cancel_and_terminate(server: Server) -> None:
    for rid in ("c1", "t1"):
        server.post("/runs", json={"workflow": "approval", "input": APPROVAL, "run_id": rid})
    assert server.post("/runs/c1/cancel").status_code == 202
    wait_for(lambda: server.get("/runs/c1").json()["status"] == "cancelled", timeout=30)
    ended = server.post("/runs/t1/terminate", json={"reason": "test"})
    assert ended.status_code == 200 and ended.json()["status"] == "terminated"
    _error(
        server.post(
            "/runs/t1/signal", json={"name": "approve", "payload": {"approved": True, "by": "x"}}
        ),
        409,
        "RunFinished",
    )
    # Retry continues failed, timed-out or cancelled runs; a terminated one is refused.
    _error(server.post("/runs/t1/retry"), 409, "RedriveRefused")
    _error(server.post("/runs/nope/retry"), 404, "RunNotFound")
    # Compensate releases held compensations only; a terminated run holds none.
    _error(server.post("/runs/t1/compensate"), 409, "CompensateRefused")
    _error(server.post("/runs/nope/compensate"), 404, "RunNotFound")


def test_compensate_a_held_booking(server: Server) -> None:
    trip = {"trip_id": "T-7", "hotel": "H", "flight": "F", "amount": 5, "fail_at": "payment"}
    server.post("/runs", json={"workflow": "booking_hold", "input": trip, "run_id": "b1"})
    wait_for(lambda: server.get("/runs/b1").json()["status"] == "failed", timeout=30)
    assert server.get("/runs/b1").json()["compensation_held"] == ["reserve_flight", "reserve_hotel"]
    released = server.post("/runs/b1/compensate")
    assert released.status_code == 200 and released.json()["status"] == "running"
    wait_for(lambda: server.get("/runs/b1").json()["status"] == "failed", timeout=30)
    assert server.get("/runs/b1").json()["compensation_held"] is None
    _error(server.post("/runs/b1/compensate"), 409, "CompensateRefused")


def test_run_json_links_forks_and_counts_retries(
    server: Server, store_url: str, tmp_path: Path
) -> None:
    from tests.test_redrive import failed_chain

    run_id, _log, _fixed = failed_chain(store_url, tmp_path)
    with Client(store_url) as client:
        client.fork(run_id, "second", new_id="fork-a")
        client.fork(run_id, "first", new_id="fork-b")
    info = server.get(f"/runs/{run_id}").json()
    assert info["forked_from"] is None and info["forks"] == ["fork-b", "fork-a"]
    assert info["fork_count"] == 2 and info["retried"] == 0
    fork = server.get("/runs/fork-a").json()
    assert fork["forked_from"] == {"run": run_id, "state": "second"} and fork["forks"] == []
    listed = server.get("/runs", params={"forked_from": run_id}).json()["runs"]
    assert [r["run_id"] for r in listed] == ["fork-b", "fork-a"]
    assert listed[0]["forked_from"] == {"run": run_id, "state": "first"}
    retried = server.post(f"/runs/{run_id}/retry")
    assert retried.status_code == 200, retried.text
    assert retried.json()["status"] == "running"
    assert retried.json()["forked_from"] is None
    assert server.get(f"/runs/{run_id}").json()["retried"] == 1


def test_token_missing_or_wrong_is_401_and_stores_nothing(server: Server, store_url: str) -> None:
    body = {"workflow": "approval", "input": APPROVAL, "run_id": "x1"}
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
        resp = httpx.post(server.url + "/runs", json=body, headers=headers)
        _error(resp, 401, "Unauthorized")
        _error(httpx.get(server.url + "/runs", headers=headers), 401, "Unauthorized")
    assert _runs(store_url) == []
    # The UI page itself carries no data; the API behind it needs the token.
    assert httpx.get(server.url + "/").status_code == 200


def test_oversized_malformed_and_unknown_store_nothing(server: Server, store_url: str) -> None:
    big = b'{"workflow": "approval", "input": "' + b"x" * (MAX_BODY_BYTES + 10) + b'"}'
    _error(server.post("/runs", content=big), 413, "BodyTooLarge")

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit holds while reading
        yield big[:1000]
        for _ in range(40):
            yield b"x" * 65536

    _error(server.post("/runs", content=chunks()), 413, "BodyTooLarge")
    _error(server.post("/runs", content=b'{"workflow": '), 400, "MalformedJson")
    _error(
        server.post("/runs", content=b'{"workflow": "approval", "input": NaN}'),
        400,
        "MalformedJson",
    )
    _error(server.post("/runs", content=b"[1, 2]"), 400, "MalformedJson")
    _error(server.post("/runs", content=b"\xff\xfe"), 400, "MalformedJson")
    _error(server.post("/runs", json={"workflow": "../etc/passwd"}), 422, "InputInvalid")
    _error(server.post("/runs", json={"workflow": "nosuch"}), 404, "WorkflowNotFound")
    _error(server.post("/runs", json={"workflow": "approval", "extra": 1}), 422, "InputInvalid")
    # The input is checked against the workflow's input_schema, as `tideflow start` does.
    bad = _error(
        server.post("/runs", json={"workflow": "approval", "input": {"amount": -1}}),
        422,
        "InputInvalid",
    )
    assert bad["exit_code"] == 2
    for path in ("/runs/nope", "/runs/nope/history", "/runs/nope/graph"):
        assert _error(server.get(path), 404, "RunNotFound")["exit_code"] == 4  # as the CLI
    for path in (
        "/runs/nope/signal",
        "/runs/nope/query",
        "/runs/nope/cancel",
        "/runs/nope/terminate",
    ):
        _error(
            server.post(
                path, json={"name": "approve"} if "signal" in path or "query" in path else {}
            ),
            404,
            "RunNotFound",
        )
    assert _runs(store_url) == []


def test_signal_payload_checked_against_its_schema(server: Server, store_url: str) -> None:
    server.post("/runs", json={"workflow": "approval", "input": APPROVAL, "run_id": "s1"})
    _error(
        server.post("/runs/s1/signal", json={"name": "approve", "payload": {"approved": "yes"}}),
        422,
        "InputInvalid",
    )
    _error(server.post("/runs/s1/signal", json={"name": "nosuch"}), 400, "TideflowError")
    _error(server.post("/runs/s1/query", json={"name": "nosuch"}), 400, "TideflowError")
    with Client(store_url) as client:
        assert not [e for e in client.history("s1") if e["type"] == "SignalReceived"]
        assert client.store.get_run("s1") is not None


def test_callbacks_refused_tokens(server: Server) -> None:
    # A callback needs no server token (its own token authorises it); a wrong one is refused.
    resp = httpx.post(server.url + "/callbacks/" + "a" * 43, json={"result": 1})
    assert resp.status_code in (409, 422), resp.text
    assert resp.json()["error"]["type"] in ("CallbackRefused", "InputInvalid")
    _error(httpx.post(server.url + "/callbacks/short", json={"kind": "nope"}), 422, "InputInvalid")
    resp = httpx.post(server.url + "/callbacks/short/heartbeat", json={})
    assert resp.status_code in (409, 422)


def test_refuses_to_bind_elsewhere_without_token(sqlite_url: str) -> None:
    proc = run_cli(
        "server",
        "--db",
        sqlite_url,
        "--host",
        "0.0.0.0",
        "--port",
        str(free_port()),
        env={"TIDEFLOW_SERVER_TOKEN": ""},
    )
    assert proc.returncode == 2
    assert "needs a token" in proc.stderr and "Traceback" not in proc.stderr


def test_update_and_query_args(server: Server) -> None:
    server.post(
        "/runs", json={"workflow": "entity_greeting", "input": {"name": "Ada"}, "run_id": "e1"}
    )
    resp = server.post("/runs/e1/update", json={"name": "set_language", "data": {"language": "fr"}})
    assert resp.status_code == 200, resp.text
    assert resp.json()["value"] == "en"
    greeting = server.post(
        "/runs/e1/query", json={"name": "greeting_in", "args": {"language": "de"}}
    )
    assert greeting.json()["value"] == "Hallo, Ada!"
    rejected = server.post(
        "/runs/e1/update", json={"name": "set_language", "data": {"language": "xx"}}
    )
    _error(rejected, 422, "UpdateRejected")
    bad = server.post("/runs/e1/update", json={"name": "set_language", "data": {"lang": "fr"}})
    _error(bad, 422, "InputInvalid")
    assert server.post("/runs/e1/query", json={"name": "status"}).json()["value"]["changes"] == 1
    done = server.post("/runs/e1/update", json={"name": "finish"})
    assert done.json()["value"] == "Bonjour, Ada!"
    wait_for(lambda: server.get("/runs/e1").json()["status"] == "completed", timeout=30)


def test_callbacks_complete_fail_and_heartbeat(server: Server, tmp_path: Path) -> None:
    outbox = tmp_path / "outbox"
    outbox.mkdir()
    body = {"workflow": "approval_callbacks", "input": {"request_id": "q", "outbox": str(outbox)}}
    run_id = server.post("/runs", json=body).json()["run_id"]
    tokens = wait_for(
        lambda: (
            len(list(outbox.glob("*.token"))) == 3
            and {p.stem: p.read_text().strip() for p in outbox.glob("*.token")}
        ),
        timeout=30,
    )
    # No server token is needed: the callback token is the authorisation.
    plain = httpx.Client(base_url=server.url)
    beat = plain.post(f"/callbacks/{tokens['finance']}/heartbeat", json={"details": {"p": 1}})
    assert beat.status_code == 200 and beat.json()["outcome"] == "heartbeat", beat.text
    for who in ("finance", "legal"):
        done = plain.post(f"/callbacks/{tokens[who]}", json={"result": {"approved": True}})
        assert done.status_code == 200 and done.json()["run_id"] == run_id, done.text
    again = plain.post(f"/callbacks/{tokens['finance']}", json={"result": {"approved": True}})
    _error(again, 409, "CallbackRefused")
    failed = plain.post(
        f"/callbacks/{tokens['manager']}",
        json={"kind": "fail", "error": {"type": "Rejected", "message": "too dear"}},
    )
    assert failed.status_code == 200 and failed.json()["outcome"] == "failed", failed.text
    wait_for(lambda: server.get(f"/runs/{run_id}").json()["status"] == "completed", timeout=30)
    assert server.get(f"/runs/{run_id}").json()["output"]["status"] == "rejected"
