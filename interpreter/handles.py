"""Run handles: one run's operations bound to its id, for Client and AsyncClient.

    handle = client.start_handle("samples/approval.yaml", {"order_id": "A1"})
    handle.signal("approve", {"approved": True, "by": "ana"})
    print(handle.query("status"), handle.describe()["status"])
    run = handle.result(timeout=30)

`Client.start` keeps returning the run id (a str): scripts and the CLI store, print and compare
it. A str subclass carrying methods was the other choice; it was not taken because it hides a
client (and its open store) inside what looks like plain data, is pickled and JSON-encoded as
a bare string, and breaks as soon as someone does `run_id.strip()`. `start_handle` /
`get_handle` are explicit instead, and `handle.id` is the id.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

if TYPE_CHECKING:
    from interpreter.store import RunRecord


# What a handle asks of its client: Client and AsyncClient (this module imports neither, so
# that both can import it).
class Client(Protocol):
    def signal(self, run_id: str, name: str, payload: Any = None) -> int: ...
    def query(self, run_id: str, name: str, args: Any = None) -> Any: ...
    def update(
        self,
        run_id: str,
        name: str,
        data: Any = None,
        *,
        update_id: str | None = None,
        timeout: float | None = None,
    ) -> Any: ...
    def result(self, run_id: str, timeout: float | None = None) -> RunRecord: ...
    def cancel(self, run_id: str) -> None: ...
    def terminate(self, run_id: str, reason: str = ...) -> RunRecord: ...
    def status(self, run_id: str) -> dict[str, Any]: ...
    def get(self, run_id: str) -> RunRecord: ...
    def pause(self, run_id: str) -> bool: ...
    def unpause(self, run_id: str) -> bool: ...


class AsyncClient(Protocol):
    async def signal(self, run_id: str, name: str, payload: Any = None) -> int: ...
    async def query(self, run_id: str, name: str, args: Any = None) -> Any: ...
    async def update(
        self,
        run_id: str,
        name: str,
        data: Any = None,
        *,
        update_id: str | None = None,
        timeout: float | None = None,
    ) -> Any: ...
    async def result(self, run_id: str, timeout: float | None = None) -> RunRecord: ...
    async def cancel(self, run_id: str) -> None: ...
    async def terminate(self, run_id: str, reason: str = ...) -> RunRecord: ...
    async def status(self, run_id: str) -> dict[str, Any]: ...
    async def get(self, run_id: str) -> RunRecord: ...
    async def pause(self, run_id: str) -> bool: ...
    async def unpause(self, run_id: str) -> bool: ...


BoundClient = TypeVar("BoundClient", bound=Client | AsyncClient)


class BoundRun(Generic[BoundClient]):
    """What the two handles share: the client and the run's id. Their methods are each one call
    of the client's (the I/O), awaited or not, so each handle spells its own."""

    def __init__(self, client: BoundClient, run_id: str) -> None:
        self.client: BoundClient = client
        self.id = run_id

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.id!r})"


class RunHandle(BoundRun[Client]):
    """One run of a (synchronous) Client."""

    def signal(self, name: str, payload: Any = None) -> int:
        return self.client.signal(self.id, name, payload)

    def query(self, name: str, args: Any = None) -> Any:
        return self.client.query(self.id, name, args)

    def update(
        self,
        name: str,
        data: Any = None,
        *,
        update_id: str | None = None,
        timeout: float | None = None,
    ) -> Any:
        return self.client.update(self.id, name, data, update_id=update_id, timeout=timeout)

    def result(self, timeout: float | None = None) -> RunRecord:
        return self.client.result(self.id, timeout=timeout)

    def cancel(self) -> None:
        self.client.cancel(self.id)

    def terminate(self, reason: str = "terminated by user") -> RunRecord:
        return self.client.terminate(self.id, reason)

    def describe(self) -> dict[str, Any]:
        """What `tideflow status` shows: status, current states, vars, output, error..."""
        return self.client.status(self.id)

    def pause(self) -> bool:
        return self.client.pause(self.id)

    def unpause(self) -> bool:
        return self.client.unpause(self.id)

    def get(self) -> RunRecord:
        return self.client.get(self.id)


class AsyncRunHandle(BoundRun[AsyncClient]):
    """One run of an AsyncClient: the same methods, awaited."""

    async def signal(self, name: str, payload: Any = None) -> int:
        return await self.client.signal(self.id, name, payload)

    async def query(self, name: str, args: Any = None) -> Any:
        return await self.client.query(self.id, name, args)

    async def update(
        self,
        name: str,
        data: Any = None,
        *,
        update_id: str | None = None,
        timeout: float | None = None,
    ) -> Any:
        return await self.client.update(self.id, name, data, update_id=update_id, timeout=timeout)

    async def result(self, timeout: float | None = None) -> RunRecord:
        return await self.client.result(self.id, timeout=timeout)

    async def cancel(self) -> None:
        await self.client.cancel(self.id)

    async def terminate(self, reason: str = "terminated by user") -> RunRecord:
        return await self.client.terminate(self.id, reason)

    async def describe(self) -> dict[str, Any]:
        """As RunHandle.describe."""
        return await self.client.status(self.id)

    async def pause(self) -> bool:
        return await self.client.pause(self.id)

    async def unpause(self) -> bool:
        return await self.client.unpause(self.id)

    async def get(self) -> RunRecord:
        return await self.client.get(self.id)
