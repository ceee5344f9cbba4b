"""Graph export: DOT that Graphviz accepts, Mermaid with every state and edge, and the CLI."""

from __future__ import annotations

import html
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from conftest import run_cli
from hypothesis import HealthCheck, given, settings
from test_lint import workflow_data

from dsl.graph import dot_quote, mermaid_text, one_line, to_dot, to_mermaid
from dsl.model import Workflow

ROOT = Path(__file__).resolve().parent.parent

WEIRD = 'say "hi" {{ x }} \\n back\\slash #1 | <b>&amp; end; -> `tick`'

SAGA: dict[str, Any] = {
    "dsl": "1.0",
    "name": "saga",
    "signals": {"go": {}},
    "states": {
        "reserve": {
            "type": "activity",
            "activity": "reserve",
            "compensate": {"activity": "release"},
            "catch": [{"errors": ["HttpError", "Timeout"], "next": "failed"}],
            "next": WEIRD,
        },
        WEIRD: {
            "type": "choice",
            "choices": [{"when": '{{ vars.x == "a|b" }}', "next": "hold"}],
            "default": "fan",
        },
        "hold": {
            "type": "wait",
            "signal": "go",
            "timeout": "1h",
            "on_timeout": "failed",
            "next": "fan",
        },
        "fan": {
            "type": "parallel",
            "branches": [
                {"states": {"b1": {"type": "activity", "activity": "a", "end": True}}},
                {
                    "start": "b2",
                    "states": {
                        "b2": {
                            "type": "map",
                            "items": "{{ input.items }}",
                            "states": {"m1": {"type": "sleep", "duration": "1s", "end": True}},
                            "end": True,
                        }
                    },
                },
            ],
            "next": "ship",
        },
        "ship": {
            "type": "child",
            "workflow": "shipping",
            "compensate": {"activity": "unship"},
            "next": "done",
        },
        "done": {"type": "succeed"},
        "failed": {"type": "fail", "error": "Oops"},
    },
}

# (source, target, label); "END" is the end marker of the source's state machine.
SAGA_EDGES = {
    ("reserve", WEIRD, ""),
    ("reserve", "failed", "catch: HttpError, Timeout"),
    ("reserve", "undo: release", "compensate"),
    (WEIRD, "hold", '{{ vars.x == "a|b" }}'),
    (WEIRD, "fan", "default"),
    ("hold", "failed", "timeout"),
    ("hold", "fan", ""),
    ("fan", "START", "branch 1"),
    ("fan", "START", "branch 2"),
    ("fan", "ship", ""),
    ("b1", "END", ""),
    ("b2", "START", "each item"),
    ("b2", "END", ""),
    ("m1", "END", ""),
    ("ship", "undo: unship", "compensate"),
    ("ship", "done", ""),
    ("done", "END", ""),
    ("failed", "END", "fail"),
    ("START", "reserve", ""),
    ("START", "b1", ""),
    ("START", "b2", ""),
    ("START", "m1", ""),
}
STATE_NAMES = {"reserve", WEIRD, "hold", "fan", "b1", "b2", "m1", "ship", "done", "failed"}


def saga() -> Workflow:
    return Workflow.model_validate(SAGA)


# --- Mermaid -------------------------------------------------------------------------------

_MERMAID_NODE = re.compile(r'^\s*(n\d+)(?:\(\(\(|\(\(|\(\[|\[/|\{\{|\(|\{)"(.*?)"')
_MERMAID_EDGE = re.compile(r'^\s*(n\d+) (-->|-\.->|==>)(?:\|"([^"]*)"\|)? ([nc]\d+)$')
_MERMAID_SUBGRAPH = re.compile(r"^\s*subgraph (c\d+) ")
_ENTITIES = {"quot": '"', "lt": "<", "gt": ">"}


def _unmermaid(text: str) -> str:
    return re.sub(r"#(\w+);", lambda m: _ENTITIES.get(m[1]) or chr(int(m[1])), text)


def _mermaid_graph(text: str) -> tuple[dict[str, str], set[tuple[str, str, str]], list[str]]:
    nodes: dict[str, str] = {}
    edges: set[tuple[str, str, str]] = set()
    lines = text.splitlines()
    opening: str | None = None  # a fork edge points at the subgraph: its first node, START
    for line in lines:
        if subgraph := _MERMAID_SUBGRAPH.match(line):
            opening = subgraph[1]
        elif node := _MERMAID_NODE.match(line):
            first = node[2].split("<br/>")[0]
            nodes[node[1]] = (
                _unmermaid(first).upper() if first in ("start", "end") else _unmermaid(first)
            )
            if opening is not None:
                nodes[opening], opening = nodes[node[1]], None
        elif edge := _MERMAID_EDGE.match(line):
            edges.add((edge[1], edge[4], _unmermaid(edge[3] or "")))
    named = {(nodes[a], nodes[b], label) for a, b, label in edges}
    return nodes, named, lines


