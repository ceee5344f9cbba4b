"""Issue 9, High: one template must not freeze a worker (or the fleet).

- every template evaluation has a budget of work and time; past it the state fails with
  `ExpressionLimit`, which names the state and the field and which `catch` can match;
- the budget is a setting (TIDEFLOW_TEMPLATE_BUDGET_MS);
- a slow template is evaluated off the worker's event loop: runs beside it go on;
- two `tideflow worker` processes on one store: the spin workflow fails within its budget and a
  trivial run started beside it completes (SQLite and PostgreSQL).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from run_helpers import ROOT, run_to_end, write_workflow

from interpreter import Client, activity
from interpreter.client import load_definition
from interpreter.expressions import ExpressionError, ExpressionLimit, evaluate
from interpreter.worker import Worker

SPIN = "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}"
# Big-integer multiplication in a recursive macro: each call squares the number.
SQUARES = "{% macro sq(x, n) %}{{ sq(x * x, n - 1) if n else x }}{% endmacro %}{{ sq(3, 1000) }}"
# A macro that calls itself twice: 2**40 calls, each cheap.
FORK = "{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(40) }}"


@activity("tb.echo")
def echo(x: object) -> object:
    return x


@pytest.fixture
def small_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIDEFLOW_TEMPLATE_BUDGET_MS", "200")


@pytest.mark.parametrize("template", [SPIN, SQUARES, FORK], ids=["loops", "squares", "fork"])
def test_a_template_past_its_budget_is_an_expression_limit(
    small_budget: None, template: str
) -> None:
    with pytest.raises(ExpressionLimit) as caught:
        evaluate({"x": template}, {"input": {}}, where="state 'build', vars")
    assert caught.value.kind == "ExpressionLimit"
    assert caught.value.message.startswith("state 'build', vars: template ")
    assert isinstance(caught.value, ExpressionError)  # code catching ExpressionError still does


def test_the_budget_is_a_setting(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # 30,000 iterations: past a 1 ms budget (5,000 units of work), well within the default.
    template = "{% for a in range(300) %}{% for b in range(100) %}{% endfor %}{% endfor %}ok"
    assert evaluate(template, {}, where="w") == "ok"
    monkeypatch.setenv("TIDEFLOW_TEMPLATE_BUDGET_MS", "1")
    with pytest.raises(ExpressionLimit, match="TIDEFLOW_TEMPLATE_BUDGET_MS"):
        evaluate(template, {}, where="w")
    # A bad setting is the deployment's mistake: said once, and the default applies.
    monkeypatch.setenv("TIDEFLOW_TEMPLATE_BUDGET_MS", "soon")
    assert evaluate(template, {}, where="w") == "ok"
    assert evaluate(template, {}, where="w") == "ok"
    said = capsys.readouterr().err
    assert said.count("TIDEFLOW_TEMPLATE_BUDGET_MS='soon' is not a whole number") == 1, said
    assert "using the default of 1000 ms" in said


def test_ordinary_loops_and_macros_still_work() -> None:
    template = (
        "{% macro fact(n) %}{{ n * (fact(n - 1)|int) if n > 1 else 1 }}{% endmacro %}"
        "{% for i in range(3) %}{{ loop.index }}/{{ loop.length }} {% endfor %}{{ fact(20) }}"
    )
    assert evaluate(template, {}, where="w") == "1/3 2/3 3/3 2432902008176640000"


def test_expression_limit_fails_the_state_and_can_be_caught(
    client: Client, tmp_path: Path, small_budget: None
) -> None:
    wf = write_workflow(
        tmp_path,
        f"""
        name: spin_caught
        states:
          build:
            type: activity
            activity: tb.echo
            input: {{x: {SPIN!r}}}
            catch: [{{errors: [ExpressionLimit], result: problem, next: caught}}]
            next: done
          caught: {{type: succeed, output: "{{{{ vars.problem }}}}"}}
          done: {{type: succeed}}
        """,
    )
    run = run_to_end(client, wf)
    assert run.status == "completed", run.error
    assert run.output["type"] == "ExpressionLimit"
    assert run.output["message"].startswith("state 'build', input: template ")
    assert "budget of 200 ms" in run.output["message"]


def test_uncaught_expression_limit_fails_the_run(
    client: Client, tmp_path: Path, small_budget: None
) -> None:
    wf = write_workflow(
        tmp_path, f"name: spin\nstates:\n  done: {{type: succeed, output: {SPIN!r}}}"
    )
    run = run_to_end(client, wf)
    assert run.status == "failed"
    assert run.error["type"] == "ExpressionLimit"
    assert run.error["message"].startswith("state 'done', output: template ")


def test_a_slow_template_does_not_hold_up_the_other_runs_of_a_worker(
    client: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The slow decision goes to a thread: a run started after it completes while the slow
    one is still running (on the loop, the slow decision would end before anything else ran)."""
    monkeypatch.setenv("TIDEFLOW_TEMPLATE_BUDGET_MS", "60000")
    slow = write_workflow(
        tmp_path,
        """
        name: slow
        states:
          work:
            type: succeed
            output: "{% for a in range(100000) %}{% for b in range(40) %}{% endfor %}{% endfor %}done"
        """,
        name="slow.yaml",
    )
    quick = write_workflow(
        tmp_path, "name: quick\nstates:\n  done: {type: succeed, output: fine}", name="quick.yaml"
    )
    slow_id = client.start(slow, None, run_id="slow")
    worker = Worker(client.store, poll_interval=0.02)
    seen: dict[str, str] = {}

    def until() -> bool:
        slow_status = client.get(slow_id).status
        if "quick" not in seen:
            if worker.is_driving(slow_id):
                seen["quick"] = client.start(quick, None, run_id="quick")
            elif slow_status != "running":  # decided in one go: nothing else ran meanwhile
                seen["slow_when_quick_ended"] = "ended before the quick run could start"
        elif (
            "slow_when_quick_ended" not in seen and client.get(seen["quick"]).status == "completed"
        ):
            seen["slow_when_quick_ended"] = slow_status
        return "slow_when_quick_ended" in seen and slow_status != "running"

    asyncio.run(worker.run(until=until))
    slow_run = client.get(slow_id)
    assert slow_run.status == "completed" and slow_run.output == "done"
    assert seen["slow_when_quick_ended"] == "running", "the quick run waited for the slow one"


