"""YAML scalars as JSON values: the core tags, the tag resolver of each YAML version, and the
conversion of plain text to bool, int and float (YAML 1.1 octals and sexagesimals included)."""

from __future__ import annotations

from ruamel.yaml.resolver import VersionedResolver

TAG = "tag:yaml.org,2002:"
STR, INT, FLOAT, BOOL, NULL = (f"{TAG}{t}" for t in ("str", "int", "float", "bool", "null"))
TIMESTAMP, MERGE, VALUE = (f"{TAG}{t}" for t in ("timestamp", "merge", "value"))
MAP, SEQ = f"{TAG}map", f"{TAG}seq"

_RESOLVERS: dict[tuple[int, int], VersionedResolver] = {}


def resolver(version: tuple[int, int]) -> VersionedResolver:
    """The (cached) implicit-tag resolver of YAML `version`."""
    found = _RESOLVERS.get(version)
    if found is None:
        found = _RESOLVERS[version] = VersionedResolver(version=version)
    return found


def to_bool(text: str) -> bool:
    lowered = text.lower()
    if lowered in ("true", "yes", "on", "y"):
        return True
    if lowered in ("false", "no", "off", "n"):
        return False
    raise ValueError(text)


def to_int(text: str, *, yaml11: bool) -> int:
    cleaned = text.replace("_", "")
    sign = -1 if cleaned.startswith("-") else 1
    digits = cleaned.lstrip("+-")
    if ":" in digits:  # YAML 1.1 sexagesimal
        total = 0
        for part in digits.split(":"):
            total = total * 60 + int(part)
        return sign * total
    for prefix, base in (("0b", 2), ("0o", 8), ("0x", 16)):
        if digits.lower().startswith(prefix):
            return sign * int(digits[2:], base)
    if yaml11 and len(digits) > 1 and digits.startswith("0"):
        return sign * int(digits, 8)
    return sign * int(digits, 10)


def to_float(text: str) -> float:
    cleaned = text.replace("_", "")
    sign = -1.0 if cleaned.startswith("-") else 1.0
    digits = cleaned.lstrip("+-")
    if digits.lower() == ".inf":
        return sign * float("inf")
    if digits.lower() == ".nan":
        return float("nan")
    if ":" in digits:
        total = 0.0
        for part in digits.split(":"):
            total = total * 60 + float(part)
        return sign * total
    return sign * float(digits)
