"""The activity registry: `@activity("name")` registers a function; modules load by path or name."""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from interpreter.errors import ActivityRegistryError

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class RegisteredActivity:
    name: str
    function: Callable[..., Any]
    is_async: bool
    wants_context: bool  # False when the function takes just the input


_REGISTRY: dict[str, RegisteredActivity] = {}


def activity(name: str) -> Callable[[F], F]:
    """Register a function as the activity `name`.

    The function takes `(ctx, input)` or just `(input)`; it may be sync (run in a thread) or
    async (run on the worker's event loop). Its return value must be JSON-serialisable.
    """
    if not isinstance(name, str) or not name:
        raise ActivityRegistryError("an activity name must be a non-empty string")

    def decorate(function: F) -> F:
        params = [
            p
            for p in inspect.signature(function).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
        if len(params) not in (1, 2):
            raise ActivityRegistryError(
                f"activity {name!r}: {function.__qualname__} must take (ctx, input) or (input)"
            )
        existing = _REGISTRY.get(name)
        if existing is not None and existing.function.__qualname__ != function.__qualname__:
            raise ActivityRegistryError(
                f"activity {name!r} is registered twice "
                f"({existing.function.__module__}.{existing.function.__qualname__} and "
                f"{function.__module__}.{function.__qualname__})",
                hint="give one of them another name",
            )
        _REGISTRY[name] = RegisteredActivity(
            name=name,
            function=function,
            is_async=inspect.iscoroutinefunction(function),
            wants_context=len(params) == 2,
        )
        return function

    return decorate


def get_activity(name: str) -> RegisteredActivity | None:
    return _REGISTRY.get(name)


def registered_names() -> set[str]:
    from interpreter.activities.http import HTTP_ACTIVITY

    return {*_REGISTRY, HTTP_ACTIVITY}


def _load_one(spec: str) -> None:
    path = Path(spec)
    if spec.endswith(".py") or path.is_file():
        if not path.is_file():
            raise ActivityRegistryError(
                f"activities file {spec!r} does not exist",
                hint="pass a .py file or an importable module name to --activities",
            )
        module_name = "tideflow_activities_" + str(abs(hash(str(path.resolve()))))
        if module_name in sys.modules:
            return
        module_spec = importlib.util.spec_from_file_location(module_name, path)
        if module_spec is None or module_spec.loader is None:
            raise ActivityRegistryError(f"cannot load activities file {spec!r}")
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[module_name] = module
        # The file's own directory goes first so it can import its neighbours.
        sys.path.insert(0, str(path.resolve().parent))
        try:
            module_spec.loader.exec_module(module)
        except ActivityRegistryError:
            raise
        except Exception as exc:
            del sys.modules[module_name]
            raise ActivityRegistryError(
                f"activities file {spec!r} failed to load: {type(exc).__name__}: {exc}"
            ) from None
        finally:
            sys.path.remove(str(path.resolve().parent))
        return
    try:
        importlib.import_module(spec)
    except ActivityRegistryError:
        raise
    except ModuleNotFoundError as exc:
        raise ActivityRegistryError(
            f"activities module {spec!r} not found ({exc})",
            hint="pass a .py file path or a module importable from the current directory",
        ) from None
    except Exception as exc:
        raise ActivityRegistryError(
            f"activities module {spec!r} failed to import: {type(exc).__name__}: {exc}"
        ) from None


def load_activity_modules(specs: Iterable[str]) -> set[str]:
    """Import each `.py` file or module name and return every registered activity name."""
    if "" not in sys.path:
        sys.path.insert(0, "")
    for spec in specs:
        _load_one(spec)
    return registered_names()
