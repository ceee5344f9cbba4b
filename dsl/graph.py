"""Draw a workflow: Mermaid (`flowchart`) or Graphviz DOT.

Both renderers share one layout-free description (nodes, clusters, edges) so they show the same
thing: states, transitions, choice conditions, catch edges, compensations, nested parallel
branches and map bodies as clusters, and start/end markers for every state machine.
Node ids are generated (n1, n2, ...) because state names may contain any character; names only
ever appear inside escaped labels.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from dsl.durations import DurationError, format_duration, parse_duration
from dsl.model import (
    ActivityState,
    AnyState,
    ChildState,
    ChoiceState,
    Completion,
    ContinueAsNewState,
    FailState,
    MapState,
    ParallelState,
    SetState,
    SleepState,
    SucceedState,
    WaitState,
    Workflow,
)

_MAX_EDGE_LABEL = 60
# A label is one line of the drawing; a line break inside a name is shown, not obeyed.
_LINE_BREAK = re.compile(r"\r\n|[\r\n\v\f\x1c\x1d\x1e\x85\u2028\u2029]")


def one_line(text: str) -> str:
    """`text` with every line break shown as ⏎ (names keep their spaces: they identify)."""
    return _LINE_BREAK.sub("⏎", text)


@dataclass
class Node:
    id: str
    label: list[str]  # lines
    kind: str  # start, end, state, callback, choice, succeed, fail, compensation, detached


@dataclass
class Edge:
    source: str
    target: str
    label: str = ""
    style: str = "next"  # next, choice, catch, timeout, compensation, fork, restart, detached


@dataclass
class Cluster:
    id: str
    label: str
    nodes: list[Node] = field(default_factory=list)
    clusters: list[Cluster] = field(default_factory=list)


@dataclass
class Diagram:
    title: str
    root: Cluster
    edges: list[Edge] = field(default_factory=list)


def _short(text: str, limit: int = _MAX_EDGE_LABEL) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _duration(value: str | int | float) -> str:
    try:
        return format_duration(parse_duration(value))
    except DurationError:
        return str(value)


def _describe(state: AnyState, updates: frozenset[str] = frozenset()) -> str:
    """The second line of a state's box (`updates`: the names declared under updates)."""
    if isinstance(state, ActivityState):
        return f"activity: {state.activity}"
    if isinstance(state, ChildState):
        return f"{'detached ' if state.detached else ''}child: {state.workflow}"
    if isinstance(state, WaitState):
        if state.signals is not None:
            text = "wait for one of: " + ", ".join(state.signals)
        else:
            what = "update" if state.signal in updates else "signal"
            text = f"wait for {what}: {state.signal}"
        if state.until is not None:
            text += f" until {_short(state.until, 40)}"
        elif state.timeout is not None:
            text += f" (timeout {_short(_duration(state.timeout), 40)})"
        return text
    if isinstance(state, SleepState):
        if state.duration is not None:
            return f"sleep {_short(_duration(state.duration), 40)}"
        return f"sleep until {_short(state.until or '', 40)}"
    if isinstance(state, SetState):
        return "set " + ", ".join(state.vars)
    if isinstance(state, ParallelState):
        return f"parallel: {len(state.branches)} branches" + _rule(state.completion, ", ")
    if isinstance(state, MapState):
        return f"map over items (concurrency {_short(str(state.concurrency or 10), 40)})" + _rule(
            state.completion, ", "
        )
    if isinstance(state, FailState):
        return f"fail: {_short(state.error, 40)}"
    if isinstance(state, ContinueAsNewState):
        return "continue as new"
    return state.type


def _rule(completion: Completion | None, prefix: str) -> str:
    """A completion rule in words ("" for the default: all, no failure tolerated)."""
    if completion is None:
        return ""
    words = {
        "all": "all",
        "first": "first success wins",
        "quorum": f"quorum of {completion.min_successes}",
    }[completion.rule]
    tolerated = completion.tolerated_failures
    if tolerated is not None:
        words += f", {tolerated} failure{'' if tolerated == 1 else 's'} tolerated"
    return "" if words == "all" else prefix + words


