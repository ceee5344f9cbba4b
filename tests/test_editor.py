"""dsl/editor.py without a server: completion contexts, hover through nested models,
definitions in nested state machines."""

from __future__ import annotations

from dsl import editor
from dsl.diagnostics import Position
from dsl.loader import load_text
from dsl.source import SourceDocument

TEXT = """dsl: "1.0"
name: e
signals:
  approve: {}
  reject: {}
defaults:
  retry:
    max_attempts: 3
states:
  fan:
    type: parallel
    branches:
      - start: one
        states:
          one:
            type: wait
            signals: [approve, reject]
            timeout: 1h
            on_timeout: two
          two:
            type: succeed
    next: pick
  pick:
    type: choice
    choices:
      - when: "{{ vars.ok }}"
        next: fan
    default: fan
  end:
    type: succeed
    description: The happy end.
"""


def _document() -> SourceDocument:
    document = load_text(TEXT, "e.yaml").document
    assert document is not None
    return document


def _line(needle: str) -> tuple[int, str]:
    for number, line in enumerate(TEXT.splitlines(), start=1):
        if needle in line:
            return number, line
    raise AssertionError(needle)


def test_signal_list_completes_declared_signals() -> None:
    number, line = _line("signals: [approve")
    column = line.index("[") + 2
    found = editor.completions(_document(), line, number, column)
    assert [c.label for c in found] == ["approve", "reject"]


def test_references_in_a_branch_complete_the_branch_states_only() -> None:
    number, line = _line("on_timeout: two")
    found = editor.completions(_document(), line, number, len(line) + 1)
    assert [c.label for c in found] == ["one", "two"]
    number, line = _line("default: fan")
    found = editor.completions(_document(), line, number, len(line) + 1)
    assert [c.label for c in found] == ["fan", "pick", "end"]


def test_a_key_that_takes_no_name_completes_nothing() -> None:
    number, line = _line("timeout: 1h")
    assert editor.completions(_document(), line, number, len(line) + 1) == []


def test_hover_walks_nested_models() -> None:
    number, line = _line("max_attempts")
    found = editor.hover(_document(), number, line.index("max") + 2)
    assert found is not None
    assert found.text.startswith("**max_attempts**: Total attempts including the first")
    number, line = _line("when:")
    found = editor.hover(_document(), number, line.index("when") + 1)
    assert found is not None and "true or false" in found.text


def test_definition_of_branch_start_and_top_level_references() -> None:
    number, line = _line("start: one")
    assert editor.definition(_document(), number, line.index("one") + 1) == Position(15, 11)
    number, line = _line("next: fan")
    assert editor.definition(_document(), number, line.index("fan") + 2) == Position(10, 3)
    number, line = _line("type: succeed")
    assert editor.definition(_document(), number, line.index("succeed") + 1) is None


def test_hover_on_a_reference_describes_the_state() -> None:
    number, line = _line("default: fan")
    found = editor.hover(_document(), number, line.index("fan") + 1)
    assert found is not None and found.text == "**fan**: a state of type `parallel`"
    text = TEXT.replace("default: fan", "default: end")
    document = load_text(text, "e.yaml").document
    assert document is not None
    found = editor.hover(document, number, line.index("fan") + 1)
    assert found is not None and found.text.endswith("\n\nThe happy end.")


def test_every_state_name_field_of_the_model_is_a_reference_key() -> None:
    """A new StateName field in dsl/model.py must be completed and resolved too."""
    import re
    from pathlib import Path

    import dsl.model

    source = Path(dsl.model.__file__).read_text(encoding="utf-8")
    fields = set(re.findall(r"(?m)^\s+(\w+): StateName\b", source))
    assert fields and fields <= editor.STATE_REFERENCE_KEYS, fields


def test_a_wait_completes_declared_updates_after_the_signals() -> None:
    text = TEXT.replace("defaults:", "updates:\n  bump: {}\ndefaults:")
    document = load_text(text, "e.yaml").document
    assert document is not None
    line = next(t for t in text.splitlines() if "signals: [approve" in t)
    number = text.splitlines().index(line) + 1
    found = editor.completions(document, line, number, line.index("[") + 2)
    assert [c.label for c in found] == ["approve", "reject", "bump"]
