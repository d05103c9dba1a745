"""What every object of the rules files shares: a frozen dataclass, its field types, and how
pydantic validates it.

Each object of a rules file (`scoring.py`, `sources.py`, `routing.py`) is defined once, as a
dataclass (a subclass of `RulesObject` is one), and used as that at run time. A function
builds them from `compiled.json` with their constructors (`loading.py`), importing neither
pydantic nor yaml; validating a rules file runs pydantic's `TypeAdapter` over the same
classes. pydantic reads what it needs from them only then, through the hooks it looks for:
`__pydantic_config__` (strict numbers, unknown keys forbidden), the `Limits`, `Before` and
`After` metadata of the field types below, and each class's `problems()`, the checks across
its fields. So constructing a rules object in code checks nothing (like pydantic's
`model_construct`): `model_validate` does.

Why `RulesObject` writes `__init__`, `__eq__`, `__hash__`, `__repr__` and frozenness once
instead of letting `@dataclass` generate them per class: generating them (`exec` of their
source) costs about 1.3 ms a class, some 30 ms for the 25 classes, on every cold start;
`dataclass(init=False, repr=False, eq=False)` declares the fields for pydantic in a few
microseconds. docs/DESIGN.md, "Rules files: why this loader", has the measurements.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import MISSING, FrozenInstanceError, dataclass, field, fields
from datetime import date
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Self, cast, dataclass_transform

from leadscore.rulesfiles.errors import Problem, field_key, short

if TYPE_CHECKING:
    from pydantic import GetCoreSchemaHandler, TypeAdapter
    from pydantic_core import CoreSchema


@dataclass_transform(kw_only_default=True, frozen_default=True, field_specifiers=(field,))
class RulesObject:
    """The base of every object of a rules file: each subclass is a dataclass, frozen,
    constructed by keyword, compared by value."""

    # pydantic reads this plain dict when validating (no pydantic import to declare it). YAML
    # already yields real numbers and booleans, so a quoted "10" or a bare `yes` is a mistake
    # worth reporting rather than coercing; an unknown key is a typo.
    __pydantic_config__: ClassVar[dict[str, Any]] = {"strict": True, "extra": "forbid", "alias_generator": field_key}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        dataclass(init=False, repr=False, eq=False, kw_only=True)(cls)

    def __init__(self, **values: Any) -> None:
        for f in fields(self):  # type: ignore[arg-type]
            if f.name in values:
                value = values.pop(f.name)
            elif f.default is not MISSING:
                value = f.default
            elif f.default_factory is not MISSING:
                value = f.default_factory()
            else:
                raise TypeError(f"{type(self).__name__}: {f.name} is required")
            object.__setattr__(self, f.name, value)
        if values:
            raise TypeError(f"{type(self).__name__}: unknown field(s) {', '.join(values)}")

    def __setattr__(self, name: str, value: Any) -> None:
        raise FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise FrozenInstanceError(f"cannot delete field {name!r}")

    def _values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, f.name) for f in fields(self))  # type: ignore[arg-type]

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self._values() == other._values()

    def __hash__(self) -> int:
        return hash((type(self), *self._values()))

    def __repr__(self) -> str:
        shown = ", ".join(f"{f.name}={getattr(self, f.name)!r}" for f in fields(self))  # type: ignore[arg-type]
        return f"{type(self).__name__}({shown})"

    def problems(self) -> list[Problem]:
        """What is wrong across the fields once each is valid; each reported at its key path."""
        return []

    def config_warnings(self) -> list[Problem]:
        """What is valid but probably not meant (the CLI prints each with its line)."""
        return []

    @classmethod
    def model_validate(cls, data: Any) -> Self:
        """Validate a mapping as a rules file holds it; pydantic's `ValidationError` lists the problems."""
        validated: Self = _adapter(cls).validate_python(data)
        return validated

    def model_dump(self, *, exclude_none: bool = False) -> dict[str, Any]:
        """The fields as plain data (nested objects as dicts), by field name."""
        dumped: dict[str, Any] = plain_data(self, exclude_none=exclude_none, json_safe=False)
        return dumped

    @classmethod
    def __get_pydantic_core_schema__(cls, source: type[Any], handler: GetCoreSchemaHandler) -> CoreSchema:
        # pydantic's hook for a type of its own validation: the dataclass's schema, then problems().
        from pydantic_core import PydanticCustomError, core_schema  # validating only: never at cold start

        schema: dict[str, Any] = dict(handler(source))
        if schema["type"] != "dataclass":
            raise TypeError(f"{cls.__name__}: expected a dataclass schema, got {schema['type']}")
        # strict applies to the fields; the object itself is read from a mapping
        schema["strict"] = False
        # the name pydantic reuses the schema by where the class appears again: the checks' too
        ref = schema.pop("ref", None)

        def checked(value: RulesObject) -> RulesObject:
            found = value.problems()
            if found:
                # The key path below the object travels in the context, so messages point at
                # `buckets[1]`, not at the whole rule.
                raise PydanticCustomError("leadscore", "{reason}", {"reason": found[0][1], "problems": found})
            return value

        return core_schema.no_info_after_validator_function(checked, cast("CoreSchema", schema), ref=ref)


