"""The typed model of a workflow file (pydantic v2).

The committed JSON Schema (`schemas/workflow.schema.json`) is generated from these classes
(`python -m dsl.schema_export`), so the two cannot drift; a test compares them.
Durations stay as written (`30s`, `PT1M`, 5): lint checks them and `dsl.durations` parses them.

No `from __future__ import annotations` here: pydantic would then compile and evaluate each of
the ~150 field annotations from its string when the classes are made (a tenth of the model's
import). The few that name `State` before it is defined are quoted, and resolved when the
workflow validator is built (defer_build below).
"""

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

# What a duration string may be, for editors (the JSON Schema's `pattern`): a template (checked
# when the state runs), a number of seconds, compact units (1h30m) or ISO 8601 (PT1H30M), as
# dsl/durations.py parses them. The tideflow schema check leaves these limits to lint (TF210,
# TF211: clearer messages); `x-tideflow-lint` names the keywords lint owns (dsl/schema_check.py).
DURATION_PATTERN = (
    r"^(?:[\s\S]*\{[{%#][\s\S]*"
    r"|\s*[+-]?(?:\d[\d_]*(?:\.[\d_]*)?|\.\d[\d_]*)(?:[eE][+-]?\d+)?\s*"
    r"|\s*(?:\d+(?:\.\d+)?(?:[mM][sS]|[sSmMhHdDwW]))+\s*"
    r"|\s*[pP](?=[\d.]*[wWdD]|[tT]\d)(?:\d+(?:\.\d+)?[wW])?(?:\d+(?:\.\d+)?[dD])?"
    r"(?:[tT](?:\d+(?:\.\d+)?[hH])?(?:\d+(?:\.\d+)?[mM])?(?:\d+(?:\.\d+)?[sS])?)?\s*)$"
)
_LINT_OWNED = "x-tideflow-lint"

Duration = Annotated[
    Annotated[
        str,
        Field(
            json_schema_extra={
                "pattern": DURATION_PATTERN,
                _LINT_OWNED: {"pattern": "TF210", "exclusiveMinimum": "TF211"},
            }
        ),
    ]
    | int
    | Annotated[float, Field(json_schema_extra={"exclusiveMinimum": 0})],
    Field(
        description="A duration: 100ms, 30s, 5m, 2h, 7d, combinations like 1h30m, "
        "ISO 8601 (PT1H30M), a number of seconds, or a template giving one (evaluated when "
        "the state runs)."
    ),
]
StateName = Annotated[str, Field(description="The name of a state in the same state machine.")]
VarName = Annotated[
    str,
    Field(
        description="A variable name: the value is stored as vars.<name>.",
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
    ),
]
VarPath = Annotated[
    str,
    Field(
        description="Where the value is stored: a variable name (vars.<name>), or a dotted "
        "path into a nested object (order.payment stores vars.order.payment).",
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$",
    ),
]
Template = Annotated[
    Any,
    Field(
        description="Any JSON value; strings may be Jinja2 templates. A string that is exactly "
        "one {{ ... }} yields the native value."
    ),
]


class _Strict(BaseModel):
    # defer_build: each class's validator is built on first use, not at import. Validating a
    # workflow builds only Workflow's (its nested models are part of it), instead of 28
    # validators that each repeat their subtree (5% of `tideflow validate`'s instructions),
    # and commands that import the model without validating pay nothing. The forward
    # references (`State` in Branch, MapState...) resolve then too.
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, defer_build=True)


class RetryPolicy(_Strict):
    """How failed activity attempts are retried."""

    max_attempts: int | None = Field(
        None,
        description="Total attempts including the first; 1 means no retry. Default 3.",
        json_schema_extra={"minimum": 1, _LINT_OWNED: {"minimum": "TF216"}},
    )
    initial_interval: Duration | None = Field(
        None, description="Wait before the first retry. Default 1s."
    )
    backoff: float | None = Field(
        None,
        description="Multiplier applied to the interval after each retry (>= 1). Default 2.",
        json_schema_extra={"minimum": 1, _LINT_OWNED: {"minimum": "TF215"}},
    )
    max_interval: Duration | None = Field(
        None, description="Upper bound for the wait between attempts. Default 30s."
    )
    non_retryable: list[str] | None = Field(None, description="Error types that are never retried.")
    errors: list[str] | None = Field(
        None,
        description='The error types this policy retries, or "*" for any (the default). In a '
        'list of policies the first one whose errors (and `when`) match a failure decides; "*" '
        "may only stand in the last one.",
        min_length=1,
    )
    when: str | None = Field(
        None,
        description="A retry predicate: one {{ ... }} expression over `error` (type, message, "
        "details) and `attempt`; the policy applies only when it is true.",
    )


