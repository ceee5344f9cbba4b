"""Size checks that run *before* a template operation builds its value.

Each check gets the operation's arguments and tells the current budget how large the result
would be (`Budget.build`), which refuses it when that is too much. Estimates err on the large
side: refusing a template that would have just fitted is fine, allocating a gigabyte is not.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable, ItemsView, Iterator, KeysView, Mapping, ValuesView
from functools import wraps
from types import ModuleType
from typing import Any

from jinja2.runtime import LoopContext, Macro, TemplateReference, Undefined

from dsl.template_limits import MAX_BUILT, MAX_INT_BITS, LimitExceeded, current, text_size

# %-format fields: flags, width, precision (`*` takes them from the arguments).
_PRINTF_FIELD = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?[hlL]?([a-zA-Z%])")
# Numbers in a str.format spec: its width and precision (and a digit used as the fill, which
# only makes the estimate larger).
_SPEC_NUMBER = re.compile(r"\d+")


class NotText(Exception):
    """A template is about to turn a Python object that is not JSON data (a function, class,
    macro, generator...) into text: its repr would leak into the run, memory address and all.
    `message` says what kind of object it was."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _kind_of(value: Any) -> str:
    if isinstance(value, type):
        return f"the class {value.__name__!r}"
    if isinstance(value, ModuleType):
        return "a module"
    if isinstance(value, Macro):
        return f"the macro {value.name!r} (call it: {value.name}(...))"
    if isinstance(value, TemplateReference):
        return "the template reference `self`"
    if isinstance(value, LoopContext):
        return "the loop object (use loop.index, loop.first, ...)"
    if isinstance(value, Iterator):
        return "a generator (write `| list` to get its items)"
    if callable(value):
        return "a function (call it, or leave it out)"
    return f"a Python {type(value).__name__} object"


_DATA_VIEWS = (list, tuple, range, KeysView, ValuesView, ItemsView)


def check_text(value: Any, *, iterators: bool = False) -> None:
    """Before `value` becomes text (output, `~`, `%`, `format`, `|string`...): it must be JSON
    data (lists and mappings of them too), else NotText. Undefined values raise their own
    error when turned into text. `iterators`: a lazy sequence is fine (a filter that reads it
    item by item, like join)."""
    if iterators and isinstance(value, Iterator):
        return
    stack = [value]
    while stack:
        item = stack.pop()
        if item is None or isinstance(item, str | bool | int | float | Undefined):
            continue
        if isinstance(item, Mapping):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, _DATA_VIEWS):
            stack.extend(item)
        else:
            raise NotText(f"{_kind_of(item)} cannot be turned into text or JSON data")


def _size_of(value: Any) -> int:
    return len(value) if isinstance(value, str) else text_size(value)