def test_a_slow_template_in_a_childs_vars_does_not_hold_up_the_other_runs(
    client: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Starting a child evaluates its `vars` while the parent's step is committed: a slow one
    goes to a thread too, and a run started meanwhile completes first."""
    monkeypatch.setenv("TIDEFLOW_TEMPLATE_BUDGET_MS", "60000")
    write_workflow(
        tmp_path,
        """
        name: slowkid
        vars:
          big: "{% for a in range(100000) %}{% for b in range(40) %}{% endfor %}{% endfor %}ok"
        states:
          done: {type: succeed, output: "{{ vars.big }}"}
        """,
        name="slowkid.yaml",
    )
    parent = write_workflow(
        tmp_path,
        """
        name: parent
        states:
          kid: {type: child, workflow: slowkid, result: kid, next: done}
          done: {type: succeed, output: "{{ vars.kid }}"}
        """,
        name="parent.yaml",
    )
    quick = write_workflow(
        tmp_path, "name: quick\nstates:\n  done: {type: succeed, output: fine}", name="quick.yaml"
    )
    parent_id = client.start(parent, None, run_id="parent")
    worker = Worker(client.store, poll_interval=0.02)
    seen: dict[str, str] = {}

    def until() -> bool:
        status = client.get(parent_id).status
        child = client.store.get_run("parent.kid")
        if "quick" not in seen:
            if worker.is_driving(parent_id) and child is None:
                seen["quick"] = client.start(quick, None, run_id="quick")
            elif child is not None:  # the child was built on the loop in one go
                seen["child_when_quick_ended"] = "started before the quick run could start"
        elif (
            "child_when_quick_ended" not in seen and client.get(seen["quick"]).status == "completed"
        ):
            seen["child_when_quick_ended"] = "not yet" if child is None else "started"
        return "child_when_quick_ended" in seen and status != "running"

    asyncio.run(worker.run(until=until))
    assert client.get(parent_id).status == "completed"
    assert client.get(parent_id).output == "ok"
    assert seen["child_when_quick_ended"] == "not yet", "the quick run waited for the child"


# ----------------------------------------------------------------------------- two workers
def _spawn_worker(url: str, tmp: Path, index: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    err = open(tmp / f"worker{index}.err", "wb")  # noqa: SIM115 - the child owns it
    proc = subprocess.Popen(
        [sys.executable, "-m", "interpreter", "worker", "--db", url],
        cwd=tmp,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=err,
    )
    err.close()
    return proc


def test_two_workers_spin_fails_within_the_budget_and_a_trivial_run_completes(
    store_url: str, tmp_path: Path
) -> None:
    spin = write_workflow(
        tmp_path, f"name: spin\nstates:\n  done: {{type: succeed, output: {SPIN!r}}}", "spin.yaml"
    )
    trivial = write_workflow(
        tmp_path,
        "name: trivial\nstates:\n  done: {type: succeed, output: '{{ input.n + 1 }}'}",
        "trivial.yaml",
    )
    env = {**os.environ, "TIDEFLOW_TEMPLATE_BUDGET_MS": "1000"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    with Client(store_url) as client:
        spins = [client.start(load_definition(spin), None, run_id=f"spin-{i}") for i in range(2)]
        workers = [_spawn_worker(store_url, tmp_path, i, env) for i in range(2)]
        try:
            # Both spin runs are taken (one worker each, or both by one) before the trivial
            # run exists: without a budget every worker would now be frozen.
            deadline = time.monotonic() + 60
            while any(client.get(r).lease_owner is None for r in spins):
                if all(client.get(r).status != "running" for r in spins):
                    break
                assert time.monotonic() < deadline, "the workers never claimed the spin runs"
                time.sleep(0.02)
            trivial_id = client.start(load_definition(trivial), {"n": 41}, run_id="trivial")
            deadline = time.monotonic() + 60
            ids = [*spins, trivial_id]
            while any(client.get(r).status == "running" for r in ids):
                for proc in workers:
                    assert proc.poll() is None, (tmp_path / "worker0.err").read_text()
                assert time.monotonic() < deadline, {r: client.get(r).status for r in ids}
                time.sleep(0.05)
            assert client.get(trivial_id).status == "completed"
            assert client.get(trivial_id).output == 42
            for run_id in spins:
                run = client.get(run_id)
                assert run.status == "failed"
                assert run.error["type"] == "ExpressionLimit"
                assert run.error["message"].startswith("state 'done', output: template ")
        finally:
            for proc in workers:
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
            for index, proc in enumerate(workers):
                code = proc.wait(timeout=30)
                said = (tmp_path / f"worker{index}.err").read_text()
                assert code == 0, said
                assert "Traceback" not in said
