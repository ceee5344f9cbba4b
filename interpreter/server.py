"""`tideflow server`'s HTTP API: a Starlette app over one Client (and its store).

JSON in and out. Errors have one shape, `{"error": {"type", "message", "hint", "exit_code"}}`,
with the CLI's message, hint and exit code, and an HTTP status by exception type (ERROR_STATUS).
Every request but `/callbacks/{token}` needs `Authorization: Bearer TOKEN` when the server was
given a token (a callback is authorised by its own unguessable token). Bodies larger than
MAX_BODY_BYTES are refused before they are parsed; payloads are checked by the Client exactly as
the CLI's commands check them, so a refused request stores nothing.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import re
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from interpreter import errors, jsondata
from interpreter.cli._common import EXIT_FAILED, EXIT_NOT_FOUND, EXIT_STILL_RUNNING, EXIT_USAGE
from interpreter.client import Client
from interpreter.core.statuses import TERMINAL_STATUSES
from interpreter.run_status import describe

T = TypeVar("T")

# The largest value a run keeps (2 MiB of JSON) plus room for the envelope.
MAX_BODY_BYTES = jsondata.MAX_VALUE_BYTES + 64 * 1024
MAX_PAGE = 1000
WEB_DIR = Path(__file__).resolve().parent / "web"
_WORKFLOW_NAME = re.compile(r"[A-Za-z0-9_.\-]{1,200}")

# exception type -> (HTTP status, the CLI's exit code for it: interpreter/cli/_runtime.py);
# the first matching base wins.
ERROR_STATUS: tuple[tuple[type[errors.TideflowError], int, int], ...] = (
    (errors.WorkflowInvalid, 422, EXIT_USAGE),
    (errors.InputInvalid, 422, EXIT_USAGE),
    (errors.RunIdConflict, 409, EXIT_USAGE),
    (errors.StoreError, 503, EXIT_USAGE),
    (errors.RunNotFound, 404, EXIT_NOT_FOUND),
    (errors.CallbackRefused, 409, EXIT_FAILED),
    (errors.RunFinished, 409, EXIT_FAILED),
    (errors.RedriveRefused, 409, EXIT_FAILED),
    (errors.CompensateRefused, 409, EXIT_FAILED),
    (errors.UpdateRejected, 422, EXIT_FAILED),
    (errors.ResultTimeout, 504, EXIT_STILL_RUNNING),
    (
        errors.TideflowError,
        400,
        EXIT_FAILED,
    ),  # an undeclared signal or query, an unknown segment, ...
)


class ApiError(Exception):
    """A request the API refuses before reaching the Client (auth, size, JSON, arguments)."""

    def __init__(self, status: int, type_: str, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.status, self.type, self.message, self.hint = status, type_, message, hint


def error_response(status: int, type_: str, message: str, hint: str | None, code: int) -> Response:
    body = {"error": {"type": type_, "message": message, "hint": hint, "exit_code": code}}
    return JSONResponse(body, status_code=status)


def _from_exception(exc: errors.TideflowError) -> Response:
    for kind, status, code in ERROR_STATUS:
        if isinstance(exc, kind):
            message = exc.message
            if isinstance(exc, errors.WorkflowInvalid):
                message += ": " + "; ".join(
                    f"{d.code} {d.message}" for d in exc.diagnostics[:20] if hasattr(d, "code")
                )
            return error_response(status, type(exc).__name__, message, exc.hint, code)
    raise AssertionError("TideflowError is the last entry")  # pragma: no cover


class Api:
    def __init__(
        self,
        client: Client,
        *,
        token: str | None = None,
        workflow_dirs: tuple[Path, ...] = (),
        workers: int = 0,
        activities: set[str] | None = None,
        poll: float = 0.2,
    ) -> None:
        self.client = client
        self.token = token
        self.workflow_dirs = workflow_dirs
        self.workers = workers
        self.activities = activities
        self.poll = poll

    # ----------------------------------------------------------------- plumbing
    def _authorised(self, request: Request) -> bool:
        path = request.url.path
        # Callbacks carry their own unguessable token; the page and its assets hold no data
        # (the UI asks for the token and sends it with every API call).
        if self.token is None or path == "/" or path.startswith(("/callbacks/", "/ui/")):
            return True
        header = request.headers.get("authorization", "")
        given = header[7:] if header.lower().startswith("bearer ") else ""
        if not given:  # EventSource cannot send headers: the UI passes ?token=
            given = request.query_params.get("token", "")
        return hmac.compare_digest(given.encode(), self.token.encode())

    async def _body(self, request: Request) -> dict[str, Any]:
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
            raise _too_large()
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                raise _too_large()
            chunks.append(chunk)
        raw = b"".join(chunks)
        if not raw.strip():
            return {}
        try:
            value = jsondata.parse(raw.decode("utf-8"))
        except UnicodeDecodeError:
            raise ApiError(400, "MalformedJson", "the request body is not UTF-8 text") from None
        except jsondata.NotJsonData as exc:
            raise ApiError(
                400,
                "MalformedJson",
                f"the request body is not valid JSON data: {exc.reason}",
                "send a JSON object (no NaN or Infinity)",
            ) from None
        if not isinstance(value, dict):
            raise ApiError(400, "MalformedJson", "the request body must be a JSON object")
        return value

    def route(self, handler: Callable[..., Any]) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> Response:
            if not self._authorised(request):
                return error_response(
                    401,
                    "Unauthorized",
                    "missing or wrong token",
                    "send the server's token as `Authorization: Bearer TOKEN`",
                    2,
                )
            try:
                result: Response = await handler(request)
                return result
            except ApiError as exc:
                return error_response(exc.status, exc.type, exc.message, exc.hint, 2)
            except errors.TideflowError as exc:
                return _from_exception(exc)
            except UnicodeEncodeError:
                return error_response(400, "InputInvalid", "a value is not valid UTF-8", None, 2)

        return endpoint

    async def call(self, function: Callable[[], T]) -> T:
        return await run_in_threadpool(function)

    # ----------------------------------------------------------------- runs
    async def start(self, request: Request) -> Response:
        body = await self._body(request)
        _only(body, {"workflow", "input", "run_id"})
        name = body.get("workflow")
        if not isinstance(name, str) or not _WORKFLOW_NAME.fullmatch(name):
            raise ApiError(
                422,
                "InputInvalid",
                "`workflow` must be the name of a workflow in the server's --workflows directories",
                'e.g. {"workflow": "order", "input": {...}}',
            )
        run_id = body.get("run_id")
        if run_id is not None and not isinstance(run_id, str):
            raise ApiError(422, "InputInvalid", "`run_id` must be text")
        from dsl.resolve import resolve_child_workflow
        from interpreter.client import load_definition

        path = resolve_child_workflow(name, None, self.workflow_dirs)
        if path is None:
            raise ApiError(
                404,
                "WorkflowNotFound",
                f"no workflow {name!r} in the server's workflow directories",
                "GET /definitions lists the pinned definitions; start the server with "
                "--workflows DIR",
            )
        defn = await self.call(lambda: load_definition(path, self.workflow_dirs))
        record, created = await self.call(
            lambda: self.client.start_run(defn, body.get("input"), run_id=run_id)
        )
        return JSONResponse(
            {
                "run_id": record.id,
                "workflow": record.workflow,
                "status": record.status,
                "created": created,
            },
            status_code=201 if created else 200,
        )

    async def list_runs(self, request: Request) -> Response:
        """As `tideflow list --output json`: the same filters (status repeatable, workflow,
        parent, forked_from, error type, since/until as ISO 8601 or a duration ago), newest first, `limit`
        per page and the `cursor` of the next page (None on the last)."""
        import argparse

        from interpreter.cli import list_cmds
        from interpreter.cli._common import CliError

        params = request.query_params
        statuses = tuple(params.getlist("status"))
        for status in statuses:
            if status not in (*list_cmds.STATUSES, "paused"):
                raise ApiError(422, "InputInvalid", f"unknown status {status!r}")
        limit = _int_param(params.get("limit"), "limit", 1, MAX_PAGE, 100)
        try:
            cursor = list_cmds.cursor_arg(params["cursor"]) if "cursor" in params else None
            where = list_cmds.run_filter(
                statuses,
                workflow=params.get("workflow"),
                parent=params.get("parent"),
                forked_from=params.get("forked_from"),
                error=params.get("error"),
                since=list_cmds.time_arg(params["since"]) if "since" in params else None,
                until=list_cmds.time_arg(params["until"]) if "until" in params else None,
            )
        except argparse.ArgumentTypeError as exc:
            raise ApiError(422, "InputInvalid", str(exc)) from None
        except CliError as exc:
            raise ApiError(
                422, "InputInvalid", exc.message.replace("--status ", "status=")
            ) from None
        runs = await self.call(
            lambda: self.client.store.find_runs(where, limit=limit + 1, before=cursor)
        )
        page = runs[:limit]
        now = time.time()
        body = [
            {**list_cmds.summary_json(r), "duration": (r.ended_at or now) - r.created_at}
            for r in page
        ]
        more = len(runs) > limit and page
        next_cursor = list_cmds.encode_cursor(page[-1]) if more else None
        return JSONResponse({"runs": body, "cursor": next_cursor})

    async def describe(self, request: Request) -> Response:
        info = await self.call(lambda: self.client.status(request.path_params["run_id"]))
        return JSONResponse(info)

    async def definition(self, request: Request) -> Response:
        def load() -> dict[str, Any]:
            from dataclasses import asdict

            from dsl.graph import describe as describe_graph

            record = self.client.get(request.path_params["run_id"])
            defn = self.client.definition_of(record)
            workflow = defn.workflow
            diagram = asdict(describe_graph(workflow))
            signals = {n: {"schema": s.schema_} for n, s in (workflow.signals or {}).items()}
            declared = {"signals": signals, "queries": sorted(workflow.queries or {})}
            return {
                "definition_hash": record.def_hash,
                "graph": diagram,
                "workflow": declared,
                "retry": True,  # the UI offers retry on ended runs
            }

        return JSONResponse(await self.call(load))

    async def history(self, request: Request) -> Response:
        run_id = request.path_params["run_id"]
        follow = request.query_params.get("follow") in ("1", "true")
        after = _int_param(request.query_params.get("after"), "after", 0, 2**62, 0)
        await self.call(lambda: self.client.get(run_id))
        if follow:
            return StreamingResponse(self._follow(run_id, after), media_type="text/event-stream")
        events = await self.call(lambda: list(self.client.history(run_id)))

        async def stream() -> AsyncIterator[bytes]:
            yield b'{"events":['
            for i, event in enumerate(e for e in events if e["seq"] > after):
                yield (b"," if i else b"") + _dumps(event)
            yield b"]}"

        return StreamingResponse(stream(), media_type="application/json")

    async def _follow(self, run_id: str, after: int) -> AsyncIterator[bytes]:
        """Server-Sent Events: each event as `event: history`, then `event: end` once the run
        ended and every event was sent."""
        last = after
        while True:
            record = await self.call(lambda: self.client.store.get_run(run_id))
            events = await self.call(
                lambda seen=last: list(self.client.store.iter_events(run_id, seen))  # type: ignore[misc]
            )
            for event in events:
                last = event["seq"]
                yield b"id: %d\nevent: history\ndata: " % last + _dumps(event) + b"\n\n"
            if record is None or record.status in TERMINAL_STATUSES:
                yield b"event: end\ndata: " + _dumps({"status": getattr(record, "status", None)})
                yield b"\n\n"
                return
            if not events:
                yield b": keep-alive\n\n"
            await asyncio.sleep(self.poll)

    async def signal(self, request: Request) -> Response:
        body = await self._body(request)
        _only(body, {"name", "payload"})
        name = _name(body)
        run_id = request.path_params["run_id"]
        await self.call(lambda: self.client.signal(run_id, name, body.get("payload")))
        return JSONResponse({"run_id": run_id, "signal": name, "accepted": True}, 202)

    async def query(self, request: Request) -> Response:
        body = await self._body(request)
        _only(body, {"name", "args"})
        name = _name(body)
        run_id = request.path_params["run_id"]
        value = await self.call(lambda: self.client.query(run_id, name, body.get("args")))
        return JSONResponse({"run_id": run_id, "query": name, "value": value})

    async def update(self, request: Request) -> Response:
        body = await self._body(request)
        _only(body, {"name", "data", "update_id", "timeout"})
        name = _name(body)
        timeout = body.get("timeout", 30)
        if (
            not isinstance(timeout, int | float)
            or isinstance(timeout, bool)
            or not (0 < timeout <= 300)
        ):
            raise ApiError(422, "InputInvalid", "`timeout` must be 0 to 300 seconds")
        update_id = body.get("update_id")
        if update_id is not None and not isinstance(update_id, str):
            raise ApiError(422, "InputInvalid", "`update_id` must be text")
        run_id = request.path_params["run_id"]
        value = await self.call(
            lambda: self.client.update(
                run_id, name, body.get("data"), update_id=update_id, timeout=float(timeout)
            )
        )
        return JSONResponse({"run_id": run_id, "update": name, "value": value})

    async def cancel(self, request: Request) -> Response:
        run_id = request.path_params["run_id"]
        await self.call(lambda: self.client.cancel(run_id))
        return JSONResponse({"run_id": run_id, "cancel_requested": True}, 202)

    async def terminate(self, request: Request) -> Response:
        body = await self._body(request)
        _only(body, {"reason"})
        reason = body.get("reason", "terminated by user")
        if not isinstance(reason, str):
            raise ApiError(422, "InputInvalid", "`reason` must be text")
        run_id = request.path_params["run_id"]
        record = await self.call(lambda: self.client.terminate(run_id, reason))
        return JSONResponse(describe(record))

    async def retry(self, request: Request) -> Response:
        run_id = request.path_params["run_id"]
        record = await self.call(lambda: self.client.retry(run_id))
        return JSONResponse(describe(record))

    async def compensate(self, request: Request) -> Response:
        """Give up on a run that failed with its compensations held (interpreter/release.py)."""
        run_id = request.path_params["run_id"]
        record = await self.call(lambda: self.client.compensate(run_id))
        return JSONResponse(describe(record))

    async def callback(self, request: Request) -> Response:
        body = await self._body(request)
        token = request.path_params["token"]
        kind = body.get("kind", "complete")
        if kind == "complete":
            _only(body, {"kind", "result"})
            target = await self.call(
                lambda: self.client.complete_callback(token, body.get("result"))
            )
        elif kind == "fail":
            _only(body, {"kind", "error"})
            error = body.get("error")
            if not isinstance(error, dict) or not isinstance(error.get("message", ""), str):
                raise ApiError(
                    422,
                    "InputInvalid",
                    "`error` must be an object {type, message, details}",
                    'e.g. {"kind": "fail", "error": {"type": "Rejected"}}',
                )
            target = await self.call(
                lambda: self.client.fail_callback(
                    token, error.get("type", ""), error.get("message", ""), error.get("details")
                )
            )
        else:
            raise ApiError(422, "InputInvalid", "`kind` must be complete or fail")
        return JSONResponse({**target, "outcome": kind + ("d" if kind == "complete" else "ed")})

    async def heartbeat(self, request: Request) -> Response:
        body = await self._body(request)
        _only(body, {"details"})
        token = request.path_params["token"]
        target = await self.call(lambda: self.client.heartbeat_callback(token, body.get("details")))
        return JSONResponse({**target, "outcome": "heartbeat"})

    async def definitions(self, request: Request) -> Response:
        def load() -> list[dict[str, Any]]:
            seen: dict[str, dict[str, Any]] = {}
            for r in self.client.store.list_runs(limit=10_000):
                entry = seen.setdefault(
                    r.def_hash,
                    {
                        "definition_hash": r.def_hash,
                        "workflow": r.workflow,
                        "version": r.version,
                        "runs": 0,
                        "last_started": r.created_at,
                    },
                )
                entry["runs"] += 1
                entry["last_started"] = max(entry["last_started"], r.created_at)
            return sorted(seen.values(), key=lambda e: (e["workflow"], -e["last_started"]))

        return JSONResponse({"definitions": await self.call(load)})

    async def openapi(self, request: Request) -> Response:
        from interpreter.server_openapi import openapi_document

        return JSONResponse(openapi_document())

    async def page(self, request: Request) -> Response:
        return FileResponse(WEB_DIR / "index.html", media_type="text/html")

    async def asset(self, request: Request) -> Response:
        name = request.path_params["name"]
        path = WEB_DIR / name
        if "/" in name or name.startswith(".") or not path.is_file():
            raise ApiError(404, "NotFound", f"no asset {name!r}")
        return FileResponse(path)

    # ----------------------------------------------------------------- app
    def app(self) -> Starlette:
        r = self.route
        routes = [
            Route("/", r(self.page), methods=["GET"]),
            Route("/ui/{name}", r(self.asset), methods=["GET"]),
            Route("/openapi.json", r(self.openapi), methods=["GET"]),
            Route("/runs", r(self.start), methods=["POST"]),
            Route("/runs", r(self.list_runs), methods=["GET"]),
            Route("/runs/{run_id}", r(self.describe), methods=["GET"]),
            Route("/runs/{run_id}/graph", r(self.definition), methods=["GET"]),
            Route("/runs/{run_id}/history", r(self.history), methods=["GET"]),
            Route("/runs/{run_id}/signal", r(self.signal), methods=["POST"]),
            Route("/runs/{run_id}/query", r(self.query), methods=["POST"]),
            Route("/runs/{run_id}/update", r(self.update), methods=["POST"]),
            Route("/runs/{run_id}/cancel", r(self.cancel), methods=["POST"]),
            Route("/runs/{run_id}/terminate", r(self.terminate), methods=["POST"]),
            Route("/runs/{run_id}/retry", r(self.retry), methods=["POST"]),
            Route("/runs/{run_id}/compensate", r(self.compensate), methods=["POST"]),
            Route("/callbacks/{token}", r(self.callback), methods=["POST"]),
            Route("/callbacks/{token}/heartbeat", r(self.heartbeat), methods=["POST"]),
            Route("/definitions", r(self.definitions), methods=["GET"]),
        ]
        return Starlette(routes=routes, lifespan=self._lifespan)

    @asynccontextmanager
    async def _lifespan(self, app: Starlette) -> AsyncIterator[None]:
        from interpreter.worker import Worker

        workers = [
            Worker(self.client.store, workflow_dirs=self.workflow_dirs, activities=self.activities)
            for _ in range(self.workers)
        ]
        tasks = [asyncio.create_task(w.run()) for w in workers]
        try:
            yield
        finally:
            for w in workers:
                w.stop()
            if tasks:
                await asyncio.gather(*tasks, return_exceptions=True)


def _too_large() -> ApiError:
    return ApiError(
        413,
        "BodyTooLarge",
        f"the request body is larger than {MAX_BODY_BYTES:,} bytes",
        "keep large data outside the run and pass a reference",
    )


def _only(body: dict[str, Any], allowed: set[str]) -> None:
    extra = sorted(set(body) - allowed)
    if extra:
        raise ApiError(
            422,
            "InputInvalid",
            f"unknown field(s) {', '.join(map(repr, extra))}",
            f"the fields are: {', '.join(sorted(allowed))}",
        )


def _name(body: dict[str, Any]) -> str:
    name = body.get("name")
    if not isinstance(name, str) or not name:
        raise ApiError(422, "InputInvalid", "`name` must be non-empty text")
    return name


def _int_param(text: str | None, what: str, low: int, high: int, default: int) -> int:
    if text is None:
        return default
    if not text.isdigit() or not low <= int(text) <= high:
        raise ApiError(422, "InputInvalid", f"`{what}` must be a whole number from {low} to {high}")
    return int(text)


def _dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, default=str).encode("utf-8")
