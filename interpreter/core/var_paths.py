"""Writing a value into the variables at a dotted path (`result: order.payment`,
`set: {vars: {"order.status": ...}}`).

Pure and copy-on-write: a frame's vars may be shared with the frames it was copied to (a
parallel branch, a map iteration), so every object along the path is copied, never changed.
Missing objects on the way are created; a path through something that is not an object
(`order` is a text) is an error the state can catch.
"""

from __future__ import annotations

from typing import Any


class VarPathError(Exception):
    """A value cannot be stored at its path; `message` says where and why."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def is_path(name: str) -> bool:
    return "." in name


def assign(vars_: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of `vars_` with `value` at `path` (`a` or `a.b.c`)."""
    keys = path.split(".")
    if len(keys) == 1:
        return {**vars_, path: value}
    copies: list[dict[str, Any]] = [vars_]
    node: Any = vars_
    for depth, key in enumerate(keys[:-1]):
        node = node.get(key) if isinstance(node, dict) else None
        if node is None:
            node = {}
        elif not isinstance(node, dict):
            where = "vars." + ".".join(keys[: depth + 1])
            raise VarPathError(f"cannot store vars.{path}: {where} is {_kind(node)}, not an object")
        copies.append(node)
    new: Any = value
    for key, container in zip(reversed(keys), reversed(copies), strict=True):
        new = {**container, key: new}
    result: dict[str, Any] = new
    return result


def assign_all(vars_: dict[str, Any], values: dict[str, Any], state: str) -> dict[str, Any]:
    """A set state's values, in order: a key with a dot is a path, others are names. A path
    through a non-object is an ExpressionError of the state."""
    from interpreter.expressions import ExpressionError

    if not any(is_path(key) for key in values):
        return {**vars_, **values}
    result = vars_
    for key, value in values.items():
        try:
            result = assign(result, key, value)
        except VarPathError as exc:
            raise ExpressionError(f"state {state!r}, vars: {exc.message}") from None
    return result


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a text"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__
