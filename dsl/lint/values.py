"""Rules about values: durations, sleep, retry policies, timeouts, catchers, wait timeouts."""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime

from dsl.diagnostics import Diagnostic
from dsl.durations import DURATION_HELP, DurationError, format_duration, parse_duration
from dsl.lint.context import LintContext, catchers_of, exit_handlers, written
from dsl.lint.template_fields import duration_fields
from dsl.model import (
    ActivityState,
    ChildState,
    RetryPolicy,
    RetrySpec,
    SleepState,
    Timeouts,
    WaitState,
)
from dsl.source import JsonPath
from dsl.template_text import is_template

_RETRY_DURATIONS = duration_fields(RetryPolicy)
_TIMEOUT_DURATIONS = duration_fields(Timeouts)


@dataclass(frozen=True)
class _Settings:
    """A place with its own retry/timeout blocks: the defaults, an activity, a compensation."""

    path: JsonPath
    what: str
    retry: RetrySpec | None
    timeout: Timeouts | None
    is_defaults: bool = False

    def policies(self) -> Iterator[tuple[RetryPolicy, JsonPath]]:
        """Each retry policy of this block with the path of its mapping (one, or a list)."""
        if isinstance(self.retry, list):
            for index, policy in enumerate(self.retry):
                yield policy, (*self.path, "retry", index)
        elif self.retry is not None:
            yield self.retry, (*self.path, "retry")


def default_policy(ctx: LintContext) -> RetryPolicy | None:
    """The one default policy whose keys fill in a state's (none when defaults is a list)."""
    retry = ctx.workflow.defaults.retry if ctx.workflow.defaults else None
    return retry if isinstance(retry, RetryPolicy) else None


def settings_blocks(ctx: LintContext) -> Iterator[_Settings]:
    """Every block with its own retry/timeout settings (the exit handlers' states included)."""
    return _settings(ctx)


def _settings(ctx: LintContext) -> Iterator[_Settings]:
    defaults = ctx.workflow.defaults
    if defaults is not None:
        yield _Settings(("defaults",), "defaults", defaults.retry, defaults.timeout, True)
    for scope, name, state in ctx.states():
        path = scope.state_path(name)
        if isinstance(state, ActivityState):
            yield _Settings(path, f"state {name!r}", state.retry, state.timeout)
        if isinstance(state, ActivityState | ChildState) and state.compensate is not None:
            comp = state.compensate
            yield _Settings(
                (*path, "compensate"), f"the compensation of {name!r}", comp.retry, comp.timeout
            )


def _durations(ctx: LintContext) -> Iterator[tuple[JsonPath, object]]:
    """Every duration written in the workflow, with its path."""
    if ctx.workflow.timeout is not None:
        yield ("timeout",), ctx.workflow.timeout
    for key, handler in exit_handlers(ctx.workflow):
        if handler.timeout is not None:
            yield ("on_exit", key, "timeout"), handler.timeout
    for settings in _settings(ctx):
        for policy, base in settings.policies():
            for key in _RETRY_DURATIONS:
                value = getattr(policy, key)
                if value is not None:
                    yield (*base, key), value
        if settings.timeout is not None:
            for key in _TIMEOUT_DURATIONS:
                value = getattr(settings.timeout, key)
                if value is not None:
                    yield (*settings.path, "timeout", key), value
    for scope, name, state in ctx.states():
        if isinstance(state, SleepState) and state.duration is not None:
            yield (*scope.state_path(name), "duration"), state.duration
        if isinstance(state, WaitState) and state.timeout is not None:
            yield (*scope.state_path(name), "timeout"), state.timeout


def _seconds(value: object) -> float | None:
    """The duration in seconds when it is valid and positive (else other rules report it)."""
    try:
        seconds = parse_duration(value)
    except DurationError:
        return None
    return seconds if seconds > 0 else None