class _Builder:
    def __init__(self, updates: frozenset[str] = frozenset()) -> None:
        self.updates = updates  # a wait for one of these is woken by that update
        self._ids = itertools.count(1)
        self.edges: list[Edge] = []

    def new_id(self, prefix: str = "n") -> str:
        return f"{prefix}{next(self._ids)}"

    def machine(self, cluster: Cluster, states: dict[str, AnyState], start: str | None) -> None:
        """Add one state machine's nodes to `cluster` and its edges to the diagram."""
        begin = Node(self.new_id(), ["start"], "start")
        finish = Node(self.new_id(), ["end"], "end")
        ids = {name: self.new_id() for name in states}
        cluster.nodes.append(begin)
        first = start if start is not None else next(iter(states), None)
        if first in ids:
            self.edges.append(Edge(begin.id, ids[first]))
        for name, state in states.items():
            kind = {"choice": "choice", "succeed": "succeed", "fail": "fail"}.get(
                state.type, "state"
            )
            lines = [name, _describe(state, self.updates)]
            if isinstance(state, ActivityState) and state.completion == "callback":
                kind = "callback"  # the activity sends a token out, then the state waits
                lines.append("then waits for its callback")
            lines.extend(_retry_lines(state))
            cluster.nodes.append(Node(ids[name], lines, kind))
            if isinstance(state, ContinueAsNewState):
                # A new segment of the same run: back to this machine's start marker.
                self.edges.append(Edge(ids[name], begin.id, "new segment", "restart"))
            for target, label, style in _transitions(state):
                if target is None:
                    self.edges.append(Edge(ids[name], finish.id, label, style))
                elif target in ids:  # a validated workflow never names another scope
                    self.edges.append(Edge(ids[name], ids[target], label, style))
            self._compensation(cluster, ids[name], state)
            self._detached(cluster, ids[name], state)
            self._nested(cluster, ids[name], name, state)
        cluster.nodes.append(finish)

    def _compensation(self, cluster: Cluster, source: str, state: AnyState) -> None:
        if isinstance(state, ActivityState | ChildState) and state.compensate is not None:
            node = Node(self.new_id(), [f"undo: {state.compensate.activity}"], "compensation")
            cluster.nodes.append(node)
            self.edges.append(Edge(source, node.id, "compensate", "compensation"))

    def _detached(self, cluster: Cluster, source: str, state: AnyState) -> None:
        """A detached child: its own node, reached by a dotted edge (the parent goes on)."""
        if isinstance(state, ChildState) and state.detached:
            policy = state.parent_close or "terminate"
            node = Node(
                self.new_id(), [f"run: {state.workflow}", f"parent_close: {policy}"], "detached"
            )
            cluster.nodes.append(node)
            self.edges.append(Edge(source, node.id, "detached", "detached"))

    def _nested(self, cluster: Cluster, source: str, name: str, state: AnyState) -> None:
        bodies: list[tuple[str, str, dict[str, AnyState], str | None]] = []
        if isinstance(state, ParallelState):
            rule = _rule(state.completion, " · ")
            for index, branch in enumerate(state.branches, start=1):
                bodies.append(
                    (
                        f"{name}: branch {index}{rule}",
                        f"branch {index}",
                        branch.states,
                        branch.start,
                    )
                )
        elif isinstance(state, MapState):
            bodies.append(
                (
                    f"{name}: each {state.as_ or 'item'}{_rule(state.completion, ' · ')}",
                    "each item",
                    state.states,
                    state.start,
                )
            )
        for label, edge_label, states, start in bodies:
            inner = Cluster(self.new_id("c"), label)
            self.machine(inner, states, start)
            cluster.clusters.append(inner)
            self.edges.append(Edge(source, inner.nodes[0].id, edge_label, "fork"))


def _retry_lines(state: AnyState) -> list[str]:
    """An activity's retry policies by error, one line each (a plain single policy: none)."""
    retry = state.retry if isinstance(state, ActivityState) else None
    if retry is None:
        return []
    policies = retry if isinstance(retry, list) else [retry]
    if not isinstance(retry, list) and not (retry.errors or retry.when):
        return []
    lines = []
    for policy in policies:
        errors = ", ".join(policy.errors or ["*"])
        n = policy.max_attempts
        attempts = "" if n is None else f", {n} attempt{'' if n == 1 else 's'}"
        when = (
            policy.when.strip().removeprefix("{{").removesuffix("}}").strip() if policy.when else ""
        )
        when = f" if {_short(when, 30)}" if when else ""
        lines.append(_short(f"retry {errors}{attempts}{when}"))
    return lines


