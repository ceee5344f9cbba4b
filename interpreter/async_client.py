"""AsyncClient: Client's methods for asyncio programs (web apps), awaited.

    from interpreter.async_client import AsyncClient

    async with AsyncClient("postgresql://...") as client:
        handle = await client.start_handle("samples/approval.yaml", {"order_id": "A1"})
        await handle.signal("approve", {"approved": True, "by": "ana"})
        run = await handle.result(timeout=30)

Each call is the synchronous Client's, run in a thread (asyncio.to_thread) so the event loop
never blocks on the store; both stores are safe to share between threads. `result()` and
`update()` do not poll: they wait for the store to change (interpreter/waiting.py: LISTEN/NOTIFY
on PostgreSQL, a watch on the SQLite file's size and time with backoff), then read again.
`execute()` drives the run with a Worker in the caller's event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from interpreter import clock
from interpreter.client import FORKS_SHOWN, Client
from interpreter.core.statuses import TERMINAL_STATUSES
from interpreter.errors import ResultTimeout
from interpreter.handles import AsyncRunHandle
from interpreter.waiting import ChangeWaiter

if TYPE_CHECKING:
    from interpreter.core.definition import Definition
    from interpreter.store import RunRecord, Segment, Store
    from interpreter.worker import EventSink

P = ParamSpec("P")
T = TypeVar("T")

# How often an update's wait also reads the run (has it ended?), as Client.update does.
RUN_CHECK = 0.25


class AsyncClient:
    def __init__(
        self,
        db: str | None = None,
        *,
        store: Store | None = None,
        create: bool = True,
        client: Client | None = None,
    ) -> None:
        """The same arguments as Client (or an existing `client` to share its store)."""
        self.sync = client if client is not None else Client(db, store=store, create=create)
        self.store = self.sync.store

    async def _call(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        return await asyncio.to_thread(fn, *args, **kwargs)

    async def close(self) -> None:
        await self._call(self.sync.close)

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ----------------------------------------------------------------- runs
    async def start(
        self, workflow: str | Path | Definition, input: Any = None, *, run_id: str | None = None
    ) -> str:
        return await self._call(self.sync.start, workflow, input, run_id=run_id)

    async def start_run(
        self, workflow: str | Path | Definition, input: Any = None, *, run_id: str | None = None
    ) -> tuple[RunRecord, bool]:
        return await self._call(self.sync.start_run, workflow, input, run_id=run_id)

    async def start_handle(
        self, workflow: str | Path | Definition, input: Any = None, *, run_id: str | None = None
    ) -> AsyncRunHandle:
        """Start (as `start`) and return the run's handle."""
        return AsyncRunHandle(self, await self.start(workflow, input, run_id=run_id))

    async def get_handle(self, run_id: str) -> AsyncRunHandle:
        """The handle of an existing run (RunNotFound otherwise)."""
        await self.get(run_id)
        return AsyncRunHandle(self, run_id)

    async def execute(
        self,
        run_id: str,
        *,
        workflow_dirs: tuple[Path, ...] = (),
        on_events: EventSink | None = None,
        grace: float = 10.0,
    ) -> RunRecord:
        """Drive the run (and its children) with a worker in this event loop until it ends."""
        from interpreter.local_drive import LocalRun

        record = await self.get(run_id)
        if record.status in TERMINAL_STATUSES:
            return record
        local = LocalRun(self.store, record, workflow_dirs=workflow_dirs, on_events=on_events)
        await local.worker.run(until=local.finished, grace=grace)
        return local.ended if local.ended is not None else await self.get(run_id)

    async def get(self, run_id: str) -> RunRecord:
        return await self._call(self.sync.get, run_id)

    async def result(self, run_id: str, timeout: float | None = None) -> RunRecord:
        """Wait until the run ends (some worker must be driving it), woken by the store."""
        deadline = None if timeout is None else clock.monotonic() + timeout
        async with ChangeWaiter(self.store) as waiter:
            while True:
                record = await self.get(run_id)
                if record.status in TERMINAL_STATUSES:
                    return record
                left = None if deadline is None else deadline - clock.monotonic()
                if left is not None and left <= 0:
                    raise ResultTimeout(
                        f"run {run_id!r} is still {record.status} after {timeout:g}s",
                        hint="is a worker running (`tideflow worker`)?",
                    )
                await waiter.wait(left)

    # ----------------------------------------------------------------- interaction
    async def signal(self, run_id: str, name: str, payload: Any = None) -> int:
        return await self._call(self.sync.signal, run_id, name, payload)

    async def update(
        self,
        run_id: str,
        name: str,
        data: Any = None,
        *,
        update_id: str | None = None,
        timeout: float | None = None,
    ) -> Any:
        """As Client.update, waiting for the outcome without polling."""
        from interpreter import updates

        def submit() -> Any:
            record = self.sync.get(run_id)
            updates.check_update(self.sync.definition_of(record), record, name, data)
            return updates.submit(self.store, record, name, data, update_id)

        began = clock.monotonic()
        async with ChangeWaiter(self.store) as waiter:
            stored = await self._call(submit)
            # A change wakes the wait at once, so the pause is only a bound: RUN_CHECK throughout.
            wait = updates.UpdateWait(
                self.store,
                stored,
                timeout,
                run_check=RUN_CHECK,
                first_poll=RUN_CHECK,
                last_poll=RUN_CHECK,
                began=began,
            )
            while True:
                done, value = await self._call(wait.look)
                if done:
                    return value
                await waiter.wait(wait.pause())

    async def query(self, run_id: str, name: str, args: Any = None) -> Any:
        return await self._call(self.sync.query, run_id, name, args)

    async def complete_callback(self, token: str, result: Any = None) -> dict[str, Any]:
        return await self._call(self.sync.complete_callback, token, result)

    async def fail_callback(
        self, token: str, error_type: str, message: str = "", details: Any = None
    ) -> dict[str, Any]:
        return await self._call(self.sync.fail_callback, token, error_type, message, details)

    async def heartbeat_callback(self, token: str, details: Any = None) -> dict[str, Any]:
        return await self._call(self.sync.heartbeat_callback, token, details)

    async def cancel(self, run_id: str) -> None:
        await self._call(self.sync.cancel, run_id)

    async def terminate(self, run_id: str, reason: str = "terminated by user") -> RunRecord:
        return await self._call(self.sync.terminate, run_id, reason)

    async def pause(self, run_id: str) -> bool:
        return await self._call(self.sync.pause, run_id)

    async def unpause(self, run_id: str) -> bool:
        return await self._call(self.sync.unpause, run_id)

    # ----------------------------------------------------------------- repair
    async def retry(
        self, run_id: str, *, definition: str | Path | Definition | None = None
    ) -> RunRecord:
        return await self._call(self.sync.retry, run_id, definition=definition)

    async def compensate(self, run_id: str) -> RunRecord:
        return await self._call(self.sync.compensate, run_id)

    async def fork(self, run_id: str, from_state: str, *, new_id: str | None = None) -> RunRecord:
        return await self._call(self.sync.fork, run_id, from_state, new_id=new_id)

    # ----------------------------------------------------------------- inspection
    async def status(self, run_id: str) -> dict[str, Any]:
        return await self._call(self.sync.status, run_id)

    async def history(
        self, run_id: str, *, segment: int | None = None, all_segments: bool = False
    ) -> list[dict[str, Any]]:
        """The run's events (a list: read in a thread at once)."""

        def read() -> list[dict[str, Any]]:
            return list(self.sync.history(run_id, segment=segment, all_segments=all_segments))

        return await self._call(read)

    async def forks(self, run_id: str, *, limit: int = FORKS_SHOWN) -> tuple[list[str], int]:
        return await self._call(self.sync.forks, run_id, limit=limit)

    async def segments(self, run_id: str) -> list[Segment]:
        return await self._call(self.sync.segments, run_id)

    async def list_runs(
        self, *, status: str | None = None, workflow: str | None = None
    ) -> list[RunRecord]:
        return await self._call(self.sync.list_runs, status=status, workflow=workflow)

    async def definition_of(self, record: RunRecord) -> Definition:
        return await self._call(self.sync.definition_of, record)
