"""The statuses a run ends in. Apart from interpreter/core/records.py (dataclasses, and the
inspect module they import) so that the CLI's command modules, which offer them as choices,
load without it: `tideflow --help` imports every command module."""

from __future__ import annotations

TERMINAL_STATUSES = frozenset({"completed", "failed", "cancelled", "timed_out", "terminated"})
