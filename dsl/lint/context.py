"""What every lint rule gets: the workflow, its source, and the state machines (scopes) in it.

A scope is one state machine: the top level, a parallel branch, or a map body. Transitions may
only name states of their own scope, so most rules work scope by scope.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from dsl.diagnostics import Diagnostic, Severity
from dsl.lint.template_facts import TemplateMemo
from dsl.model import (
    ActivityState,
    AnyState,
    Catcher,
    ChildState,
    ChoiceState,
    ExitHandler,
    MapState,
    ParallelState,
    RetryPolicy,
    Timeouts,
    WaitState,
    Workflow,
)
from dsl.source import JsonPath, SourceDocument

BUILTIN_ACTIVITIES = frozenset({"http"})


def written(block: RetryPolicy | Timeouts) -> dict[str, object]:
    """The keys a settings block gives a value, by field name: what
    `block.model_dump(exclude_none=True)` returns for these flat blocks, read from the instance.
    model_dump would build the class's own serializer on first use (the model defers it), a
    second core schema build in every `tideflow validate` of a file with retry or timeouts."""
    return {key: value for key, value in block if value is not None}


@dataclass
class Scope:
    """One state machine. `path` is the JSON path of the mapping that holds `states`."""

    path: JsonPath
    states: dict[str, AnyState]
    start: str | None
    kind: str  # "workflow", "branch", "map" or "exit" (an on_exit handler; owner is its key)
    parent: Scope | None = None
    owner: str | None = None  # the parallel/map state that holds this scope
    map_names: tuple[str, ...] = ()  # loop names visible here (as-name and index of each map)
    children: list[Scope] = field(default_factory=list)

    def state_path(self, name: str) -> JsonPath:
        return (*self.path, "states", name)

    def first_state(self) -> str | None:
        return self.start if self.start is not None else next(iter(self.states), None)

    def describe(self) -> str:
        if self.kind == "workflow":
            return "the top level"
        if self.kind == "exit":
            return f"exit handler {self.owner!r}"
        if self.kind == "branch":
            index = self.path[-1]
            number = index + 1 if isinstance(index, int) else index
            return f"branch {number} of parallel state {self.owner!r}"
        return f"the body of map state {self.owner!r}"

    def ancestors(self) -> Iterator[Scope]:
        scope: Scope | None = self
        while scope is not None:
            yield scope
            scope = scope.parent


@dataclass(frozen=True)
class Edge:
    """A transition out of a state. `path` locates the target name in the document."""

    target: str
    path: JsonPath
    label: str


def edges_of(scope: Scope, name: str, state: AnyState) -> list[Edge]:
    """Every transition a state can take, in document order."""
    base = scope.state_path(name)
    edges: list[Edge] = []
    if isinstance(state, ChoiceState):
        for index, choice in enumerate(state.choices):
            edges.append(Edge(choice.next, (*base, "choices", index, "next"), "choice next"))
        if state.default is not None:
            edges.append(Edge(state.default, (*base, "default"), "default"))
        return edges
    next_name = getattr(state, "next", None)
    if isinstance(next_name, str):
        edges.append(Edge(next_name, (*base, "next"), "next"))
    if isinstance(state, WaitState) and state.on_timeout is not None:
        edges.append(Edge(state.on_timeout, (*base, "on_timeout"), "on_timeout"))
    for index, catcher in enumerate(catchers_of(state)):
        edges.append(Edge(catcher.next, (*base, "catch", index, "next"), "catch next"))
    return edges


def catchers_of(state: AnyState) -> list[Catcher]:
    if isinstance(state, ActivityState | ChildState | ParallelState | MapState):
        return list(state.catch or [])
    return []


EXIT_KEYS = ("success", "failure", "cancel", "timeout", "always")


def exit_handlers(workflow: Workflow) -> list[tuple[str, ExitHandler]]:
    """The workflow's on_exit handlers that are given, in the order they are listed."""
    on_exit = workflow.on_exit
    if on_exit is None:
        return []
    return [(key, h) for key in EXIT_KEYS if (h := getattr(on_exit, key)) is not None]