def test_mermaid_has_every_state_and_edge() -> None:
    nodes, edges, lines = _mermaid_graph(to_mermaid(saga()))
    assert lines[1] == "flowchart TD"
    assert set(nodes.values()) >= STATE_NAMES
    assert edges == SAGA_EDGES


def test_mermaid_subgraphs_are_balanced_and_nested() -> None:
    text = to_mermaid(saga())
    depth = 0
    deepest = 0
    for line in text.splitlines():
        word = line.strip().split(" ")[0]
        if word == "subgraph":
            depth += 1
            deepest = max(deepest, depth)
        elif word == "end":
            depth -= 1
            assert depth >= 0
    assert depth == 0
    assert deepest == 2  # branch 2 of fan holds the map body of b2
    assert text.count("subgraph ") == 3


def test_mermaid_labels_cannot_break_out_of_their_quotes() -> None:
    text = to_mermaid(saga())
    for line in text.splitlines():
        if line.strip().startswith(
            ("%%", "flowchart", "classDef", "class ", "subgraph", "direction")
        ):
            continue
        # Outside the generated quotes, only ids, arrows and shape brackets remain.
        outside = re.sub(r'"[^"]*"', '""', line)
        assert re.fullmatch(r'\s*(n\d+[\[\](){}/"]*|n\d+ \S+ [nc]\d+|end)', outside), line
    assert mermaid_text('a "b" #c | <d>') == "a #quot;b#quot; #35;c #124; #lt;d#gt;"


def test_mermaid_marks_compensation_and_catch_edges_dashed() -> None:
    text = to_mermaid(saga())
    assert re.search(r'-\.->\|"catch: HttpError, Timeout"\|', text)
    assert re.search(r'-\.->\|"compensate"\| n\d+', text)
    assert re.search(r'n\d+\[/"undo: release"/\]', text)


def test_held_compensations_are_labelled_in_both_formats() -> None:
    """With saga on_failure: hold, each undo step says a failure keeps it for later."""
    from interpreter.client import load_definition

    held = load_definition(ROOT / "samples" / "booking_hold.yaml").workflow
    default = load_definition(ROOT / "samples" / "booking_saga.yaml").workflow
    assert to_mermaid(held).count("held when the run fails") == 3
    assert to_dot(held).count("held when the run fails") == 3
    assert "held when" not in to_mermaid(default) + to_dot(default)


# --- DOT -----------------------------------------------------------------------------------

_DOT_NODE = re.compile(r"^\s*(n\d+) \[(.*)\];$")
_DOT_EDGE = re.compile(r"^\s*(n\d+) -> (n\d+)(?: \[(.*)\])?;$")
_DOT_LABEL = re.compile(r'(?<![a-z])label="((?:[^"\\]|\\.)*)"')
_DOT_TOOLTIP = re.compile(r'tooltip="((?:[^"\\]|\\.)*)"')


def _undot(text: str) -> str:
    unescaped = re.sub(r"\\(.)", lambda m: "\n" if m[1] == "n" else m[1], text)
    return unescaped.replace("&amp;", "&")


def _dot_graph(text: str) -> tuple[dict[str, str], set[tuple[str, str, str]]]:
    nodes: dict[str, str] = {}
    edges: set[tuple[str, str, str]] = set()
    for line in text.splitlines():
        if node := _DOT_NODE.match(line):
            label = _DOT_LABEL.search(node[2])
            marker = _DOT_TOOLTIP.search(node[2])
            if marker and label and label[1] == "":
                nodes[node[1]] = marker[1].upper()
            else:
                assert label, line
                nodes[node[1]] = _undot(label[1]).split("\n")[0]
        elif edge := _DOT_EDGE.match(line):
            label = _DOT_LABEL.search(edge[3] or "")
            edges.add((edge[1], edge[2], _undot(label[1]) if label else ""))
    return nodes, {(nodes[a], nodes[b], label) for a, b, label in edges}


def test_dot_has_every_state_and_edge_and_clusters() -> None:
    text = to_dot(saga())
    nodes, edges = _dot_graph(text)
    assert set(nodes.values()) >= STATE_NAMES
    assert edges == SAGA_EDGES
    assert len(re.findall(r"subgraph cluster_\w+ \{", text)) == 3
    assert text.count("{") == text.count("}")


def test_dot_quote_neutralises_backslash_escapes() -> None:
    assert dot_quote('a"b\\nc') == '"a\\"b\\\\nc"'


def _require_dot() -> str:
    path = shutil.which("dot")
    if path is None:
        if os.environ.get("TIDEFLOW_CI") == "1":
            pytest.fail("graphviz `dot` is not installed (apt-get install graphviz)")
        pytest.skip("graphviz `dot` is not installed")
    return path


