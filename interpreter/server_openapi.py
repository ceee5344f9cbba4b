"""The OpenAPI document of `tideflow server` (interpreter/server.py). The committed copy,
interpreter/web/openapi.json, is checked against it by tests/test_server_api.py; regenerate it
with `python -m interpreter.server_openapi`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

COMMITTED = Path(__file__).resolve().parent / "web" / "openapi.json"

_ERROR = {"$ref": "#/components/schemas/Error"}
_ANY: dict[str, Any] = {}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*statuses: int) -> dict[str, Any]:
    text = {
        400: "malformed JSON, or an undeclared signal/query",
        401: "missing or wrong token",
        404: "no such run (or workflow, or callback route)",
        409: "conflicting run id, finished run, a used/late callback token, or a refused "
        "retry or compensate",
        413: "request body too large",
        422: "the payload fails the declared schema, or bad fields",
        503: "the store cannot be used",
        504: "the update was not applied in time",
    }
    return {str(s): _json(_ERROR, text[s]) for s in statuses}


def _body(properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {
        "type": "object",
        "properties": properties,
        "additionalProperties": False,
    }
    if required:
        schema["required"] = required
    return {"required": bool(required), "content": {"application/json": {"schema": schema}}}


_RUN_ID = {"name": "run_id", "in": "path", "required": True, "schema": {"type": "string"}}
_TOKEN = {"name": "token", "in": "path", "required": True, "schema": {"type": "string"}}
_STD = (400, 401, 404, 413, 422, 503)


def _op(
    summary: str, ok: dict[str, Any], *, body: Any = None, params: Any = (), errs: Any = _STD
) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "responses": {**ok, **_errors(*errs)}}
    if params:
        op["parameters"] = list(params)
    if body is not None:
        op["requestBody"] = body
    return op


def openapi_document() -> dict[str, Any]:
    ok = {"200": _json(_ANY, "done")}
    return {
        "openapi": "3.1.0",
        "info": {"title": "tideflow server", "version": "1"},
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {
                        "error": {
                            "type": "object",
                            "required": ["type", "message", "hint", "exit_code"],
                            "properties": {
                                "type": {"type": "string"},
                                "message": {"type": "string"},
                                "hint": {"type": ["string", "null"]},
                                "exit_code": {"type": "integer"},
                            },
                        }
                    },
                }
            },
        },
        "security": [{"bearer": []}],
        "paths": {
            "/runs": {
                "post": _op(
                    "start a run of a workflow found by name in --workflows",
                    {"201": _json(_ANY, "created"), "200": _json(_ANY, "that run id exists")},
                    body=_body(
                        {
                            "workflow": {"type": "string"},
                            "input": _ANY,
                            "run_id": {"type": "string"},
                        },
                        ["workflow"],
                    ),
                    errs=(400, 401, 404, 409, 413, 422, 503),
                ),
                "get": _op(
                    "list runs, newest first",
                    ok,
                    params=[
                        {"name": n, "in": "query", "schema": {"type": "string"}}
                        for n in (
                            "status",
                            "workflow",
                            "parent",
                            "forked_from",
                            "error",
                            "since",
                            "until",
                            "cursor",
                        )
                    ]
                    + [{"name": "limit", "in": "query", "schema": {"type": "integer"}}],
                    errs=(401, 422, 503),
                ),
            },
            "/runs/{run_id}": {
                "get": _op(
                    "describe a run (as `status --json`: its parent, children, the run it was "
                    "forked from, its forks and how often it was retried)",
                    ok,
                    params=[_RUN_ID],
                )
            },
            "/runs/{run_id}/graph": {
                "get": _op("the run's state machine drawing", ok, params=[_RUN_ID])
            },
            "/runs/{run_id}/history": {
                "get": _op(
                    "the run's events; follow=1 streams them as Server-Sent Events until it ends",
                    ok,
                    params=[
                        _RUN_ID,
                        {"name": "follow", "in": "query", "schema": {"type": "string"}},
                        {"name": "after", "in": "query", "schema": {"type": "integer"}},
                    ],
                )
            },
            "/runs/{run_id}/signal": {
                "post": _op(
                    "send a signal",
                    {"202": _json(_ANY, "stored")},
                    body=_body({"name": {"type": "string"}, "payload": _ANY}, ["name"]),
                    params=[_RUN_ID],
                    errs=(*_STD, 409),
                )
            },
            "/runs/{run_id}/query": {
                "post": _op(
                    "evaluate a query",
                    ok,
                    body=_body({"name": {"type": "string"}, "args": _ANY}, ["name"]),
                    params=[_RUN_ID],
                )
            },
            "/runs/{run_id}/update": {
                "post": _op(
                    "send an update and wait for its value",
                    ok,
                    body=_body(
                        {
                            "name": {"type": "string"},
                            "data": _ANY,
                            "update_id": {"type": "string"},
                            "timeout": {"type": "number"},
                        },
                        ["name"],
                    ),
                    params=[_RUN_ID],
                    errs=(*_STD, 409, 504),
                )
            },
            "/runs/{run_id}/cancel": {
                "post": _op(
                    "cancel cooperatively",
                    {"202": _json(_ANY, "requested")},
                    params=[_RUN_ID],
                    errs=(*_STD, 409),
                )
            },
            "/runs/{run_id}/retry": {
                "post": _op(
                    "retry a failed, timed-out or cancelled run from the step that ended it",
                    ok,
                    params=[_RUN_ID],
                    errs=(*_STD, 409),
                )
            },
            "/runs/{run_id}/terminate": {
                "post": _op(
                    "end a run at once",
                    ok,
                    body=_body({"reason": {"type": "string"}}),
                    params=[_RUN_ID],
                    errs=(*_STD, 409),
                )
            },
            "/runs/{run_id}/compensate": {
                "post": _op(
                    "give up on a run that failed with its compensations held: run them",
                    ok,
                    params=[_RUN_ID],
                    errs=(*_STD, 409),
                )
            },
            "/callbacks/{token}": {
                "post": _op(
                    "complete or fail a callback task (authorised by the token itself)",
                    ok,
                    body=_body(
                        {"kind": {"enum": ["complete", "fail"]}, "result": _ANY, "error": _ANY}
                    ),
                    params=[_TOKEN],
                    errs=(400, 409, 413, 422, 503),
                )
            },
            "/callbacks/{token}/heartbeat": {
                "post": _op(
                    "heartbeat a callback task",
                    ok,
                    body=_body({"details": _ANY}),
                    params=[_TOKEN],
                    errs=(400, 409, 413, 422, 503),
                )
            },
            "/definitions": {"get": _op("pinned definitions and versions", ok, errs=(401, 503))},
        },
    }


def render() -> str:
    return json.dumps(openapi_document(), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    COMMITTED.write_text(render(), encoding="utf-8")
