"""Rules about waiting and time: which signals a wait names, its deadline, templated limits,
and the time zones the date helpers are given. Every rule is one pass over the states (or the
templates already collected for the template rules), so lint stays linear."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

from dsl.diagnostics import Diagnostic
from dsl.lint.context import LintContext
from dsl.lint.expressions import template_strings
from dsl.model import MapState, WaitState
from dsl.template_text import is_template
from dsl.timefuncs import TimeValueError, zone

# Jinja2 only where a template has a syntax tree: a tree exists only once Jinja parsed it.
if TYPE_CHECKING:
    from jinja2 import nodes

# The helpers whose `tz` argument is a zone name, and its position among the filter's arguments.
_ZONE_ARGUMENT = {"to_time": 0, "start_of_day": 0, "start_of_month": 0, "format_time": 1}


def check_wait_signals(ctx: LintContext) -> Iterator[Diagnostic]:
    """TF233 / TF234: a wait names its signal(s) one way, and no name twice."""
    for scope, name, state in ctx.states():
        if not isinstance(state, WaitState):
            continue
        path = scope.state_path(name)
        if (state.signal is None) == (state.signals is None):
            which = (
                "neither signal nor signals" if state.signal is None else "both signal and signals"
            )
            yield ctx.error(
                "TF233",
                path,
                f"wait state {name!r} has {which}: give one signal, or a list of signals",
                "write `signal: approve` (the result is the payload) or `signals: [approve, "
                "reject]` (the result is {signal, payload})",
                key=True,
            )
        seen: set[str] = set()
        for index, signal in enumerate(state.signals or []):
            if signal in seen:
                yield ctx.error(
                    "TF234",
                    (*path, "signals", index),
                    f"wait state {name!r} lists signal {signal!r} twice",
                    "list each signal once",
                )
            seen.add(signal)


_RESULT_READ = re.compile(r"\bvars\.([A-Za-z_][A-Za-z0-9_]*)\.([A-Za-z_][A-Za-z0-9_]*)")


def check_several_signals_result(ctx: LintContext) -> Iterator[Diagnostic]:
    """TF235 (warning): the result of a wait for several signals is {signal, payload}; a
    template that reads another key of it (`vars.answer.by`) was written for one signal."""
    shaped: dict[str, str] = {}
    for _scope, name, state in ctx.states():
        if isinstance(state, WaitState) and state.signals is not None and state.result:
            shaped[state.result] = name
    if not shaped:
        return
    for _scope, path, text in template_strings(ctx):
        for match in _RESULT_READ.finditer(text):
            var, key = match.groups()
            if var in shaped and key not in ("signal", "payload"):
                yield ctx.warning(
                    "TF235",
                    path,
                    f"vars.{var}.{key}: wait state {shaped[var]!r} waits for several signals, "
                    f"so vars.{var} is {{signal, payload}} and has no key {key!r}",
                    f"read the payload as vars.{var}.payload.{key}, and which signal came as "
                    f"vars.{var}.signal",
                )


def check_wait_deadline(ctx: LintContext) -> Iterator[Diagnostic]:
    """TF250: a wait gives up after a `timeout` or at an `until`, not both."""
    for scope, name, state in ctx.states():
        if isinstance(state, WaitState) and state.timeout is not None and state.until is not None:
            yield ctx.error(
                "TF250",
                (*scope.state_path(name), "until"),
                f"wait state {name!r} has both timeout and until",
                "keep one: `timeout: 2d` (from when the wait starts) or `until: <timestamp>`",
                key=True,
            )


def check_map_concurrency(ctx: LintContext) -> Iterator[Diagnostic]:
    """TF251: a map's concurrency written as text must be a template."""
    for scope, name, state in ctx.states():
        if (
            isinstance(state, MapState)
            and isinstance(state.concurrency, str)
            and not is_template(state.concurrency)
        ):
            yield ctx.error(
                "TF251",
                (*scope.state_path(name), "concurrency"),
                f"concurrency of map state {name!r} is the text {state.concurrency!r}, not a "
                "number or a template",
                "write a whole number such as `concurrency: 5`, or a template such as "
                "'{{ input.parallelism }}'",
            )


def _zone_literals(tree: nodes.Node) -> Iterator[str]:
    from jinja2 import nodes

    for node in tree.find_all(nodes.Filter):
        position = _ZONE_ARGUMENT.get(node.name)
        if position is None:
            continue
        arg: nodes.Expr | None = (
            node.args[position]
            if len(node.args) > position
            else next((kw.value for kw in node.kwargs if kw.key == "tz"), None)
        )
        if isinstance(arg, nodes.Const) and isinstance(arg.value, str):
            yield arg.value


def check_time_zones(ctx: LintContext) -> Iterator[Diagnostic]:
    """TF252: a literal time zone given to a date helper exists."""
    for _scope, path, text in template_strings(ctx):
        if "{" not in text or not any(helper in text for helper in _ZONE_ARGUMENT):
            continue
        facts = ctx.templates(text)
        if facts.tree is None:
            continue
        for name in _zone_literals(facts.tree):
            try:
                zone(name, "time zone")
            except TimeValueError:
                yield ctx.error(
                    "TF252",
                    path,
                    f"the template names the time zone {name!r}, which does not exist",
                    "use an IANA zone name such as UTC, Europe/Paris or America/New_York",
                )