def check_durations(ctx: LintContext) -> Iterator[Diagnostic]:
    """TF210 / TF211: durations parse and are positive."""
    for path, value in _durations(ctx):
        where = ".".join(str(p) for p in path)
        if isinstance(value, str) and is_template(value):
            continue  # evaluated and checked when the state runs (InvalidDuration)
        try:
            seconds = parse_duration(value)
        except DurationError as exc:
            yield ctx.error("TF210", path, f"{where}: {exc}", DURATION_HELP)
            continue
        if seconds <= 0:
            yield ctx.error(
                "TF211",
                path,
                f"{where}: the duration must be greater than zero (got {value!r})",
                "use a positive duration such as 1s, or remove the key to use the default",
            )


def check_sleep(ctx: LintContext) -> Iterator[Diagnostic]:
    """TF212 / TF213: a sleep has exactly one of duration/until; a literal until is a timestamp."""
    for scope, name, state in ctx.states():
        if isinstance(state, WaitState) and state.until is not None:
            yield from _literal_until(ctx, scope.state_path(name), "wait", name, state.until)
        if not isinstance(state, SleepState):
            continue
        path = scope.state_path(name)
        if (state.duration is None) == (state.until is None):
            which = (
                "neither duration nor until"
                if state.duration is None
                else "both duration and until"
            )
            yield ctx.error(
                "TF212",
                path,
                f"sleep state {name!r} has {which}",
                "give exactly one: `duration: 30s`, or `until: <RFC 3339 timestamp>`",
                key=True,
            )
        if state.until is not None:
            yield from _literal_until(ctx, path, "sleep", name, state.until)


def _literal_until(
    ctx: LintContext, path: JsonPath, kind: str, name: str, until: str
) -> Iterator[Diagnostic]:
    """TF213 for one literal `until` (a template is checked when the state runs)."""
    if is_template(until):
        return
    try:
        stamp = datetime.fromisoformat(until)
    except ValueError:
        stamp = None
    if stamp is None or stamp.tzinfo is None:
        yield ctx.error(
            "TF213",
            (*path, "until"),
            f"until of {kind} state {name!r} is not an RFC 3339 timestamp with a "
            f"time zone: {until!r}",
            "write e.g. 2030-01-01T09:00:00Z, or a template such as "
            "'{{ input.deliver_at }}' or \"{{ now | add_duration('1d') }}\"",
        )


def _merged(
    settings: _Settings,
    section: str,
    defaults: RetryPolicy | Timeouts | None,
    own: RetryPolicy | Timeouts | None,
    own_base: JsonPath | None = None,
) -> tuple[dict[str, object], dict[str, JsonPath]]:
    """Effective values (the block's own keys override the defaults key by key), and where
    each one is written."""
    values: dict[str, object] = {}
    where: dict[str, JsonPath] = {}
    own_path = own_base if own_base is not None else (*settings.path, section)
    layers = [(("defaults", section), defaults), (own_path, own)]
    if settings.is_defaults:
        layers = layers[1:]
    for base, block in layers:
        if block is None:
            continue
        for key, value in written(block).items():
            values[key] = value
            where[key] = (*base, key)
    return values, where


def _own(settings: _Settings, where: dict[str, JsonPath], *keys: str) -> bool:
    """Does this block write one of `keys` (so the problem is reported here, not elsewhere)?"""
    return any(key in where and where[key][: len(settings.path)] == settings.path for key in keys)


def _at(settings: _Settings, where: dict[str, JsonPath], first: str, second: str) -> JsonPath:
    """Where to report a clash of two keys: the first one this block writes."""
    return where[first] if _own(settings, where, first) else where[second]


def _clash(
    settings: _Settings,
    values: dict[str, object],
    where: dict[str, JsonPath],
    key: str,
    other: str,
    broken: Callable[[float, float], bool],
) -> tuple[JsonPath, str, str] | None:
    """(where to report, key's value, other's value) when `broken(key, other)` holds for the
    effective durations and this block writes one of the two; else None."""
    first = _seconds(values.get(key))
    second = _seconds(values.get(other))
    if first is None or second is None or not broken(first, second):
        return None
    if not _own(settings, where, key, other):
        return None  # reported where the block that writes them is
    return _at(settings, where, key, other), format_duration(first), format_duration(second)


