"""`*.test.yaml` files for `tideflow test`: the pydantic model (its JSON Schema is committed
as schemas/test.schema.json) and loading with located diagnostics (codes TF300-TF319, listed
in docs/diagnostics.md). Loading reuses the workflow loader, so positions are file:line:col."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from dsl.diagnostics import Diagnostic, Position, error_at
from dsl.durations import parse_duration
from dsl.loader import load_file
from dsl.source import SourceDocument

TEST_CODES: dict[str, str] = {
    "TF300": "Test file does not match the test file schema",
    "TF301": "Test file names a workflow that cannot be found",
    "TF302": "Test file's workflow is invalid",
    "TF303": "Mock or expectation names an activity the workflow does not use",
    "TF304": "Signal point or expectation names a state the workflow does not have",
    "TF305": "Bad duration in a test file",
    "TF306": "Duplicate case name",
    "TF307": "Test file's activities cannot be loaded",
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MockError(_Strict):
    type: str = Field(description="the error type the attempt fails with")
    message: str = ""
    details: Any = None
    non_retryable: bool = False


class MockResult(_Strict):
    """One attempt's outcome: `result` or `error`."""

    result: Any = None
    error: MockError | None = None
    delay: str | float | None = Field(None, description="virtual time the attempt takes")


class Mock(_Strict):
    """Replaces one activity for a case. Give one of: `result`, `error`, `results` (one per
    call, the last repeats), `python` (module:function), `real: true`."""

    result: Any = None
    error: MockError | None = None
    results: list[MockResult] | None = None
    python: str | None = Field(None, description="module:function called with the input")
    real: bool = False
    delay: str | float | None = Field(None, description="virtual time each attempt takes")
    callback: MockResult | None = Field(
        None, description="for `completion: callback`: complete (or fail) the token"
    )


class Send(_Strict):
    """A signal or update sent during the case: on entering `on_state`, or at virtual `at`."""

    name: str
    payload: Any = None
    on_state: str | None = None
    at: str | float | None = None


class QueryCheck(_Strict):
    """A query's value: at the end of the case, or once the run has entered `on_state`."""

    name: str
    args: Any = None
    equals: Any = None
    on_state: str | None = None


class EventCheck(_Strict):
    type: str
    state: str | None = None


class Expect(_Strict):
    status: Literal["completed", "failed", "cancelled", "terminated", "timed_out", "running"] = (
        "completed"
    )
    output: Any = None
    error_type: str | None = None
    states: list[str] | None = Field(None, description="states entered, exactly in order")
    states_include: list[str] | None = Field(None, description="states entered, as a subsequence")
    compensations: list[str] | None = Field(None, description="compensations run, in order")
    compensation_held: list[str] | None = Field(
        None,
        description="the states whose compensations the failure held, newest first "
        "(saga on_failure: hold); [] for none",
    )
    calls: dict[str, int | list[Any]] | None = Field(
        None, description="per activity: how many calls, or the list of inputs"
    )
    queries: list[QueryCheck] | None = None
    events: list[EventCheck] | None = Field(None, description="history events, as a subsequence")


class Case(_Strict):
    name: str
    input: Any = None
    mocks: dict[str, Mock] = Field(default_factory=dict)
    signals: list[Send] = Field(default_factory=list)
    updates: list[Send] = Field(default_factory=list)
    run_id: str | None = Field(None, description="the run's id (default test-<workflow>)")
    limit: str = Field("3650d", description="virtual time after which the case stops")
    expect: Expect = Field(default_factory=Expect)


class TestFile(_Strict):
    """A `*.test.yaml` file: the workflow under test and its cases."""

    workflow: str = Field(description="the workflow file, relative to this file")
    activities: list[str] = Field(default_factory=list, description=".py files or modules")
    mocks: dict[str, Mock] = Field(default_factory=dict, description="mocks for every case")
    cases: list[Case] = Field(min_length=1)


class LoadedTests:
    def __init__(self, path: Path, model: TestFile, doc: SourceDocument) -> None:
        self.path = path
        self.model = model
        self.doc = doc

    def workflow_path(self) -> Path:
        return (self.path.parent / self.model.workflow).resolve()


def load_test_file(path: Path) -> tuple[LoadedTests | None, list[Diagnostic]]:
    name = str(path)
    loaded = load_file(path)
    if loaded.document is None:
        return None, loaded.diagnostics
    doc = loaded.document
    try:
        model = TestFile.model_validate(doc.data)
    except ValidationError as exc:
        diags = []
        for err in exc.errors()[:20]:
            where = tuple(p for p in err["loc"] if isinstance(p, (str, int)))
            pos = _locate(doc, where)
            diags.append(
                error_at(
                    name,
                    "TF300",
                    f"{'/'.join(map(str, where)) or 'the file'}: {err['msg']}",
                    "see schemas/test.schema.json and docs/testing.md",
                    pos,
                )
            )
        return None, diags
    diags = []
    seen: set[str] = set()
    for i, case in enumerate(model.cases):
        if case.name in seen:
            diags.append(
                error_at(
                    name,
                    "TF306",
                    f"case {case.name!r} appears twice",
                    "give each case its own name",
                    _locate(doc, ("cases", i, "name")),
                )
            )
        seen.add(case.name)
        for key, send_list in (("signals", case.signals), ("updates", case.updates)):
            for j, send in enumerate(send_list):
                if send.at is not None and _bad_duration(send.at):
                    diags.append(
                        error_at(
                            name,
                            "TF305",
                            f"{send.at!r} is not a duration",
                            "write e.g. 10s, 5m, 2h or 30d",
                            _locate(doc, ("cases", i, key, j, "at")),
                        )
                    )
        if _bad_duration(case.limit):
            diags.append(
                error_at(
                    name,
                    "TF305",
                    f"{case.limit!r} is not a duration",
                    "write e.g. 10s, 5m, 2h or 30d",
                    _locate(doc, ("cases", i, "limit")),
                )
            )
    loaded_tests = LoadedTests(path, model, doc)
    if not loaded_tests.workflow_path().is_file():
        diags.append(
            error_at(
                name,
                "TF301",
                f"workflow {model.workflow!r} not found",
                "give the workflow's path relative to the test file",
                _locate(doc, ("workflow",)),
            )
        )
    else:
        diags.extend(_check_names(loaded_tests))
    return (None if diags else loaded_tests), diags


