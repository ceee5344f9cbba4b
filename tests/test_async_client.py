"""AsyncClient and run handles against a real worker (a thread of this process on its own
store, as another process's would be), on SQLite and PostgreSQL; the asyncio web example runs
as a real subprocess beside a real `tideflow worker`."""

from __future__ import annotations

import asyncio
import inspect
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import ROOT, SAMPLES
from run_helpers import cli_env, write_workflow

from interpreter import (
    AsyncClient,
    AsyncRunHandle,
    Client,
    ResultTimeout,
    RunFinished,
    RunHandle,
    RunNotFound,
    UpdateRejected,
    UpdateTimeout,
    load_activity_modules,
)

ENTITY = SAMPLES / "entity_greeting.yaml"
APPROVAL = SAMPLES / "approval.yaml"


def public_methods(cls: type) -> dict[str, Any]:
    return {
        name: fn
        for name, fn in inspect.getmembers(cls, inspect.isfunction)
        if not name.startswith("_")
    }


def test_async_client_and_handles_have_every_method_of_their_sync_twins() -> None:
    sync, async_ = public_methods(Client), public_methods(AsyncClient)
    assert set(sync) <= set(async_), set(sync) - set(async_)
    for name in sync:
        assert inspect.iscoroutinefunction(async_[name]), name
        assert (
            list(inspect.signature(async_[name]).parameters)
            == list(inspect.signature(sync[name]).parameters)
            or name == "result"
        ), name  # result has no `poll`: it does not poll
    handle, async_handle = public_methods(RunHandle), public_methods(AsyncRunHandle)
    assert set(handle) == set(async_handle)
    assert {"signal", "query", "update", "result", "cancel", "describe"} <= set(handle)
    assert all(inspect.iscoroutinefunction(fn) for fn in async_handle.values())


def test_async_result_waits_for_the_store_instead_of_polling(
    store_url: str, start_worker: Callable[[], None], tmp_path: Path
) -> None:
    wf = write_workflow(
        tmp_path,
        """
        name: napper
        states:
          nap: {type: sleep, duration: 1500ms, next: done}
          done: {type: succeed, output: rested}
        """,
    )

    async def main() -> tuple[str, int]:
        async with AsyncClient(store_url) as client:
            run_id = await client.start(wf)
            reads = 0
            get_run = client.store.get_run

            def counting(run_id: str) -> Any:
                nonlocal reads
                reads += 1
                return get_run(run_id)

            client.store.get_run = counting  # type: ignore[method-assign]
            start_worker()
            run = await client.result(run_id, timeout=60)
            return run.output, reads

    output, reads = asyncio.run(main())
    assert output == "rested"
    # A 50 ms poll (Client.result) reads the run 30 times in 1.5 s; a woken wait reads it once
    # per change it sees (the run's first steps, its end) plus the occasional safety look.
    assert reads <= 12, reads


def test_async_result_times_out_with_a_clear_error(store_url: str, tmp_path: Path) -> None:
    wf = write_workflow(
        tmp_path, "name: napper\nstates:\n  nap: {type: sleep, duration: 1h, end: true}\n"
    )

    async def main() -> None:
        async with AsyncClient(store_url) as client:
            run_id = await client.start(wf)
            with pytest.raises(ResultTimeout, match=r"still running after 0\.2s"):
                await client.result(run_id, timeout=0.2)
            with pytest.raises(RunNotFound):
                await client.get_handle("no-such-run")

    asyncio.run(main())


def test_async_handle_drives_an_entity_with_updates_queries_and_describe(
    store_url: str, start_worker: Callable[[], None]
) -> None:
    async def main() -> None:
        async with AsyncClient(store_url) as client:
            handle = await client.start_handle(ENTITY, {"name": "Ada"})
            assert isinstance(handle, AsyncRunHandle)
            start_worker()
            assert await handle.update("set_language", {"language": "fr"}, timeout=30) == "en"
            with pytest.raises(UpdateRejected, match="unsupported language tlh"):
                await handle.update("set_language", {"language": "tlh"}, timeout=30)
            assert await handle.query("greeting") == "Bonjour, Ada!"
            assert await handle.query("greeting_in", {"language": "de"}) == "Hallo, Ada!"
            described = await handle.describe()
            assert (described["run_id"], described["status"]) == (handle.id, "running")
            # Several calls at once share the one store safely.
            greetings = await asyncio.gather(*(handle.query("greeting") for _ in range(8)))
            assert set(greetings) == {"Bonjour, Ada!"}
            assert await handle.update("finish", timeout=30) == "Bonjour, Ada!"
            run = await handle.result(timeout=30)
            assert (run.status, run.output["changes"]) == ("completed", 1)
            history = await client.history(handle.id)
            assert history[-1]["type"] == "RunCompleted"
            with pytest.raises(RunFinished):
                await handle.update("finish", timeout=5)

    asyncio.run(main())