_ADAPTERS: dict[type[Any], TypeAdapter[Any]] = {}


def _adapter(cls: type[Any]) -> TypeAdapter[Any]:
    adapter = _ADAPTERS.get(cls)
    if adapter is None:
        from pydantic import TypeAdapter  # validating only: never at cold start

        adapter = _ADAPTERS[cls] = TypeAdapter(cls)
    return adapter


# The three kinds of `Annotated` metadata below are plain classes: pydantic calls their
# `__get_pydantic_core_schema__` when it validates, and a dataclass would cost its generated
# methods at import.


class Limits:
    """Bounds pydantic checks (`gt`, `ge`, `le`, `min_length`), set on the type's own schema as
    pydantic sets `Field(ge=0)`'s (the same errors); annotated_types' `Ge(0)` would do the
    same at some 10 ms of import on every cold start."""

    __slots__ = ("bounds",)

    def __init__(self, **bounds: float) -> None:
        self.bounds = bounds

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        schema = handler(source)
        if schema["type"] not in ("int", "float", "str", "list"):
            raise TypeError(f"no bounds for a {schema['type']} schema")
        return cast("CoreSchema", {**schema, **self.bounds})


class Before:
    """`func` turns what the file says into what the type expects (pydantic's `BeforeValidator`)."""

    __slots__ = ("func",)

    def __init__(self, func: Callable[[Any], Any]) -> None:
        self.func = func

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        from pydantic_core import core_schema  # validating only: never at cold start

        return core_schema.no_info_before_validator_function(self.func, handler(source))


class After:
    """`func` checks a value of the right type, a `ValueError` saying why not (pydantic's
    `AfterValidator`)."""

    __slots__ = ("func",)

    def __init__(self, func: Callable[[Any], Any]) -> None:
        self.func = func

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        from pydantic_core import core_schema  # validating only: never at cold start

        return core_schema.no_info_after_validator_function(self.func, handler(source))


def plain_data(value: Any, *, exclude_none: bool = False, json_safe: bool = True) -> Any:
    """A rules object as plain data: dicts by field name; with `json_safe`, dates as ISO text."""
    if isinstance(value, RulesObject):
        pairs = ((f.name, getattr(value, f.name)) for f in fields(value))  # type: ignore[arg-type]
        return {name: plain_data(v, exclude_none=exclude_none, json_safe=json_safe)
                for name, v in pairs if not (exclude_none and v is None)}
    if isinstance(value, list | tuple):
        return [plain_data(v, exclude_none=exclude_none, json_safe=json_safe) for v in value]
    if isinstance(value, dict):
        return {k: plain_data(v, exclude_none=exclude_none, json_safe=json_safe) for k, v in value.items()}
    if json_safe and isinstance(value, date):
        return value.isoformat()
    return value


# ----------------------------------------------------------------------- field types


@functools.lru_cache(maxsize=1024)
def compile_pattern(pattern: str) -> re.Pattern[str]:
    """Rules match case-insensitively; compiled once per distinct pattern."""
    return re.compile(pattern, re.IGNORECASE)


def _check_regex(value: str) -> str:
    try:
        compile_pattern(value)
    except re.error as exc:
        raise ValueError(f"bad regex '{value}': {exc}") from None
    return value


_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


def _check_id(value: str) -> str:
    if not _ID.match(value):
        raise ValueError(
            f"{value!r}: use 1-64 letters, digits, '_', '-' or '.', starting with a letter/digit"
        )
    return value


def _check_name(value: str) -> str:
    if not _NAME.match(value):
        raise ValueError(f"{value!r}: use lowercase letters, digits and '_', starting with a letter")
    return value


def _check_scalar(value: Any) -> Any:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise ValueError(f"expected a string, number or true/false, got {short(value)}")


def as_list(value: Any) -> Any:
    """`event: Demo Requested` and `event: [A, B]` both read naturally in YAML."""
    return [value] if isinstance(value, str) else value


RuleId = Annotated[str, After(_check_id)]
Name = Annotated[str, After(_check_name)]
Regex = Annotated[str, After(_check_regex)]
Scalar = Annotated[Any, After(_check_scalar)]
NonEmpty = Annotated[str, Limits(min_length=1)]
StrList = Annotated[list[NonEmpty], Before(as_list)]
Positive = Annotated[float, Limits(gt=0)]
NonNegative = Annotated[float, Limits(ge=0)]
