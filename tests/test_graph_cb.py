"""Graph export marks callback states (`completion: callback`): Mermaid draws them as a
subroutine box, DOT with a double border, both with "then waits for its callback"."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
from conftest import SAMPLES

from dsl import validate_file
from dsl.graph import to_dot, to_mermaid
from dsl.model import Workflow


def sample() -> Workflow:
    result = validate_file(SAMPLES / "approval_callbacks.yaml")
    assert result.workflow is not None
    return result.workflow


def test_mermaid_marks_each_callback_state() -> None:
    text = to_mermaid(sample())
    marked = re.findall(
        r'^\s+n\d+\[\["(\w+)<br/>[^"]*then waits for its callback(?:<br/>(?:retry|timeout): [^"]*)*"\]\]$',
        text,
        re.M,
    )
    assert sorted(marked) == ["finance", "legal", "manager"]
    assert '("ask_approvers<br/>parallel: 3 branches")' in text  # other states unchanged


def test_dot_marks_each_callback_state() -> None:
    text = to_dot(sample())
    marked = re.findall(
        r'peripheries=2, label="(\w+)\\n[^"]*then waits for its callback(?:\\n(?:retry|timeout): [^"]*)*"',
        text,
    )
    assert sorted(marked) == ["finance", "legal", "manager"]
    assert text.count("peripheries=2") == 3


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz is not installed")
def test_graphviz_accepts_the_callback_sample() -> None:
    svg = subprocess.run(
        ["dot", "-Tsvg"], input=to_dot(sample()), capture_output=True, text=True, check=True
    ).stdout
    assert "then waits for its callback" in svg
