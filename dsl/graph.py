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
    Defaults,
    FailState,
    MapState,
    ParallelState,
    SetState,
    SleepState,
    SucceedState,
    Timeouts,
    WaitState,
    Workflow,
)

# A state in a run's drawing (`tideflow graph --run`): its machine path as in the engine
# (() the top level, (("ship", 0),) branch 0 of `ship`, (("each", -1),) a map body,
# ((None, "failure"),) the exit handler on_exit.failure) and its name.
StateKey = tuple[tuple[tuple[str | None, int | str], ...], str]


@dataclass
class Trace:
    """Where a run has been and where it is: states entered, states current, and transitions
    taken (from, to), all as StateKeys (interpreter/run_graph.py reads them from a run)."""

    visited: set[StateKey] = field(default_factory=set)
    current: set[StateKey] = field(default_factory=set)
    taken: set[tuple[StateKey, StateKey]] = field(default_factory=set)


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
    mark: str = ""  # in a run's drawing: visited or current


@dataclass
class Edge:
    source: str
    target: str
    label: str = ""
    style: str = "next"  # next, choice, catch, timeout, compensation, fork, restart, detached
    taken: bool = False  # in a run's drawing: the run went this way


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
    def __init__(
        self,
        updates: frozenset[str] = frozenset(),
        defaults: Defaults | None = None,
        held: bool = False,
    ) -> None:
        self.updates = updates  # a wait for one of these is woken by that update
        self.defaults = defaults
        self.held = held  # saga on_failure: hold (a failure keeps the undo steps)
        self._ids = itertools.count(1)
        self.edges: list[Edge] = []
        self.keys: dict[StateKey, str] = {}  # state -> node id

    def new_id(self, prefix: str = "n") -> str:
        return f"{prefix}{next(self._ids)}"

    def machine(
        self,
        cluster: Cluster,
        states: dict[str, AnyState],
        start: str | None,
        path: tuple[tuple[str | None, int | str], ...] = (),
    ) -> None:
        """Add one state machine's nodes to `cluster` and its edges to the diagram."""
        begin = Node(self.new_id(), ["start"], "start")
        finish = Node(self.new_id(), ["end"], "end")
        ids = {name: self.new_id() for name in states}
        self.keys.update(((path, name), node) for name, node in ids.items())
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
            lines.extend(_retry_lines(state, self.defaults))
            lines.extend(_timeout_lines(state, self.defaults))
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
            self._nested(cluster, ids[name], name, state, path)
        cluster.nodes.append(finish)

    def _compensation(self, cluster: Cluster, source: str, state: AnyState) -> None:
        if isinstance(state, ActivityState | ChildState) and state.compensate is not None:
            lines = [f"undo: {state.compensate.activity}"]
            if self.held:
                lines.append("held when the run fails")
            node = Node(self.new_id(), lines, "compensation")
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

    def _nested(
        self,
        cluster: Cluster,
        source: str,
        name: str,
        state: AnyState,
        path: tuple[tuple[str | None, int | str], ...],
    ) -> None:
        bodies: list[tuple[str, str, dict[str, AnyState], str | None, int]] = []
        if isinstance(state, ParallelState):
            rule = _rule(state.completion, " · ")
            for index, branch in enumerate(state.branches, start=1):
                bodies.append(
                    (
                        f"{name}: branch {index}{rule}",
                        f"branch {index}",
                        branch.states,
                        branch.start,
                        index - 1,
                    )
                )
        elif isinstance(state, MapState):
            bodies.append(
                (
                    f"{name}: each {state.as_ or 'item'}{_rule(state.completion, ' · ')}",
                    "each item",
                    state.states,
                    state.start,
                    -1,
                )
            )
        for label, edge_label, states, start, index in bodies:
            inner = Cluster(self.new_id("c"), label)
            self.machine(inner, states, start, (*path, (name, index)))
            cluster.clusters.append(inner)
            self.edges.append(Edge(source, inner.nodes[0].id, edge_label, "fork"))


