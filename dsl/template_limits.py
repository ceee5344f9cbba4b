"""What one template evaluation may spend: work, CPU and wall time, and the size of what it builds.

Why: a workflow file is data, yet Jinja is a small programming language. Without bounds one
template can loop for hours (`range(100000)` nested twice), multiply integers to millions of
bits, or build a gigabyte string with `'x'|center(10**9)` before any check on the rendered text
runs. So every evaluation carries a `Budget` (in a context variable, so the sandbox's hooks find
it wherever Jinja calls them) and every operator, filter and method that can build a large value
is checked *before* it allocates (see `dsl.template_checks`).

Exceeding a bound raises `LimitExceeded`; `dsl.templates` turns it into a `TemplateLimit`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

# The default budget of one evaluation, in milliseconds of CPU (TIDEFLOW_TEMPLATE_BUDGET_MS).
DEFAULT_BUDGET_MS = 1000
BUDGET_ENV = "TIDEFLOW_TEMPLATE_BUDGET_MS"
MAX_BUDGET_MS = 600_000
# Wall time may exceed CPU time (a busy machine, other threads holding the GIL), but not by more
# than this factor: an evaluation that waits that long is stopped as well.
WALL_FACTOR = 3
# Units of work (loop iterations, calls, filter applications) per millisecond of budget: about
# what Jinja's compiled code does on one core, so the count stops a template at roughly the same
# point as the clock, and does so on every machine alike.
WORK_PER_MS = 5_000
# Characters (or items) that any one string or list built by an operator, filter or method may
# hold: as much as one value a run keeps (2 MiB of JSON), so `input | tojson` still works.
MAX_BUILT = 2 * 1024 * 1024
# Characters (or items) that one evaluation may build in all, summed over every operation.
# Memory cannot be measured cheaply as it is freed, so this bounds what could be alive at once.
MAX_BUILT_TOTAL = 16_000_000
# Bits of an integer produced by `*` or `**`.
MAX_INT_BITS = 10_000
# How many work units pass between two looks at the clocks (a clock read costs ~1 µs).
_CLOCK_EVERY = 64


class LimitExceeded(Exception):
    """One evaluation went past its budget; `out_of_time` when work or time ran out (as
    opposed to a value that would be too large, which no budget would allow)."""

    def __init__(self, message: str, *, out_of_time: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.out_of_time = out_of_time


class BudgetSettingError(ValueError):
    """TIDEFLOW_TEMPLATE_BUDGET_MS (or --template-budget-ms) holds no valid number."""


def check_budget_ms(value: int) -> int:
    if not 1 <= value <= MAX_BUDGET_MS:
        raise BudgetSettingError(
            f"the template budget must be 1 to {MAX_BUDGET_MS:,} ms, not {value:,}"
        )
    return value


def budget_ms_from_env() -> int:
    """The configured budget: TIDEFLOW_TEMPLATE_BUDGET_MS, else DEFAULT_BUDGET_MS."""
    return _parse_budget(os.environ.get(BUDGET_ENV, ""))


@lru_cache(maxsize=16)  # read for every evaluation; an error is not cached, so it is raised again
def _parse_budget(text: str) -> int:
    text = text.strip()
    if not text:
        return DEFAULT_BUDGET_MS
    try:
        value = int(text)
    except ValueError:
        raise BudgetSettingError(
            f"{BUDGET_ENV}={text!r} is not a whole number of milliseconds"
        ) from None
    return check_budget_ms(value)


@dataclass(slots=True)
class Budget:
    """What one evaluation has left. The clocks start at the first look (after _CLOCK_EVERY
    units of work): nearly every evaluation ends sooner and never pays for reading them."""

    budget_ms: float
    work_left: int
    built_left: int = MAX_BUILT_TOTAL
    until_clock: int = _CLOCK_EVERY
    cpu_deadline: float = 0.0
    wall_deadline: float = 0.0

    @classmethod
    def of(cls, budget_ms: float) -> Budget:
        return cls(budget_ms, int(budget_ms * WORK_PER_MS))

    def spend(self, units: int = 1) -> None:
        self.work_left -= units
        if self.work_left < 0:
            raise LimitExceeded(self._out_of("work"), out_of_time=True)
        self.until_clock -= units
        if self.until_clock <= 0:
            self.until_clock = _CLOCK_EVERY
            self._look_at_the_clocks()

    def _look_at_the_clocks(self) -> None:
        cpu, wall = time.thread_time(), time.perf_counter()
        if not self.cpu_deadline:
            self.cpu_deadline = cpu + self.budget_ms / 1000
            self.wall_deadline = wall + WALL_FACTOR * self.budget_ms / 1000
        elif cpu > self.cpu_deadline:
            raise LimitExceeded(self._out_of("CPU time"), out_of_time=True)
        elif wall > self.wall_deadline:
            raise LimitExceeded(self._out_of("wall time"), out_of_time=True)

    def seconds_left(self) -> float:
        """Wall time left before the budget runs out (starting the clocks if need be): what a
        helper that cannot count its own work (a regular expression) may spend."""
        if not self.cpu_deadline:
            self._look_at_the_clocks()
        return min(self.wall_deadline - time.perf_counter(), self.budget_ms / 1000)

    def build(self, size: int, what: str) -> None:
        """About to build a value of `size` characters or items: refuse it before it exists."""
        if size > MAX_BUILT:
            raise LimitExceeded(f"{what} would be {size:,} long (the limit is {MAX_BUILT:,})")
        self.built_left -= size
        if self.built_left < 0:
            raise LimitExceeded(
                f"{what}: the template built more than {MAX_BUILT_TOTAL:,} characters or items "
                "in all (the limit of one evaluation)"
            )
        self.spend(1 + size // 4096)

    def _out_of(self, what: str) -> str:
        return (
            f"the template ran out of {what}: it needs more than its budget of "
            f"{self.budget_ms:g} ms ({int(self.budget_ms * WORK_PER_MS):,} loop iterations or "
            f"calls); set {BUDGET_ENV} to allow more"
        )


# Set around every render (`dsl.templates.render`). Outside one (Jinja folds constant filters
# while compiling) a hook gets a throw-away default budget, so nothing is ever unbounded.
_CURRENT: ContextVar[Budget | None] = ContextVar("tideflow_template_budget", default=None)


def current() -> Budget:
    budget = _CURRENT.get()
    return Budget.of(DEFAULT_BUDGET_MS) if budget is None else budget


def active() -> bool:
    return _CURRENT.get() is not None


class budget_scope:
    """Evaluate under a fresh budget of `budget_ms` (a class, not @contextmanager: it is
    entered for every evaluation)."""

    __slots__ = ("_budget_ms", "_token")

    def __init__(self, budget_ms: float) -> None:
        self._budget_ms = budget_ms

    def __enter__(self) -> Budget:
        budget = Budget.of(self._budget_ms)
        self._token = _CURRENT.set(budget)
        return budget

    def __exit__(self, *_: object) -> None:
        _CURRENT.reset(self._token)


def counted(iterable: Any) -> Iterator[Any]:
    """Iterate for a `{% for %}` loop, one work unit per item."""
    budget = current()
    for item in iterable:
        budget.spend()
        yield item


def text_size(value: Any, limit: int = MAX_BUILT_TOTAL) -> int:
    """About how many characters str() or JSON of `value` takes; stops counting past `limit`,
    so it costs O(limit) even for a list holding one huge string a million times."""
    total = 0
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            total += len(item)
        elif isinstance(item, dict):
            total += 2 + 4 * len(item)
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            total += 2 + 2 * len(item)
            stack.extend(item)
        elif isinstance(item, bool) or item is None:
            total += 5
        elif isinstance(item, int):
            total += item.bit_length() // 3 + 1
        else:  # floats, ranges, undefined: short texts
            total += 24
        if total > limit:
            return total
    return total