def check_retry(ctx: LintContext) -> Iterator[Diagnostic]:
    """TF214 / TF215 / TF216: a retry policy that makes sense (each one of a list)."""
    defaults = default_policy(ctx)
    for settings in _settings(ctx):
        for policy, base in settings.policies():
            yield from _check_policy(ctx, settings, defaults, policy, base)


def _check_policy(
    ctx: LintContext,
    settings: _Settings,
    defaults: RetryPolicy | None,
    policy: RetryPolicy,
    base: JsonPath,
) -> Iterator[Diagnostic]:
    values, where = _merged(settings, "retry", defaults, policy, base)
    attempts = policy.max_attempts
    if attempts is not None and attempts < 1:
        yield ctx.error(
            "TF216",
            (*base, "max_attempts"),
            f"retry of {settings.what}: max_attempts must be at least 1 (got {attempts})",
            "max_attempts counts every attempt including the first; 1 means no retry",
        )
    backoff = policy.backoff
    if backoff is not None and backoff < 1:
        yield ctx.error(
            "TF215",
            (*base, "backoff"),
            f"retry of {settings.what}: backoff must be at least 1 (got {backoff:g})",
            "use 1 for a constant interval or e.g. 2 to double it after each retry",
        )
    clash = _clash(settings, values, where, "max_interval", "initial_interval", operator.lt)
    if clash is not None:
        path, maximum, initial = clash
        yield ctx.error(
            "TF214",
            path,
            f"retry of {settings.what}: max_interval ({maximum}) is shorter than "
            f"initial_interval ({initial})",
            "raise max_interval or lower initial_interval (a state's retry overrides "
            "the defaults key by key)",
        )


def check_timeouts(ctx: LintContext) -> Iterator[Diagnostic]:
    """TF217 / TF218: heartbeat shorter than start_to_close; schedule_to_close not shorter."""
    defaults = ctx.workflow.defaults.timeout if ctx.workflow.defaults else None
    for settings in _settings(ctx):
        if settings.timeout is None and not settings.is_defaults:
            continue
        values, where = _merged(settings, "timeout", defaults, settings.timeout)
        clash = _clash(settings, values, where, "heartbeat", "start_to_close", operator.ge)
        if clash is not None:
            path, heartbeat, start_to_close = clash
            yield ctx.error(
                "TF217",
                path,
                f"timeout of {settings.what}: heartbeat ({heartbeat}) is not shorter than "
                f"start_to_close ({start_to_close})",
                "make heartbeat clearly shorter than start_to_close (e.g. a tenth of it), "
                "or remove it",
            )
        clash = _clash(settings, values, where, "schedule_to_close", "start_to_close", operator.lt)
        if clash is not None:
            path, schedule, start_to_close = clash
            yield ctx.warning(
                "TF218",
                path,
                f"timeout of {settings.what}: schedule_to_close ({schedule}) is shorter than "
                f"start_to_close ({start_to_close}), so start_to_close never applies",
                "schedule_to_close bounds all attempts together; make it at least "
                "start_to_close times the attempts you expect",
            )


def check_catch_all_last(ctx: LintContext) -> Iterator[Diagnostic]:
    """TF243: a catch-all "*" hides every catcher after it."""
    for scope, name, state in ctx.states():
        catchers = catchers_of(state)
        for index, catcher in enumerate(catchers[:-1]):
            if "*" in catcher.errors:
                yield ctx.error(
                    "TF243",
                    (*scope.state_path(name), "catch", index, "errors"),
                    f'catcher {index + 1} of state {name!r} catches every error ("*"), so '
                    f"the {len(catchers) - index - 1} catcher(s) after it never run",
                    'move the "*" catcher to the end of the list',
                )


def check_wait_timeout(ctx: LintContext) -> Iterator[Diagnostic]:
    """TF232 (warning): on_timeout without a timeout never fires."""
    for scope, name, state in ctx.states():
        if (
            isinstance(state, WaitState)
            and state.on_timeout is not None
            and state.timeout is None
            and state.until is None
        ):
            yield ctx.warning(
                "TF232",
                (*scope.state_path(name), "on_timeout"),
                f"wait state {name!r} has on_timeout but no timeout, so it never times out",
                "add `timeout: <duration>` or `until: <timestamp>`, or remove on_timeout",
            )
