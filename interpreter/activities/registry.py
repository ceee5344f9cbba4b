"""The activity registry: `@activity("name")` registers a function; modules load by path or name."""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import os
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from interpreter.errors import ActivityRegistryError, safe_text

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class RegisteredActivity:
    name: str
    function: Callable[..., Any]
    is_async: bool
    wants_context: bool  # False when the function takes just the input


_REGISTRY: dict[str, RegisteredActivity] = {}
# Activities files load under a made-up module name; messages name the file as the user gave it.
_FILE_OF_MODULE: dict[str, str] = {}


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
        if existing is not None and _identity(existing.function) != _identity(function):
            first, second = _source(existing.function), _source(function)
            if first == second:
                first += f" ({_qualname(existing.function)})"
                second += f" ({_qualname(function)})"
            raise ActivityRegistryError(
                f"activity {name!r} is registered twice: in {first} and {second}",
                hint="give one of them another name, or load only one of the files",
            )
        _REGISTRY[name] = RegisteredActivity(
            name=name,
            function=function,
            is_async=inspect.iscoroutinefunction(function),
            wants_context=len(params) == 2,
        )
        return function

    return decorate


def _qualname(function: Callable[..., Any]) -> str:
    return str(getattr(function, "__qualname__", type(function).__name__))


def _identity(function: Callable[..., Any]) -> tuple[str | None, str]:
    """The same function defined in the same file: a module imported again (by another name,
    or reloaded) registers a new function object for the same activity, which is fine."""
    code = getattr(function, "__code__", None)
    filename = os.path.realpath(code.co_filename) if code is not None else None
    return filename, _qualname(function)


def _source(function: Callable[..., Any]) -> str:
    module = str(getattr(function, "__module__", None) or "?")
    return _FILE_OF_MODULE.get(module, module)


def _describe(exc: BaseException) -> str:
    text = safe_text(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


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
        _FILE_OF_MODULE[module_name] = spec
        # The file's own directory goes first so it can import its neighbours.
        sys.path.insert(0, str(path.resolve().parent))
        loaded = False
        try:
            module_spec.loader.exec_module(module)
            loaded = True
        except ActivityRegistryError:
            raise
        except SystemExit:
            raise _exited(f"activities file {spec!r}") from None
        except Exception as exc:
            raise ActivityRegistryError(
                f"activities file {spec!r} failed to load: {_describe(exc)}"
            ) from None
        finally:
            sys.path.remove(str(path.resolve().parent))
            if not loaded:  # a later attempt loads it afresh
                del sys.modules[module_name]
        return
    try:
        importlib.import_module(spec)
    except ActivityRegistryError:
        raise
    except ModuleNotFoundError as exc:
        if exc.name is not None and spec != exc.name and not spec.startswith(exc.name + "."):
            # The module exists; something it imports does not.
            raise ActivityRegistryError(
                f"activities module {spec!r} failed to import: {_describe(exc)}"
            ) from None
        raise ActivityRegistryError(
            f"activities module {spec!r} not found ({exc.msg})",
            hint="pass a .py file path or a module importable from the current directory",
        ) from None
    except SystemExit:
        raise _exited(f"activities module {spec!r}") from None
    except Exception as exc:
        raise ActivityRegistryError(
            f"activities module {spec!r} failed to import: {_describe(exc)}"
        ) from None


def _exited(what: str) -> ActivityRegistryError:
    # SystemExit would end the worker (or the CLI) silently with the file's exit code.
    return ActivityRegistryError(
        f"{what} called sys.exit() while loading",
        hint='an activities file only defines activities; put script code under `if __name__ == "__main__":`',
    )


def load_activity_modules(specs: Iterable[str]) -> set[str]:
    """Import each `.py` file or module name and return every registered activity name."""
    if "" not in sys.path:
        sys.path.insert(0, "")
    for spec in specs:
        _load_one(spec)
    return registered_names()
