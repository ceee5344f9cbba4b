"""Simulated services for the sample workflows.

Every failure is driven by the input, so each sample's outcome is fixed by its input file:

- `payment.token == "declined"`   → PaymentDeclined (non-retryable)
- an item with `sku == "OUT-OF-STOCK"` → OutOfStock (non-retryable)
- `flaky: N`                      → the first N attempts fail with the retryable ServiceUnavailable
- `fail_at: hotel|flight|payment` → that booking step fails (non-retryable)
- an item with `sku == "missing"` → ItemNotFound (non-retryable)

Results are derived from the input (never from the clock or the run id), so a test can assert
them. Two environment variables serve the crash tests:

- `TIDEFLOW_SAMPLE_LOG=<file>`: every activity appends one JSON line at its start and at its end
  (`{"activity", "run_id", "state", "attempt", "idempotency_key", "event": "start"|"end"}`; the
  end line adds `"outcome": "ok"` or the error type), flushed and fsynced, so a test can count
  the side effects that really happened even after a kill -9.
- `TIDEFLOW_SAMPLE_DELAY=<seconds>`: each activity sleeps that long between start and end
  (heartbeating), so a test can kill the worker mid-activity.
- `TIDEFLOW_SAMPLE_BROKEN=<activity>[,<activity>...]`: those activities fail at once with
  the non-retryable `ServiceBroken` ("the bug"); unset it ("the fix") and they work again. The
  held booking saga (`booking_hold.yaml`) is retried that way (see samples/README.md).

Run with `--activities samples/activities.py`.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from interpreter import ActivityContext, ApplicationError, activity

Impl = Callable[[ActivityContext, Any], Any | Awaitable[Any]]

LOG_ENV = "TIDEFLOW_SAMPLE_LOG"
DELAY_ENV = "TIDEFLOW_SAMPLE_DELAY"
BROKEN_ENV = "TIDEFLOW_SAMPLE_BROKEN"
_HEARTBEAT_EVERY = 0.2  # seconds; keeps short heartbeat timeouts quiet during a long delay


def _log(name: str, ctx: ActivityContext, event: str, outcome: str | None = None) -> None:
    path = os.environ.get(LOG_ENV)
    if not path:
        return
    record: dict[str, Any] = {
        "activity": name,
        "run_id": ctx.run_id,
        "state": ctx.state,
        "attempt": ctx.attempt,
        "idempotency_key": ctx.idempotency_key,
        "event": event,
    }
    if outcome is not None:
        record["outcome"] = outcome
    line = (json.dumps(record, sort_keys=True) + "\n").encode()
    # One O_APPEND write per line: concurrent activities (threads or processes) never interleave.
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)


def _delay_seconds() -> float:
    raw = os.environ.get(DELAY_ENV, "").strip()
    if not raw:
        return 0.0
    try:
        seconds = float(raw)
    except ValueError:
        raise ApplicationError(
            f"{DELAY_ENV}={raw!r} is not a number of seconds",
            type="BadConfig",
            non_retryable=True,
        ) from None
    return max(seconds, 0.0)


def _refuse_if_broken(name: str) -> None:
    broken = {n.strip() for n in os.environ.get(BROKEN_ENV, "").split(",")}
    if name in broken:
        raise ApplicationError(
            f"{name} is broken ({BROKEN_ENV} names it)", type="ServiceBroken", non_retryable=True
        )


async def _delay(ctx: ActivityContext) -> None:
    remaining = _delay_seconds()
    while remaining > 0:
        step = min(remaining, _HEARTBEAT_EVERY)
        await asyncio.sleep(step)
        remaining -= step
        ctx.heartbeat()


def sample_activity(name: str) -> Callable[[Impl], Callable[[ActivityContext, Any], Any]]:
    """Register `fn(ctx, payload)` as activity `name`, with the start/end log and the delay."""

    def decorate(fn: Impl) -> Callable[[ActivityContext, Any], Any]:
        async def run(ctx: ActivityContext, payload: Any) -> Any:
            _log(name, ctx, "start")
            outcome = "ok"
            try:
                await _delay(ctx)
                _refuse_if_broken(name)
                result = fn(ctx, payload)
                if inspect.isawaitable(result):
                    result = await result
                return result
            except ApplicationError as exc:
                outcome = exc.type
                raise
            except BaseException as exc:  # cancellation, timeouts: still worth a log line
                outcome = type(exc).__name__
                raise
            finally:
                _log(name, ctx, "end", outcome)

        # No functools.wraps: the registry inspects the signature and must see (ctx, payload).
        run.__name__ = fn.__name__
        run.__qualname__ = fn.__qualname__
        run.__doc__ = fn.__doc__
        return activity(name)(run)

    return decorate


# --- input helpers -------------------------------------------------------------------------


def _obj(payload: Any) -> dict[str, Any]:
    if not isinstance(payload, dict):
        raise ApplicationError(
            f"expected an object as input, got {type(payload).__name__}",
            type="BadInput",
            non_retryable=True,
        )
    return payload


def _field(payload: Any, key: str) -> Any:
    data = _obj(payload)
    if key not in data:
        raise ApplicationError(
            f"input field {key!r} is missing", type="BadInput", non_retryable=True
        )
    return data[key]


def _flaky(ctx: ActivityContext, payload: Any, service: str) -> None:
    """`flaky: N` in the input: the first N attempts fail with a retryable error."""
    failures = _obj(payload).get("flaky") or 0
    if isinstance(failures, int) and ctx.attempt <= failures:
        raise ApplicationError(
            f"{service} unavailable (attempt {ctx.attempt} of the {failures} that fail)",
            type="ServiceUnavailable",
        )


# --- greeting ------------------------------------------------------------------------------


@sample_activity("greet")
def greet(ctx: ActivityContext, payload: Any) -> dict[str, Any]:
    return {"message": f"Hello, {_field(payload, 'name')}!"}


# --- order ---------------------------------------------------------------------------------


@sample_activity("payments.charge")
def charge(ctx: ActivityContext, payload: Any) -> dict[str, Any]:
    ctx.heartbeat({"step": "authorising"})
    order_id = _field(payload, "order_id")
    if _field(payload, "token") == "declined":
        raise ApplicationError(
            "card declined",
            type="PaymentDeclined",
            non_retryable=True,
            details={"order_id": order_id},
        )
    _flaky(ctx, payload, "payment gateway")
    return {
        "transaction_id": f"tx-{order_id}",
        "amount": _field(payload, "amount"),
        "success": True,
    }


@sample_activity("payments.refund")
def refund(ctx: ActivityContext, payload: Any) -> dict[str, Any]:
    order_id = _field(payload, "order_id")
    return {"refund_id": f"rf-{order_id}", "amount": _field(payload, "amount")}


@sample_activity("inventory.reserve")
def reserve(ctx: ActivityContext, payload: Any) -> dict[str, Any]:
    order_id = _field(payload, "order_id")
    items = _field(payload, "items")
    missing = [item["sku"] for item in items if item.get("sku") == "OUT-OF-STOCK"]
    if missing:
        raise ApplicationError(
            f"out of stock: {', '.join(missing)}",
            type="OutOfStock",
            non_retryable=True,
            details={"skus": missing},
        )
    _flaky(ctx, payload, "inventory service")
    units = sum(int(item.get("qty", 1)) for item in items)
    return {"reservation_id": f"rsv-{order_id}", "units": units}


@sample_activity("inventory.release")
def release(ctx: ActivityContext, payload: Any) -> dict[str, Any]:
    return {"released": f"rsv-{_field(payload, 'order_id')}"}


@sample_activity("shipping.ship")
def ship(ctx: ActivityContext, payload: Any) -> dict[str, Any]:
    order_id = _field(payload, "order_id")
    method = _field(payload, "method")
    _field(payload, "address")
    _flaky(ctx, payload, "carrier")
    carrier = "AirFast" if method == "express" else "GroundCo"
    return {"tracking_number": f"trk-{order_id}", "carrier": carrier, "method": method}


# --- booking saga --------------------------------------------------------------------------


def _book(payload: Any, step: str, error: str, prefix: str) -> dict[str, Any]:
    trip_id = _field(payload, "trip_id")
    if _obj(payload).get("fail_at") == step:
        raise ApplicationError(
            f"{step} booking failed for trip {trip_id}",
            type=error,
            non_retryable=True,
            details={"trip_id": trip_id, "step": step},
        )
    return {"confirmation": f"{prefix}-{trip_id}"}


def _cancel(payload: Any, prefix: str) -> dict[str, Any]:
    return {"cancelled": f"{prefix}-{_field(payload, 'trip_id')}"}


@sample_activity("booking.reserve_hotel")
def reserve_hotel(ctx: ActivityContext, payload: Any) -> dict[str, Any]:
    return _book(payload, "hotel", "HotelUnavailable", "H")


@sample_activity("booking.cancel_hotel")
def cancel_hotel(ctx: ActivityContext, payload: Any) -> dict[str, Any]:
    return _cancel(payload, "H")


@sample_activity("booking.reserve_flight")
def reserve_flight(ctx: ActivityContext, payload: Any) -> dict[str, Any]:
    return _book(payload, "flight", "FlightUnavailable", "F")


@sample_activity("booking.cancel_flight")
def cancel_flight(ctx: ActivityContext, payload: Any) -> dict[str, Any]:
    return _cancel(payload, "F")


@sample_activity("booking.charge")
def booking_charge(ctx: ActivityContext, payload: Any) -> dict[str, Any]:
    return _book(payload, "payment", "PaymentDeclined", "P")


@sample_activity("booking.refund")
def booking_refund(ctx: ActivityContext, payload: Any) -> dict[str, Any]:
    return _cancel(payload, "P")


# --- approval ------------------------------------------------------------------------------


@sample_activity("approval.submit")
def submit(ctx: ActivityContext, payload: Any) -> dict[str, Any]:
    request_id = _field(payload, "request_id")
    return {"ticket": f"apr-{request_id}", "amount": _field(payload, "amount")}


@sample_activity("approval.notify")
def notify(ctx: ActivityContext, payload: Any) -> dict[str, Any]:
    return {"notified": _field(payload, "requester"), "outcome": _field(payload, "outcome")}


# --- parent/child --------------------------------------------------------------------------


@sample_activity("warehouse.pick")
def pick(ctx: ActivityContext, payload: Any) -> dict[str, Any]:
    sku = _field(payload, "sku")
    if sku == "missing":
        raise ApplicationError(f"no item with sku {sku!r}", type="ItemNotFound", non_retryable=True)
    return {"sku": sku, "picked": int(_field(payload, "qty")), "bin": f"bin-{str(sku).lower()}"}


# --- fan-out / fan-in ----------------------------------------------------------------------


@sample_activity("fanout.lookup")
def lookup(ctx: ActivityContext, payload: Any) -> dict[str, Any]:
    source = _field(payload, "source")
    return {"source": source, "value": f"{source}:{_field(payload, 'user')}"}


@sample_activity("fanout.square")
def square(ctx: ActivityContext, payload: Any) -> dict[str, Any]:
    n = _field(payload, "n")
    return {"n": n, "square": n * n}


@sample_activity("fanout.summarize")
def summarize(ctx: ActivityContext, payload: Any) -> dict[str, Any]:
    lookups = _field(payload, "lookups")
    squares = _field(payload, "squares")
    return {
        "sources": [entry["source"] for entry in lookups],
        "count": len(squares),
        "total": sum(entry["square"] for entry in squares),
    }


# --- deadline (the clock and several signals) ----------------------------------------------


@sample_activity("deadline.hold")
def hold(ctx: ActivityContext, payload: Any) -> dict[str, Any]:
    """Holds the order (here: says so); the message was computed from the run's clock."""
    return {
        "hold": f"hold-{_field(payload, 'order_id')}",
        "until": _field(payload, "until"),
        "message": _field(payload, "message"),
    }