def _transitions(state: AnyState) -> Iterator[tuple[str | None, str, str]]:
    """(target or None for the end marker, label, style) of every way out of a state."""
    if isinstance(state, ChoiceState):
        for choice in state.choices:
            yield choice.next, _short(choice.when), "choice"
        if state.default is not None:
            yield state.default, "default", "choice"
        return
    if isinstance(state, SucceedState):
        yield None, "", "next"
        return
    if isinstance(state, FailState):
        yield None, "fail", "catch"
        return
    if isinstance(state, ContinueAsNewState):
        return  # drawn by the builder: an edge back to the start marker
    if isinstance(state, WaitState) and state.on_timeout is not None:
        yield state.on_timeout, "until" if state.until is not None else "timeout", "timeout"
    if isinstance(state, ActivityState | ChildState | ParallelState | MapState):
        for catcher in state.catch or []:
            yield catcher.next, "catch: " + ", ".join(catcher.errors), "catch"
    if state.next is not None:
        yield state.next, "", "next"
    elif state.end:
        yield None, "", "next"


def describe(workflow: Workflow) -> Diagram:
    """The drawing of a workflow, independent of the output format."""
    builder = _Builder(frozenset(workflow.updates or {}))
    root = Cluster("root", workflow.name)
    builder.machine(root, dict(workflow.states), workflow.start)
    on_exit = workflow.on_exit
    handlers = [
        (key, getattr(on_exit, key))
        for key in ("success", "failure", "cancel", "timeout", "always")
        if on_exit is not None and getattr(on_exit, key) is not None
    ]
    if handlers:
        # Exit handlers: a cluster of their own, one inner cluster per outcome.
        outer = Cluster(builder.new_id("c"), "on_exit (after the run ends)")
        for key, handler in handlers:
            bound = f", within {_duration(handler.timeout)}" if handler.timeout else ""
            inner = Cluster(builder.new_id("c"), f"on_exit: {key}{bound}")
            builder.machine(inner, dict(handler.states), handler.start)
            outer.clusters.append(inner)
        root.clusters.append(outer)
    return Diagram(workflow.name, root, builder.edges)


# --- Mermaid -----------------------------------------------------------------------------

_MERMAID_ENTITIES = {
    "#": "#35;",
    '"': "#quot;",
    "<": "#lt;",
    ">": "#gt;",
    "|": "#124;",
    "`": "#96;",
}
_MERMAID_SHAPES = {
    "start": ('(("', '"))'),
    "end": ('((("', '")))'),
    "state": ('("', '")'),
    "callback": ('[["', '"]]'),
    "choice": ('{"', '"}'),
    "succeed": ('(["', '"])'),
    "fail": ('{{"', '"}}'),
    "compensation": ('[/"', '"/]'),
    "detached": ('>"', '"]'),
}
_MERMAID_ARROWS = {
    "next": "-->",
    "choice": "-->",
    "timeout": "-->",
    "fork": "==>",
    "catch": "-.->",
    "compensation": "-.->",
    "restart": "-.->",
    "detached": "-.->",
}


def mermaid_text(text: str) -> str:
    """Text safe inside a double-quoted Mermaid label (entity codes; no line breaks)."""
    return "".join(_MERMAID_ENTITIES.get(ch, ch) for ch in one_line(text))


def _mermaid_cluster(cluster: Cluster, depth: int) -> Iterator[str]:
    pad = "    " * depth
    for node in cluster.nodes:
        left, right = _MERMAID_SHAPES[node.kind]
        label = "<br/>".join(mermaid_text(line) for line in node.label)
        yield f"{pad}{node.id}{left}{label}{right}"
    for inner in cluster.clusters:
        yield f'{pad}subgraph {inner.id} ["{mermaid_text(inner.label)}"]'
        yield f"{pad}    direction TB"
        yield from _mermaid_cluster(inner, depth + 1)
        yield f"{pad}end"


