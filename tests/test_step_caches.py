"""What the core derives once per definition (or per process) instead of at every step: the
answers must stay those of the uncached code, and shared results must not leak between runs."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import activities_for_tests  # noqa: F401  (registers test.echo)
import pytest
from run_helpers import history, of_type, run_to_end, wait_for, write_workflow

from interpreter import Client, activity, executor
from interpreter.core.definition import NOT_CONSTANT, Definition
from interpreter.core.engine import Engine
from interpreter.core.records import new_run_state

MUTATED = "test.mutate_input"


@activity(MUTATED)
def mutate_input(payload: dict[str, Any]) -> dict[str, Any]:
    seen = dict(payload)
    payload["added"] = True  # an activity may change what it is given
    return seen


def _definition(text: dict[str, Any]) -> Definition:
    return Definition.from_data({"dsl": "1.0", "name": "caches", **text})


def test_a_constant_value_is_evaluated_once_and_handed_out_as_a_copy() -> None:
    defn = _definition(
        {
            "states": {
                "a": {"type": "activity", "activity": MUTATED, "input": {"k": [1]}, "next": "b"},
                "b": {"type": "activity", "activity": MUTATED, "input": "{{ input }}"},
            }
        }
    )
    constant = defn.state([], "a").input
    assert defn.constant(constant) == {"k": [1]}
    assert defn.constant(defn.state([], "b").input) is NOT_CONSTANT
    state = new_run_state(defn, "r1", {}, 0.0)
    engine = Engine(defn, state, 0.0)
    engine.start()
    engine.advance()
    (task,) = state["tasks"].values()
    task["input"]["k"].append(2)  # what the run was given is its own
    assert defn.constant(constant) == {"k": [1]}
    assert constant == {"k": [1]}


def test_a_constant_that_is_not_json_data_fails_its_step_at_every_visit(
    client: Client, tmp_path: Path
) -> None:
    wf = write_workflow(
        tmp_path,
        """
        name: nan_input
        states:
          a: {type: activity, activity: test.echo, input: {x: .nan}, end: true}
        """,
    )
    for _ in range(2):
        record = run_to_end(client, wf)
        assert record.status == "failed"
        assert record.error["type"] == "ExpressionError"
        assert "NaN" in record.error["message"]


def test_runs_of_one_definition_each_get_their_own_copy_of_a_constant_input(
    client: Client, tmp_path: Path
) -> None:
    wf = write_workflow(
        tmp_path,
        f"""
        name: mutating
        states:
          a: {{type: activity, activity: {MUTATED}, input: {{k: 1}}, end: true}}
        """,
    )
    outputs = [run_to_end(client, wf).output for _ in range(2)]
    assert outputs == [{"k": 1}, {"k": 1}]
    run_id = client.start(wf, {})
    client.execute(run_id)
    (scheduled,) = of_type(history(client, run_id), "ActivityScheduled")
    assert scheduled["payload"]["input"] == {"k": 1}


def test_retry_and_timeouts_are_resolved_once_and_timeouts_are_fresh_dicts() -> None:
    defn = _definition(
        {
            "defaults": {"retry": {"max_attempts": 5}, "timeout": {"start_to_close": "2s"}},
            "states": {"a": {"type": "activity", "activity": "x", "retry": {"backoff": 3}}},
        }
    )
    state = defn.state([], "a")
    retry = defn.retry_for(state.retry)
    assert (retry.max_attempts, retry.backoff) == (5, 3.0)
    assert defn.retry_for(state.retry) is retry
    first = defn.timeouts_for(state.timeout)
    assert first == {"start_to_close": 2.0, "schedule_to_close": None, "heartbeat": None}
    first["start_to_close"] = 99.0
    assert defn.timeouts_for(state.timeout)["start_to_close"] == 2.0


def test_a_pinned_source_is_validated_once_per_process() -> None:
    source = _definition({"states": {"a": {"type": "succeed"}}}).source
    assert Definition.from_source(source) is Definition.from_source(source)
    assert Definition.from_source(source, "f.yaml").file == "f.yaml"


def test_a_closed_pools_thread_serves_the_next_pool() -> None:
    def ident() -> int:
        return threading.get_ident()

    async def one_call(pool: executor._DaemonThreads) -> int:
        result: int = await pool.submit(ident, ())
        return result

    first = executor._DaemonThreads(4)
    thread = asyncio.run(one_call(first))
    first.close()
    wait_for(lambda: bool(executor._IDLE))
    second = executor._DaemonThreads(4)
    assert asyncio.run(one_call(second)) == thread
    second.close()


def test_a_spare_thread_ends_when_no_pool_takes_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(executor, "SPARE_THREAD_SECONDS", 0.05)
    seen: list[threading.Thread] = []

    async def one_call(pool: executor._DaemonThreads) -> None:
        await pool.submit(lambda: seen.append(threading.current_thread()), ())

    pool = executor._DaemonThreads(1)
    # A thread idle from earlier (waiting with the normal timeout) would take this call: start
    # with none, so a new thread (with the short timeout) runs it.
    monkeypatch.setattr(executor, "_IDLE", [])
    asyncio.run(one_call(pool))
    pool.close()
    seen[0].join(timeout=10)
    assert not seen[0].is_alive()
    assert not executor._IDLE


def _attempt_of(activity_name: str) -> tuple[dict[str, Any], Any]:
    from interpreter.activities.context import ActivityContext

    task = {"activity": activity_name, "input": {"n": 1}, "timeouts": {}, "id": "k1"}
    ctx = ActivityContext(run_id="r", workflow="w", state="s", attempt=1, idempotency_key="r/k1/1")
    return task, ctx


def test_a_sync_attempt_has_its_outcome_in_the_turn_its_result_arrives() -> None:
    """The pool sets the call's future and the attempt's outcome in one turn of the loop (no
    done callback a turn later): one turn less on every step of a sync activity."""
    seen: list[bool] = []

    async def main() -> None:
        runner = executor.ActivityRunner()
        task, ctx = _attempt_of(MUTATED)
        pool = runner._threads
        real = pool._deliver

        def deliver(loop: asyncio.AbstractEventLoop) -> None:
            real(loop)
            seen.append(outcome.done())

        pool._deliver = deliver  # type: ignore[method-assign]
        outcome = runner.start(task, ctx)
        assert (await outcome).ok
        assert not pool._when_settled
        runner.close()

    asyncio.run(main())
    assert seen == [True]


def test_an_abandoned_sync_attempt_leaves_no_hook_behind() -> None:
    release = threading.Event()

    @activity("test.held_for_hook")
    def held(payload: Any) -> None:
        release.wait(10)

    async def main() -> executor._DaemonThreads:
        runner = executor.ActivityRunner()
        task, ctx = _attempt_of("test.held_for_hook")
        outcome = runner.start(task, ctx)
        await asyncio.sleep(0.05)
        outcome.cancel()  # the run gave up on it (cancelled, lost its lease, a race lost)
        release.set()
        pool = runner._threads
        deadline = asyncio.get_running_loop().time() + 10
        while pool._when_settled and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.01)
        runner.close()
        return pool

    assert not asyncio.run(main())._when_settled
