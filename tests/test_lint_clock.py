"""Validate and graph for the clock features: templated durations are checked for syntax and
names (no longer refused), `now` and `state` are names templates know, the clock samples are
clean, and the graph shows several signals, `until` and templated limits."""

from __future__ import annotations

from conftest import SAMPLES
from test_lint import codes, load, run_lint

from dsl import validate_file
from dsl.graph import to_dot, to_mermaid

HEADER = """
    dsl: "1.0"
    name: t
    signals: {approve: {}, reject: {}}
"""


def test_templated_durations_are_checked_for_syntax_and_names() -> None:
    found = run_lint(
        HEADER
        + """
    timeout: "{{ inptu.limit }}"
    defaults:
      retry: {initial_interval: "{{ input.pause }"}
    states:
      call:
        type: activity
        activity: a
        timeout: {start_to_close: "{{ vars.size * 2 }}", heartbeat: "{{ nope }}"}
        next: hold
      hold:
        type: wait
        signal: approve
        timeout: "{{ input.patience | default('1d') }}"
        next: nap
      nap: {type: sleep, until: "{{ now | add_duration(input.gap) }}", next: fan}
      fan:
        type: map
        items: [1]
        concurrency: "{{ input.parallel }"
        states: {one: {type: succeed}}
        end: true
    """
    )
    by_code = sorted((d.code, ".".join(str(p) for p in d.path)) for d in found)
    assert ("TF223", "timeout") in by_code  # inptu
    assert ("TF220", "defaults.retry.initial_interval") in by_code
    assert ("TF223", "states.call.timeout.heartbeat") in by_code  # nope
    assert ("TF220", "states.fan.concurrency") in by_code
    assert ("TF221", "states.call.timeout.start_to_close") in by_code  # vars.size never set
    assert not [d for d in found if d.code == "TF210"]
    assert not [d for d in found if "hold" in str(d.path) or "nap" in str(d.path)]


def test_now_and_state_are_known_names_and_reserved_for_map_loops() -> None:
    found = run_lint(
        HEADER
        + """
    states:
      stamp:
        type: set
        vars: {at: "{{ now }}", name: "{{ state.name }} {{ state.entered_at }}"}
        next: fan
      fan:
        type: map
        items: [1]
        as: now
        states: {one: {type: succeed}}
        end: true
    """
    )
    assert codes(found) == ["TF225"]


def test_the_clock_samples_validate_clean() -> None:
    for name in ("deadline.yaml", "approval.yaml"):
        result = validate_file(SAMPLES / name)
        assert result.ok and result.diagnostics == [], (name, result.diagnostics)


def test_graph_shows_several_signals_until_and_templated_limits() -> None:
    workflow, _ = load(
        """
dsl: "1.0"
name: g
signals: {approve: {}, reject: {}}
states:
  decide:
    type: wait
    signals: [approve, reject]
    until: "{{ input.deadline }}"
    on_timeout: late
    next: fan
  fan:
    type: map
    items: [1]
    concurrency: "{{ input.parallel }}"
    states: {one: {type: succeed}}
    next: hold
  hold: {type: wait, signal: approve, timeout: 90s, end: true}
  late: {type: fail, error: Late}
"""
    )
    mermaid = to_mermaid(workflow)
    assert "wait for one of: approve, reject until {{ input.deadline }}" in mermaid
    assert '|"until"|' in mermaid
    assert "map over items (concurrency {{ input.parallel }})" in mermaid
    assert "wait for signal: approve (timeout 1m30s)" in mermaid
    dot = to_dot(workflow)
    assert "wait for one of: approve, reject until {{ input.deadline }}" in dot
    assert 'label="until"' in dot