# --- callback tasks (completion: callback) -------------------------------------------------


@sample_activity("approval.request_callback")
def request_callback(ctx: ActivityContext, payload: Any) -> dict[str, Any]:
    """Sends the approver their callback token. Here the "mail" is a file in the `outbox`
    directory the run's input names (`<outbox>/<approver>.token`); a real one would mail a
    link that calls `tideflow complete TOKEN` (or the web endpoint)."""
    approver = str(_field(payload, "approver"))
    outbox = Path(str(_field(payload, "outbox")))
    outbox.mkdir(parents=True, exist_ok=True)
    token = ctx.callback_token
    if token is None:
        raise ApplicationError("needs completion: callback", type="NotACallback")
    part = outbox / f"{approver}.token.part"
    part.write_text(token, encoding="utf-8")
    part.replace(outbox / f"{approver}.token")  # whole or absent: the reader never sees half
    return {"sent_to": approver}


# --- exit handlers and per-error retries (order_notify) -----------------------------------


@sample_activity("carrier.book")
def book_carrier(ctx: ActivityContext, payload: Any) -> dict[str, Any]:
    """`busy: N`: the first N attempts answer 429 (CarrierBusy, status in details); `flaky: N`
    as elsewhere (ServiceUnavailable)."""
    order_id = _field(payload, "order_id")
    busy = _obj(payload).get("busy") or 0
    if isinstance(busy, int) and ctx.attempt <= busy:
        raise ApplicationError(
            f"carrier busy (attempt {ctx.attempt})",
            type="CarrierBusy",
            details={"status": 429, "order_id": order_id},
        )
    _flaky(ctx, payload, "carrier")
    return {"tracking_number": f"trk-{order_id}", "carrier": "GroundCo"}