def to_mermaid(workflow: Workflow) -> str:
    """A Mermaid flowchart of the workflow."""
    diagram = describe(workflow)
    lines = [f"%% workflow {mermaid_text(diagram.title)}", "flowchart TD"]
    lines.extend(_mermaid_cluster(diagram.root, 1))
    for edge in diagram.edges:
        arrow = _MERMAID_ARROWS[edge.style]
        label = f'|"{mermaid_text(edge.label)}"|' if edge.label else ""
        lines.append(f"    {edge.source} {arrow}{label} {edge.target}")
    lines.append("    classDef marker fill:#222,stroke:#222,color:#fff")
    lines.append("    classDef compensation stroke-dasharray:4 3")
    markers = [n.id for n in _all_nodes(diagram.root) if n.kind in ("start", "end")]
    undo = [n.id for n in _all_nodes(diagram.root) if n.kind == "compensation"]
    if markers:
        lines.append(f"    class {','.join(markers)} marker")
    if undo:
        lines.append(f"    class {','.join(undo)} compensation")
    return "\n".join(lines) + "\n"


def _all_nodes(cluster: Cluster) -> Iterator[Node]:
    yield from cluster.nodes
    for inner in cluster.clusters:
        yield from _all_nodes(inner)


# --- DOT -----------------------------------------------------------------------------------

_DOT_NODE = {
    "start": 'shape=circle, style=filled, fillcolor=black, fontcolor=white, width=0.3, label=""',
    "end": 'shape=doublecircle, style=filled, fillcolor=black, fontcolor=white, width=0.2, label=""',
    "state": "shape=box, style=rounded",
    "callback": "shape=box, style=rounded, peripheries=2",
    "choice": "shape=diamond",
    "succeed": 'shape=box, style="rounded,filled", fillcolor="#d8f5d0"',
    "fail": 'shape=box, style="rounded,filled", fillcolor="#f8d0d0"',
    "compensation": "shape=parallelogram, style=dashed",
    "detached": "shape=component, style=dashed",
}
_DOT_EDGE = {
    "next": "",
    "choice": "",
    "timeout": "style=dashed",
    "fork": "style=bold",
    "catch": "style=dashed, color=red3, fontcolor=red3",
    "compensation": "style=dashed, color=gray40, fontcolor=gray40, arrowhead=empty",
    "restart": "style=dashed, color=blue3, fontcolor=blue3",
    "detached": "style=dotted, color=blue4, fontcolor=blue4, arrowhead=odot",
}


def dot_quote(text: str) -> str:
    """A DOT double-quoted string showing `text` literally: backslash escapes (\\n, \\N, ...)
    and HTML entities (&amp;, which Graphviz decodes in labels) are neutralised."""
    escaped = text.replace("&", "&amp;").replace("\\", "\\\\").replace('"', '\\"')
    return '"' + "\\n".join(escaped.splitlines() or [""]) + '"'


def _dot_label(lines: list[str]) -> str:
    return "\\n".join(dot_quote(one_line(line))[1:-1] for line in lines)


def _dot_cluster(cluster: Cluster, depth: int) -> Iterator[str]:
    pad = "    " * depth
    for node in cluster.nodes:
        attrs = _DOT_NODE[node.kind]
        if node.kind not in ("start", "end"):
            attrs += f', label="{_dot_label(node.label)}"'
        else:
            attrs += f', tooltip="{_dot_label(node.label)}"'
        yield f"{pad}{node.id} [{attrs}];"
    for inner in cluster.clusters:
        yield f"{pad}subgraph cluster_{inner.id} {{"
        yield f'{pad}    label="{_dot_label([inner.label])}";'
        yield f"{pad}    style=dashed;"
        yield from _dot_cluster(inner, depth + 1)
        yield f"{pad}}}"


def to_dot(workflow: Workflow) -> str:
    """A Graphviz digraph of the workflow."""
    diagram = describe(workflow)
    lines = [
        f"digraph {dot_quote(diagram.title)} {{",
        f'    graph [label="{_dot_label([diagram.title])}", labelloc=t, fontname="Helvetica", '
        "compound=true];",
        '    node [fontname="Helvetica", fontsize=11];',
        '    edge [fontname="Helvetica", fontsize=9];',
    ]
    lines.extend(_dot_cluster(diagram.root, 1))
    for edge in diagram.edges:
        attrs = [a for a in (_DOT_EDGE[edge.style],) if a]
        if edge.label:
            attrs.append(f'label="{_dot_label([edge.label])}"')
        suffix = f" [{', '.join(attrs)}]" if attrs else ""
        lines.append(f"    {edge.source} -> {edge.target}{suffix};")
    lines.append("}")
    return "\n".join(lines) + "\n"
