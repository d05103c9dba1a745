"""`ConfigError` and the wording of every problem a rules file can have.

A problem names the file, the key path (`engagement[3].points`), the reason and the line:
`scoring.yaml: engagement[3].points: expected a number, got '10' (line 42)`. pydantic's
errors are reworded here (its own words name its internals, not the file); a key that is
not allowed gets the closest allowed one as a suggestion.
"""

from __future__ import annotations

import os
import re
import types
import typing
from collections.abc import Iterable, Sequence
from dataclasses import fields, is_dataclass
from typing import TYPE_CHECKING, Annotated, Any, Union, get_args, get_origin

from leadscore.domain.values import number_text

if TYPE_CHECKING:
    from pydantic import ValidationError

#: a key path in a rules file: `("engagement", 3, "points")` is `engagement[3].points`
Loc = tuple[str | int, ...]
#: what is wrong, and where (below the object that found it)
Problem = tuple[Loc, str]


class ConfigError(Exception):
    """A rules file that cannot be used. `str(e)` is one `file: path: reason` line per problem."""

    def __init__(
        self,
        file: str | os.PathLike[str],
        path: str = "",
        reason: str = "",
        *,
        errors: Sequence[tuple[str, str]] | None = None,
    ) -> None:
        self.file = os.fspath(file)
        self.errors: list[tuple[str, str]] = list(errors) if errors else [(path, reason)]
        self.path, self.reason = self.errors[0]
        super().__init__("\n".join(f"{self.file}: {p}: {r}" for p, r in self.errors))


def field_key(name: str) -> str:
    """The key a field is written as in its file: `from_` is `from` (Python's keywords)."""
    return name[:-1] if name.endswith("_") else name


def format_loc(loc: Iterable[str | int]) -> str:
    """`("engagement", 3, "points")` as `engagement[3].points`."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif re.fullmatch(r"[A-Za-z_][\w-]*", part):
            out += ("." if out else "") + part
        else:
            out += f"[{part!r}]"
    return out or "(root)"


def number_range(lo: float | None, hi: float | None) -> str:
    """`10-50`, `50+`, `up to 10`."""
    if hi is None:
        return f"{number_text(lo)}+"
    if lo is None:
        return f"up to {number_text(hi)}"
    return f"{number_text(lo)}-{number_text(hi)}"


def names(values: Iterable[str]) -> str:
    """The known ids a reason lists, sorted (`none` when there are none)."""
    listed = sorted(values)
    return ", ".join(listed) if listed else "none"


def kind(value: Any) -> str:
    """What YAML made of a value, in words: `a list`, `a number`."""
    return {list: "a list", str: "a string", int: "a number", float: "a number", bool: "a boolean"}.get(
        type(value), type(value).__name__
    )


def short(value: Any) -> str:
    """A value as a reason quotes it (a list or mapping by its kind, long text cut)."""
    if isinstance(value, dict | list):
        return kind(value) if isinstance(value, list) else "a mapping"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


# ------------------------------------------------------------------------ lines


def with_line(reason: str, root: Any, loc: Loc) -> str:
    """`reason (line N)`: N is the line of `loc` in the file's YAML node tree `root` (or of
    the deepest key of it the file has)."""
    line = line_of(root, loc)
    return f"{reason} (line {line})" if line else reason


def line_of(node: Any, loc: Loc) -> int | None:
    if node is None:
        return None
    line: int = node.start_mark.line
    for part in loc:
        nxt: Any = None
        if node.id == "mapping":
            for key, value in node.value:
                if key.id == "scalar" and key.value == str(part):
                    nxt, line = value, key.start_mark.line
                    break
        elif node.id == "sequence" and isinstance(part, int) and part < len(node.value):
            nxt = node.value[part]
            line = nxt.start_mark.line
        if nxt is None:
            break
        node = nxt
    return line + 1


# ------------------------------------------------------------- pydantic's errors

_MESSAGES = {
    "missing": "required key missing",
    "float_type": "expected a number",
    "float_parsing": "expected a number",
    "int_type": "expected a whole number",
    "int_parsing": "expected a whole number",
    "int_from_float": "expected a whole number",
    "string_type": "expected a string",
    "bool_type": "expected true or false",
    "list_type": "expected a list",
    "dict_type": "expected a mapping",
    "dataclass_type": "expected a mapping",
    "dataclass_args_type": "expected a mapping",
}

_BOUNDS = {
    "greater_than": "must be greater than {gt}",
    "greater_than_equal": "must be at least {ge}",
    "less_than": "must be less than {lt}",
    "less_than_equal": "must be at most {le}",
    "string_too_short": "must not be empty",
    "too_short": "needs at least {min_length} item(s)",
}

#: pydantic's words for a key the object does not have
_UNKNOWN_KEY = ("extra_forbidden", "unexpected_keyword_argument")


def problems_of(exc: ValidationError, model: type[Any], root: Any) -> list[tuple[str, str]]:
    """pydantic's errors validating `model` as (key path, reason with its line) pairs;
    `root` is the file's YAML node tree."""
    out: list[tuple[str, str]] = []
    for err in exc.errors(include_url=False):
        loc: Loc = tuple(err["loc"])
        code = err["type"]
        ctx = err.get("ctx") or {}
        if code == "leadscore":
            for sub, reason in ctx["problems"]:
                full = (*loc, *sub)
                out.append((format_loc(full), with_line(reason, root, full)))
            continue
        if code in _UNKNOWN_KEY:
            reason = "unknown key" + _suggestion(model, loc)
        elif code in _MESSAGES:
            reason = _MESSAGES[code]
            if code != "missing":
                reason += f", got {short(err.get('input'))}"
        elif code in _BOUNDS:
            bounds = {k: number_text(v) if isinstance(v, int | float) else v for k, v in ctx.items()}
            reason = _BOUNDS[code].format(**bounds) + f", got {short(err.get('input'))}"
        elif code == "literal_error":
            reason = f"expected {ctx.get('expected')}, got {short(err.get('input'))}"
        else:
            reason = str(err["msg"]).removeprefix("Value error, ")
            reason = reason[:1].lower() + reason[1:]
        out.append((format_loc(loc), with_line(reason, root, loc)))
    return out


def _suggestion(model: type[Any], loc: Loc) -> str:
    import difflib  # only to word an unknown key

    owner = _type_at(model, loc[:-1])
    if not is_dataclass(owner):
        return ""
    allowed = [field_key(f.name) for f in fields(owner)]
    close = difflib.get_close_matches(str(loc[-1]), allowed, n=1, cutoff=0.6)
    if close:
        return f"; did you mean {close[0]!r}?"
    return f" (allowed: {', '.join(allowed)})"


def _type_at(tp: Any, loc: Loc) -> Any:
    for part in loc:
        tp = _strip(tp)
        if isinstance(tp, type) and is_dataclass(tp):
            name = next((f.name for f in fields(tp) if field_key(f.name) == part), None)
            if name is None:
                return None
            tp = typing.get_type_hints(tp, include_extras=True)[name]
        elif get_origin(tp) is list and isinstance(part, int):
            tp = get_args(tp)[0]
        elif get_origin(tp) is dict and isinstance(part, str):
            tp = get_args(tp)[1]
        else:
            return None
    return _strip(tp)


def _strip(tp: Any) -> Any:
    while True:
        origin = get_origin(tp)
        if origin is Annotated:
            tp = get_args(tp)[0]
        elif origin in (Union, types.UnionType):
            args = [a for a in get_args(tp) if a is not type(None)]
            if len(args) != 1:
                return tp
            tp = args[0]
        else:
            return tp
