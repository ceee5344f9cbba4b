"""The Python API for driving runs (the CLI is a thin layer over it).

from interpreter import clock
from interpreter import Client

client = Client()                         # the default SQLite store, or Client("postgresql://...")
run_id = client.start("samples/approval.yaml", {"order_id": "A1"})
client.signal(run_id, "approve", {"approved": True, "by": "ana"})
print(client.query(run_id, "status"))
run = client.result(run_id, timeout=30)   # waits for a worker (or call client.execute)
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from interpreter import clock, jsondata
from interpreter.core.records import MAX_RUN_ID_LENGTH, run_id_problem
from interpreter.core.statuses import TERMINAL_STATUSES
from interpreter.errors import (
    InputInvalid,
    ResultTimeout,
    RunIdConflict,
    RunNotFound,
    TideflowError,
    WorkflowInvalid,
)
from interpreter.run_status import describe, update_names
from interpreter.store import RunRecord, Segment, Store, open_store

# The definition (the pydantic workflow model), the engine, the worker (asyncio, the executor)
# and expressions (Jinja2) are imported where they are used: `tideflow status`, `list` and
# `history` only read the store, and must start without them.
if TYPE_CHECKING:
    from interpreter.core.definition import Definition
    from interpreter.handles import RunHandle
    from interpreter.worker import EventSink


# Definitions already validated in this process, by (file, its bytes' digest, workflow dirs):
# `Client.start` in a loop re-reads the file (cheap) but does not parse, validate and lint it
# again unless its bytes changed. Bounded: a process that starts many files keeps the newest.
_LOADED: OrderedDict[tuple[str, str, tuple[str, ...]], Definition] = OrderedDict()
_LOADED_MAX = 64
FORKS_SHOWN = 20  # forks `status` names; `list --forked-from RUN` pages through all
_LOADED_LOCK = threading.Lock()


def load_definition(path: str | Path, workflow_dirs: Sequence[Path] = ()) -> Definition:
    """Validate a workflow file and return its pinned definition; WorkflowInvalid on errors.
    `workflow_dirs`: where child workflows named by `workflow:` are looked up (`--workflows`).
    A file already loaded in this process with the same bytes is not validated again (a child
    file's own changes are checked when the child starts)."""
    import hashlib

    from dsl import validate_file
    from interpreter.core.definition import Definition

    resolved = str(Path(path).resolve())
    try:
        digest = hashlib.sha256(Path(resolved).read_bytes()).hexdigest()
    except OSError:
        digest = ""  # validate_file reports why the file cannot be read
    key = (resolved, digest, tuple(str(Path(d).resolve()) for d in workflow_dirs))
    with _LOADED_LOCK:
        cached = _LOADED.get(key) if digest else None
        if cached is not None:
            _LOADED.move_to_end(key)
            return cached
    result = validate_file(path, workflow_dirs=workflow_dirs)
    if not result.ok or result.document is None:
        raise WorkflowInvalid(f"{path} has errors", result.diagnostics)
    defn = Definition.from_data(result.document.data, resolved)
    if digest and hashlib.sha256(result.document.text.encode("utf-8")).hexdigest() == digest:
        with _LOADED_LOCK:  # only when what was validated is exactly what was hashed
            _LOADED[key] = defn
            while len(_LOADED) > _LOADED_MAX:
                _LOADED.popitem(last=False)
    return defn


def check_against_schema(schema: dict[str, Any] | None, value: Any, what: str) -> None:
    """Raise InputInvalid naming the JSON pointer and the reason of the best error."""
    if not schema:
        return
    # Imported here: jsonschema costs ~30 ms of start-up to every CLI command otherwise.
    from jsonschema.exceptions import best_match

    from dsl.input_schema import validator

    err = best_match(validator(schema).iter_errors(value))
    if err is not None:
        pointer = "/" + "/".join(str(p) for p in err.absolute_path)
        raise InputInvalid(
            f"{what} is invalid at {pointer}: {err.message}",
            hint=f"the schema requires: {err.validator} {err.validator_value!r}"[:300],
        )


def prepare_input(schema: dict[str, Any] | None, value: Any, what: str) -> Any:
    """`value` with the schema's defaults filled in, checked against it (formats included);
    InputInvalid names the path of the first problem."""
    if not schema:
        return value
    from dsl.input_schema import with_defaults

    filled = with_defaults(schema, value)
    check_against_schema(schema, filled, what)
    if filled is not value:
        check_json_data(filled, what + " with its defaults")
    return filled


def check_json_data(value: Any, what: str) -> None:
    """Raise InputInvalid unless `value` is JSON data a run can keep (interpreter.jsondata)."""
    try:
        jsondata.check(value)
    except jsondata.NotJsonData as exc:
        raise InputInvalid(
            f"{what} cannot be kept in a run: {exc.reason}",
            hint="give JSON data: no NaN or Infinity, integers of at most 4,300 digits, "
            "valid Unicode, at most 2 MiB",
        ) from None


def _generated_run_id(workflow: str) -> str:
    """`<workflow>-<suffix>`, the workflow name cut short where the id would pass the length
    that `tideflow status ID` and the other commands accept."""
    suffix = _run_id_suffix()
    return f"{workflow[: MAX_RUN_ID_LENGTH - len(suffix) - 1]}-{suffix}"


def _run_id_suffix() -> str:
    """The generated part of a run id: the time in milliseconds (11 hex digits), then 48
    random bits (12 hex digits), so two ids can only meet within one millisecond.

    Ids made later sort after earlier ones, so a new run's rows go to the end of each index
    keyed by its id (the runs' key, run inputs, and above all events by (run_id, seq)) instead
    of to a random page: with 10,000 runs in a store, a batch of steps wrote twice the pages
    and W2 ran 20% slower with random ids (docs/benchmarks.md)."""
    return f"{time.time_ns() // 1_000_000:011x}{os.urandom(6).hex()}"


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _check_same_run(
    existing: RunRecord, defn: Definition, input: Any, store: Store | None = None
) -> None:
    """Starting an existing id is idempotent only for the same workflow, definition and input
    (the input the run started with, before any continue-as-new)."""
    started_with = existing.input
    if store is not None and existing.state.get("run", {}).get("segment", 1) > 1:
        from interpreter.history import first_input

        started_with = first_input(store, existing.id)
    if existing.workflow != defn.name:
        differs = f", not {defn.name!r}"
    elif existing.def_hash != defn.hash:
        differs = " with a different definition"
    elif _canonical(started_with) != _canonical(input):
        differs = " with a different input"
    else:
        return
    raise RunIdConflict(
        f"run {existing.id!r} already exists for workflow {existing.workflow!r}{differs}",
        hint="give another run id (or none: a fresh one is generated); starting an existing id "
        "returns that run only for the same workflow, definition and input",
    )


class Client:
    def __init__(
        self, db: str | None = None, *, store: Store | None = None, create: bool = True
    ) -> None:
        """`db`: see interpreter.store.open_store. `create=False`: a missing SQLite file is a
        StoreError instead of a new, empty store."""
        self.store = store if store is not None else open_store(db, create=create)

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----------------------------------------------------------------- runs
    def start(
        self, workflow: str | Path | Definition, input: Any = None, *, run_id: str | None = None
    ) -> str:
        """Create a run and return its id. Starting an id that exists with the same workflow,
        definition and input returns that run's id; with others it raises RunIdConflict."""
        return self.start_run(workflow, input, run_id=run_id)[0].id

    def start_handle(
        self, workflow: str | Path | Definition, input: Any = None, *, run_id: str | None = None
    ) -> RunHandle:
        """Start (as `start`) and return the run's handle (interpreter/handles.py says why
        `start` keeps returning the id)."""
        from interpreter.handles import RunHandle

        return RunHandle(self, self.start(workflow, input, run_id=run_id))

    def get_handle(self, run_id: str) -> RunHandle:
        """The handle of an existing run (RunNotFound otherwise)."""
        from interpreter.handles import RunHandle

        self.get(run_id)
        return RunHandle(self, run_id)

    def start_run(
        self, workflow: str | Path | Definition, input: Any = None, *, run_id: str | None = None
    ) -> tuple[RunRecord, bool]:
        from interpreter.core.definition import Definition

        defn = workflow if isinstance(workflow, Definition) else load_definition(workflow)
        if run_id is not None:
            problem = run_id_problem(run_id)
            if problem:
                raise InputInvalid(problem, hint="a run id is 1 to 200 characters of text")
        check_json_data(input, "the run input")
        input = prepare_input(defn.workflow.input_schema, input, "the input")
        if run_id is not None:
            existing = self.store.get_run(run_id)
            if existing is not None:
                _check_same_run(existing, defn, input, self.store)
                return existing, False
        run_id = run_id or _generated_run_id(defn.name)
        from interpreter.new_runs import started_run  # the engine: not for every command

        record, created = self.store.create_run(started_run(defn, run_id, input))
        if not created:  # another process created it in between
            _check_same_run(record, defn, input, self.store)
        return record, created

    def execute(
        self,
        run_id: str,
        *,
        workflow_dirs: tuple[Path, ...] = (),
        on_events: EventSink | None = None,
        grace: float = 10.0,
    ) -> RunRecord:
        """Drive the run (and its children) in this process until it ends. On Ctrl-C (in the
        main thread) activities in flight get `grace` seconds to finish, a second Ctrl-C
        abandons them at once, and KeyboardInterrupt is raised once the run is handed back."""
        from interpreter.local_drive import LocalRun, drive_until_interrupted, run_here

        record = self.get(run_id)
        if record.status in TERMINAL_STATUSES:
            return record
        local = LocalRun(self.store, record, workflow_dirs=workflow_dirs, on_events=on_events)
        if run_here(lambda: drive_until_interrupted(local.worker, local.finished, grace)):
            raise KeyboardInterrupt
        return local.ended if local.ended is not None else self.get(run_id)

    def get(self, run_id: str) -> RunRecord:
        record = self.store.get_run(run_id)
        if record is None:
            raise RunNotFound(
                f"no run with id {run_id!r}", hint="`tideflow list` shows the runs in this store"
            )
        return record

    def definition_of(self, record: RunRecord) -> Definition:
        from interpreter.core.definition import Definition

        source, file = self.store.load_definition(record.def_hash)
        return Definition.from_source(source, file)

    def result(self, run_id: str, timeout: float | None = None, poll: float = 0.05) -> RunRecord:
        """Wait until the run ends (some worker must be driving it)."""
        deadline = None if timeout is None else clock.monotonic() + timeout
        while True:
            record = self.get(run_id)
            if record.status in TERMINAL_STATUSES:
                return record
            if deadline is not None and clock.monotonic() >= deadline:
                raise ResultTimeout(f"run {run_id!r} is still {record.status} after {timeout:g}s")
            time.sleep(poll)

    # ----------------------------------------------------------------- interaction
    def signal(self, run_id: str, name: str, payload: Any = None) -> int:
        record = self.get(run_id)
        declared = self.definition_of(record).workflow.signals or {}
        if name not in declared:
            names = ", ".join(sorted(declared)) or "none"
            raise TideflowError(
                f"workflow {record.workflow!r} declares no signal {name!r}",
                hint=f"declared signals: {names}",
            )
        check_json_data(payload, f"the payload of signal {name!r}")
        check_against_schema(declared[name].schema_, payload, f"the payload of signal {name!r}")
        return self.store.add_signal(run_id, name, payload, clock.wall())

    def update(
        self,
        run_id: str,
        name: str,
        data: Any = None,
        *,
        update_id: str | None = None,
        timeout: float | None = None,
    ) -> Any:
        """Send update `name` and wait until the run applied it; return its value. Raises
        InputInvalid (nothing stored) for an undeclared update or a payload that fails its
        schema, UpdateRejected when the run rejects it, RunFinished when the run ends before
        applying it, UpdateTimeout after `timeout` seconds. The same `update_id` again returns
        the same outcome; the update is never applied twice."""
        from interpreter import updates

        record = self.get(run_id)
        updates.check_update(self.definition_of(record), record, name, data)
        stored = updates.submit(self.store, record, name, data, update_id)
        return updates.wait_for(self.store, stored, timeout)

    def query(self, run_id: str, name: str, args: Any = None) -> Any:
        from interpreter.core.clock import clock_names
        from interpreter.expressions import ExpressionError, evaluate

        record = self.get(run_id)
        queries = self.definition_of(record).workflow.queries or {}
        if name not in queries:
            raise TideflowError(
                f"workflow {record.workflow!r} declares no query {name!r}",
                hint=f"declared queries: {', '.join(sorted(queries)) or 'none'}",
            )
        check_json_data(args, f"the args of query {name!r}")
        state = record.state
        root = state["frames"].get(state.get("root") or "", {"vars": {}, "locals": {}})
        context = {
            "input": record.input,  # the state's copy is left out once a worker wrote it
            "vars": root["vars"],
            "run": {**state["run"], "status": record.status},
            "args": args,  # the caller's (`tideflow query ... --data`)
            **clock_names(root, state["run"]),  # the root's clock: no wall clock here either
        }
        try:
            # evaluate() refuses values JSON cannot show (NaN, huge integers, ...) as well.
            return evaluate(queries[name], context, where=f"query {name!r}")
        except ExpressionError as exc:
            raise TideflowError(
                exc.message, hint="change the query's template in the workflow"
            ) from None

    # ------------------------------------------------------- callbacks (completion: callback)
    # Each takes the token exactly as the activity got it (ctx.callback_token) and returns
    # {run_id, state, attempt} of the attempt it addressed: what a web handler answers with.
    # A malformed token is InputInvalid; an unknown, used or late one CallbackRefused
    # (interpreter.errors); either way nothing changed.
    def complete_callback(self, token: str, result: Any = None) -> dict[str, Any]:
        """Complete the attempt of `token` with `result` (the state's result)."""
        check_json_data(result, "the callback result")
        return self._send_callback(token, {"kind": "complete", "result": result})

    def fail_callback(
        self, token: str, error_type: str, message: str = "", details: Any = None
    ) -> dict[str, Any]:
        """Fail the attempt of `token` with an error of type `error_type`; the state's retry
        policy and catchers handle it as any activity error (a retry gets a new token)."""
        if not isinstance(error_type, str) or not error_type.strip():
            raise InputInvalid(
                "the callback error needs a type", hint="give --error TYPE, e.g. Rejected"
            )
        check_json_data(details, "the callback error details")
        error = {"type": error_type, "message": message, "details": details}
        return self._send_callback(token, {"kind": "fail", "error": error})

    def heartbeat_callback(self, token: str, details: Any = None) -> dict[str, Any]:
        """Tell the waiting attempt of `token` that its outside party is alive (its heartbeat
        timeout starts again); `details` reach the next attempt as ctx.heartbeat_details."""
        check_json_data(details, "the heartbeat details")
        return self._send_callback(token, {"kind": "heartbeat", "details": details})

    def _send_callback(self, token: str, body: dict[str, Any]) -> dict[str, Any]:
        from interpreter.callbacks import hash_token

        target = self.store.send_callback(hash_token(token), body, clock.wall())
        return {"run_id": target.run_id, "state": target.state, "attempt": target.attempt}

    def cancel(self, run_id: str) -> None:
        self.get(run_id)
        self.store.request_cancel(run_id, clock.wall())

    def retry(self, run_id: str, *, definition: str | Path | Definition | None = None) -> RunRecord:
        """Continue a failed, timed-out or cancelled run from the step that ended it, keeping
        the results of completed activities (interpreter/redrive.py). `definition` moves the
        run to an edited definition, only if replay finds its history compatible."""
        from interpreter.core.definition import Definition
        from interpreter.redrive import retry_run

        defn = None
        if definition is not None:
            defn = definition if isinstance(definition, Definition) else load_definition(definition)
        return retry_run(self.store, run_id, defn, time.time())

    def compensate(self, run_id: str) -> RunRecord:
        """Give up on a run that failed with its compensations held (`saga: {on_failure:
        hold}`): it reopens and runs them newest first, then ends failed again with its
        original error (interpreter/release.py). CompensateRefused when it holds none."""
        from interpreter.release import compensate_run

        return compensate_run(self.store, run_id, time.time())

    def fork(self, run_id: str, from_state: str, *, new_id: str | None = None) -> RunRecord:
        """A new run that reuses `run_id`'s recorded results up to `from_state` and executes
        from there on; its status names the original (`forked_from`)."""
        from interpreter.redrive import fork_run

        record = self.get(run_id)
        if new_id is not None:
            problem = run_id_problem(new_id)
            if problem:
                raise InputInvalid(problem, hint="a run id is 1 to 200 characters of text")
        new_id = new_id or _generated_run_id(record.workflow)
        return fork_run(self.store, run_id, from_state, new_id, time.time())

    def terminate(self, run_id: str, reason: str = "terminated by user") -> RunRecord:
        self.get(run_id)
        return self.store.terminate(run_id, reason, clock.wall())

    def pause(self, run_id: str) -> bool:
        """Pause a running run: no worker starts an activity or fires a timer of it until
        `unpause`; attempts in flight finish and are recorded. False: it was paused already."""
        self.get(run_id)
        return self.store.set_paused(run_id, True, clock.wall())

    def unpause(self, run_id: str) -> bool:
        """Let a paused run go on; False: it was not paused."""
        self.get(run_id)
        return self.store.set_paused(run_id, False, clock.wall())

    # ----------------------------------------------------------------- inspection
    def status(self, run_id: str) -> dict[str, Any]:
        from interpreter.history import history_info

        record = self.get(run_id)
        source, _file = self.store.load_definition(record.def_hash)
        segments = self.store.list_segments(run_id)
        info = describe(
            record,
            children=[c.id for c in self.store.list_runs(parent_id=run_id)],
            updates=update_names(source),
        )
        info["history"] = history_info(record, source, len(segments))
        info["forks"], info["fork_count"] = self.forks(run_id)
        info["retried"] = sum(1 for s in segments if s.retried)
        info["paused"] = record.status == "running" and self.store.is_paused(run_id)
        info["worker"] = record.lease_owner if record.status == "running" else None
        return info

    def history(
        self, run_id: str, *, segment: int | None = None, all_segments: bool = False
    ) -> Iterator[dict[str, Any]]:
        """The run's events: by default those of its current segment; `segment=N` those of
        segment N; `all_segments` the whole chain, each event with its `segment` number."""
        from interpreter.history import segment_events

        self.get(run_id)
        return segment_events(self.store, run_id, segment=segment, all_segments=all_segments)

    def forks(self, run_id: str, *, limit: int = FORKS_SHOWN) -> tuple[list[str], int]:
        """The ids of the runs forked from `run_id`, newest first (at most `limit`), and how
        many there are."""
        from interpreter.store import RunFilter

        where = RunFilter(forked_from=run_id)
        found = [run.id for run in self.store.find_runs(where, limit=limit)]
        return found, len(found) if len(found) < limit else self.store.count_runs(where)

    def segments(self, run_id: str) -> list[Segment]:
        """The run's history segments, oldest first (one unless it continued as new)."""
        self.get(run_id)
        return self.store.list_segments(run_id)

    def list_runs(
        self, *, status: str | None = None, workflow: str | None = None
    ) -> list[RunRecord]:
        return self.store.list_runs(status=status, workflow=workflow)
