"""A pinned workflow definition: the typed model plus its canonical source and content hash."""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any

from dsl.durations import parse_duration
from dsl.model import (
    ActivityState,
    AnyState,
    Compensation,
    MapState,
    ParallelState,
    RetryPolicy,
    RetrySpec,
    Timeouts,
    Workflow,
)
from dsl.template_text import is_template, iter_strings
from interpreter.expressions import ExpressionError, evaluate

# Documented defaults (docs/dsl.md): used when neither the state nor `defaults` says otherwise.
DEFAULT_MAX_ATTEMPTS = 3
DEFAULT_INITIAL_INTERVAL = 1.0
DEFAULT_BACKOFF = 2.0
DEFAULT_MAX_INTERVAL = 30.0
DEFAULT_MAP_CONCURRENCY = 10
# What happens to a detached child when its parent ends (as Temporal's default).
DEFAULT_PARENT_CLOSE = "terminate"

# What Definition.constant returns for a value that holds a template (or does not evaluate).
NOT_CONSTANT: Any = object()

# A machine path names a nested state machine: [] is the top level, [["ship", 0]] is branch 0
# of the parallel state `ship`, [["per_item", -1]] the body of the map state `per_item`,
# [[None, "failure"]] the exit handler on_exit.failure.
MachinePath = list[list[Any]]


@dataclass(frozen=True)
class RetryDecision:
    """What a failure leads to: the policy that matched (None: none did), and whether and
    after how long the step is attempted again."""

    rule: int | None
    retry: bool
    delay: float = 0.0
    error: dict[str, Any] | None = None  # set when the `when` predicate itself failed


@dataclass(frozen=True)
class Retry:
    """A step's retry policies, its defaults filled in: this policy, then those in `rest`
    (`retry: [...]`; empty for `retry: {...}`). The first policy whose `errors` and `when`
    match a failure decides, with its own attempt counter and backoff (as Step Functions'
    retriers): once its attempts are used up the step fails, even when a later policy would
    match."""

    max_attempts: int
    initial_interval: float
    backoff: float
    max_interval: float
    non_retryable: tuple[str, ...]
    errors: tuple[str, ...] = ("*",)
    when: str | None = None
    rest: tuple[Retry, ...] = ()

    @property
    def policies(self) -> tuple[Retry, ...]:
        return (self, *self.rest)

    def delay_before(self, next_attempt: int) -> float:
        """Seconds to wait before attempt `next_attempt` (2 = the first retry)."""
        try:
            delay = self.initial_interval * self.backoff ** max(0, next_attempt - 2)
        except OverflowError:  # attempt 1,025 of a doubling policy: long past max_interval
            delay = self.max_interval
        return float(min(delay, self.max_interval))

    def decide(
        self, err: dict[str, Any], counts: list[int], attempt: int, final: bool = False
    ) -> RetryDecision:
        """Apply the policies to failure `err` of attempt `attempt`. `counts[i]` is how many
        failures policy i has matched so far (updated here: the caller stores it). A `final`
        error (raised as non-retryable, such as HttpError) is retried only by a policy that
        names its type: `*` never retries it."""
        for index, rule in enumerate(self.policies):
            named = err["type"] in rule.errors
            if not (named or "*" in rule.errors):
                continue
            if final and not named:
                return RetryDecision(None, False)
            if rule.when is not None:
                try:
                    held = evaluate(
                        rule.when, {"error": err, "attempt": attempt}, where="retry when"
                    )
                except ExpressionError as exc:
                    return RetryDecision(
                        index,
                        False,
                        error=error_record(exc.kind, exc.message, {"cause": err}),
                    )
                if held is not True:
                    continue
            if err["type"] in rule.non_retryable:
                return RetryDecision(index, False)
            counts[index] += 1
            if counts[index] >= rule.max_attempts:
                return RetryDecision(index, False)
            return RetryDecision(index, True, rule.delay_before(counts[index] + 1))
        return RetryDecision(None, False)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "max_attempts": self.max_attempts,
            "initial_interval": self.initial_interval,
            "backoff": self.backoff,
            "max_interval": self.max_interval,
            "non_retryable": list(self.non_retryable),
        }
        if self.errors != ("*",):
            out["errors"] = list(self.errors)
        if self.when is not None:
            out["when"] = self.when
        if self.rest:
            out["rest"] = [rule.to_json() for rule in self.rest]
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Retry:
        return cls(
            max_attempts=data["max_attempts"],
            initial_interval=data["initial_interval"],
            backoff=data["backoff"],
            max_interval=data["max_interval"],
            non_retryable=tuple(data["non_retryable"]),
            errors=tuple(data.get("errors", ("*",))),
            when=data.get("when"),
            rest=tuple(cls.from_json(item) for item in data.get("rest", ())),
        )


def error_record(type_: str, message: str, details: Any = None) -> dict[str, Any]:
    return {"type": type_, "message": message, "details": details}


