"""`server`: the HTTP API and the web UI over one store, optionally with workers in the same
process (`--workers N`: one command is a complete local installation)."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from interpreter.cli import _runtime as rt
from interpreter.cli._common import EXIT_OK, CliError, int_range_arg, text_arg, workflow_dirs

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


def register(subparsers: Any) -> None:
    server = subparsers.add_parser(
        "server",
        help="serve the HTTP API and the web UI (127.0.0.1 by default)",
        description="Serve the HTTP API (see docs/server.md) and the web UI on one port. "
        "Binding an address other than 127.0.0.1 requires a token (--token or "
        "TIDEFLOW_SERVER_TOKEN) that every request must carry.",
        epilog="examples:\n"
        "  tideflow server --workflows samples --activities samples/activities.py --workers 2\n"
        "  TIDEFLOW_SERVER_TOKEN=$(openssl rand -hex 32) tideflow server --host 0.0.0.0 "
        "--db postgresql://app@db/tideflow",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    server.add_argument("--host", default="127.0.0.1", type=text_arg, help="default 127.0.0.1")
    server.add_argument(
        "--port", type=int_range_arg(0, 65535), default=8080, help="default 8080 (0: any free)"
    )
    server.add_argument(
        "--token",
        type=text_arg,
        help="require `Authorization: Bearer TOKEN` (default: TIDEFLOW_SERVER_TOKEN)",
    )
    server.add_argument(
        "--workers",
        type=int_range_arg(0, 64),
        default=0,
        metavar="N",
        help="run N workers in this process (default 0: workers run elsewhere)",
    )
    rt.add_activities(server)
    rt.add_db(server)
    server.add_argument(
        "--workflows",
        metavar="DIR",
        action="append",
        default=[],
        help="where POST /runs looks workflows up by name (repeatable)",
    )
    server.set_defaults(handler=cmd_server)


def cmd_server(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from interpreter.server import Api
    except ModuleNotFoundError as exc:
        raise CliError(
            f"the server needs {exc.name}, which is not installed",
            hint="pip install 'tideflow[server]'",
        ) from None
    token = args.token or os.environ.get("TIDEFLOW_SERVER_TOKEN") or None
    if args.host not in LOCAL_HOSTS and not token:
        raise CliError(
            f"binding {args.host} needs a token: every request must then carry it",
            hint="pass --token TOKEN or set TIDEFLOW_SERVER_TOKEN (e.g. from `openssl rand -hex "
            "32`), or bind 127.0.0.1",
        )
    dirs = workflow_dirs(args.workflows)
    offered = rt.load_activities(args.activities)
    client = rt.open_client(args)
    api = Api(
        client,
        token=token,
        workflow_dirs=dirs,
        workers=args.workers,
        activities=offered,
    )
    config = uvicorn.Config(
        api.app(), host=args.host, port=args.port, log_level="warning", lifespan="on"
    )
    server = uvicorn.Server(config)
    print(
        f"tideflow server on http://{args.host}:{args.port}/ ({client.store.url}, "
        f"{args.workers} worker(s)); Ctrl-C to stop",
        file=sys.stderr,
    )
    rt.call(server.run)
    return EXIT_OK
