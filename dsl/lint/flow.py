"""Rules about transitions: targets, scopes, next/end, reachability, loops."""

from __future__ import annotations

from collections.abc import Iterator

from dsl.diagnostics import Diagnostic
from dsl.lint.context import Edge, LintContext, Scope, did_you_mean, edges_of, join_hints
from dsl.model import (
    FLOW_STATES,
    ActivityState,
    AnyState,
    ChildState,
    ChoiceState,
    MapState,
    ParallelState,
    SleepState,
    WaitState,
)


def _first_owners(ctx: LintContext) -> dict[str, Scope]:
    """State name -> the first scope (in `ctx.scopes` order) that has a state of that name."""
    owners: dict[str, Scope] = {}
    for scope in ctx.scopes:
        for name in scope.states:
            owners.setdefault(name, scope)
    return owners


def check_targets(ctx: LintContext) -> Iterator[Diagnostic]:
    """TF201 / TF203: every transition names a state of its own scope."""
    owners: dict[str, Scope] | None = None  # built at the first dangling target: one pass
    for scope in ctx.scopes:
        for name, state in scope.states.items():
            for edge in edges_of(scope, name, state):
                if edge.target in scope.states:
                    continue
                if owners is None:
                    owners = _first_owners(ctx)
                elsewhere = owners.get(edge.target)
                if elsewhere is not None:
                    yield ctx.error(
                        "TF203",
                        edge.path,
                        f"{edge.label} of state {name!r} ({scope.describe()}) names "
                        f"{edge.target!r}, which belongs to {elsewhere.describe()}",
                        "a transition can only go to a state of the same state machine; "
                        "leave a branch or map body with end: true (or a succeed state) and "
                        "continue from the parallel/map state's next",
                    )
                else:
                    yield ctx.error(
                        "TF201",
                        edge.path,
                        f"{edge.label} of state {name!r} names {edge.target!r}, "
                        f"which is not a state of {scope.describe()}",
                        join_hints(
                            did_you_mean(edge.target, scope.states),
                            "use the name of a state listed under the same `states`",
                        ),
                    )


def check_start(ctx: LintContext) -> Iterator[Diagnostic]:
    """TF202: `start` names a state of its scope."""
    for scope in ctx.scopes:
        if scope.start is not None and scope.start not in scope.states:
            yield ctx.error(
                "TF202",
                (*scope.path, "start"),
                f"start names {scope.start!r}, which is not a state of {scope.describe()}",
                join_hints(
                    did_you_mean(scope.start, scope.states),
                    "name one of its states, or drop `start` to begin at the first state listed",
                ),
            )


def check_next_or_end(ctx: LintContext) -> Iterator[Diagnostic]:
    """TF206 / TF207: a non-terminal state has exactly one of next or end: true."""
    for scope, name, state in ctx.states():
        if not isinstance(state, FLOW_STATES):
            continue
        path = scope.state_path(name)
        has_next = state.next is not None
        has_end = state.end is True
        if not has_next and not has_end:
            yield ctx.error(
                "TF206",
                path,
                f"state {name!r} has neither next nor end: true",
                f"add `next: <state>` to continue, or `end: true` to end {scope.describe()} here",
                key=True,
            )
        elif has_next and has_end:
            yield ctx.error(
                "TF207",
                (*path, "end"),
                f"state {name!r} has both next and end: true",
                "keep only one: `next` to continue, or `end: true` to stop here",
            )


def _graph(scope: Scope) -> dict[str, list[str]]:
    """Transitions inside a scope, restricted to targets that exist there."""
    return {
        name: [e.target for e in edges_of(scope, name, state) if e.target in scope.states]
        for name, state in scope.states.items()
    }


def _reachable(scope: Scope, start: str) -> set[str]:
    graph = _graph(scope)
    seen = {start}
    pending = [start]
    while pending:
        for target in graph[pending.pop()]:
            if target not in seen:
                seen.add(target)
                pending.append(target)
    return seen


def check_unreachable(ctx: LintContext) -> Iterator[Diagnostic]:
    """TF204: every state can be reached from the start of its scope."""
    for scope in ctx.scopes:
        start = scope.first_state()
        if start is None or start not in scope.states:
            continue  # TF202 already
        reachable = _reachable(scope, start)
        for name in scope.states:
            if name not in reachable:
                yield ctx.error(
                    "TF204",
                    scope.state_path(name),
                    f"state {name!r} can never be reached from {start!r} in {scope.describe()}",
                    "point a next/default/catch at it, or delete it",
                    key=True,
                )


