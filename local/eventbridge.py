"""An EventBridge event pattern matcher for the local runner.

moto's matcher does not descend into arrays of objects, so the harness matches the
template's own patterns with this one. Supported, as documented in
https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-create-pattern-operators.html:

- exact values (strings, numbers compared numerically, booleans, null), lists of them (OR);
- `prefix`, `suffix` (also with `equals-ignore-case`), `equals-ignore-case`, `wildcard`;
- `anything-but` (a value, a list, or `prefix` / `suffix` / `equals-ignore-case` / `wildcard`);
- `numeric` ranges (`=`, `<`, `<=`, `>`, `>=`, combined: `[">", 0, "<=", 5]`);
- `exists` (true / false), `cidr`;
- nested objects, `$or` between sub-patterns;
- arrays in the event: a pattern matches an array if it matches any of its elements; a
  nested pattern matches an array of objects when one element matches all of it.

A missing field matches only `{"exists": false}`.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Mapping
from typing import Any

__all__ = ["PatternError", "matches", "validate_pattern"]

_MISSING = object()
_OPERATORS = {
    "prefix",
    "suffix",
    "anything-but",
    "numeric",
    "exists",
    "equals-ignore-case",
    "wildcard",
    "cidr",
}


class PatternError(ValueError):
    """The pattern is not a valid EventBridge event pattern."""


def matches(pattern: Mapping[str, Any] | str, event: Mapping[str, Any]) -> bool:
    """Whether `event` matches the EventBridge `pattern` (a dict or its JSON text)."""
    if isinstance(pattern, str):
        pattern = json.loads(pattern)
    if not isinstance(pattern, Mapping):
        raise PatternError("an event pattern must be a JSON object")
    return _match_object(pattern, event)


def validate_pattern(pattern: Mapping[str, Any]) -> None:
    """Raise PatternError when the pattern's shape is not one EventBridge accepts."""
    for key, value in pattern.items():
        if key == "$or":
            if not isinstance(value, list) or not value:
                raise PatternError("$or takes a non-empty list of patterns")
            for sub in value:
                if not isinstance(sub, Mapping):
                    raise PatternError("$or takes a list of objects")
                validate_pattern(sub)
        elif isinstance(value, Mapping):
            validate_pattern(value)
        elif isinstance(value, list):
            for matcher in value:
                if isinstance(matcher, Mapping):
                    if len(matcher) != 1 or next(iter(matcher)) not in _OPERATORS:
                        raise PatternError(f"unknown matcher {matcher!r} at {key!r}")
                elif isinstance(matcher, list):
                    raise PatternError(f"nested list in the values of {key!r}")
        else:
            raise PatternError(f"the value of {key!r} must be an object or a list, not {value!r}")


def _match_object(pattern: Mapping[str, Any], value: Any) -> bool:
    for key, sub in pattern.items():
        if key == "$or":
            if not any(_match_object(alt, value) for alt in sub):
                return False
            continue
        field = value.get(key, _MISSING) if isinstance(value, Mapping) else _MISSING
        if not _match_field(sub, field):
            return False
    return True


def _match_field(sub: Any, field: Any) -> bool:
    if isinstance(sub, Mapping):
        # A nested pattern: the event must have an object here (or objects in an array).
        if isinstance(field, list):
            return any(isinstance(item, Mapping) and _match_object(sub, item) for item in field)
        if isinstance(field, Mapping):
            return _match_object(sub, field)
        # Only `exists: false` leaves can match inside a missing object.
        return _match_object(sub, {})
    if not isinstance(sub, list):
        raise PatternError(f"pattern values must be lists or objects, not {sub!r}")
    return any(_match_matcher(matcher, field) for matcher in sub)


def _values(field: Any) -> list[Any]:
    """The leaf values a matcher is tried on: an array's elements, or the value itself."""
    if isinstance(field, list):
        return field
    return [field]