RetrySpec = Annotated[
    RetryPolicy | Annotated[list[RetryPolicy], Field(min_length=1)],
    Field(
        description="One retry policy, or an ordered list of policies by error type, each with "
        "its own attempt counter and backoff."
    ),
]


class Timeouts(_Strict):
    """Time limits of an activity."""

    start_to_close: Duration | None = Field(None, description="Limit for one attempt.")
    schedule_to_close: Duration | None = Field(
        None, description="Limit for all attempts together, retry waits included."
    )
    heartbeat: Duration | None = Field(
        None,
        description="An attempt that does not heartbeat within this interval fails with "
        "HeartbeatTimeout. Must be shorter than start_to_close.",
    )


class Defaults(_Strict):
    """Settings that apply to every activity and compensation unless overridden."""

    retry: RetrySpec | None = Field(None, description="Default retry policy (or list).")
    timeout: Timeouts | None = Field(None, description="Default activity timeouts.")


class SignalDef(_Strict):
    """A signal the run accepts."""

    schema_: dict[str, Any] | None = Field(
        None, alias="schema", description="JSON Schema the signal payload must satisfy."
    )
    description: str | None = Field(None, description="What the signal means.")


class UpdateDef(_Strict):
    """An update the run accepts: a checked, durable request that changes the run's top-level
    vars (and/or wakes a wait of its name) and returns a value to the caller."""

    schema_: dict[str, Any] | None = Field(
        None, alias="schema", description="JSON Schema the update payload must satisfy."
    )
    description: str | None = Field(None, description="What the update does.")
    validator: str | None = Field(
        None,
        description="One {{ ... }} expression over vars, input, run and payload: false (or "
        "an error) rejects the update, changing nothing.",
    )
    message: Template = Field(
        None, description="The rejection message when the validator is false (template)."
    )
    vars: dict[VarName, Template] | None = Field(
        None, description="Top-level variables to set (templates over vars, input, run, payload)."
    )
    returns: Template = Field(
        None, description="The value returned to the caller, rendered after vars are set."
    )


class Catcher(_Strict):
    """Handles errors of a state by moving to another state."""

    errors: list[str] = Field(
        description='Error types this catcher handles, or "*" for any.', min_length=1
    )
    result: VarPath | None = Field(
        None, description="Store the error {type, message, details} as vars.<result>."
    )
    next: StateName = Field(description="The state to go to when the error is caught.")


class Compensation(_Strict):
    """The saga undo step, recorded when the step completes."""

    activity: str = Field(description="The activity that undoes the step.")
    input: Template = Field(None, description="Input, rendered when the step completes.")
    retry: RetrySpec | None = Field(None, description="Retry policy (or list) of the compensation.")
    timeout: Timeouts | None = Field(None, description="Timeouts of the compensation.")


class _StateBase(_Strict):
    description: str | None = Field(None, description="Free text for people.")


class _Flow(_StateBase):
    next: StateName | None = Field(None, description="The state that follows this one.")
    end: bool | None = Field(
        None, description="true: this state ends its state machine (instead of next)."
    )