def test_async_update_without_a_worker_times_out_and_can_be_waited_for_again(
    store_url: str, start_worker: Callable[[], None]
) -> None:
    async def main() -> None:
        async with AsyncClient(store_url) as client:
            handle = await client.start_handle(ENTITY, {"name": "Bo"})
            with pytest.raises(UpdateTimeout, match=r"was not applied within 0\.2s"):
                await handle.update("set_language", {"language": "es"}, update_id="u1", timeout=0.2)
            start_worker()
            value = await handle.update(
                "set_language", {"language": "es"}, update_id="u1", timeout=30
            )
            assert value == "en"

    asyncio.run(main())


def test_async_signal_cancel_and_execute_in_the_callers_loop(
    store_url: str, tmp_path: Path
) -> None:
    load_activity_modules([str(SAMPLES / "activities.py")])
    quick = write_workflow(tmp_path, "name: quick\nstates:\n  done: {type: succeed, output: 7}\n")

    async def main() -> None:
        async with AsyncClient(store_url) as client:
            approval = await client.start_handle(
                APPROVAL, {"request_id": "R1", "amount": 5, "requester": "ana", "timeout": "1h"}
            )
            ticks = 0

            async def ticker() -> None:
                nonlocal ticks
                while True:
                    ticks += 1
                    await asyncio.sleep(0.001)

            tick_task = asyncio.create_task(ticker())
            run = await client.execute(await client.start(quick))
            assert (run.status, run.output) == ("completed", 7)
            assert ticks > 0  # the loop kept running while the run was driven
            tick_task.cancel()
            await approval.signal("approve", {"approved": True, "by": "bo"})
            with pytest.raises(Exception, match="declares no signal"):
                await approval.signal("nope")
            done = await client.execute(approval.id)
            assert done.status == "completed"
            assert (await approval.query("status"))["decided_by"] == "bo"
            other = await client.start_handle(
                APPROVAL, {"request_id": "R2", "amount": 5, "requester": "ana", "timeout": "1h"}
            )
            await other.cancel()
            assert (await client.execute(other.id)).status == "cancelled"
            runs = await client.list_runs(workflow="approval")
            assert {r.id for r in runs} == {approval.id, other.id}

    asyncio.run(main())


def test_sync_run_handle(store_url: str, start_worker: Callable[[], None]) -> None:
    with Client(store_url) as client:
        handle = client.start_handle(ENTITY, {"name": "Cy"})
        assert isinstance(handle, RunHandle) and client.get_handle(handle.id).id == handle.id
        assert isinstance(client.start(ENTITY, {"name": "Cy"}), str)  # start still gives the id
        start_worker()
        assert handle.update("set_language", {"language": "de"}, timeout=30) == "en"
        assert handle.query("greeting") == "Hallo, Cy!"
        assert handle.describe()["status"] == "running"
        handle.cancel()
        assert handle.result(timeout=30).status == "cancelled"
        with pytest.raises(RunNotFound):
            client.get_handle("no-such-run")


# --------------------------------------------------------------------------- the web example
def test_the_asyncio_web_example_serves_runs_over_http(store_url: str) -> None:
    env = cli_env()
    app = subprocess.Popen(
        [sys.executable, str(ROOT / "examples" / "asyncio_web.py"), "--db", store_url,
         "--port", "0"],
        stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT,
    )  # fmt: skip
    worker = subprocess.Popen(
        [sys.executable, "-m", "interpreter", "worker", "--db", store_url,
         "--activities", str(SAMPLES / "activities.py")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd=ROOT,
    )  # fmt: skip
    try:
        assert app.stdout is not None
        line = app.stdout.readline()
        assert line.startswith("listening on "), line
        base = line.split()[-1]
        with httpx.Client(base_url=base, timeout=60) as http:
            started = http.post(
                "/requests",
                json={"request_id": "R9", "amount": 120, "requester": "ana", "timeout": "1h"},
            )
            assert started.status_code == 201, started.text
            run_id = started.json()["run_id"]
            seen = http.get(f"/requests/{run_id}").json()
            assert seen["status"] == "running" and seen["request"]["request_id"] == "R9"
            bad = http.post(f"/requests/{run_id}/approve", json={"approved": "yes"})
            assert bad.status_code == 400 and "invalid" in bad.json()["error"]
            sent = http.post(f"/requests/{run_id}/approve", json={"approved": True, "by": "bo"})
            assert sent.status_code == 202
            result = http.get(f"/requests/{run_id}/result", params={"timeout": "60"})
            assert result.status_code == 200, result.text
            assert result.json()["status"] == "completed"
            assert http.get("/requests/nope").status_code == 404
            assert http.post("/requests", json={"amount": 1}).status_code == 400
    finally:
        for proc in (app, worker):
            proc.terminate()
            proc.wait(30)
