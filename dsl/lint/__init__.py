"""Semantic lint: the checks that need the whole workflow (a valid model) rather than one key.

`lint` runs every rule of `dsl.lint.rules.RULES` and returns their diagnostics in document order.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from pathlib import Path

from dsl.diagnostics import Diagnostic
from dsl.lint.context import LintContext
from dsl.lint.rules import CODES, RULES
from dsl.model import Workflow
from dsl.source import SourceDocument

__all__ = ["CODES", "RULES", "lint"]


def lint(
    workflow: Workflow,
    document: SourceDocument,
    *,
    activities: Collection[str] | None = None,
    workflow_dirs: Sequence[Path] = (),
) -> list[Diagnostic]:
    """All lint findings for a workflow that passed the schema check and built a model.

    `activities`: the registered activity names, when known (else activity names are not
    checked). `workflow_dirs`: extra directories searched for child workflows by name.
    """
    ctx = LintContext.create(workflow, document, activities, workflow_dirs)
    found: list[Diagnostic] = []
    for rule in RULES:
        found.extend(rule.check(ctx))
    found.sort(key=lambda d: (d.position.line, d.position.column, d.code))
    return found