class ActivityState(_Flow):
    """Runs a registered activity (a Python function) or the built-in `http`."""

    type: Literal["activity"] = Field(description="State type.")
    activity: str = Field(description="A registered activity name, or the built-in http.")
    input: Template = Field(None, description="The activity input.")
    result: VarPath | None = Field(None, description="Store the result as vars.<result>.")
    timeout: Timeouts | None = Field(None, description="Timeouts (override defaults).")
    retry: RetrySpec | None = Field(
        None, description="Retry policy, or a list of policies by error (overrides defaults)."
    )
    compensate: Compensation | None = Field(None, description="The saga undo step.")
    catch: list[Catcher] | None = Field(None, description="Error handlers, tried in order.")
    completion: Literal["return", "callback"] | None = Field(
        None,
        description="return (default): the activity's return value is the result. callback: "
        "the activity gets ctx.callback_token, sends it out and returns; the state then waits "
        "until someone completes that token (tideflow complete TOKEN). start_to_close bounds "
        "the whole wait, heartbeat the gap between heartbeats.",
    )


class Choice(_Strict):
    """One branch of a choice."""

    when: str = Field(description="A template that evaluates to true or false.")
    next: StateName = Field(description="The state to go to when `when` is true.")


class ChoiceState(_StateBase):
    """Goes to the first choice whose condition is true, else to default."""

    type: Literal["choice"] = Field(description="State type.")
    choices: list[Choice] = Field(description="Conditions, tried in order.", min_length=1)
    default: StateName | None = Field(None, description="The state when no condition holds.")


class SetState(_Flow):
    """Sets variables."""

    type: Literal["set"] = Field(description="State type.")
    vars: dict[str, Template] = Field(description="Variables to set (templates allowed).")


class SleepState(_Flow):
    """Waits for a duration or until a timestamp (a durable timer)."""

    type: Literal["sleep"] = Field(description="State type.")
    duration: Duration | None = Field(None, description="How long to sleep (template allowed).")
    until: str | None = Field(None, description="An RFC 3339 timestamp (template allowed).")


class WaitState(_Flow):
    """Waits for a signal, or for the first of several."""

    type: Literal["wait"] = Field(description="State type.")
    signal: str | None = Field(
        None,
        description="The signal to wait for (declared under signals); the result is its payload.",
    )
    signals: list[str] | None = Field(
        None,
        description="Wait for the first of several signals (instead of signal); the result is "
        "{signal, payload}.",
        min_length=1,
    )
    timeout: Duration | None = Field(
        None, description="Give up after this long (template allowed)."
    )
    until: str | None = Field(
        None,
        description="Give up at this RFC 3339 timestamp (template allowed); instead of timeout.",
    )
    result: VarPath | None = Field(
        None, description="Store the payload (or {signal, payload}) as vars.<result>."
    )
    on_timeout: StateName | None = Field(
        None, description="The state after a timeout; without it the timeout fails with Timeout."
    )


class Branch(_Strict):
    """A small state machine inside a parallel state."""

    start: StateName | None = Field(None, description="The first state; default the first listed.")
    states: dict[str, "State"] = Field(description="The branch's states.", min_length=1)


Percentage = Annotated[
    str, Field(description="A percentage, e.g. 10% or 12.5%.", pattern=r"^[0-9]+(\.[0-9]+)?%$")
]


class Completion(_Strict):
    """When a parallel or map state is done: all branches (the default), the first to
    succeed (a race), or at least N successes (a quorum); the rest are then cancelled."""

    rule: Literal["all", "first", "quorum"] = Field(
        "all",
        description="all: every branch/item (default); first: the first success wins and the "
        "others are cancelled; quorum: done after min_successes successes.",
    )
    min_successes: int | None = Field(
        None, description="quorum: the number of successes needed (at least 1).", ge=1
    )
    tolerated_failures: Annotated[int, Field(ge=0)] | Percentage | None = Field(
        None,
        description="Failures tolerated before the state fails: a count (>= 0) or a "
        "percentage of the branches/items ('10%'). Default: 0 for all, unlimited for first "
        "and quorum.",
    )


class ParallelState(_Flow):
    """Runs branches concurrently and joins them."""

    type: Literal["parallel"] = Field(description="State type.")
    branches: list[Branch] = Field(description="The branches.", min_length=1)
    result: VarPath | None = Field(
        None, description="Store the list of branch outputs (branch order) as vars.<result>."
    )
    completion: Completion | None = Field(
        None, description="When the state is done (default: all branches/items succeed)."
    )
    outcomes: VarName | None = Field(
        None,
        description="Store what each branch/item did (succeeded, failed, cancelled) and why "
        "the state ended as vars.<outcomes>.",
    )
    catch: list[Catcher] | None = Field(None, description="Error handlers, tried in order.")


