"""`tideflow test` and its Python API: run the cases of `*.test.yaml` files on the real
worker, engine and SQL store (an in-memory SQLite store), on virtual time
(interpreter/clock.py), with activities replaced by mocks for a case.

    from interpreter.testing import run_cases, run_test_file
    report = run_test_file("samples/tests/order.test.yaml")
    assert report.ok, report.text()
    report = run_cases("samples/greeting.yaml", [{"name": "hi", "input": {"name": "Ada"},
        "mocks": {"greet": {"result": {"message": "Hi"}}}, "expect": {"output": {"message": "Hi"}}}])

docs/testing.md shows a pytest fixture built on these.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dsl.diagnostics import Diagnostic
from dsl.durations import parse_duration
from dsl.testfile import Case, LoadedTests, Mock, MockResult, Send, load_test_file
from interpreter import clock
from interpreter.activities import load_activity_modules, registry
from interpreter.activities.context import ActivityContext
from interpreter.core.statuses import TERMINAL_STATUSES
from interpreter.errors import ApplicationError, TideflowError

Call = dict[str, Any]


@dataclass
class CaseResult:
    file: str
    workflow: str
    name: str
    failures: list[str] = field(default_factory=list)
    status: str = ""
    output: Any = None
    error: Any = None
    states: list[str] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    virtual_seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failures

    def to_json(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "workflow": self.workflow,
            "case": self.name,
            "ok": self.ok,
            "failures": self.failures,
            "status": self.status,
            "path": self.states,
            "virtual_seconds": self.virtual_seconds,
        }


@dataclass
class Report:
    cases: list[CaseResult] = field(default_factory=list)
    invalid: list[Diagnostic] = field(default_factory=list)
    coverage: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.invalid and all(c.ok for c in self.cases)

    def exit_code(self) -> int:
        return 2 if self.invalid else (0 if self.ok else 1)

    def text(self) -> str:
        lines = []
        for c in self.cases:
            lines.append(f"{'PASS' if c.ok else 'FAIL'} {c.file} :: {c.name}")
            if not c.ok:
                lines.extend(f"    {f}" for f in c.failures)
                shown = c.states if len(c.states) <= 40 else ["...", *c.states[-40:]]
                lines.append(f"    path taken: {' -> '.join(shown) or '(none)'}")
        passed = sum(c.ok for c in self.cases)
        if self.invalid:
            lines.append(f"{len(self.invalid)} problem(s) in test files: no case ran")
        else:
            lines.append(f"{passed}/{len(self.cases)} cases passed")
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "cases": [c.to_json() for c in self.cases],
            "invalid": [
                {
                    "file": d.file,
                    "line": d.line,
                    "column": d.position.column,
                    "code": d.code,
                    "message": d.message,
                    "hint": d.hint,
                }
                for d in self.invalid
            ],
            "coverage": self.coverage,
        }


# ------------------------------------------------------------------------ mocks
class _Mocked:
    """The activity functions of one case: each records its calls."""

    def __init__(self, mocks: dict[str, Mock], client_ref: list[Any]) -> None:
        self.mocks = mocks
        self.calls: list[Call] = []
        self.client_ref = client_ref
        self.counts: dict[str, int] = {}

    def function(self, name: str, real: registry.RegisteredActivity | None) -> Any:
        mock = self.mocks.get(name)

        async def run(ctx: ActivityContext, input_: Any) -> Any:
            self.calls.append({"activity": name, "input": input_, "attempt": ctx.attempt})
            n = self.counts.get(name, 0)
            self.counts[name] = n + 1
            if mock is None or mock.real:
                return await _call_real(name, real, ctx, input_)
            if mock.delay is not None:
                await asyncio.sleep(parse_duration(mock.delay))
            if mock.python is not None:
                module, _, attr = mock.python.partition(":")
                fn = getattr(importlib.import_module(module), attr)
                value = fn(input_)
                return await value if inspect.isawaitable(value) else value
            outcome: MockResult
            if mock.results:
                outcome = mock.results[min(n, len(mock.results) - 1)]
            else:
                outcome = MockResult(result=mock.result, error=mock.error)
            if outcome.delay is not None:
                await asyncio.sleep(parse_duration(outcome.delay))
            if mock.callback is not None and ctx.callback_token:
                self._complete_later(ctx.callback_token, mock.callback)
            return _settle(outcome)

        return run

    def _complete_later(self, token: str, outcome: MockResult) -> None:
        loop = asyncio.get_running_loop()
        delay = parse_duration(outcome.delay) if outcome.delay is not None else 0.0

        def send() -> None:
            client = self.client_ref[0]
            if outcome.error is not None:
                client.fail_callback(
                    token, outcome.error.type, outcome.error.message, outcome.error.details
                )
            else:
                client.complete_callback(token, outcome.result)
            self.client_ref[1].notify()

        loop.call_later(max(delay, 0.001), send)


def _settle(outcome: MockResult) -> Any:
    if outcome.error is not None:
        raise ApplicationError(
            outcome.error.message or outcome.error.type,
            type=outcome.error.type,
            details=outcome.error.details,
            non_retryable=outcome.error.non_retryable,
        )
    return outcome.result


async def _call_real(
    name: str, real: registry.RegisteredActivity | None, ctx: ActivityContext, input_: Any
) -> Any:
    if real is None:
        raise ApplicationError(
            f"activity {name!r} has no mock and is not registered",
            type="ActivityNotRegistered",
            non_retryable=True,
        )
    args = (ctx, input_) if real.wants_context else (input_,)
    value = real.function(*args)  # inline: no thread, so virtual time stays deterministic
    return await value if inspect.isawaitable(value) else value


@contextmanager
def _activities(mocked: _Mocked, names: set[str]) -> Iterator[None]:
    saved = dict(registry._REGISTRY)
    try:
        for name in names | set(saved):
            if name == "http" and name not in mocked.mocks:
                continue
            fn = mocked.function(name, saved.get(name))
            registry._REGISTRY[name] = registry.RegisteredActivity(name, fn, True, True)
        yield
    finally:
        registry._REGISTRY.clear()
        registry._REGISTRY.update(saved)


# ------------------------------------------------------------------------ running a case
def run_case(tests: LoadedTests, case: Case) -> CaseResult:
    from interpreter.client import Client, load_definition
    from interpreter.store import open_store
    from interpreter.worker import Worker

    wf = tests.workflow_path()
    result = CaseResult(str(tests.path), wf.stem, case.name)
    defn = load_definition(wf, workflow_dirs=(wf.parent,))
    mocks = {**tests.model.mocks, **case.mocks}
    virtual = clock.VirtualClock()
    client = Client(store=open_store(":memory:"))
    # client, worker, failures, query values taken on entering a state (by id of the check)
    ref: list[Any] = [client, None, result.failures, {}]
    mocked = _Mocked(mocks, ref)
    try:
        with _activities(mocked, set(mocks) | set(defn.activity_names())):
            record = clock.run_virtual(
                lambda: _drive(client, defn, case, ref, Worker, wf.parent), virtual
            )
            with clock.use_virtual(virtual):
                events = list(client.history(record.id, all_segments=True))
                queries = [
                    (q, ref[3].get(id(q), "(the run never entered that state)"))
                    if q.on_state is not None
                    else (q, _query(client, record.id, q.name, q.args))
                    for q in case.expect.queries or []
                ]
        result.status, result.output = record.status, record.output
        result.error = record.error
        result.events = events
        result.states = [e["state"] for e in events if e["type"] == "StateEntered"]
        result.virtual_seconds = virtual.elapsed
        _check(case, result, mocked.calls, queries)
    except TideflowError as exc:
        result.failures.append(f"the case could not run: {exc.message}")
    finally:
        client.close()
    return result


def _query(client: Any, run_id: str, name: str, args: Any) -> Any:
    try:
        return client.query(run_id, name, args)
    except TideflowError as exc:
        return {"error": exc.message}


async def _drive(
    client: Any, defn: Any, case: Case, ref: list[Any], worker_class: Any, wf_dir: Path
) -> Any:
    loop = asyncio.get_running_loop()
    run_id = client.start(defn, case.input, run_id=case.run_id or f"test-{defn.name}")
    worker = worker_class(
        client.store,
        root_id=run_id,
        workflow_dirs=(wf_dir,),
        on_events=None,
        lease_seconds=1e9,
        threads=1,
    )
    worker.timers_only = True
    worker.idle_poll = 1e9
    worker.step_wait = 1e9
    ref[1] = worker
    pending_on_state: list[Send] = []
    timed_out = [False]
    problems: list[str] = ref[2]

    def sender(kind: str, send: Send) -> Callable[[], None]:
        def go() -> None:
            try:
                if kind == "signal":
                    client.signal(run_id, send.name, send.payload)
                else:
                    from interpreter import updates

                    updates.submit(client.store, client.get(run_id), send.name, send.payload, None)
            except TideflowError as exc:
                problems.append(f"{kind} {send.name!r} could not be sent: {exc.message}")
            worker.notify()

        return go

    for kind, sends in (("signal", case.signals), ("update", case.updates)):
        for send in sends:
            if send.on_state is not None:
                pending_on_state.append(send)
                send.__dict__["_kind"] = kind
            else:
                loop.call_later(parse_duration(send.at or 0), sender(kind, send))

    def on_events(record: Any, events: list[Any]) -> None:
        for event in events:
            if event.type == "StateEntered":
                for q in case.expect.queries or []:
                    if q.on_state == event.state and id(q) not in ref[3]:
                        ref[3][id(q)] = _query(client, run_id, q.name, q.args)
                for send in list(pending_on_state):
                    if send.on_state == event.state:
                        pending_on_state.remove(send)
                        loop.call_soon(sender(send.__dict__["_kind"], send))

    worker.on_events = on_events

    def stop() -> None:
        timed_out[0] = True
        worker.stop()
        worker.stop()

    loop.call_later(parse_duration(case.limit), stop)

    def finished() -> bool:
        if timed_out[0] or worker.is_driving(run_id) or worker.has_drivers():
            return timed_out[0]
        current = client.store.get_run(run_id)
        return current is not None and current.status in TERMINAL_STATUSES

    await worker.run(until=finished, grace=0)
    return client.get(run_id)


# ------------------------------------------------------------------------ assertions
def _check(case: Case, r: CaseResult, calls: list[Call], queries: list[Any]) -> None:
    ex = case.expect
    f = r.failures
    if r.status != ex.status:
        why = (
            f"still running after the case's limit ({case.limit} of virtual time)"
            if r.status == "running"
            else f"error: {r.error}"
        )
        f.append(f"status: expected {ex.status}, got {r.status} ({why})")
    if ex.output is not None and r.output != ex.output:
        f.append("output differs (- expected, + actual):\n" + _diff(ex.output, r.output))
    if ex.error_type is not None:
        got = (r.error or {}).get("type")
        if got != ex.error_type:
            f.append(f"error type: expected {ex.error_type}, got {got}")
    if ex.states is not None and r.states != ex.states:
        f.append(f"states:\n      expected {ex.states}\n      actual   {r.states}")
    if ex.states_include is not None and not _subsequence(ex.states_include, r.states):
        f.append(f"states_include: {ex.states_include} is not a subsequence of {r.states}")
    if ex.compensations is not None:
        got = [e["state"] for e in r.events if e["type"] == "CompensationStarted"]
        if got != ex.compensations:
            f.append(f"compensations:\n      expected {ex.compensations}\n      actual   {got}")
    if ex.compensation_held is not None:
        ends = [e for e in r.events if e["type"] == "RunFailed"]
        held = (ends[-1].get("payload") or {}).get("compensation_held") if ends else None
        if (held or []) != ex.compensation_held:
            f.append(
                f"compensation_held:\n      expected {ex.compensation_held}\n      actual   {held}"
            )
    for name, want in (ex.calls or {}).items():
        inputs = [c["input"] for c in calls if c["activity"] == name]
        if isinstance(want, int):
            if len(inputs) != want:
                f.append(f"calls to {name}: expected {want}, got {len(inputs)}")
        elif inputs != want:
            f.append(f"inputs of {name}:\n      expected {want}\n      actual   {inputs}")
    for q, value in queries:
        if value != q.equals:
            f.append(f"query {q.name}: expected {q.equals!r}, got {value!r}")
    if ex.events is not None:
        got_events = [(e["type"], e.get("state")) for e in r.events]
        want_events = [(e.type, e.state) for e in ex.events]
        it = iter(got_events)
        for t, s in want_events:
            if not any(gt == t and (s is None or gs == s) for gt, gs in it):
                f.append(f"event {t}{' at ' + s if s else ''} not found (in order)")
                break


def _diff(expected: Any, actual: Any) -> str:
    import difflib
    import json

    def lines(value: Any) -> list[str]:
        return json.dumps(value, indent=2, sort_keys=True, default=str).splitlines()

    body = difflib.unified_diff(lines(expected), lines(actual), lineterm="", n=2)
    return "\n".join(f"      {line}" for line in list(body)[2:] if not line.startswith("@@"))


def _subsequence(want: list[str], got: list[str]) -> bool:
    it = iter(got)
    return all(any(g == w for g in it) for w in want)


# ------------------------------------------------------------------------ files
def _prepare(tests: LoadedTests) -> list[Diagnostic]:
    """Load the file's activity modules and its workflow: TF307 / TF302 when they fail."""
    from dsl.diagnostics import error_at
    from interpreter.client import load_definition
    from interpreter.errors import ActivityRegistryError, WorkflowInvalid

    file, doc = str(tests.path), tests.doc
    specs = [str(tests.path.parent / a) if a.endswith(".py") else a for a in tests.model.activities]
    try:
        load_activity_modules(specs)
    except ActivityRegistryError as exc:
        hint = exc.hint or "give .py files relative to the test file, or importable modules"
        return [error_at(file, "TF307", exc.message, hint, doc.locate(("activities",)))]
    wf = tests.workflow_path()
    try:
        load_definition(wf, workflow_dirs=(wf.parent,))
    except WorkflowInvalid as exc:
        first = exc.diagnostics[0] if exc.diagnostics else None
        detail = f": {first.file}:{first.line}: {first.message}" if first else ""
        return [
            error_at(
                file,
                "TF302",
                f"the workflow {tests.model.workflow!r} is invalid{detail}",
                f"run `tideflow validate {tests.model.workflow}`",
                doc.locate(("workflow",)),
            )
        ]
    return []


