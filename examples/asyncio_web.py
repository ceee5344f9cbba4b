"""A small asyncio web app driving runs with AsyncClient (no framework needed to run it).

    python examples/asyncio_web.py --db runs.db --port 8000      # the app
    tideflow worker --db runs.db --activities samples/activities.py   # a worker beside it

    curl -X POST localhost:8000/requests -d '{"request_id": "R1", "amount": 120, "requester": "ana"}'
    curl localhost:8000/requests/RUN_ID                     # the `status` query and the run status
    curl -X POST localhost:8000/requests/RUN_ID/approve -d '{"approved": true, "by": "bo"}'
    curl 'localhost:8000/requests/RUN_ID/result?timeout=30'  # waits (no polling) for the end

With FastAPI the handlers are the same lines (see docs/python.md): create the AsyncClient in the
lifespan, `await client.start_handle(...)` in a POST route, `await handle.result(...)` in a GET.
Errors map to HTTP: RunNotFound is 404, InputInvalid and TideflowError 400, ResultTimeout 504.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from interpreter import AsyncClient, InputInvalid, ResultTimeout, RunNotFound, TideflowError

WORKFLOW = Path(__file__).resolve().parent.parent / "samples" / "approval.yaml"


class App:
    def __init__(self, client: AsyncClient) -> None:
        self.client = client

    async def route(self, method: str, path: str, query: dict[str, str], body: Any) -> Any:
        parts = [p for p in path.split("/") if p]
        if method == "POST" and parts == ["requests"]:
            handle = await self.client.start_handle(WORKFLOW, body)
            return 201, {"run_id": handle.id}
        if len(parts) >= 2 and parts[0] == "requests":
            handle = await self.client.get_handle(parts[1])
            if method == "GET" and len(parts) == 2:
                described = await handle.describe()
                return 200, {"status": described["status"], "request": await handle.query("status")}
            if method == "POST" and parts[2:] == ["approve"]:
                await handle.signal("approve", body)
                return 202, {"sent": "approve"}
            if method == "GET" and parts[2:] == ["result"]:
                run = await handle.result(timeout=float(query.get("timeout", "30")))
                return 200, {"status": run.status, "output": run.output, "error": run.error}
        return 404, {"error": f"no route {method} {path}"}

    async def handle(self, method: str, target: str, body: Any) -> tuple[int, Any]:
        url = urlsplit(target)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        try:
            status, answer = await self.route(method, url.path, query, body)
            return int(status), answer
        except RunNotFound as exc:
            return 404, {"error": exc.message}
        except ResultTimeout as exc:
            return 504, {"error": exc.message}
        except (InputInvalid, TideflowError) as exc:
            return 400, {"error": exc.message, "hint": exc.hint}


async def serve_connection(
    app: App, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    """HTTP/1.1 with Content-Length bodies, one request per connection: enough for an example."""
    try:
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        method, target, _version = head[0].split(" ", 2)
        headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in head[1:])}
        raw = await reader.readexactly(int(headers.get("content-length") or 0))
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            status, answer = 400, {"error": "the body is not JSON"}
        else:
            status, answer = await app.handle(method, target, body)
        data = json.dumps(answer).encode()
        writer.write(
            f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n".encode()
            + data
        )
        await writer.drain()
    except (asyncio.IncompleteReadError, ValueError, ConnectionError):
        pass
    finally:
        writer.close()


async def main(db: str, host: str, port: int) -> None:
    async with AsyncClient(db) as client:
        app = App(client)
        server = await asyncio.start_server(lambda r, w: serve_connection(app, r, w), host, port)
        print(f"listening on http://{host}:{server.sockets[0].getsockname()[1]}", flush=True)
        async with server:
            await server.serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default="tideflow.db", help="the store (a file or a URL)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000, help="0: any free port")
    args = parser.parse_args()
    asyncio.run(main(args.db, args.host, args.port))