class MapState(_Flow):
    """Runs a state machine once per item."""

    type: Literal["map"] = Field(description="State type.")
    items: Template = Field(description="The items: a list, or a template yielding one.")
    as_: VarName | None = Field(
        None, alias="as", description="Name of the loop variable (default item)."
    )
    concurrency: Annotated[int, Field(ge=1)] | str | None = Field(
        None,
        description="Iterations in flight at once (default 10); a template giving a whole "
        "number is evaluated when the map starts.",
    )
    start: StateName | None = Field(None, description="The first state; default the first listed.")
    states: dict[str, "State"] = Field(description="The iteration's states.", min_length=1)
    result: VarPath | None = Field(
        None, description="Store the per-item outputs (item order) as vars.<result>."
    )
    completion: Completion | None = Field(
        None, description="When the state is done (default: all branches/items succeed)."
    )
    outcomes: VarName | None = Field(
        None,
        description="Store what each branch/item did (succeeded, failed, cancelled) and why "
        "the state ended as vars.<outcomes>.",
    )
    catch: list[Catcher] | None = Field(None, description="Error handlers, tried in order.")


class ChildState(_Flow):
    """Starts a child workflow and waits for its output (or, detached, goes on at once)."""

    type: Literal["child"] = Field(description="State type.")
    workflow: str = Field(description="A workflow name or a relative file path.")
    input: Template = Field(None, description="The child's input.")
    id: str | None = Field(None, description="Child run id template (default derived).")
    result: VarPath | None = Field(None, description="Store the child's output as vars.<result>.")
    compensate: Compensation | None = Field(None, description="The saga undo step.")
    catch: list[Catcher] | None = Field(None, description="Error handlers, tried in order.")
    detached: bool | None = Field(
        None,
        description="true: start the child and go on at once (the result is the child's run "
        "id); parent_close says what happens to it when this run ends.",
    )
    parent_close: Literal["abandon", "cancel", "terminate"] | None = Field(
        None,
        description="A detached child, when this run ends: abandon (it runs on), cancel (it is "
        "asked to cancel) or terminate (default; it ends at once).",
    )


class CompensateState(_Flow):
    """Runs the compensations recorded so far (newest first), then goes on."""

    type: Literal["compensate"] = Field(description="State type.")


class SucceedState(_StateBase):
    """Ends the state machine successfully."""

    type: Literal["succeed"] = Field(description="State type.")
    output: Template = Field(None, description="The output (templates allowed).")


class FailState(_StateBase):
    """Fails the run (compensations run first, newest first)."""

    type: Literal["fail"] = Field(description="State type.")
    error: str = Field(description="The error type (template allowed, e.g. a caught error's type).")
    message: str | None = Field(None, description="The error message (template allowed).")
    details: Template = Field(None, description="Extra error details (templates allowed).")


class ContinueAsNewState(_StateBase):
    """Ends this segment of the run and starts the same workflow again, under the same run id
    and pinned definition, with a new input and a fresh history."""

    type: Literal["continue_as_new"] = Field(description="State type.")
    input: Template = Field(
        None,
        description="The next segment's input (templates allowed); default: this segment's input.",
    )


State = Annotated[
    ActivityState
    | ChoiceState
    | SetState
    | SleepState
    | WaitState
    | ParallelState
    | MapState
    | ChildState
    | CompensateState
    | SucceedState
    | FailState
    | ContinueAsNewState,
    Field(discriminator="type"),
]

FLOW_STATES = (
    ActivityState,
    SetState,
    SleepState,
    WaitState,
    ParallelState,
    MapState,
    ChildState,
    CompensateState,
)
TERMINAL_STATES = (SucceedState, FailState, ContinueAsNewState)
CATCHING_STATES = (ActivityState, ChildState, ParallelState, MapState)


class ExitHandler(_Strict):
    """A small state machine that runs once the run's outcome is known (see on_exit)."""

    start: StateName | None = Field(None, description="The first state; default the first listed.")
    states: dict[str, State] = Field(description="The handler's states.", min_length=1)
    timeout: Duration | None = Field(
        None,
        description="How long the handler may take; past it the handler fails with Timeout "
        "(recorded; the run's outcome stays). Default: no limit.",
    )