def _retry_lines(state: AnyState, defaults: Defaults | None = None) -> list[str]:
    """An activity's retry policies: a plain policy in one line (attempts, first interval,
    backoff, longest interval); policies by error one line each. The workflow's defaults
    apply when the state has none ("(default)")."""
    if not isinstance(state, ActivityState):
        return []
    retry, suffix = state.retry, ""
    if retry is None and defaults is not None and defaults.retry is not None:
        retry, suffix = defaults.retry, " (default)"
    if retry is None:
        return []
    policies = retry if isinstance(retry, list) else [retry]
    if not isinstance(retry, list) and not (retry.errors or retry.when):
        n = retry.max_attempts
        parts = [] if n is None else [f"{n} attempt{'' if n == 1 else 's'}"]
        if retry.initial_interval is not None:
            parts.append(f"after {_short(_duration(retry.initial_interval), 20)}")
        if retry.backoff is not None:
            parts.append(f"backoff {retry.backoff:g}")
        if retry.max_interval is not None:
            parts.append(f"≤ {_short(_duration(retry.max_interval), 20)}")
        return [_short("retry: " + (", ".join(parts) or "default policy") + suffix)]
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


def _timeout_lines(state: AnyState, defaults: Defaults | None = None) -> list[str]:
    """An activity's timeouts in one line; each key the state leaves out comes from the
    workflow's defaults."""
    if not isinstance(state, ActivityState):
        return []
    own = state.timeout or Timeouts()
    base = (defaults.timeout if defaults is not None else None) or Timeouts()
    parts = []
    for key, words in (
        ("start_to_close", "per attempt"),
        ("schedule_to_close", "in all"),
        ("heartbeat", "heartbeat"),
    ):
        value = getattr(own, key)
        value = getattr(base, key) if value is None else value
        if value is not None:
            parts.append(f"{_short(_duration(value), 20)} {words}")
    return [_short("timeout: " + ", ".join(parts))] if parts else []


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


def describe(workflow: Workflow, trace: Trace | None = None) -> Diagram:
    """The drawing of a workflow, independent of the output format; with a run's `trace`,
    its visited and current states marked and the transitions it took."""
    held = workflow.saga is not None and workflow.saga.on_failure == "hold"
    builder = _Builder(frozenset(workflow.updates or {}), workflow.defaults, held)
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
            builder.machine(inner, dict(handler.states), handler.start, ((None, key),))
            outer.clusters.append(inner)
        root.clusters.append(outer)
    if trace is not None:
        _mark(root, builder, trace)
    return Diagram(workflow.name, root, builder.edges)


def state_keys(workflow: Workflow) -> list[StateKey]:
    """Every state of the workflow, nested machines and exit handlers included."""
    builder = _Builder()
    describe_into = Cluster("root", workflow.name)
    builder.machine(describe_into, dict(workflow.states), workflow.start)
    on_exit = workflow.on_exit
    for key in ("success", "failure", "cancel", "timeout", "always"):
        handler = getattr(on_exit, key) if on_exit is not None else None
        if handler is not None:
            builder.machine(Cluster("c", key), dict(handler.states), handler.start, ((None, key),))
    return list(builder.keys)


def _mark(root: Cluster, builder: _Builder, trace: Trace) -> None:
    visited = {builder.keys[k] for k in trace.visited if k in builder.keys}
    current = {builder.keys[k] for k in trace.current if k in builder.keys}
    for node in _all_nodes(root):
        if node.id in current:
            node.mark = "current"
            node.label = ["▶ " + node.label[0], *node.label[1:]]
        elif node.id in visited:
            node.mark = "visited"
    taken = {
        (builder.keys[a], builder.keys[b])
        for a, b in trace.taken
        if a in builder.keys and b in builder.keys
    }
    for edge in builder.edges:
        edge.taken = (edge.source, edge.target) in taken


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


