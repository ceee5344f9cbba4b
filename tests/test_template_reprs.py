"""Python objects must not leak into run output as their repr (`<function safe_range at
0x7f...>`): a template that turns a function, class, module, macro, generator or the template
reference into text fails its state with an ExpressionError that names the state, the field
and the kind of object, on a real store through the real worker."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import run_cli
from run_helpers import run_to_end, write_workflow

from interpreter import Client

# (template, a word the message must use for the kind of object)
LEAKS = [
    ("x{{ range }}", "function"),
    ("x{{ self }}", "template"),
    ("x{{ dict }}", "class"),
    ("{{ '%s'|format(dict) }}", "class"),
    ("{{ '%s' % range }}", "function"),
    ("{{ 'a' ~ dict }}", "class"),
    ("{{ dict|string }}", "class"),
    ("{{ '{}'.format(range) }}", "function"),
    ("x{{ [1, range] }}", "function"),
    ("x{{ {'k': dict} }}", "class"),
    ("x{{ [1, 2]|map('string') }}", "generator"),
    ("{% macro m() %}{% endmacro %}x{{ m }}", "macro"),
    ("{% for i in [1] %}{{ loop }}{% endfor %}", "loop"),
    ("{{ range|upper }}", "function"),
    ("{{ range|pprint }}", "function"),
]
# Jinja's other globals are not in the sandbox: each is an undefined name, also an error.
NOT_IN_THE_SANDBOX = ["x{{ cycler }}", "x{{ joiner() }}", "x{{ namespace }}", "x{{ lipsum }}"]

WORKFLOW = """
name: leak
states:
  show:
    type: succeed
    output:
      text: {template}
"""


@pytest.fixture
def client(sqlite_url: str) -> Iterator[Client]:
    with Client(sqlite_url) as c:
        yield c


def _run(client: Client, tmp_path: Path, template: str) -> dict[str, str]:
    quoted = '"' + template.replace("\\", "\\\\").replace('"', '\\"') + '"'
    wf = write_workflow(tmp_path, WORKFLOW.format(template=quoted))
    run = run_to_end(client, wf, {})
    assert run.status == "failed", run.output
    assert run.error is not None
    return run.error


@pytest.mark.parametrize(("template", "kind"), LEAKS)
def test_a_python_object_in_text_fails_the_state(
    client: Client, tmp_path: Path, template: str, kind: str
) -> None:
    error = _run(client, tmp_path, template)
    assert error["type"] == "ExpressionError"
    message = error["message"]
    assert "state 'show'" in message and "output" in message
    assert kind in message.lower()
    assert not re.search(r"0x[0-9a-f]{6,}", message), message


@pytest.mark.parametrize("template", NOT_IN_THE_SANDBOX)
def test_jinja_helpers_outside_the_sandbox_are_undefined(
    client: Client, tmp_path: Path, template: str
) -> None:
    error = _run(client, tmp_path, template)
    assert error["type"] == "ExpressionError"
    assert "is undefined" in error["message"] and "state 'show'" in error["message"]


def test_data_still_renders_as_text(client: Client, tmp_path: Path) -> None:
    wf = write_workflow(
        tmp_path,
        """
        name: fine
        states:
          show:
            type: succeed
            output:
              list: "x{{ [1, 'a', none, true, {'k': [2.5]}] }}"
              joined: "{{ [1, 2]|map('string')|join(',') }}"
              formatted: "{{ '%s-%s'|format(1, 'b') }}"
              range: "x{{ range(2)|list }}"
              keys: "x{{ {'a': 1}.keys()|list }}"
        """,
    )
    run = run_to_end(client, wf, {})
    assert run.status == "completed", run.error
    assert run.output == {
        "list": "x[1, 'a', None, True, {'k': [2.5]}]",
        "joined": "1,2",
        "formatted": "1-b",
        "range": "x[0, 1]",
        "keys": "x['a']",
    }


def test_validate_reads_these_templates_without_crashing(tmp_path: Path) -> None:
    lines = ["name: leak", "states:", "  show:", "    type: succeed", "    output:"]
    for index, template in enumerate([t for t, _ in LEAKS] + NOT_IN_THE_SANDBOX):
        quoted = '"' + template.replace('"', '\\"') + '"'
        lines.append(f"      t{index}: {quoted}")
    wf = write_workflow(tmp_path, "\n".join(lines))
    proc = run_cli("validate", str(wf))
    assert proc.returncode in (0, 1), proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