@sample_activity("notify.send")
def send_notification(ctx: ActivityContext, payload: Any) -> dict[str, Any]:
    """Sends a message; the channel `broken` is down (NotifierDown, non-retryable)."""
    channel = _field(payload, "channel")
    if channel == "broken":
        raise ApplicationError(
            "the notification channel is down", type="NotifierDown", non_retryable=True
        )
    return {"sent": True, "channel": channel, "to": _field(payload, "to")}


@sample_activity("audit.record")
def audit(ctx: ActivityContext, payload: Any) -> dict[str, Any]:
    return {"recorded": _field(payload, "order_id"), "status": _field(payload, "status")}


# --- continue-as-new poller (samples/poller.yaml) ------------------------------------------


@sample_activity("jobs.check")
def check_job(ctx: ActivityContext, payload: Any) -> dict[str, Any]:
    """The job is done after `finish_after` checks in all (counted over every segment)."""
    checked = int(_field(payload, "checked")) + 1
    return {
        "job": _field(payload, "job"),
        "checked": checked,
        "done": checked >= int(_field(payload, "finish_after")),
    }


# --- data helpers and paths (samples/intake.yaml) --------------------------------------------


@sample_activity("intake.lookup_customer")
def lookup_customer(ctx: ActivityContext, payload: Any) -> dict[str, Any]:
    """A CRM that answers with a JSON text in one field, as many HTTP APIs do."""
    email = _field(payload, "email")
    if str(email).startswith("blocked"):
        raise ApplicationError(
            f"customer {email} is blocked", type="CustomerBlocked", non_retryable=True
        )
    tier = "gold" if str(email).endswith("@example.com") else "basic"
    profile: dict[str, Any] = {"tier": tier}
    if tier == "gold":
        profile["discount"] = {"percent": 10}
    return {"id": "cus-" + str(email).split("@")[0], "profile_json": json.dumps(profile)}


