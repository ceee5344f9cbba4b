"""Rules about `updates:` (TF262-TF267): names, validators, the names their templates use, and
updates that could never do anything."""

from __future__ import annotations

from collections.abc import Iterator

from dsl.diagnostics import Diagnostic
from dsl.lint.context import LintContext, did_you_mean, join_hints
from dsl.lint.expressions import BUILTIN_NAMES
from dsl.model import WaitState
from dsl.template_text import GLOBAL_NAMES, is_template, iter_strings, single_expression

UPDATE_NAMES = frozenset({"payload"})  # an update's templates also see its payload


def check_update_names(ctx: LintContext) -> Iterator[Diagnostic]:
    """TF262: an update and a signal never share a name (a wait of that name would not say
    which one it takes)."""
    signals = ctx.workflow.signals or {}
    for name in ctx.workflow.updates or {}:
        if name in signals:
            yield ctx.error(
                "TF262",
                ("updates", name),
                f"{name!r} is declared both as a signal and as an update",
                "rename one of them: a wait for that name would take either, and callers "
                "could not tell which one they send",
                key=True,
            )


def check_validators(ctx: LintContext) -> Iterator[Diagnostic]:
    """TF263: a validator accepts only when it evaluates to the boolean true, so it must be
    one `{{ ... }}` expression (plain text renders to a string, which always rejects)."""
    for name, update in (ctx.workflow.updates or {}).items():
        validator = update.validator
        if validator is None or single_expression(validator) is not None:
            continue
        if ctx.templates(validator).error:
            continue  # TF220
        inner = validator if not is_template(validator) else "..."
        yield ctx.error(
            "TF263",
            ("updates", name, "validator"),
            f"the validator of update {name!r} is not a single {{{{ ... }}}} expression "
            f"({validator!r}): it renders to a string, so it would reject every update",
            f"write the condition as one expression: validator: '{{{{ {inner} }}}}'",
        )


def check_update_templates(ctx: LintContext) -> Iterator[Diagnostic]:
    """TF264 (warning): an update's template uses a name it never sees."""
    known = BUILTIN_NAMES | UPDATE_NAMES | GLOBAL_NAMES
    for name, update in (ctx.workflow.updates or {}).items():
        fields = [(field, getattr(update, field)) for field in ("validator", "message", "returns")]
        fields += [(f"vars.{key}", value) for key, value in (update.vars or {}).items()]
        for field, value in fields:
            if value is None:
                continue
            base = ("updates", name, *field.split(".", 1))
            for path, text in iter_strings(value, base):
                if not is_template(text):
                    continue
                facts = ctx.templates(text)
                if not facts.readable:
                    continue  # TF220
                for unknown in sorted(facts.undeclared - known):
                    extra = " (args are a query's, not an update's)" if unknown == "args" else ""
                    yield ctx.warning(
                        "TF264",
                        path,
                        f"the {field} of update {name!r} uses {unknown!r}, which an update's "
                        f"templates do not see{extra}",
                        join_hints(
                            did_you_mean(unknown, known),
                            "an update's templates see input, vars, run and payload (the "
                            "update's data); variables are read as vars.<name>",
                        ),
                    )


def check_update_effects(ctx: LintContext) -> Iterator[Diagnostic]:
    """TF265 (warning): an update that sets no vars, returns nothing and wakes no wait does
    nothing. TF266 (warning): a rejection message without a validator is never shown."""
    updates = ctx.workflow.updates or {}
    if not updates:
        return
    waited = {
        name
        for _, _, state in ctx.states()
        if isinstance(state, WaitState)
        for name in [state.signal, *(state.signals or [])]
        if name is not None
    }
    for name, update in updates.items():
        if not update.vars and update.returns is None and name not in waited:
            yield ctx.warning(
                "TF265",
                ("updates", name),
                f"update {name!r} sets no vars, returns nothing and no wait waits for it: "
                "applying it changes nothing",
                "give it vars: to set, returns: to answer with, or a wait state with "
                f"signal: {name}",
                key=True,
            )
        if update.message is not None and update.validator is None:
            yield ctx.warning(
                "TF266",
                ("updates", name, "message"),
                f"update {name!r} has a rejection message but no validator: the message is "
                "never shown",
                "add validator: '{{ ... }}' (the condition that accepts the update), or "
                "remove message",
                key=True,
            )