def _ends_by_itself(scope: Scope, state: AnyState, edges: list[Edge]) -> bool:
    if not isinstance(state, (*FLOW_STATES, ChoiceState)):
        return True  # succeed / fail
    if isinstance(state, FLOW_STATES) and (state.end is True or state.next is None):
        return True  # ends here, or TF206 reports it
    # A dangling target is reported by TF201/TF203; do not pile a second error on it.
    return any(edge.target not in scope.states for edge in edges)


def check_can_finish(ctx: LintContext) -> Iterator[Diagnostic]:
    """TF205: from every reachable state some path reaches an end."""
    for scope in ctx.scopes:
        start = scope.first_state()
        if start is None or start not in scope.states:
            continue
        edges = {name: edges_of(scope, name, state) for name, state in scope.states.items()}
        finishing = {
            name
            for name, state in scope.states.items()
            if _ends_by_itself(scope, state, edges[name])
        }
        # A state can finish when one of its transitions leads to a state that can: walk the
        # transitions backwards from the states that end by themselves (linear, where a
        # fixed-point loop over all states would take one pass per state of a long chain).
        sources: dict[str, list[str]] = {name: [] for name in scope.states}
        for name, out in edges.items():
            for edge in out:
                if edge.target in sources:
                    sources[edge.target].append(name)
        pending = list(finishing)
        while pending:
            for source in sources[pending.pop()]:
                if source not in finishing:
                    finishing.add(source)
                    pending.append(source)
        reachable = _reachable(scope, start)
        for name in scope.states:
            if name in reachable and name not in finishing:
                yield ctx.error(
                    "TF205",
                    scope.state_path(name),
                    f"no path from state {name!r} reaches an end of {scope.describe()}",
                    "give the loop a way out: a choice branch or catch that leads to a state "
                    "with end: true, or a succeed/fail state",
                    key=True,
                )


def _strongly_connected(graph: dict[str, list[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative (state machines can be long)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    counter = 0
    for root in graph:
        if root in index:
            continue
        work: list[tuple[str, int]] = [(root, 0)]
        while work:
            node, child_index = work.pop()
            if child_index == 0:
                index[node] = low[node] = counter
                counter += 1
                stack.append(node)
                on_stack.add(node)
            targets = graph[node]
            if child_index < len(targets):
                work.append((node, child_index + 1))
                target = targets[child_index]
                if target not in index:
                    work.append((target, 0))
                elif target in on_stack:
                    low[node] = min(low[node], index[target])
                continue
            if low[node] == index[node]:
                component: list[str] = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                components.append(component)
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
    return components


_BLOCKING = (ActivityState, SleepState, WaitState, ChildState)


def _blocks(state: AnyState) -> bool:
    """Does running this state wait for something outside the engine?"""
    if isinstance(state, _BLOCKING):
        return True
    if isinstance(state, ParallelState):
        return any(_blocks(s) for b in state.branches for s in b.states.values())
    if isinstance(state, MapState):
        return any(_blocks(s) for s in state.states.values())
    return False


def check_busy_loops(ctx: LintContext) -> Iterator[Diagnostic]:
    """TF208 (warning): a cycle with no activity, sleep, wait or child spins."""
    for scope in ctx.scopes:
        graph = _graph(scope)
        order = {name: index for index, name in enumerate(scope.states)}
        for component in _strongly_connected(graph):
            members = sorted(component, key=order.__getitem__)
            is_cycle = len(members) > 1 or members[0] in graph[members[0]]
            if not is_cycle or any(_blocks(scope.states[m]) for m in members):
                continue
            names = ", ".join(repr(m) for m in members)
            yield ctx.warning(
                "TF208",
                scope.state_path(members[0]),
                f"the loop through {names} contains no activity, sleep, wait or child: "
                "it would spin without waiting for anything",
                "add a sleep (polling interval) or a wait to the loop, or make sure a "
                "choice leaves it after a bounded number of rounds",
                key=True,
            )


def check_choice_default(ctx: LintContext) -> Iterator[Diagnostic]:
    """TF209 (warning): a choice without default fails when no condition holds."""
    for scope, name, state in ctx.states():
        if isinstance(state, ChoiceState) and state.default is None:
            yield ctx.warning(
                "TF209",
                scope.state_path(name),
                f"choice state {name!r} has no default: the run fails when no condition holds",
                "add `default: <state>` for the remaining cases",
                key=True,
            )
