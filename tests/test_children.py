"""Child workflows: run ids (derived or from the `id` template), parent/child links in `list`
and `status`, the child's output in the parent, failures as a catchable ChildFailed carrying the
child's error, cancellation reaching running children (whose compensations run), compensation
stacks that stay with their run, resolution (by name, `--workflows`, relative path, declared
name), pinned child definitions, and the maximum nesting depth.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import concurrency_activities as cc
import pytest
from conftest import run_cli

from interpreter import Client
from interpreter.children import MAX_CHILD_DEPTH

WF = Path(__file__).resolve().parent / "workflows_concurrency"
CHILDREN = WF / "children"
CC_ACTIVITIES = str(Path(cc.__file__).resolve())


@pytest.fixture
def cc_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "cc.log"
    monkeypatch.setenv(cc.LOG_ENV, str(path))
    return path


def undo_tags(log: Path) -> list[str]:
    return [
        e["tag"] for e in cc.read_log(log) if e["activity"] == "cc.undo" and e["event"] == "end"
    ]


# --------------------------------------------------------------------------- ids, links, output


def test_child_output_id_and_links(client: Client, store_url: str, cc_log: Path) -> None:
    run_id = client.start(CHILDREN / "parent.yaml", {"value": 21}, run_id="p-1")
    final = client.execute(run_id)
    assert final.status == "completed", final.error
    assert final.output == {"doubled": 42, "version": 1}

    child_id = "p-1.call"  # derived: <parent>.<state>
    child = client.get(child_id)
    assert (child.workflow, child.status, child.parent_id) == ("kid", "completed", "p-1")
    assert child.output == {"doubled": 42, "version": 1}
    assert client.status(run_id)["children"] == [child_id]
    assert client.status(child_id)["parent_id"] == run_id
    started = cc.events(client, run_id, "ChildStarted")
    assert [e["payload"]["child"] for e in started] == [child_id]
    assert [e["payload"]["child"] for e in cc.events(client, run_id, "ChildCompleted")] == [
        child_id
    ]

    proc = run_cli("list", "--db", store_url)
    assert proc.returncode == 0, proc.stderr
    rows = [line.split() for line in proc.stdout.splitlines()[1:]]  # newest first
    assert [child_id, "kid", "completed"] == rows[0][:3] and rows[0][-1] == run_id
    proc = run_cli("list", "--json", "--db", store_url)
    listed = {r["run_id"]: r for r in json.loads(proc.stdout)}
    assert listed[child_id]["parent_id"] == run_id and listed[run_id]["parent_id"] is None
    proc = run_cli("status", run_id, "--db", store_url)
    assert f"child      {child_id}" in proc.stdout
    proc = run_cli("status", child_id, "--db", store_url)
    assert f"parent     {run_id}" in proc.stdout


def test_children_started_from_a_map_get_distinct_ids(client: Client) -> None:
    final = client.execute(
        client.start(CHILDREN / "parent_in_map.yaml", {"values": [1, 2, 3, 4, 5]})
    )
    assert final.status == "completed", final.error
    assert final.output == [2, 4, 6, 8, 10]
    children = client.status(final.id)["children"]
    assert len(children) == len(set(children)) == 5
    assert all(c.startswith(f"{final.id}.call-") for c in children)
    inputs = sorted(client.get(c).input["value"] for c in children)
    assert inputs == [1, 2, 3, 4, 5]


def test_a_child_file_is_validated_once_for_many_children(
    client: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Five children of one file: the file is validated (loaded, linted) when the first
    starts, not five times; an edit to it is validated again (test_child_definition_is_
    pinned_...). The parent's own lint checks the child file too (TF259)."""
    import dsl.validate

    shutil.copy(CHILDREN / "parent_in_map.yaml", tmp_path / "parent_in_map.yaml")
    shutil.copy(CHILDREN / "kid.yaml", tmp_path / "kid.yaml")
    validated: list[str] = []
    real = dsl.validate.validate_file

    def counting(path: Any, **kwargs: Any) -> Any:
        validated.append(Path(path).name)
        return real(path, **kwargs)

    monkeypatch.setattr(dsl.validate, "validate_file", counting)
    final = client.execute(
        client.start(tmp_path / "parent_in_map.yaml", {"values": [1, 2, 3, 4, 5]})
    )
    assert final.status == "completed", final.error
    assert final.output == [2, 4, 6, 8, 10]
    assert validated.count("kid.yaml") == 2, validated  # the parent's lint + the first start