def _resolve_rule(policy: RetryPolicy | None, base: RetryPolicy | None) -> Retry:
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
        errors=tuple(policy.errors) if policy is not None and policy.errors else ("*",),
        when=policy.when if policy is not None else None,
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
    # Per-definition caches: the model never changes once loaded, so what is derived from it
    # is derived once. Keys are machine paths as tuples, and for policies the id() of the
    # model object (kept alive by the model, so the id cannot be reused).
    _machines: dict[tuple[tuple[str, int], ...], dict[str, AnyState]] = field(
        default_factory=dict, repr=False
    )
    _retries: dict[int, Retry] = field(default_factory=dict, repr=False)
    _timeouts: dict[int, dict[str, float | None]] = field(default_factory=dict, repr=False)
    # id(model value) -> (the value, what it evaluates to when constant, else NOT_CONSTANT).
    _constants: dict[int, tuple[Any, Any]] = field(default_factory=dict, repr=False)
    # (id of a step's policy, id of the defaults', which keys) -> whether a duration in them
    # is a template (see timing.py): asked for every step, answered once.
    _templated: dict[tuple[int, int, tuple[str, ...]], bool] = field(
        default_factory=dict, repr=False
    )

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
        """The definition pinned as `source`: built once per process (validating the model is
        the costly part of loading a run), then shared, as nothing changes a Definition."""
        return _from_source(source, file)

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
            if name is None:  # [None, key]: the exit handler `key` (see core/exits.py)
                handler = getattr(self.workflow.on_exit, index)
                states, start = dict(handler.states), handler.start or next(iter(handler.states))
                continue
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
        # Called several times per step: the key is the path as a tuple (the empty tuple for
        # the top level), not its JSON text.
        key = tuple((step[0], step[1]) for step in path) if path else ()
        states = self._machines.get(key)
        if states is None:
            states = self.machine(path)[0]
            self._machines[key] = states
        return states[name]

    def constant(self, value: Any) -> Any:
        """What `value` (a part of this definition's model, such as a state's input) evaluates
        to when it holds no template and evaluates without error, else NOT_CONSTANT. Such a
        value gives the same data on every visit, so it is rendered and checked only once;
        callers copy the result (a run may change what it is given)."""
        entry = self._constants.get(id(value))
        if entry is None:
            result = NOT_CONSTANT
            if not any(is_template(text) for _, text in iter_strings(value)):
                # One that fails is evaluated (and reported) on each visit, like a template.
                with contextlib.suppress(ExpressionError):
                    result = evaluate(value, {}, where="")
            # The value is kept with its result so that its id() cannot be reused.
            entry = self._constants[id(value)] = (value, result)
        return entry[1]

    def templated(
        self, block: Any, base: Any, keys: tuple[str, ...], check: Callable[[], bool]
    ) -> bool:
        """Whether `block` or `base` (parts of this model) hold a templated duration among
        `keys`: `check()` the first time, then remembered."""
        key = (id(block), id(base), keys)
        found = self._templated.get(key)
        if found is None:
            found = self._templated[key] = check()
        return found

    def retry_for(self, policy: RetrySpec | None) -> Retry:
        """The retry policies of a state (or compensation) with the workflow's defaults filled
        in; immutable, so one instance serves every task."""
        retry = self._retries.get(id(policy))
        if retry is None:
            retry = self._retries[id(policy)] = self._resolve_retry(policy)
        return retry

    def _resolve_retry(self, policy: RetrySpec | None) -> Retry:
        return self.resolve_retry(
            policy, self.workflow.defaults.retry if self.workflow.defaults else None
        )

    @staticmethod
    def resolve_retry(policy: RetrySpec | None, base: RetrySpec | None) -> Retry:
        """A state's own retry wins; without one the defaults' (`base`) apply. Fields a policy
        leaves out come from `base` when that is one policy, else from the documented defaults
        (a list of default policies is used whole or not at all). The durations must be
        literal: core/timing.py evaluates templated ones first."""
        if policy is None:
            policy, base = base, None
        fallback = base if isinstance(base, RetryPolicy) else None
        policies = policy if isinstance(policy, list) else [policy]
        first, *rest = (_resolve_rule(item, fallback) for item in policies)
        return replace(first, rest=tuple(rest))

    def timeouts_for(self, timeouts: Timeouts | None) -> dict[str, float | None]:
        """Timeouts in seconds with the workflow's defaults filled in: a fresh dict each time,
        since it is stored in the task."""
        resolved = self._timeouts.get(id(timeouts))
        if resolved is None:
            resolved = self._timeouts[id(timeouts)] = self._resolve_timeouts(timeouts)
        return dict(resolved)

    def _resolve_timeouts(self, timeouts: Timeouts | None) -> dict[str, float | None]:
        defaults = self.workflow.defaults
        return self.resolve_timeouts(timeouts, defaults.timeout if defaults else None)

    @staticmethod
    def resolve_timeouts(
        timeouts: Timeouts | None, base: Timeouts | None
    ) -> dict[str, float | None]:
        """`timeouts` over `base` (the defaults), key by key, in seconds (literal durations)."""
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
        on_exit = self.workflow.on_exit
        for key in ("success", "failure", "cancel", "timeout", "always"):
            handler = getattr(on_exit, key) if on_exit is not None else None
            if handler is not None:
                walk(dict(handler.states))
        return names


@lru_cache(maxsize=256)
def _from_source(source: str, file: str | None) -> Definition:
    return Definition.from_data(json.loads(source), file)
