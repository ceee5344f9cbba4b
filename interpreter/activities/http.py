"""The built-in `http` activity (httpx)."""

from __future__ import annotations

import json
import re
from typing import Any

from interpreter.errors import ApplicationError

HTTP_ACTIVITY = "http"
_BODY_PREVIEW = 2000
# RFC 9110 tokens (methods, header names); a header value is visible ASCII, spaces and tabs.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_HEADER_VALUE = re.compile(r"[\t\x20-\x7e]*")


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
    method = "GET" if payload.get("method") is None else payload["method"]
    if not isinstance(method, str) or not _TOKEN.fullmatch(method):
        raise _bad_input(f"`method` must be an HTTP method such as GET or POST, not {method!r}")
    method = method.upper()
    headers = payload.get("headers") or {}
    if not isinstance(headers, dict):
        raise _bad_input("`headers` must be an object of header names to string values")
    for name, value in headers.items():
        if not _TOKEN.fullmatch(name):
            raise _bad_input(f"header name {name!r} is not valid (letters, digits, - and _)")
        if not isinstance(value, str) or not _HEADER_VALUE.fullmatch(value):
            raise _bad_input(
                f"the value of header {name!r} must be a string of printable ASCII"
                f" without line breaks, not {value!r}"
            )
    if not isinstance(payload.get("params") or {}, dict):
        raise _bad_input("`params` must be an object of query parameters")
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
    kwargs: dict[str, Any] = {"headers": headers or None, "params": payload.get("params") or None}
    if "json" in payload:
        kwargs["json"] = payload["json"]
    elif "body" in payload:
        body = payload["body"]
        kwargs["content"] = body if isinstance(body, str) else json.dumps(body)
    import httpx  # imported here: it costs ~40 ms of start-up to every CLI command otherwise

    try:
        async with httpx.AsyncClient(timeout=timeout_s, follow_redirects=True) as client:
            response = await client.request(method, url, **kwargs)
    except httpx.UnsupportedProtocol as exc:
        # Not a network failure: no retry reaches `notaurl` or `file://...` (or a redirect there).
        raise _bad_input(f"`url` must be an http:// or https:// URL, not {url!r} ({exc})") from None
    except httpx.LocalProtocolError as exc:
        # The request itself breaks HTTP (what the checks above let through); so would a retry.
        raise _bad_input(f"{method} {url} is not a valid HTTP request: {exc}") from None
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