class OnExit(_Strict):
    """Exit handlers: run after compensation, once the outcome is known; they see run.status,
    run.error and run.output and cannot change the outcome."""

    success: ExitHandler | None = Field(None, description="Runs when the run completed.")
    failure: ExitHandler | None = Field(None, description="Runs when the run failed.")
    cancel: ExitHandler | None = Field(None, description="Runs when the run was cancelled.")
    timeout: ExitHandler | None = Field(
        None, description="Runs when the run exceeded its whole-run timeout."
    )
    always: ExitHandler | None = Field(
        None, description="Runs last, whatever the outcome (except terminate)."
    )


class Saga(_Strict):
    """What a failure does with the compensations recorded so far."""

    on_failure: Literal["compensate", "hold"] = Field(
        "compensate",
        description="compensate (default): a failed run runs its compensations newest first "
        "before it ends. hold: it ends failed with its compensations held, so it can be "
        "retried after a fix (`tideflow retry`) or given up (`tideflow compensate` runs them). "
        "Cancellation compensates either way.",
    )


class Workflow(_Strict):
    """A tideflow workflow: a durable state machine."""

    model_config = ConfigDict(json_schema_extra={"patternProperties": {"^x-": {}}})

    @model_validator(mode="before")
    @classmethod
    def _drop_extensions(cls, data: Any) -> Any:
        """Top-level keys starting with `x-` are the author's own (shared snippets for YAML
        anchors, tool settings): allowed, and ignored."""
        if isinstance(data, dict) and any(isinstance(k, str) and k.startswith("x-") for k in data):
            return {
                k: v for k, v in data.items() if not (isinstance(k, str) and k.startswith("x-"))
            }
        return data

    schema_ref: str | None = Field(
        None, alias="$schema", description="Optional: the JSON Schema this file follows."
    )
    dsl: Literal["1.0"] = Field(description='The DSL version; "1.0".')
    name: str = Field(
        description="The workflow name: letters, digits, _ . -",
        pattern=r"^[A-Za-z0-9_.\-]+$",
    )
    version: int | str | None = Field(None, description="The workflow's own version.")
    description: str | None = Field(None, description="What the workflow does.")
    input_schema: dict[str, Any] | None = Field(
        None, description="A JSON Schema the run's input must satisfy."
    )
    vars: dict[str, Template] | None = Field(
        None, description="Initial variables (templates allowed)."
    )
    output: Template = Field(None, description="The run's output when it ends via end: true.")
    timeout: Duration | None = Field(None, description="Whole-run timeout.")
    defaults: Defaults | None = Field(None, description="Defaults for activities.")
    signals: dict[str, SignalDef] | None = Field(
        None, description="Signals the run accepts, each with a payload schema."
    )
    queries: dict[str, Template] | None = Field(
        None, description="Named read-only views of the run (templates; args: the caller's)."
    )
    updates: dict[str, UpdateDef] | None = Field(
        None, description="Updates the run accepts: validated, applied once, returning a value."
    )
    on_exit: OnExit | None = Field(
        None,
        description="Exit handlers by outcome (success, failure, cancel, timeout, always); "
        "terminate runs none.",
    )
    saga: Saga | None = Field(
        None, description="Saga settings: what a failure does with the recorded compensations."
    )
    history_limit: int | None = Field(
        None,
        description="The most events one segment of a run may record (default 51200, "
        "allowed 20 to 1000000); at the cap the run fails with HistoryLimitExceeded. "
        "Use a continue_as_new state to start a fresh segment.",
    )
    start: StateName | None = Field(None, description="The first state; default the first listed.")
    states: dict[str, State] = Field(description="The states, by name.", min_length=1)

    def first_state(self) -> str:
        return self.start or next(iter(self.states))


AnyState = (
    ActivityState
    | ChoiceState
    | SetState
    | SleepState
    | WaitState
    | ParallelState
    | MapState
    | ChildState
    | CompensateState
    | SucceedState
    | FailState
    | ContinueAsNewState
)