# --- completion rules (race, quorum) and detached children ---------------------------------


@sample_activity("race.quote")
async def quote(ctx: ActivityContext, payload: Any) -> dict[str, Any]:
    """A price provider that answers after `wait_s` seconds, unless the race is over first:
    then its attempt is cancelled (the log shows the outcome CancelledError)."""
    await asyncio.sleep(float(_field(payload, "wait_s")))
    provider = _field(payload, "provider")
    return {"provider": provider, "price": 10 + len(str(provider))}


@sample_activity("race.fetch")
def fetch(ctx: ActivityContext, payload: Any) -> dict[str, Any]:
    mirror = str(_field(payload, "mirror"))
    if mirror.startswith("down"):
        raise ApplicationError(f"mirror {mirror} is down", type="MirrorDown", non_retryable=True)
    return {"mirror": mirror, "bytes": 1024 * len(mirror)}


@sample_activity("quorum.write")
def write_replica(ctx: ActivityContext, payload: Any) -> dict[str, Any]:
    replica = str(_field(payload, "replica"))
    if replica.startswith("down"):
        raise ApplicationError(
            f"replica {replica} did not answer", type="ReplicaDown", non_retryable=True
        )
    return {"replica": replica, "key": _field(payload, "key"), "version": 1}


@sample_activity("signup.create_account")
def create_account(ctx: ActivityContext, payload: Any) -> dict[str, Any]:
    email = str(_field(payload, "email"))
    return {"account": "acct-" + email.split("@")[0], "email": email}


@sample_activity("signup.send_mail")
def send_mail(ctx: ActivityContext, payload: Any) -> dict[str, Any]:
    return {"to": _field(payload, "to"), "template": _field(payload, "template")}
