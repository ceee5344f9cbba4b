"""Activities: the registry, the context passed to them, and the built-in `http`."""

from interpreter.activities.context import ActivityContext
from interpreter.activities.http import HTTP_ACTIVITY
from interpreter.activities.registry import (
    RegisteredActivity,
    activity,
    get_activity,
    load_activity_modules,
    registered_names,
)

__all__ = [
    "HTTP_ACTIVITY",
    "ActivityContext",
    "RegisteredActivity",
    "activity",
    "get_activity",
    "load_activity_modules",
    "registered_names",
]
