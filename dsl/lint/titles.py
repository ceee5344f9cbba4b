"""One line per lint code: what the problem is. The same words head the table in docs/lint.md
(tests/test_sarif.py compares them), and SARIF output uses them as each rule's description, so
every code needs its own line and no two codes may share one."""

from __future__ import annotations

TITLES: dict[str, str] = {
    "TF201": "a transition names a state that does not exist",
    "TF202": "`start` names a state that does not exist",
    "TF203": "a transition leaves its scope (branch, map body, top level)",
    "TF204": "a state can never be reached",
    "TF205": "no path from a state reaches an end",
    "TF206": "a state has neither `next` nor `end: true`",
    "TF207": "a state has both `next` and `end: true`",
    "TF208": "a loop that never waits for anything (it would spin)",
    "TF209": "a choice without `default`",
    "TF210": "a value that is not a duration",
    "TF211": "a zero or negative duration",
    "TF212": "a sleep with neither or both of `duration` / `until`",
    "TF213": "a sleep `until` that is not an RFC 3339 timestamp",
    "TF214": "retry `max_interval` shorter than `initial_interval`",
    "TF215": "retry `backoff` below 1",
    "TF216": "retry `max_attempts` below 1",
    "TF217": "`heartbeat` not shorter than `start_to_close`",
    "TF218": "`schedule_to_close` shorter than `start_to_close`",
    "TF220": "a template with a Jinja2 syntax error",
    "TF221": "a template reads `vars.X` that nothing sets",
    "TF222": "a template reads `vars.X` that is only set in another scope",
    "TF223": "a template uses a name that does not exist",
    "TF224": "a choice condition that is not one `{{ ... }}` expression",
    "TF225": "a map loop variable that hides a built-in name",
    "TF227": "a template whose loops cannot finish within the template budget",
    "TF230": "a wait on a signal not declared under `signals`",
    "TF231": "`input_schema` or a signal schema is not a valid JSON Schema",
    "TF232": "a wait with `on_timeout` but no `timeout`",
    "TF240": "an activity (or compensation) that is not registered",
    "TF241": "a child workflow that cannot be found",
    "TF242": "a workflow that starts itself through child states",
    "TF243": 'a catch-all `"*"` that is not the last catcher',
    "TF268": "`completion: callback` on the built-in `http` activity",
    "TF269": "a callback wait that no timeout bounds",
    "TF270": "a callback wait that only `heartbeat` bounds",
    "TF271": "a callback per map item with the default concurrency (10)",
}
