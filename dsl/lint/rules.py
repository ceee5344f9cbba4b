"""The table of lint rules: every code, its severity, what it checks, and the function.

Codes are stable: a code is never reused for another problem. docs/lint.md documents each one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from dsl.diagnostics import Diagnostic, Severity
from dsl.lint import (
    callbacks,
    data_rules,
    exit_handlers,
    expressions,
    fanout,
    flow,
    references,
    retries,
    saga_rules,
    segments,
    timing,
    updates,
    values,
)
from dsl.lint.context import LintContext

RuleFunction = Callable[[LintContext], Iterator[Diagnostic]]

E = Severity.ERROR
W = Severity.WARNING


@dataclass(frozen=True)
class Rule:
    codes: dict[str, Severity]  # the codes this function yields, with their severity
    summary: str
    check: RuleFunction


RULES: tuple[Rule, ...] = (
    Rule(
        {"TF201": E, "TF203": E}, "transition to a missing state / out of scope", flow.check_targets
    ),
    Rule({"TF202": E}, "start names a missing state", flow.check_start),
    Rule({"TF204": E}, "unreachable state", flow.check_unreachable),
    Rule({"TF205": E}, "no path to an end", flow.check_can_finish),
    Rule({"TF206": E, "TF207": E}, "exactly one of next / end: true", flow.check_next_or_end),
    Rule({"TF208": W}, "loop that never waits", flow.check_busy_loops),
    Rule({"TF209": W}, "choice without default", flow.check_choice_default),
    Rule({"TF210": E, "TF211": E}, "invalid or non-positive duration", values.check_durations),
    Rule({"TF212": E, "TF213": E}, "sleep duration / until", values.check_sleep),
    Rule({"TF214": E, "TF215": E, "TF216": E}, "retry policy", values.check_retry),
    Rule({"TF217": E, "TF218": W}, "activity timeouts", values.check_timeouts),
    Rule({"TF220": E}, "template syntax", expressions.check_template_syntax),
    Rule(
        {"TF221": W, "TF222": W}, "variable never set / out of scope", expressions.check_unset_vars
    ),
    Rule({"TF223": W}, "unknown name in a template", expressions.check_template_names),
    Rule(
        {"TF224": E}, "choice condition is not one expression", expressions.check_choice_conditions
    ),
    Rule({"TF225": E}, "map loop variable hides a built-in name", expressions.check_map_names),
    Rule({"TF227": W}, "template loop past the budget", expressions.check_template_cost),
    Rule(
        {"TF256": E},
        "template in a field that is not a template",
        data_rules.check_literal_templates,
    ),
    Rule({"TF257": E}, "invalid variable path", data_rules.check_var_paths),
    Rule({"TF258": E}, "invalid regular expression or glob", data_rules.check_regex_literals),
    Rule(
        {"TF228": E, "TF229": W},
        "input_schema default or format",
        data_rules.check_input_schema_data,
    ),
    Rule({"TF230": E}, "wait on an undeclared signal", references.check_signals),
    Rule({"TF231": E}, "invalid JSON Schema", references.check_schemas),
    Rule({"TF232": W}, "on_timeout without timeout", values.check_wait_timeout),
    Rule({"TF233": E, "TF234": E}, "wait signal / signals", timing.check_wait_signals),
    Rule(
        {"TF235": W},
        "several signals' result read as a payload",
        timing.check_several_signals_result,
    ),
    Rule({"TF250": E}, "wait with both timeout and until", timing.check_wait_deadline),
    Rule({"TF251": E}, "map concurrency text is not a template", timing.check_map_concurrency),
    Rule({"TF252": E}, "unknown time zone in a date helper", timing.check_time_zones),
    Rule({"TF240": E}, "activity not registered", references.check_activities),
    Rule({"TF241": E}, "child workflow not found", references.check_children),
    Rule({"TF259": E}, "child workflow is invalid", references.check_child_validity),
    Rule({"TF242": W}, "child workflow recursion", references.check_child_cycles),
    Rule({"TF243": E}, 'catch-all "*" not last', values.check_catch_all_last),
    Rule({"TF268": E}, "callback on the built-in http activity", callbacks.check_callback_http),
    Rule(
        {"TF269": W, "TF270": W}, "callback wait without a bound", callbacks.check_callback_bounds
    ),
    Rule(
        {"TF271": W},
        "callback per map item, default concurrency",
        callbacks.check_callback_map_concurrency,
    ),
    Rule({"TF282": E, "TF283": W}, 'retry "*" not last / unreachable', retries.check_retry_order),
    Rule({"TF284": E, "TF285": W}, "retry predicate", retries.check_retry_when),
    Rule(
        {"TF286": E, "TF287": W},
        "compensation in an exit handler",
        exit_handlers.check_handler_states,
    ),
    Rule(
        {"TF288": W, "TF289": W},
        "timeout handler without a run timeout / its own bound",
        exit_handlers.check_timeout_handler,
    ),
    Rule({"TF274": E}, "quorum larger than the branches", fanout.check_quorum_size),
    Rule({"TF275": E}, "tolerated percentage out of range", fanout.check_tolerated_failures),
    Rule({"TF276": E}, "race or quorum on a map without items", fanout.check_empty_race),
    Rule({"TF277": E}, "completion key that does not fit its rule", fanout.check_rule_keys),
    Rule({"TF278": E}, "compensate on a detached child", fanout.check_detached_compensate),
    Rule({"TF279": W}, "catch on a detached child that never runs", fanout.check_detached_catch),
    Rule({"TF280": E}, "parent_close on a waited-for child", fanout.check_parent_close),
    Rule(
        {"TF281": W},
        "detached child with a fixed id in a branch",
        fanout.check_templated_id_detached,
    ),
    Rule(
        {"TF290": E},
        "continue_as_new inside a parallel branch or map body",
        segments.check_continue_as_new_scope,
    ),
    Rule(
        {"TF291": E},
        "continue_as_new input does not satisfy input_schema",
        segments.check_continue_as_new_input,
    ),
    Rule({"TF292": E}, "history_limit out of range", segments.check_history_limit),
    Rule(
        {"TF293": W},
        "on_failure: hold with no compensation to hold",
        saga_rules.check_hold_has_compensations,
    ),
    Rule({"TF262": E}, "update and signal share a name", updates.check_update_names),
    Rule({"TF263": E}, "update validator is not one expression", updates.check_validators),
    Rule({"TF264": W}, "unknown name in an update's template", updates.check_update_templates),
    Rule(
        {"TF265": W, "TF266": W},
        "update that does nothing / message without validator",
        updates.check_update_effects,
    ),
)

CODES: dict[str, Severity] = {code: sev for rule in RULES for code, sev in rule.codes.items()}
