"""Lint of exit handlers and retry lists beyond the fixtures: the rules see inside handlers, and
handlers do not raise false alarms (vars copied from the top level, run.status)."""

from __future__ import annotations

from test_lint import codes, run_lint


def test_rules_run_inside_exit_handlers() -> None:
    found = run_lint(
        """
        dsl: "1.0"
        name: t
        states:
          a: {type: succeed}
        on_exit:
          failure:
            start: nope
            states:
              x: {type: activity, activity: missing.activity, next: y}
              y: {type: sleep, duration: soon, end: true}
        """,
        activities={"known"},
    )
    assert sorted(codes(found)) == ["TF202", "TF210", "TF240"]


def test_handlers_read_top_level_vars_and_the_outcome_without_warnings() -> None:
    found = run_lint(
        """
        dsl: "1.0"
        name: t
        vars: {who: ada}
        states:
          a: {type: set, vars: {n: 1}, end: true}
        on_exit:
          always:
            states:
              x:
                type: activity
                activity: notify
                input: "{{ vars.who }} {{ vars.n }} {{ run.status }} {{ run.error }}"
                retry: [{errors: [Busy], when: "{{ error.details.status == 429 and attempt < 3 }}"}]
                end: true
        """
    )
    assert found == []


def test_a_handler_that_sets_a_var_does_not_leak_it_to_the_top_level() -> None:
    found = run_lint(
        """
        dsl: "1.0"
        name: t
        states:
          a: {type: succeed, output: "{{ vars.note }}"}
        on_exit:
          always:
            states:
              x: {type: set, vars: {note: hi}, end: true}
        """
    )
    assert codes(found) == ["TF222"]


def test_a_when_with_a_policy_of_the_same_errors_keeps_the_next_reachable() -> None:
    found = run_lint(
        """
        dsl: "1.0"
        name: t
        states:
          a:
            type: activity
            activity: poll
            retry:
              - {errors: [HttpError], when: "{{ error.details.status == 202 }}"}
              - {errors: [HttpError], max_attempts: 2}
              - {errors: ["*"], max_attempts: 1}
            end: true
        """
    )
    assert found == []