def _render(dot_text: str) -> str:
    done = subprocess.run(
        [_require_dot(), "-Tsvg"], input=dot_text, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "Warning" not in done.stderr and "Error" not in done.stderr, done.stderr
    return done.stdout


def test_graphviz_parses_dot_and_shows_names_literally() -> None:
    svg = html.unescape(_render(to_dot(saga())))
    assert "<svg" in svg
    # The literal backslash-n stays two characters; the quotes and braces survive.
    assert WEIRD in svg
    assert '{{ vars.x == "a|b" }}' in svg
    for name in STATE_NAMES:
        assert name in svg


def test_graphviz_parses_a_workflow_named_like_dot_keywords() -> None:
    tricky = {
        "dsl": "1.0",
        "name": "digraph",
        "states": {
            "node": {"type": "set", "vars": {"a": 1}, "next": "subgraph"},
            "subgraph": {"type": "set", "vars": {"b": 1}, "next": "edge"},
            "edge": {"type": "succeed"},
        },
    }
    svg = html.unescape(_render(to_dot(Workflow.model_validate(tricky))))
    for name in ("node", "subgraph", "edge"):
        assert f">{name}<" in svg


# --- CLI -----------------------------------------------------------------------------------

VALID = """\
dsl: "1.0"
name: cli-graph
states:
  greet:
    type: set
    vars: {msg: hello}
    next: done
  done:
    type: succeed
    output: "{{ vars.msg }}"
"""


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(*args, cwd=ROOT)


def test_cli_prints_mermaid_by_default(tmp_path: Path) -> None:
    flow = tmp_path / "flow.yaml"
    flow.write_text(VALID)
    done = _cli("graph", str(flow))
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[1] == "flowchart TD"
    assert '"greet<br/>set msg"' in done.stdout


def test_cli_writes_dot_to_a_file(tmp_path: Path) -> None:
    flow = tmp_path / "flow.yaml"
    flow.write_text(VALID)
    out = tmp_path / "flow.dot"
    done = _cli("graph", str(flow), "--format", "dot", "--output", str(out))
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    assert out.read_text().startswith('digraph "cli-graph" {')
    _render(out.read_text())


def test_cli_refuses_an_invalid_workflow(tmp_path: Path) -> None:
    flow = tmp_path / "bad.yaml"
    flow.write_text(VALID.replace("next: done", "next: dnoe"))
    done = _cli("graph", str(flow))
    assert done.returncode == 1
    assert done.stdout == ""
    assert "TF201" in done.stderr and "bad.yaml:7:" in done.stderr
    assert "Traceback" not in done.stderr


def test_cli_missing_file_exits_2(tmp_path: Path) -> None:
    done = _cli("graph", str(tmp_path / "nope.yaml"))
    assert done.returncode == 2
    assert "does not exist" in done.stderr
    assert "Traceback" not in done.stderr


def test_cli_rejects_an_unknown_format(tmp_path: Path) -> None:
    flow = tmp_path / "flow.yaml"
    flow.write_text(VALID)
    done = _cli("graph", str(flow), "--format", "png")
    assert done.returncode == 2
    assert "invalid choice" in done.stderr


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(workflow_data())
def test_any_state_machine_draws_in_both_formats(data: dict[str, Any]) -> None:
    workflow = Workflow.model_validate(data)
    nodes, _edges, _lines = _mermaid_graph(to_mermaid(workflow))
    dot_nodes, _dot_edges = _dot_graph(to_dot(workflow))
    names = {one_line(name) for name in _all_state_names(data)}
    assert names <= set(nodes.values())
    assert names <= set(dot_nodes.values())
    _render(to_dot(workflow))


def _all_state_names(machine: dict[str, Any]) -> set[str]:
    names = set(machine["states"])
    for state in machine["states"].values():
        for branch in state.get("branches", []):
            names |= _all_state_names(branch)
        if state["type"] == "map":
            names |= _all_state_names(state)
    return names


def test_names_keep_their_spaces_and_show_line_breaks() -> None:
    data = {
        "dsl": "1.0",
        "name": "spaces",
        "states": {
            " ": {"type": "set", "vars": {"a": 1}, "next": "a  b"},
            "a  b": {"type": "set", "vars": {"a": 1}, "next": "two\nlines"},
            "two\nlines": {"type": "succeed"},
        },
    }
    workflow = Workflow.model_validate(data)
    nodes, _edges, _lines = _mermaid_graph(to_mermaid(workflow))
    dot_nodes, _dot_edges = _dot_graph(to_dot(workflow))
    assert {" ", "a  b", "two⏎lines"} <= set(nodes.values())
    assert {" ", "a  b", "two⏎lines"} <= set(dot_nodes.values())