def to_mermaid(workflow: Workflow, trace: Trace | None = None) -> str:
    """A Mermaid flowchart of the workflow (with a run's `trace`: where it went, where it is)."""
    diagram = describe(workflow, trace)
    lines = [f"%% workflow {mermaid_text(diagram.title)}", "flowchart TD"]
    lines.extend(_mermaid_cluster(diagram.root, 1))
    # A fork ("each item", "branch 1") points at its subgraph, not at the start marker inside:
    # an edge to an inner node enters through the subgraph's title and crosses it; an edge to
    # the subgraph ends on its border, above the title.
    opened_by = {c.nodes[0].id: c.id for c in _all_clusters(diagram.root) if c.nodes}
    for edge in diagram.edges:
        arrow = _MERMAID_ARROWS[edge.style]
        label = f'|"{mermaid_text(edge.label)}"|' if edge.label else ""
        target = opened_by.get(edge.target, edge.target) if edge.style == "fork" else edge.target
        lines.append(f"    {edge.source} {arrow}{label} {target}")
    lines.append("    classDef marker fill:#222,stroke:#222,color:#fff")
    lines.append("    classDef compensation stroke-dasharray:4 3")
    markers = [n.id for n in _all_nodes(diagram.root) if n.kind in ("start", "end")]
    undo = [n.id for n in _all_nodes(diagram.root) if n.kind == "compensation"]
    if markers:
        lines.append(f"    class {','.join(markers)} marker")
    if undo:
        lines.append(f"    class {','.join(undo)} compensation")
    if trace is not None:
        lines.extend(_mermaid_trace(diagram))
    return "\n".join(lines) + "\n"


def _mermaid_trace(diagram: Diagram) -> Iterator[str]:
    yield "    classDef visited fill:#d8f5d0,stroke:#2e7d32,stroke-width:2px"
    yield "    classDef current fill:#ffe08a,stroke:#b26a00,stroke-width:4px"
    for mark in ("visited", "current"):
        ids = [n.id for n in _all_nodes(diagram.root) if n.mark == mark]
        if ids:
            yield f"    class {','.join(ids)} {mark}"
    taken = [str(i) for i, edge in enumerate(diagram.edges) if edge.taken]
    if taken:  # links are numbered in the order they are written
        yield f"    linkStyle {','.join(taken)} stroke:#2e7d32,stroke-width:3px"


def _all_clusters(cluster: Cluster) -> Iterator[Cluster]:
    for inner in cluster.clusters:
        yield inner
        yield from _all_clusters(inner)


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


_DOT_MARKS = {
    "visited": 'fillcolor="#d8f5d0", color="#2e7d32", penwidth=2',
    "current": 'fillcolor="#ffe08a", color="#b26a00", penwidth=4',
}


def _dot_marked(attrs: str, mark: str) -> str:
    """A node's attributes, filled to show that the run visited it (or stands there)."""
    style = re.search(r'style=("?)([^",]*)\1', attrs)
    styles = {s for s in (style.group(2).split(",") if style else []) if s and s != "filled"}
    rest = re.sub(r'(, )?(style|fillcolor)=("[^"]*"|[^,]*)', "", attrs).lstrip(", ")
    style_text = ",".join(sorted(styles | {"filled"}))
    return f'{rest}, style="{style_text}", {_DOT_MARKS[mark]}'


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
        if node.mark:
            attrs = _dot_marked(attrs, node.mark)
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


def to_dot(workflow: Workflow, trace: Trace | None = None) -> str:
    """A Graphviz digraph of the workflow (with a run's `trace`: where it went, where it is)."""
    diagram = describe(workflow, trace)
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
        if edge.taken:
            attrs.append('color="#2e7d32", penwidth=2.5')
        if edge.label:
            attrs.append(f'label="{_dot_label([edge.label])}"')
        suffix = f" [{', '.join(attrs)}]" if attrs else ""
        lines.append(f"    {edge.source} -> {edge.target}{suffix};")
    lines.append("}")
    return "\n".join(lines) + "\n"
