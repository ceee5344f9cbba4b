"""The built-in `http` activity (httpx)."""

from __future__ import annotations

import json
from typing import Any

from interpreter.errors import ApplicationError

HTTP_ACTIVITY = "http"
_BODY_PREVIEW = 2000


def _bad_input(message: str) -> ApplicationError:
    return ApplicationError(f"http input: {message}", type="HttpError", non_retryable=True)


async def run_http(payload: Any) -> dict[str, Any]:
    """`{method, url, headers, params, json | body, timeout, expect}` → `{status, headers, json | text}`.

    Connection errors, timeouts and 5xx are retryable; other statuses outside `expect`
    raise a non-retryable HttpError with the status and body in `details`.
    """
    if not isinstance(payload, dict):
        raise _bad_input("expected an object with at least `url`")
    url = payload.get("url")
    if not isinstance(url, str) or not url:
        raise _bad_input("`url` is required and must be a string")
    method = str(payload.get("method", "GET")).upper()
    expect = payload.get("expect") or list(range(200, 300))
    if not isinstance(expect, list) or not all(isinstance(s, int) for s in expect):
        raise _bad_input("`expect` must be a list of status codes")
    if "json" in payload and "body" in payload:
        raise _bad_input("give `json` or `body`, not both")
    timeout = payload.get("timeout", 30)
    try:
        from dsl.durations import parse_duration

        timeout_s = parse_duration(timeout)
    except ValueError as exc:
        raise _bad_input(str(exc)) from None
    kwargs: dict[str, Any] = {
        "headers": payload.get("headers") or None,
        "params": payload.get("params") or None,
    }
    if "json" in payload:
        kwargs["json"] = payload["json"]
    elif "body" in payload:
        body = payload["body"]
        kwargs["content"] = body if isinstance(body, str) else json.dumps(body)
    import httpx  # imported here: it costs ~40 ms of start-up to every CLI command otherwise

    try:
        async with httpx.AsyncClient(timeout=timeout_s, follow_redirects=True) as client:
            response = await client.request(method, url, **kwargs)
    except httpx.TimeoutException as exc:
        raise ApplicationError(f"{method} {url} timed out: {exc}", type="HttpTimeout") from None
    except httpx.TransportError as exc:
        raise ApplicationError(
            f"{method} {url} failed: {type(exc).__name__}: {exc}", type="HttpConnectionError"
        ) from None
    except httpx.InvalidURL as exc:
        raise _bad_input(f"invalid url {url!r}: {exc}") from None
    result: dict[str, Any] = {"status": response.status_code, "headers": dict(response.headers)}
    try:
        result["json"] = response.json()
    except ValueError:
        result["text"] = response.text
    if response.status_code in expect:
        return result
    details = {"status": response.status_code, "body": response.text[:_BODY_PREVIEW]}
    message = f"{method} {url} returned {response.status_code}"
    if response.status_code >= 500:
        raise ApplicationError(message, type="HttpError", details=details)
    raise ApplicationError(message, type="HttpError", non_retryable=True, details=details)