def run_test_file(path: str | Path, only: str | None = None) -> Report:
    return run_paths([Path(path)], only=only)


def run_paths(paths: list[Path], only: str | None = None) -> Report:
    from dsl.testfile import find_test_files

    report = Report()
    loaded_files: list[LoadedTests] = []
    for p in find_test_files(paths):
        tests, diags = load_test_file(p)
        report.invalid.extend(diags)
        if tests is not None:
            report.invalid.extend(_prepare(tests))
            loaded_files.append(tests)
    if report.invalid:
        return report
    for tests in loaded_files:
        for case in tests.model.cases:
            if only is None or only in case.name:
                report.cases.append(run_case(tests, case))
    from interpreter.test_coverage import coverage

    report.coverage = coverage(loaded_files, report.cases)
    return report


def run_cases(
    workflow: str | Path, cases: list[dict[str, Any]], *, mocks: dict[str, Any] | None = None
) -> Report:
    """Run cases given as data (the shape of a test file's `cases`) against `workflow`."""
    from dsl.source import SourceDocument
    from dsl.testfile import TestFile

    path = Path(workflow).resolve()
    model = TestFile.model_validate({"workflow": path.name, "mocks": mocks or {}, "cases": cases})
    tests = LoadedTests(path.parent / f"{path.stem}.test.yaml", model, SourceDocument("", "", {}))
    report = Report(cases=[run_case(tests, case) for case in model.cases])
    from interpreter.test_coverage import coverage

    report.coverage = coverage([tests], report.cases)
    return report