def _match_matcher(matcher: Any, field: Any) -> bool:
    if isinstance(matcher, Mapping):
        if len(matcher) != 1:
            raise PatternError(f"a matcher has exactly one operator: {matcher!r}")
        ((op, arg),) = matcher.items()
        if op == "exists":
            present = field is not _MISSING and not (isinstance(field, list) and not field)
            return present if arg else not present
        if field is _MISSING:
            return False
        return any(_match_operator(op, arg, value) for value in _values(field))
    if field is _MISSING:
        return False
    return any(_equal(matcher, value) for value in _values(field))


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _equal(expected: Any, value: Any) -> bool:
    if expected is None or value is None:
        return expected is None and value is None
    if isinstance(expected, bool) or isinstance(value, bool):
        return isinstance(expected, bool) and isinstance(value, bool) and expected == value
    if _is_number(expected) and _is_number(value):
        return float(expected) == float(value)
    if isinstance(expected, str) and isinstance(value, str):
        return expected == value
    return False


def _string_op(op: str, arg: Any, value: Any) -> bool:
    """prefix / suffix / equals-ignore-case / wildcard on a string value."""
    if not isinstance(value, str):
        return False
    if op == "equals-ignore-case":
        return isinstance(arg, str) and value.casefold() == arg.casefold()
    if op == "wildcard":
        if not isinstance(arg, str):
            raise PatternError("wildcard takes a string")
        regex = "".join(".*" if part == "*" else re.escape(part) for part in re.split(r"(\*)", arg))
        return re.fullmatch(regex, value, flags=re.DOTALL) is not None
    if op in ("prefix", "suffix"):
        ignore_case = False
        if isinstance(arg, Mapping):
            if set(arg) != {"equals-ignore-case"}:
                raise PatternError(f"{op} takes a string or {{'equals-ignore-case': ...}}")
            arg, ignore_case = arg["equals-ignore-case"], True
        if not isinstance(arg, str):
            raise PatternError(f"{op} takes a string")
        subject, needle = (value.casefold(), arg.casefold()) if ignore_case else (value, arg)
        return subject.startswith(needle) if op == "prefix" else subject.endswith(needle)
    raise PatternError(f"unknown string operator {op!r}")


def _numeric(arg: Any, value: Any) -> bool:
    if not isinstance(arg, list) or not arg or len(arg) % 2:
        raise PatternError("numeric takes pairs: [op, number, ...]")
    if not _is_number(value):
        return False
    number = float(value)
    for op, bound in zip(arg[::2], arg[1::2], strict=True):
        if not _is_number(bound):
            raise PatternError(f"numeric bound must be a number: {bound!r}")
        limit = float(bound)
        ok = {
            "=": number == limit,
            "<": number < limit,
            "<=": number <= limit,
            ">": number > limit,
            ">=": number >= limit,
        }.get(op)
        if ok is None:
            raise PatternError(f"unknown numeric operator {op!r}")
        if not ok:
            return False
    return True


def _cidr(arg: Any, value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        return ipaddress.ip_address(value) in ipaddress.ip_network(arg, strict=False)
    except ValueError:
        return False


def _anything_but(arg: Any, value: Any) -> bool:
    if isinstance(arg, Mapping):
        if len(arg) != 1:
            raise PatternError("anything-but takes one operator")
        ((op, inner),) = arg.items()
        if op in ("prefix", "suffix", "equals-ignore-case", "wildcard"):
            if not isinstance(value, str):
                return True
            options = inner if isinstance(inner, list) else [inner]
            return not any(_string_op(op, option, value) for option in options)
        if op == "numeric":
            return not _numeric(inner, value)
        raise PatternError(f"anything-but does not take {op!r}")
    options = arg if isinstance(arg, list) else [arg]
    return not any(_equal(option, value) for option in options)


def _match_operator(op: str, arg: Any, value: Any) -> bool:
    if op in ("prefix", "suffix", "equals-ignore-case", "wildcard"):
        return _string_op(op, arg, value)
    if op == "anything-but":
        return _anything_but(arg, value)
    if op == "numeric":
        return _numeric(arg, value)
    if op == "cidr":
        return _cidr(arg, value)
    raise PatternError(f"unknown operator {op!r}")