# --------------------------------------------------------------------------- failures


def test_child_failure_is_a_catchable_child_failed(client: Client, cc_log: Path) -> None:
    final = client.execute(
        client.start(CHILDREN / "parent.yaml", {"value": 5, "fail": True}, run_id="p-2")
    )
    assert final.status == "completed", final.error
    assert final.output == {
        "caught": "ChildFailed",
        "child": "p-2.call",
        "child_error": {"type": "KidBroke", "message": "kid 5 broke", "details": {"value": 5}},
    }
    child = client.get("p-2.call")
    assert child.status == "failed" and child.error["type"] == "KidBroke"
    # The child's own compensation ran in the child; the parent's `call` never completed, so
    # the parent's compensation for it is not recorded.
    assert undo_tags(cc_log) == ["kid-undo-5"]
    assert [e["state"] for e in cc.events(client, "p-2.call", "CompensationCompleted")] == ["step"]
    assert cc.events(client, "p-2", "CompensationStarted") == []


def test_uncaught_child_failure_fails_the_parent(client: Client) -> None:
    final = client.execute(
        client.start(CHILDREN / "parent_uncaught.yaml", {"value": 3}, run_id="p-3")
    )
    assert final.status == "failed"
    assert final.error["type"] == "ChildFailed"
    assert final.error["details"]["child"] == "p-3-the-kid"  # the `id` template
    assert final.error["details"]["status"] == "failed"
    assert final.error["details"]["error"]["type"] == "KidBroke"
    assert client.get("p-3-the-kid").parent_id == "p-3"


def test_a_completed_childs_compensations_stay_with_the_child(client: Client, cc_log: Path) -> None:
    """The parent fails after the child completed: the parent's stack runs (its compensation
    for the child state), the child's own recorded compensation does not."""
    final = client.execute(
        client.start(CHILDREN / "parent.yaml", {"value": 8, "fail_after": True}, run_id="p-4")
    )
    assert final.status == "failed"
    assert final.error["type"] == "LateFailure"
    assert undo_tags(cc_log) == ["parent-undo-child"]
    assert client.get("p-4.call").status == "completed"
    assert cc.events(client, "p-4.call", "CompensationStarted") == []


def test_cancelling_the_parent_cancels_running_children(
    client: Client, store_url: str, cc_log: Path
) -> None:
    run_id = client.start(CHILDREN / "parent.yaml", {"value": 9, "hold": True}, run_id="p-5")
    with cc.BackgroundWorker(store_url):
        cc.wait_until(
            lambda: (
                client.store.get_run("p-5.call") is not None
                and cc.current_states(client, "p-5.call") == {"hold"}
            ),
            what="the child waits",
        )
        client.cancel(run_id)
        parent = client.result(run_id, timeout=15)
        child = client.result("p-5.call", timeout=15)
    assert parent.status == "cancelled"
    assert child.status == "cancelled"
    assert child.error["type"] == "Cancelled"
    # The child's compensation ran in the child; the parent recorded none for `call`.
    assert undo_tags(cc_log) == ["kid-undo-9"]
    assert [e["state"] for e in cc.events(client, "p-5.call", "CompensationCompleted")] == ["step"]
    assert cc.events(client, "p-5", "CompensationStarted") == []


# --------------------------------------------------------------------------- resolution, pinning


def test_resolution_by_path_workflows_dir_and_declared_name(store_url: str, tmp_path: Path) -> None:
    args = [
        "run",
        str(CHILDREN / "parent_paths.yaml"),
        "--activities",
        CC_ACTIVITIES,
        "--db",
        store_url,
        "--json",
    ]
    proc = run_cli(*args, "--workflows", str(WF / "elsewhere"))
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["output"] == [
        {"nested": "path"},
        {"faraway": "dir"},
        {"renamed": "declared"},
    ]
    # Without the directory the parent is refused before it starts, with the reason.
    proc = run_cli(*args)
    assert proc.returncode == 2
    assert "faraway" in proc.stderr and "cannot be found" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_child_file_missing_at_start_time_is_a_child_failure(
    client: Client, tmp_path: Path
) -> None:
    shutil.copy(CHILDREN / "parent.yaml", tmp_path / "parent.yaml")
    shutil.copy(CHILDREN / "kid.yaml", tmp_path / "kid.yaml")
    run_id = client.start(tmp_path / "parent.yaml", {"value": 1})
    (tmp_path / "kid.yaml").unlink()
    final = client.execute(run_id)
    assert final.status == "completed", final.error
    assert final.output["caught"] == "ChildFailed"
    assert final.output["child_error"]["type"] == "WorkflowNotFound"
    assert "kid" in final.output["child_error"]["message"]


