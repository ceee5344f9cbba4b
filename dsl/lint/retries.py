"""Rules about lists of retry policies: their order, unreachable policies, the `when` predicate."""

from __future__ import annotations

from collections.abc import Iterator

from dsl.diagnostics import Diagnostic
from dsl.lint.context import LintContext, did_you_mean, join_hints
from dsl.lint.values import settings_blocks
from dsl.model import RetryPolicy
from dsl.template_text import single_expression

# What a retry predicate sees (interpreter/core/definition.py, Retry.decide).
WHEN_NAMES = frozenset({"error", "attempt"})


def _errors(policy: RetryPolicy) -> list[str]:
    return list(policy.errors) if policy.errors else ["*"]


def check_retry_order(ctx: LintContext) -> Iterator[Diagnostic]:
    """TF282 / TF283: in a list of policies "*" stands last, and each policy can be reached."""
    for settings in settings_blocks(ctx):
        if not isinstance(settings.retry, list):
            continue
        policies = settings.retry
        covered: set[str] = set()  # error types an earlier policy (without `when`) takes
        catch_all: int | None = None  # the index of a "*" policy already met (TF282 then)
        for index, policy in enumerate(policies):
            errors = _errors(policy)
            path = (*settings.path, "retry", index)
            if "*" in errors and index < len(policies) - 1:
                yield ctx.error(
                    "TF282",
                    (*path, "errors") if policy.errors else path,
                    f"retry policy {index + 1} of {settings.what} applies to every error "
                    f'("*"{"" if policy.errors else ", as it lists no errors"}), but '
                    f"{len(policies) - index - 1} policy(ies) follow it",
                    'move the "*" policy to the end of the list: the first policy whose '
                    "errors match a failure decides",
                )
            elif catch_all is None and all(e in covered for e in errors):
                yield ctx.warning(
                    "TF283",
                    (*path, "errors") if policy.errors else path,
                    f"retry policy {index + 1} of {settings.what} is never used: earlier "
                    f"policies already retry {', '.join(repr(e) for e in errors)}",
                    "remove it, or move it before the policy that takes its errors (a policy "
                    "with `when` lets the failures it does not accept through)",
                )
            if policy.when is None:
                if "*" in errors:
                    catch_all = index
                covered.update(errors)


def check_retry_when(ctx: LintContext) -> Iterator[Diagnostic]:
    """TF284 / TF285: a retry predicate is one {{ ... }} expression over error and attempt."""
    for settings in settings_blocks(ctx):
        for policy, base in settings.policies():
            if policy.when is None:
                continue
            path = (*base, "when")
            facts = ctx.templates(policy.when)
            if single_expression(policy.when) is None or not facts.readable:
                problem = (
                    facts.error.message
                    if facts.error is not None
                    else "it is not one {{ ... }} expression, so it is never true"
                )
                yield ctx.error(
                    "TF284",
                    path,
                    f"the retry predicate of {settings.what} does not work: {problem}",
                    "write one expression that gives true or false, e.g. "
                    '"{{ error.details.status == 503 }}"',
                )
                continue
            for name in sorted(facts.undeclared - WHEN_NAMES):
                yield ctx.warning(
                    "TF285",
                    path,
                    f"the retry predicate of {settings.what} uses {name!r}, which it cannot see",
                    join_hints(
                        did_you_mean(name, WHEN_NAMES),
                        "a retry predicate sees only error (type, message, details) and "
                        "attempt; it cannot read input or vars",
                    ),
                )
