"""One YAML example per state type, for the JSON Schema's `markdownDescription` (what an
editor shows in completion and on hover). Each is a `states:` fragment that is a valid
workflow, with a final `done: {type: succeed}` state when it names `done`
(tests/test_schema_editors.py checks it)."""

from __future__ import annotations

STATE_EXAMPLES: dict[str, str] = {
    "activity": """\
charge:
  type: activity
  activity: payments.charge
  input: {order_id: "{{ input.order_id }}"}
  retry: {max_attempts: 5, initial_interval: 1s, backoff: 2}
  timeout: {start_to_close: 30s}
  result: payment
  next: done
""",
    "choice": """\
route:
  type: choice
  choices:
    - when: "{{ input.amount > 100 }}"
      next: done
  default: done
""",
    "set": """\
remember:
  type: set
  vars:
    status: approved
    total: "{{ input.amount * 2 }}"
  next: done
""",
    "sleep": """\
pause:
  type: sleep
  duration: 10m          # or until: "{{ input.at }}"
  next: done
""",
    "wait": """\
wait_for_approval:
  type: wait
  signal: approve
  timeout: 3d
  result: decision
  on_timeout: done
  next: done
""",
    "parallel": """\
both:
  type: parallel
  branches:
    - states:
        a: {type: succeed, output: 1}
    - states:
        b: {type: succeed, output: 2}
  result: outputs
  next: done
""",
    "map": """\
each_item:
  type: map
  items: "{{ input.items }}"
  as: item
  concurrency: 4
  states:
    handle: {type: succeed, output: "{{ vars.item }}"}
  result: handled
  next: done
""",
    "child": """\
ship:
  type: child
  workflow: shipping
  input: {order_id: "{{ input.order_id }}"}
  result: shipment
  next: done
""",
    "compensate": """\
undo:
  type: compensate
  next: done
""",
    "succeed": """\
finished:
  type: succeed
  output: {status: "{{ vars.status | default('ok') }}"}
""",
    "fail": """\
rejected:
  type: fail
  error: Rejected
  message: "order {{ input.order_id }} was rejected"
""",
    "continue_as_new": """\
again:
  type: continue_as_new
  input: {cursor: "{{ vars.cursor | default(0) }}"}
""",
}