def _all_args_size(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> int:
    return sum(_size_of(a) for a in args) + sum(_size_of(v) for v in kwargs.values())


def printf_size(template: str, args: Any) -> int:
    """Upper bound of `template % args`."""
    values = (
        args.values() if isinstance(args, Mapping) else args if isinstance(args, tuple) else (args,)
    )
    arg_size = sum(_size_of(v) for v in values)
    size = len(template)
    for match in _PRINTF_FIELD.finditer(template):
        width, precision, _kind = match.groups()
        if "*" in (width, precision):
            raise LimitExceeded("a '*' width or precision in a %-format is not allowed here")
        size += int(width or 0) + int(precision or 0) + arg_size
    return size


def str_format_size(template: str, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> int:
    """Upper bound of `template.format(*args, **kwargs)` (each field may show any argument)."""
    arg_size = _all_args_size(args, kwargs)
    size = 0
    try:
        fields = list(string.Formatter().parse(template))
    except ValueError:
        return len(template)  # str.format raises the same error
    for literal, field, spec, _conversion in fields:
        size += len(literal)
        if field is None:
            continue
        if spec and "{" in spec:
            raise LimitExceeded("a nested {} in a format spec is not allowed here")
        size += sum(int(number) for number in _SPEC_NUMBER.findall(spec or "")) + arg_size
    return size


def _check_str_method(owner: str | bytes, name: str, args: tuple[Any, ...], kw: Any) -> None:
    """Methods of str (and bytes, which `encode` makes) that can make their result larger."""
    size: int | None = None
    if name in ("center", "ljust", "rjust", "zfill"):
        width = args[0] if args else kw.get("width", 0)
        size = max(len(owner), width if isinstance(width, int) else 0)
    elif name == "expandtabs":
        tab = args[0] if args else kw.get("tabsize", 8)
        tabs = owner.count("\t") if isinstance(owner, str) else owner.count(b"\t")
        size = len(owner) + tabs * max(0, tab if isinstance(tab, int) else 0)
    elif name == "replace" and len(args) >= 2:
        old, new = args[0], args[1]
        if isinstance(old, str | bytes) and isinstance(new, str | bytes):
            count = owner.count(old) if old else len(owner) + 1  # type: ignore[arg-type]
            if len(args) > 2 and isinstance(args[2], int) and args[2] >= 0:
                count = min(count, args[2])
            size = len(owner) + count * max(0, len(new) - len(old))
    elif name == "join" and args:
        items = args[0]
        if isinstance(items, list | tuple | str | Mapping):
            size = sum(_size_of(i) for i in items) + len(owner) * max(0, len(items) - 1)
        else:  # an iterator: its items cannot be counted without making them
            raise LimitExceeded("join() needs a list here (write `| list` first)")
    elif name in ("format", "format_map") and isinstance(owner, str):
        if name == "format_map":
            size = str_format_size(owner, (), args[0] if args else {})
        else:
            size = str_format_size(owner, args, kw)
    elif name == "translate":
        # A table can map one character to any text: at most each character becomes the
        # longest replacement.
        table = args[0] if args else None
        longest = 1
        if isinstance(table, Mapping):
            longest = max([1, *(_size_of(v) for v in table.values() if v is not None)])
        size = len(owner) * longest
    elif name in ("encode", "upper", "lower", "title", "capitalize", "swapcase", "casefold"):
        # Case mappings may grow a character to three, UTF-8 to four bytes; ASCII stays as is.
        size = len(owner) * (1 if owner.isascii() else 4)
    if size is not None:
        current().build(size, f"{type(owner).__name__}.{name}()")


def check_call(obj: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
    """Before a template calls `obj` (a method or a global): refuse what would be too big."""
    current().spend()
    obj = getattr(obj, "__wrapped__", obj)  # the sandbox wraps str.format in a function
    owner = getattr(obj, "__self__", None)
    name = getattr(obj, "__name__", "")
    if isinstance(owner, str | bytes):
        if name in ("format", "format_map"):
            check_text((args, kwargs))
        _check_str_method(owner, name, args, kwargs)
    elif owner is dict and name == "fromkeys" and args:
        keys = args[0]
        count = len(keys) if hasattr(keys, "__len__") else MAX_BUILT + 1
        value = args[1] if len(args) > 1 else None
        current().build(count * (1 + text_size(value, MAX_BUILT)), "dict.fromkeys()")


def _filter_check(name: str) -> Callable[..., None] | None:
    """The pre-check of filter `name`, called with the filter's own arguments."""

    def center(value: Any, width: int = 80, *_: Any) -> None:
        size = _size_of(value)
        current().build(max(size, width if isinstance(width, int) else 0), "center")

    def indent(value: Any, width: Any = 4, *_: Any, **__: Any) -> None:
        prefix = len(width) if isinstance(width, str) else width if isinstance(width, int) else 0
        text = value if isinstance(value, str) else None
        lines = (text.count("\n") + 1) if text is not None else text_size(value)
        current().build(_size_of(value) + lines * max(0, prefix), "indent")

    def format_(value: Any, *args: Any, **kwargs: Any) -> None:
        if not isinstance(value, str):  # the filter formats the value's text
            current().build(text_size(value), "format")
            value = str(value)
        current().build(printf_size(value, kwargs or args), "format")

    def join(value: Any, d: Any = "", *_: Any, **__: Any) -> None:
        if isinstance(value, list | tuple | str | range | Mapping):
            count = len(value)
            size = sum(_size_of(i) for i in value) if not isinstance(value, range) else 8 * count
        else:
            size = text_size(value)
            count = size
        sep = len(d) if isinstance(d, str) else 0
        current().build(size + sep * max(0, count - 1), "join")

    def replace(value: Any, old: Any = "", new: Any = "", count: Any = None) -> None:
        if isinstance(value, str) and isinstance(old, str) and isinstance(new, str):
            _check_str_method(value, "replace", (old, new, -1 if count is None else count), {})
        else:
            current().build(text_size(value) + _size_of(new), "replace")

    def wordwrap(value: Any, width: Any = 79, *args: Any, **kwargs: Any) -> None:
        wrapstring = kwargs.get("wrapstring", args[1] if len(args) > 1 else None)
        size = _size_of(value)
        extra = len(wrapstring) if isinstance(wrapstring, str) else 1
        current().build(size + (size + 1) * extra, "wordwrap")

    def batch(value: Any, linecount: Any = 1, fill_with: Any = None) -> None:
        if fill_with is not None and isinstance(linecount, int):
            current().build(linecount, "batch")

    def slice_(value: Any, slices: Any = 1, *_: Any) -> None:
        if isinstance(slices, int):
            current().build(slices, "slice")

    def stringify(value: Any, *_: Any, **__: Any) -> None:
        current().build(_size_of(value), name)

    def escaping(value: Any, *_: Any, **__: Any) -> None:
        # HTML/URL escaping turns a character into at most 12 (`%F0%9F%98%80`).
        current().build(12 * _size_of(value), name)

    checks: dict[str, Callable[..., None]] = {
        "center": center,
        "indent": indent,
        "format": format_,
        "join": join,
        "replace": replace,
        "wordwrap": wordwrap,
        "batch": batch,
        "slice": slice_,
        "e": escaping,
        "escape": escaping,
        "forceescape": escaping,
        "urlencode": escaping,
        "urlize": escaping,
        "xmlattr": escaping,
    }
    for plain in ("string", "tojson", "pprint", "list", "upper", "lower", "title", "capitalize"):
        checks[plain] = stringify
    for plain in ("trim", "striptags", "truncate", "wordcount", "reverse", "safe", "sum"):
        checks[plain] = stringify
    return checks.get(name)


# Filters that turn their value (all their arguments, for format) into text.
_TEXT_FILTERS = frozenset(
    {"string", "format", "join", "pprint", "tojson", "upper", "lower", "title", "capitalize"}
    | {"trim", "striptags", "truncate", "wordcount", "center", "indent", "wordwrap", "replace"}
    | {"e", "escape", "forceescape", "urlencode", "urlize", "safe", "xmlattr"}
)


def checked_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    """`func` (a Jinja filter) with one unit of work spent and its size checked first."""
    check = _filter_check(name)
    passes_extra = hasattr(func, "jinja_pass_arg")  # context/eval context/environment first
    makes_text = name in _TEXT_FILTERS

    @wraps(func)
    def filtered(*args: Any, **kwargs: Any) -> Any:
        own = args[1:] if passes_extra else args
        current().spend()
        if makes_text and own:
            check_text(own[0], iterators=name == "join")
            if name == "format":
                check_text((own[1:], kwargs))
        if check is not None and own:
            check(*own, **kwargs)
        return func(*args, **kwargs)

    return filtered


def check_concat(parts: tuple[Any, ...]) -> None:
    """Before `a ~ b ~ ...` turns every part into text and joins them."""
    current().build(sum(_size_of(p) for p in parts), "the ~ operator")
    check_text(parts)


def check_binop(operator: str, left: Any, right: Any) -> None:
    """Before `left <operator> right`: `+` of texts or lists, `%` formatting, `*` of numbers."""
    budget = current()
    budget.spend()
    if (
        operator == "+"
        and isinstance(left, str | bytes | list | tuple)
        and type(left) is type(right)
    ):
        budget.build(len(left) + len(right), "the + operator")
    elif operator == "%" and isinstance(left, str | bytes):
        text = left if isinstance(left, str) else left.decode("latin-1")
        budget.build(printf_size(text, right), "the % operator")
        check_text(right)
    elif operator == "*" and isinstance(left, int) and isinstance(right, int):
        bits = abs(left).bit_length() + abs(right).bit_length()
        if bits > MAX_INT_BITS:
            raise LimitExceeded(f"a product of about {bits:,} bits (the limit is {MAX_INT_BITS:,})")
    elif operator == "*":
        for seq, times in ((left, right), (right, left)):
            if isinstance(seq, str | bytes) and isinstance(times, int) and times > 1:
                budget.build(len(seq) * times, "repeating a text")
            elif isinstance(seq, list | tuple) and isinstance(times, int) and times > 1:
                # Repeating a list repeats references: what matters is how much text it holds.
                budget.build(text_size(seq, MAX_BUILT) * times, "repeating a list")
