"""`tideflow graph --run RUN`: the path a run took and where it stands, in Mermaid and DOT,
read from a real store (SQLite and PostgreSQL) by the real CLI."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from concurrency_activities import BackgroundWorker
from conftest import SAMPLES, run_cli
from run_helpers import wait_for, write_workflow

from interpreter import Client, load_activity_modules

APPROVAL = SAMPLES / "approval.yaml"
_NODE = re.compile(r'^\s*(n\d+)[(\[{>/]+"(?:▶ )?([^"<]*?)(?:<br/>|")', re.M)


@pytest.fixture
def worker(store_url: str) -> Iterator[Callable[[], None]]:
    """Drives the store in a thread until the test says stop (the returned function)."""
    load_activity_modules([str(SAMPLES / "activities.py")])
    with BackgroundWorker(store_url) as background:
        yield background.stop


def classes(mermaid: str) -> dict[str, set[str]]:
    """visited / current -> the state names of the nodes in that class."""
    names = {m[1]: m[2] for m in _NODE.finditer(mermaid)}
    out: dict[str, set[str]] = {"visited": set(), "current": set()}
    for ids, cls in re.findall(r"^\s*class (\S+) (visited|current)$", mermaid, re.M):
        out[cls] |= {names[i] for i in ids.split(",")}
    return out


def test_a_waiting_run_shows_its_path_and_where_it_stands(
    store_url: str, worker: Callable[[], None]
) -> None:
    with Client(store_url) as client:
        run_id = client.start(
            APPROVAL, {"request_id": "R1", "amount": 5, "requester": "ana", "timeout": "1h"}
        )
        wait_for(lambda: client.status(run_id)["current"][0]["state"] == "wait_for_decision", 30)
    worker()
    mermaid = run_cli("graph", "--run", run_id, "--db", store_url)
    assert mermaid.returncode == 0, mermaid.stderr
    assert classes(mermaid.stdout) == {
        "visited": {"submit", "awaiting"},
        "current": {"wait_for_decision"},
    }
    assert '"▶ wait_for_decision<br/>' in mermaid.stdout
    [taken] = re.findall(r"^\s*linkStyle (\S+) stroke", mermaid.stdout, re.M)
    edges = [line for line in mermaid.stdout.splitlines() if re.match(r"\s*n\d+ \S+ [nc]\d+", line)]
    names = {m[1]: m[2] for m in _NODE.finditer(mermaid.stdout)}
    drawn = {
        (names[a], names[b])
        for a, b in (re.findall(r"(n\d+)", edges[int(i)]) for i in taken.split(","))
    }
    assert drawn == {("submit", "awaiting"), ("awaiting", "wait_for_decision")}

    dot = run_cli("graph", "--run", run_id, "--db", store_url, "--format", "dot")
    assert dot.returncode == 0, dot.stderr
    current = [line for line in dot.stdout.splitlines() if "#ffe08a" in line]
    assert len(current) == 1 and "wait_for_decision" in current[0]
    assert dot.stdout.count('fillcolor="#d8f5d0", color="#2e7d32"') == 2  # visited
    assert dot.stdout.count('[color="#2e7d32", penwidth=2.5]') == 2  # taken


def test_a_finished_map_run_marks_the_states_inside_the_body(
    store_url: str, tmp_path: Path
) -> None:
    wf = write_workflow(
        tmp_path,
        """
        name: mapper
        states:
          each:
            type: map
            items: [1, 2]
            states:
              size:
                type: choice
                choices:
                  - {when: "{{ item > 5 }}", next: big}
                default: fine
              big: {type: fail, error: TooBig}
              fine: {type: succeed}
            next: done
          done: {type: succeed}
        """,
    )
    with Client(store_url) as client:
        run_id = client.start(wf)
        assert client.execute(run_id).status == "completed"
    proc = run_cli("graph", "--run", run_id, "--db", store_url)
    assert proc.returncode == 0, proc.stderr
    assert classes(proc.stdout) == {"visited": {"each", "size", "fine", "done"}, "current": set()}


def test_graph_run_refuses_a_file_too_and_an_unknown_run(store_url: str, tmp_path: Path) -> None:
    both = run_cli("graph", str(APPROVAL), "--run", "r1", "--db", store_url)
    assert both.returncode == 2 and "not both" in both.stderr
    with Client(store_url) as client:
        client.start(write_workflow(tmp_path, "name: t\nstates:\n  d: {type: succeed}\n"))
    unknown = run_cli("graph", "--run", "nope", "--db", store_url)
    assert unknown.returncode != 0 and "no run with id 'nope'" in unknown.stderr
    assert "Traceback" not in unknown.stderr
