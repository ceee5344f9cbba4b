"""The history limit: how many events one segment of a run may record (`history_limit:`).

The default is Temporal's 51,200 events per run; a workflow may set its own within the range.
A light module (no pydantic), so `tideflow status` can read it without the model.
"""

from __future__ import annotations

HISTORY_LIMIT_DEFAULT = 51_200
HISTORY_LIMIT_MIN = 20
HISTORY_LIMIT_MAX = 1_000_000