MAP_OF_MISSING_CHILDREN = """
dsl: "1.0"
name: map_missing
states:
  each:
    type: map
    items: [1, 2, 3, 4, 5]
    as: v
    concurrency: 2
    states:
      call:
        type: child
        workflow: kid
        input: {value: "{{ v }}"}
        catch:
          - errors: [ChildFailed]
            result: problem
            next: report
        end: true
      report:
        type: succeed
        output: "{{ v }}:{{ vars.problem.details.error.type }}"
    result: outcomes
    end: true
"""


def test_children_that_cannot_start_inside_a_map_let_the_map_go_on(
    client: Client, store_url: str, tmp_path: Path
) -> None:
    """Each failed child start is caught inside its iteration, whose end launches the next
    iteration (and its child) while the same step is being committed."""
    (tmp_path / "map_missing.yaml").write_text(MAP_OF_MISSING_CHILDREN)
    shutil.copy(CHILDREN / "kid.yaml", tmp_path / "kid.yaml")
    run_id = client.start(tmp_path / "map_missing.yaml")
    (tmp_path / "kid.yaml").unlink()
    with cc.BackgroundWorker(store_url):
        final = client.result(run_id, timeout=20)
    assert final.status == "completed", final.error
    assert final.output == [f"{v}:WorkflowNotFound" for v in range(1, 6)]


def test_child_definition_is_pinned_when_the_child_starts(
    client: Client, store_url: str, tmp_path: Path
) -> None:
    shutil.copy(CHILDREN / "parent.yaml", tmp_path / "parent.yaml")
    kid_file = tmp_path / "kid.yaml"
    shutil.copy(CHILDREN / "kid.yaml", kid_file)
    first = client.start(tmp_path / "parent.yaml", {"value": 2, "hold": True}, run_id="pin-1")
    with cc.BackgroundWorker(store_url):
        cc.wait_until(
            lambda: (
                client.store.get_run("pin-1.call") is not None
                and cc.current_states(client, "pin-1.call") == {"hold"}
            ),
            what="the child waits",
        )
        # The child is running: editing its file changes nothing for it.
        kid_file.write_text(kid_file.read_text().replace("version: 1}", "version: 2}"))
        client.signal("pin-1.call", "release")
        assert client.result(first, timeout=15).output == {"doubled": 4, "version": 1}
        # A child started after the edit uses the new file.
        second = client.start(tmp_path / "parent.yaml", {"value": 2}, run_id="pin-2")
        assert client.result(second, timeout=15).output == {"doubled": 4, "version": 2}
    assert client.get("pin-1.call").def_hash != client.get("pin-2.call").def_hash


# --------------------------------------------------------------------------- depth


def innermost(error: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """Follow ChildFailed details down to the first error that is not ChildFailed."""
    levels = 0
    while error["type"] == "ChildFailed":
        error = error["details"]["error"]
        levels += 1
    return error, levels


def test_recursion_up_to_the_maximum_depth_works(client: Client) -> None:
    assert MAX_CHILD_DEPTH == 32
    final = client.execute(
        client.start(CHILDREN / "recurse.yaml", {"level": 0, "stop": MAX_CHILD_DEPTH}, run_id="r")
    )
    assert final.status == "completed", final.error
    assert final.output == {"deepest": MAX_CHILD_DEPTH}
    deepest = client.get("r" + ".deeper" * MAX_CHILD_DEPTH)
    assert deepest.depth == MAX_CHILD_DEPTH and deepest.status == "completed"


def test_recursion_past_the_maximum_depth_fails_clearly(client: Client) -> None:
    final = client.execute(
        client.start(CHILDREN / "recurse.yaml", {"level": 0, "stop": 100}, run_id="deep")
    )
    assert final.status == "failed"
    cause, levels = innermost(final.error)
    assert cause["type"] == "ChildDepthExceeded"
    assert str(MAX_CHILD_DEPTH) in cause["message"]
    assert levels == MAX_CHILD_DEPTH + 1
    assert len(client.list_runs(workflow="recurse")) == MAX_CHILD_DEPTH + 1
    assert all(r.status == "failed" for r in client.list_runs(workflow="recurse"))