def build_scopes(workflow: Workflow) -> list[Scope]:
    """All scopes, parents before children."""
    root = Scope(path=(), states=dict(workflow.states), start=workflow.start, kind="workflow")
    scopes = [root]
    pending = deque([root])
    # Exit handlers start with a copy of the run's vars: the top level is their parent scope.
    for key, handler in exit_handlers(workflow):
        pending.append(
            Scope(
                path=("on_exit", key),
                states=dict(handler.states),
                start=handler.start,
                kind="exit",
                parent=root,
                owner=key,
            )
        )
        root.children.append(pending[-1])
        scopes.append(pending[-1])
    while pending:
        scope = pending.popleft()
        for name, state in scope.states.items():
            base = scope.state_path(name)
            children: list[Scope] = []
            if isinstance(state, ParallelState):
                for index, branch in enumerate(state.branches):
                    children.append(
                        Scope(
                            path=(*base, "branches", index),
                            states=dict(branch.states),
                            start=branch.start,
                            kind="branch",
                            parent=scope,
                            owner=name,
                            map_names=scope.map_names,
                        )
                    )
            elif isinstance(state, MapState):
                loop_names = (state.as_ or "item", "index")
                children.append(
                    Scope(
                        path=base,
                        states=dict(state.states),
                        start=state.start,
                        kind="map",
                        parent=scope,
                        owner=name,
                        map_names=(*scope.map_names, *loop_names),
                    )
                )
            scope.children.extend(children)
            scopes.extend(children)
            pending.extend(children)
    return scopes


@dataclass
class LintContext:
    workflow: Workflow
    document: SourceDocument
    activities: Collection[str] | None
    workflow_dirs: Sequence[Path]
    scopes: list[Scope]
    # Each template's compile verdict, tree and names, worked out once for all template rules.
    templates: TemplateMemo = field(default_factory=TemplateMemo)

    @classmethod
    def create(
        cls,
        workflow: Workflow,
        document: SourceDocument,
        activities: Collection[str] | None,
        workflow_dirs: Sequence[Path],
    ) -> LintContext:
        return cls(workflow, document, activities, workflow_dirs, build_scopes(workflow))

    @property
    def root(self) -> Scope:
        return self.scopes[0]

    def states(self) -> Iterator[tuple[Scope, str, AnyState]]:
        """Every state of every scope."""
        for scope in self.scopes:
            for name, state in scope.states.items():
                yield scope, name, state

    def diagnostic(
        self,
        code: str,
        severity: Severity,
        path: JsonPath,
        message: str,
        hint: str | None = None,
        *,
        key: bool = False,
    ) -> Diagnostic:
        return Diagnostic(
            code=code,
            severity=severity,
            message=message,
            file=self.document.file,
            position=self.document.locate(path, key=key),
            hint=hint,
            path=path,
        )

    def error(
        self, code: str, path: JsonPath, message: str, hint: str | None = None, *, key: bool = False
    ) -> Diagnostic:
        return self.diagnostic(code, Severity.ERROR, path, message, hint, key=key)

    def warning(
        self, code: str, path: JsonPath, message: str, hint: str | None = None, *, key: bool = False
    ) -> Diagnostic:
        return self.diagnostic(code, Severity.WARNING, path, message, hint, key=key)


def did_you_mean(word: str, candidates: Iterable[str]) -> str | None:
    """`did you mean 'x'?` for the closest candidate, or None."""
    import difflib  # only for a finding: a valid file never needs it

    matches = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f"did you mean {matches[0]!r}?" if matches else None


def join_hints(*hints: str | None) -> str | None:
    parts = [hint for hint in hints if hint]
    return " ".join(parts) if parts else None
