"""A pinned workflow definition: the typed model plus its canonical source and content hash."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from dsl.durations import parse_duration
from dsl.model import (
    ActivityState,
    AnyState,
    Compensation,
    MapState,
    ParallelState,
    RetryPolicy,
    Timeouts,
    Workflow,
)

# Documented defaults (docs/dsl.md): used when neither the state nor `defaults` says otherwise.
DEFAULT_MAX_ATTEMPTS = 3
DEFAULT_INITIAL_INTERVAL = 1.0
DEFAULT_BACKOFF = 2.0
DEFAULT_MAX_INTERVAL = 30.0
DEFAULT_MAP_CONCURRENCY = 10

# A machine path names a nested state machine: [] is the top level, [["ship", 0]] is branch 0
# of the parallel state `ship`, [["per_item", -1]] the body of the map state `per_item`.
MachinePath = list[list[Any]]


@dataclass(frozen=True)
class Retry:
    max_attempts: int
    initial_interval: float
    backoff: float
    max_interval: float
    non_retryable: tuple[str, ...]

    def delay_before(self, next_attempt: int) -> float:
        """Seconds to wait before attempt `next_attempt` (2 = the first retry)."""
        try:
            delay = self.initial_interval * self.backoff ** max(0, next_attempt - 2)
        except OverflowError:  # attempt 1,025 of a doubling policy: long past max_interval
            delay = self.max_interval
        return float(min(delay, self.max_interval))

    def to_json(self) -> dict[str, Any]:
        return {
            "max_attempts": self.max_attempts,
            "initial_interval": self.initial_interval,
            "backoff": self.backoff,
            "max_interval": self.max_interval,
            "non_retryable": list(self.non_retryable),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Retry:
        return cls(
            max_attempts=data["max_attempts"],
            initial_interval=data["initial_interval"],
            backoff=data["backoff"],
            max_interval=data["max_interval"],
            non_retryable=tuple(data["non_retryable"]),
        )


def canonical_json(data: Any) -> str:
    # Key order is kept, not sorted: the first listed state is the default start state.
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False)


def _seconds(value: Any) -> float | None:
    return None if value is None else parse_duration(value)


@dataclass
class Definition:
    workflow: Workflow
    source: str  # canonical JSON of the document
    hash: str
    file: str | None = None
    _machines: dict[str, dict[str, AnyState]] = field(default_factory=dict, repr=False)

    @classmethod
    def from_data(cls, data: Any, file: str | None = None) -> Definition:
        source = canonical_json(data)
        return cls(
            workflow=Workflow.model_validate(data),
            source=source,
            hash=hashlib.sha256(source.encode()).hexdigest(),
            file=file,
        )

    @classmethod
    def from_source(cls, source: str, file: str | None = None) -> Definition:
        return cls.from_data(json.loads(source), file)

    @property
    def name(self) -> str:
        return self.workflow.name

    @property
    def version(self) -> str | None:
        v = self.workflow.version
        return None if v is None else str(v)

    def machine(self, path: MachinePath) -> tuple[dict[str, AnyState], str]:
        """The states and the start state of the machine at `path`."""
        states: dict[str, AnyState] = dict(self.workflow.states)
        start = self.workflow.first_state()
        for name, index in path:
            owner = states[name]
            if isinstance(owner, ParallelState):
                branch = owner.branches[index]
                states, start = dict(branch.states), branch.start or next(iter(branch.states))
            elif isinstance(owner, MapState):
                states, start = dict(owner.states), owner.start or next(iter(owner.states))
            else:
                raise KeyError(f"{name} has no nested machine")
        return states, start

    def state(self, path: MachinePath, name: str) -> AnyState:
        key = canonical_json(path)
        states = self._machines.get(key)
        if states is None:
            states = self.machine(path)[0]
            self._machines[key] = states
        return states[name]

    def retry_for(self, policy: RetryPolicy | None) -> Retry:
        base = self.workflow.defaults.retry if self.workflow.defaults else None

        def pick(attr: str, default: Any) -> Any:
            for source in (policy, base):
                if source is not None and getattr(source, attr) is not None:
                    return getattr(source, attr)
            return default

        return Retry(
            max_attempts=int(pick("max_attempts", DEFAULT_MAX_ATTEMPTS)),
            initial_interval=parse_duration(pick("initial_interval", DEFAULT_INITIAL_INTERVAL)),
            backoff=float(pick("backoff", DEFAULT_BACKOFF)),
            max_interval=parse_duration(pick("max_interval", DEFAULT_MAX_INTERVAL)),
            non_retryable=tuple(pick("non_retryable", ())),
        )

    def timeouts_for(self, timeouts: Timeouts | None) -> dict[str, float | None]:
        base = self.workflow.defaults.timeout if self.workflow.defaults else None
        out: dict[str, float | None] = {}
        for attr in ("start_to_close", "schedule_to_close", "heartbeat"):
            value = None
            for source in (timeouts, base):
                if source is not None and getattr(source, attr) is not None:
                    value = getattr(source, attr)
                    break
            out[attr] = _seconds(value)
        return out

    def activity_names(self) -> set[str]:
        names: set[str] = set()

        def walk(states: dict[str, AnyState]) -> None:
            for state in states.values():
                if isinstance(state, ActivityState):
                    names.add(state.activity)
                comp: Compensation | None = getattr(state, "compensate", None)
                if comp is not None:
                    names.add(comp.activity)
                if isinstance(state, ParallelState):
                    for branch in state.branches:
                        walk(dict(branch.states))
                if isinstance(state, MapState):
                    walk(dict(state.states))

        walk(dict(self.workflow.states))
        return names