def _bad_duration(value: object) -> bool:
    try:
        parse_duration(value)
    except (ValueError, TypeError):
        return True
    return False


def _locate(doc: SourceDocument, path: tuple[str | int, ...]) -> Position:
    while path:
        try:
            return doc.locate(path)
        except (KeyError, IndexError, TypeError):
            path = path[:-1]
    return Position(1, 1)


def find_test_files(paths: list[Path]) -> list[Path]:
    found: list[Path] = []
    for p in paths:
        if p.is_dir():
            found.extend(sorted(p.rglob("*.test.yaml")))
        else:
            found.append(p)
    return found


def schema() -> dict[str, Any]:
    """The JSON Schema of a test file (committed as schemas/test.schema.json)."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "tideflow test file (*.test.yaml)",
        **TestFile.model_json_schema(),
    }


def main() -> int:
    """`python -m dsl.testfile`: rewrite schemas/test.schema.json."""
    import json

    out = Path(__file__).resolve().parent.parent / "schemas" / "test.schema.json"
    out.write_text(json.dumps(schema(), indent=2) + "\n", encoding="utf-8")
    print(f"wrote {out.name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


def _check_names(tests: LoadedTests) -> list[Diagnostic]:
    """TF303/TF304: mocks and expectations name activities and states the workflow has."""
    wf = tests.workflow_path()
    data = _data(wf)
    states = all_states(data)
    activities = _activities(data)
    for child in _children(data):  # a child's activities run under the case's mocks too
        child_data = _data(wf.parent / f"{child}.yaml")
        activities |= _activities(child_data)
        states |= all_states(child_data)
    activities.add("http")
    out: list[Diagnostic] = []
    file = str(tests.path)
    doc = tests.doc

    def activity(where: tuple[str | int, ...], name: str) -> None:
        if name not in activities:
            out.append(
                error_at(
                    file,
                    "TF303",
                    f"{name!r} is not an activity of {wf.name}",
                    f"its activities: {', '.join(sorted(activities))}",
                    doc.locate(where, key=True),
                )
            )

    def state(where: tuple[str | int, ...], name: str) -> None:
        if name not in states:
            out.append(
                error_at(
                    file,
                    "TF304",
                    f"{name!r} is not a state of {wf.name}",
                    f"its states: {', '.join(sorted(states))}",
                    doc.locate(where),
                )
            )

    for mock in tests.model.mocks:
        activity(("mocks", mock), mock)
    for i, case in enumerate(tests.model.cases):
        for mock in case.mocks:
            activity(("cases", i, "mocks", mock), mock)
        for key, sends in (("signals", case.signals), ("updates", case.updates)):
            for j, send in enumerate(sends):
                if send.on_state is not None:
                    state(("cases", i, key, j, "on_state"), send.on_state)
        for j, q in enumerate(case.expect.queries or []):
            if q.on_state is not None:
                state(("cases", i, "expect", "queries", j, "on_state"), q.on_state)
        ex = case.expect
        for key, names in (
            ("states", ex.states),
            ("states_include", ex.states_include),
            ("compensations", ex.compensations),
            ("compensation_held", ex.compensation_held),
        ):
            for j, n in enumerate(names or []):
                state(("cases", i, "expect", key, j), n)
        for n in ex.calls or {}:
            activity(("cases", i, "expect", "calls", n), n)
    return out


def _data(path: Path) -> Any:
    loaded = load_file(path)
    return loaded.document.data if loaded.document is not None else {}


def _strings_under(node: Any, key: str) -> set[str]:
    found: set[str] = set()
    if isinstance(node, dict):
        for k, v in node.items():
            if k == key and isinstance(v, str):
                found.add(v)
            else:
                found |= _strings_under(v, key)
    elif isinstance(node, list):
        for item in node:
            found |= _strings_under(item, key)
    return found


def _states_of(data: Any) -> Any:
    """The document without its schemas: states, exit handlers, compensations."""
    if not isinstance(data, dict):
        return {}
    return {k: v for k, v in data.items() if not k.endswith("schema") and k != "signals"}


def _activities(data: Any) -> set[str]:
    return _strings_under(_states_of(data), "activity")


def _children(data: Any) -> set[str]:
    return {c for c in _strings_under(_states_of(data), "workflow") if "{" not in c}


def all_states(data: Any) -> set[str]:
    """Every state name in a workflow document, nested ones (parallel, map) included."""
    found: set[str] = set()

    def walk(node: Any, under_states: bool) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if under_states and isinstance(value, dict):
                    found.add(str(key))
                walk(value, key == "states" and isinstance(value, dict))
        elif isinstance(node, list):
            for item in node:
                walk(item, False)

    walk(_states_of(data), False)
    return found
