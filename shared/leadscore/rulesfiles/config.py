"""The rules files: `config/scoring.yaml` and `config/sources.yaml`, validated at load.

Every mistake a RevOps engineer can make in these files should surface at load time
(deploy, `python -m leadscore.rulesfiles.config validate`), never as a silently wrong score. So the
models forbid unknown keys, numbers are strict (`points: "10"` and `points: yes` are
errors, not coercions), regexes are compiled at load, and cross-rule checks (duplicate
ids, overlapping buckets, thresholds in the wrong order) run before a config is handed
out. Errors name the file, the key path (`engagement[3].points`) and the line.

Validated once, before deploy: `python -m leadscore.rulesfiles.config validate --write` keeps the
validated form of the three files in `config/compiled.json` (next to them, so in the config
layer). A function's first invocation builds its rules from it, importing neither pydantic
nor yaml (cold start); a rules file that does not match it byte for byte (edited since, or
validated by other code) is read and validated at load as before.

Pure: no AWS. pydantic and yaml are imported only to validate.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import sys
import types
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from functools import cached_property
from pathlib import Path
from typing import (
    TYPE_CHECKING,
    Annotated,
    Any,
    ClassVar,
    Literal,
    NoReturn,
    Self,
    TypeVar,
    Union,
    get_args,
    get_origin,
)

from leadscore.domain.values import match_key
from leadscore.domain.values import number_text as _num

FORMAT_VERSION = 1
SCORING_FILE = "scoring.yaml"
SOURCES_FILE = "sources.yaml"
FALLBACK_PERSONA = "user"
MessageTypeName = Literal["track", "page", "screen", "identify", "group", "alias"]
_NON_ENGAGEMENT_TYPES = ("identify", "group", "alias")

Loc = tuple[str | int, ...]
_M = TypeVar("_M", bound="_Model")
_F = TypeVar("_F", bound=Callable[..., Any])

if TYPE_CHECKING:
    from pydantic import BaseModel, ValidationError


# ---------------------------------------------------------------------------- errors


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


def _fail(*problems: tuple[Loc, str]) -> NoReturn:
    # Validators can only raise one error at their own location; the key path below it
    # travels in the context so messages point at `buckets[1]`, not at the whole rule.
    from pydantic_core import PydanticCustomError

    raise PydanticCustomError("leadscore", "{reason}", {"reason": problems[0][1], "problems": list(problems)})


# ------------------------------------------------------------------------ models
#
# At run time the rules are plain frozen objects: a function whose rules files were validated
# before deploy (`compiled.json`, see "the pre-validated form" below) builds them without
# importing pydantic or yaml, which would be most of its cold start. The classes declare their
# fields the way pydantic models do (`Annotated` constraints, `Field`, `AfterValidator`,
# `BeforeValidator`, `model_validator`), with the light stand-ins below; `_schema(cls)` turns a
# class into the pydantic model that validates a rules file: the same fields, constraints,
# defaults and validators. That model subclasses the plain class, so the validators and the
# properties they use are the same code, and `_plain` turns what it validated into plain objects.

_MISSING: Any = object()


class _FieldSpec:
    """What `Field(...)` declares: a default or a default factory, an alias, pydantic constraints."""

    __slots__ = ("alias", "constraints", "default", "factory")

    def __init__(self, default: Any = _MISSING, factory: Callable[[], Any] | None = None, alias: str | None = None,
                 constraints: dict[str, Any] | None = None) -> None:
        self.default, self.factory, self.alias, self.constraints = default, factory, alias, constraints or {}


def Field(default: Any = _MISSING, *, default_factory: Callable[[], Any] | None = None, alias: str | None = None,
          **constraints: Any) -> Any:
    """pydantic's `Field`, declared (a class attribute, or `Annotated` metadata for constraints)."""
    return _FieldSpec(default, default_factory, alias, constraints)


@dataclass(frozen=True)
class AfterValidator:
    """pydantic's `AfterValidator`, declared."""

    func: Callable[[Any], Any]


@dataclass(frozen=True)
class BeforeValidator:
    """pydantic's `BeforeValidator`, declared."""

    func: Callable[[Any], Any]


def _model_validator(*, mode: Literal["after"]) -> Callable[[_F], _F]:
    """pydantic's `model_validator`, declared: the check runs when a rules file is validated."""

    def declare(func: _F) -> _F:
        func.__leadscore_validator__ = mode  # type: ignore[attr-defined]
        return func

    return declare


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
    raise ValueError(f"expected a string, number or true/false, got {_short(value)}")


def _as_list(value: Any) -> Any:
    # `event: Demo Requested` and `event: [A, B]` both read naturally in YAML.
    return [value] if isinstance(value, str) else value


def _condition(value: Any) -> Any:
    # Shorthand: `stage: top` means equals, `stage: [top, middle]` means in.
    if isinstance(value, dict):
        return value
    if isinstance(value, list):
        return {"in": value}
    return {"equals": value}


RuleId = Annotated[str, AfterValidator(_check_id)]
Name = Annotated[str, AfterValidator(_check_name)]
Regex = Annotated[str, AfterValidator(_check_regex)]
Scalar = Annotated[Any, AfterValidator(_check_scalar)]
NonEmpty = Annotated[str, Field(min_length=1)]
StrList = Annotated[list[NonEmpty], BeforeValidator(_as_list)]
Positive = Annotated[float, Field(gt=0)]
NonNegative = Annotated[float, Field(ge=0)]


class _Model:
    """A frozen object of a rules file; subclasses declare their fields as pydantic models do.

    Validated through `_schema(cls)`, whose pydantic config is strict: YAML already yields real
    numbers and booleans, so a quoted "10" or a bare `yes` is a mistake worth reporting rather
    than coercing; unknown keys are errors."""

    __leadscore_fields__: ClassVar[dict[str, _FieldSpec]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "__leadscore_plain__" in cls.__dict__:  # the pydantic model of a plain class
            return
        fields: dict[str, _FieldSpec] = {}
        for base in reversed(cls.__bases__):
            fields.update(getattr(base, "__leadscore_fields__", {}))
        for name in cls.__dict__.get("__annotations__", {}):
            if name.startswith("__"):
                continue
            value = cls.__dict__.get(name, _MISSING)
            fields[name] = value if isinstance(value, _FieldSpec) else _FieldSpec(value)
            if name in cls.__dict__:
                delattr(cls, name)  # as in pydantic: a default is not a class attribute
        cls.__leadscore_fields__ = fields

    def __init__(self, **values: Any) -> None:
        for name, spec in self.__leadscore_fields__.items():
            if name in values:
                value = values.pop(name)
            elif spec.factory is not None:
                value = spec.factory()
            elif spec.default is not _MISSING:
                value = spec.default
            else:
                raise TypeError(f"{type(self).__name__}: {name} is required")
            object.__setattr__(self, name, value)
        if values:
            raise TypeError(f"{type(self).__name__}: unknown field(s) {', '.join(values)}")

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is frozen")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is frozen")

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return all(getattr(self, name) == getattr(other, name) for name in self.__leadscore_fields__)

    def __hash__(self) -> int:
        return hash((type(self), *(getattr(self, name) for name in self.__leadscore_fields__)))

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__leadscore_fields__)
        return f"{type(self).__name__}({fields})"

    @classmethod
    def model_validate(cls, data: Any) -> Self:
        """Validate a mapping as a rules file holds it; pydantic's `ValidationError` lists the problems."""
        validated: Self = _plain(_schema(cls).model_validate(data))
        return validated

    def model_dump(self, *, exclude_none: bool = False) -> dict[str, Any]:
        """The fields as plain data (nested objects as dicts), by field name."""
        dumped: dict[str, Any] = _dumped(self, exclude_none=exclude_none, json_safe=False)
        return dumped


def _is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, _Model)


@functools.cache
def _pydantic() -> types.SimpleNamespace:
    """pydantic, imported when a rules file is validated (never on the pre-validated path)."""
    import pydantic

    class Base(pydantic.BaseModel):
        model_config = pydantic.ConfigDict(extra="forbid", strict=True, frozen=True)

    return types.SimpleNamespace(Base=Base, pydantic=pydantic)


_SCHEMAS: dict[type[_Model], type[BaseModel]] = {}


def _schema(cls: type[_Model]) -> type[BaseModel]:
    """The pydantic model that validates `cls`: its fields, constraints, defaults and validators."""
    known = _SCHEMAS.get(cls)
    if known is not None:
        return known
    import typing

    pyd = _pydantic()
    hints = typing.get_type_hints(cls, include_extras=True)
    annotations: dict[str, Any] = {}
    namespace: dict[str, Any] = {"__module__": cls.__module__, "__qualname__": cls.__qualname__,
                                 "__doc__": cls.__doc__, "__annotations__": annotations, "__leadscore_plain__": cls}
    for name, spec in cls.__leadscore_fields__.items():
        annotations[name] = _to_pydantic(hints[name])
        options = dict(spec.constraints)
        if spec.alias is not None:
            options["alias"] = spec.alias
        factory = spec.factory
        if isinstance(factory, type) and issubclass(factory, _Model):
            options["default_factory"] = _schema(factory)
        elif factory is not None:
            options["default_factory"] = factory
        elif spec.default is not _MISSING:
            options["default"] = spec.default
        if options:
            namespace[name] = pyd.pydantic.Field(**options)
    for name in dir(cls):
        mode = getattr(getattr(cls, name, None), "__leadscore_validator__", None)
        if mode is not None:
            namespace[name] = pyd.pydantic.model_validator(mode=mode)(getattr(cls, name))
    model: type[BaseModel] = type(cls.__name__, (pyd.Base, cls), namespace)
    _SCHEMAS[cls] = model
    return model


def _to_pydantic(tp: Any) -> Any:
    if _is_model(tp):
        return _schema(tp)
    origin, args = get_origin(tp), get_args(tp)
    if origin is None or origin is Literal:
        return tp
    if origin is Annotated:
        return Annotated[(_to_pydantic(args[0]), *map(_pydantic_metadata, args[1:]))]
    converted = tuple(_to_pydantic(arg) for arg in args)
    if origin in (Union, types.UnionType):
        return Union[converted]  # noqa: UP007
    return origin[converted]


def _pydantic_metadata(meta: Any) -> Any:
    pydantic = _pydantic().pydantic
    if isinstance(meta, _FieldSpec):
        return pydantic.Field(**meta.constraints)
    if isinstance(meta, AfterValidator):
        return pydantic.AfterValidator(meta.func)
    if isinstance(meta, BeforeValidator):
        return pydantic.BeforeValidator(meta.func)
    return meta


def _plain(value: Any) -> Any:
    """What pydantic validated, as the plain objects the rest of the code uses."""
    plain = type(value).__dict__.get("__leadscore_plain__")
    if plain is not None:
        out = object.__new__(plain)
        out.__dict__.update({name: _plain(getattr(value, name)) for name in plain.__leadscore_fields__})
        return out
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _dumped(value: Any, *, exclude_none: bool = False, json_safe: bool = True) -> Any:
    if isinstance(value, _Model):
        fields = ((name, getattr(value, name)) for name in value.__leadscore_fields__)
        return {name: _dumped(v, exclude_none=exclude_none, json_safe=json_safe)
                for name, v in fields if not (exclude_none and v is None)}
    if isinstance(value, list | tuple):
        return [_dumped(v, exclude_none=exclude_none, json_safe=json_safe) for v in value]
    if isinstance(value, dict):
        return {k: _dumped(v, exclude_none=exclude_none, json_safe=json_safe) for k, v in value.items()}
    if json_safe and isinstance(value, date):
        return value.isoformat()
    return value


_PLANS: dict[type[_Model], tuple[tuple[str, Callable[[Any], Any] | None], ...]] = {}


def _plan(cls: type[_Model]) -> tuple[tuple[str, Callable[[Any], Any] | None], ...]:
    """How to rebuild each field of `cls` from its pre-validated JSON (from its type hints)."""
    plan = _PLANS.get(cls)
    if plan is None:
        import typing

        hints = typing.get_type_hints(cls)
        plan = _PLANS[cls] = tuple((name, _decoder(hints[name])) for name in cls.__leadscore_fields__)
    return plan


def _decoder(tp: Any) -> Callable[[Any], Any] | None:
    """How to rebuild a value of type `tp` from its pre-validated JSON (None: as it is)."""
    if _is_model(tp):
        return functools.partial(_decoded, tp)
    origin, args = get_origin(tp), get_args(tp)
    if origin in (Union, types.UnionType):
        inner = [_decoder(arg) for arg in args if arg is not type(None)]
        if all(d is None for d in inner):
            return None
        if len(inner) == 1:
            return inner[0]
        raise TypeError(f"no pre-validated form for {tp}")
    if origin is list:
        item = _decoder(args[0])
        return None if item is None else (lambda v: [x if x is None else item(x) for x in v])
    if origin is dict:
        entry = _decoder(args[1])
        return None if entry is None else (lambda v: {k: x if x is None else entry(x) for k, x in v.items()})
    if tp is date:
        return date.fromisoformat
    return None


def _decoded(cls: type[_M], data: dict[str, Any]) -> _M:
    out = object.__new__(cls)
    values = out.__dict__
    for name, decode in _plan(cls):
        value = data[name]
        values[name] = value if decode is None or value is None else decode(value)
    return out


# ----------------------------------------------------------------------- conditions


class Match(_Model):
    """One condition on a value: exactly one of equals / in / contains / pattern / min-max."""

    equals: Scalar | None = None
    in_: list[Scalar] | None = Field(default=None, alias="in")
    contains: NonEmpty | None = None
    pattern: Regex | None = None
    min: float | None = None
    max: float | None = None

    def _conditions(self) -> list[str]:
        found = [
            name
            for name, value in (
                ("equals", self.equals),
                ("in", self.in_),
                ("contains", self.contains),
                ("pattern", self.pattern),
            )
            if value is not None
        ]
        if self.min is not None or self.max is not None:
            found.append("min/max")
        return found

    def _condition_problems(self) -> list[tuple[Loc, str]]:
        problems: list[tuple[Loc, str]] = []
        if self.min is not None and self.max is not None and self.min > self.max:
            problems.append((("min",), f"min ({_num(self.min)}) is above max ({_num(self.max)})"))
        return problems

    @_model_validator(mode="after")
    def _one_condition(self) -> Match:
        found = self._conditions()
        if len(found) != 1:
            _fail(((), _one_of_message(["equals", "in", "contains", "pattern", "min/max"], found)))
        if problems := self._condition_problems():
            _fail(*problems)
        return self

    @cached_property
    def values(self) -> frozenset[tuple[str, Any]]:
        """`equals` / `in` normalised for case-insensitive, type-tolerant comparison."""
        if self.equals is not None:
            return frozenset([match_key(self.equals)])
        return frozenset(match_key(v) for v in self.in_ or ())

    @cached_property
    def needle(self) -> str | None:
        return self.contains.casefold() if self.contains is not None else None

    @cached_property
    def regex(self) -> re.Pattern[str] | None:
        return compile_pattern(self.pattern) if self.pattern is not None else None

    def describe(self) -> str:
        if self.equals is not None:
            return f"= {self.equals!r}"
        if self.in_ is not None:
            return f"in {self.in_!r}"
        if self.contains is not None:
            return f"contains {self.contains!r}"
        if self.pattern is not None:
            return f"matches {self.pattern!r}"
        return _range(self.min, self.max)


def _one_of_message(options: list[str], found: list[str]) -> str:
    if not found:
        return "needs one condition: " + ", ".join(options)
    return "give exactly one of " + ", ".join(options) + " (found " + ", ".join(found) + ")"


class Bucket(_Model):
    """A numeric range (both ends inclusive; `max` omitted = no upper bound) and its points."""

    min: float | None = None
    max: float | None = None
    points: float
    label: str | None = None

    @_model_validator(mode="after")
    def _bounds(self) -> Bucket:
        if self.min is None and self.max is None:
            _fail(((), "a bucket needs min, max or both"))
        if self.min is not None and self.max is not None and self.min > self.max:
            _fail((("min",), f"min ({_num(self.min)}) is above max ({_num(self.max)})"))
        return self

    def contains(self, value: float) -> bool:
        return (self.min is None or value >= self.min) and (self.max is None or value <= self.max)

    def describe(self) -> str:
        return self.label or f"bucket {_range(self.min, self.max)}"


def _bucket_problems(buckets: Sequence[Bucket]) -> list[tuple[Loc, str]]:
    problems: list[tuple[Loc, str]] = []
    inf = float("inf")
    for j, b in enumerate(buckets):
        for i in range(j):
            a = buckets[i]
            lo = max(a.min if a.min is not None else -inf, b.min if b.min is not None else -inf)
            hi = min(a.max if a.max is not None else inf, b.max if b.max is not None else inf)
            if lo <= hi:
                problems.append(
                    (
                        ("buckets", j),
                        f"overlaps buckets[{i}] ({_range(a.min, a.max)}): exactly one bucket must apply",
                    )
                )
                break
    return problems


# ----------------------------------------------------------------------------- fit


class FitRule(Match):
    """Points for a profile trait: one condition and `points`, or `buckets`."""

    id: RuleId
    description: str | None = None
    trait: NonEmpty
    points: float | None = None
    buckets: Annotated[list[Bucket], Field(min_length=1)] | None = None

    @_model_validator(mode="after")
    def _one_condition(self) -> FitRule:
        found = self._conditions() + (["buckets"] if self.buckets is not None else [])
        problems: list[tuple[Loc, str]] = []
        if len(found) != 1:
            options = ["equals", "in", "contains", "pattern", "min/max", "buckets"]
            problems.append(((), _one_of_message(options, found)))
        elif self.buckets is not None:
            if self.points is not None:
                problems.append((("points",), "not allowed with buckets: each bucket carries its points"))
            problems += _bucket_problems(self.buckets)
        elif self.points is None:
            problems.append((("points",), "required key missing"))
        problems += self._condition_problems()
        if problems:
            _fail(*problems)
        return self

    @cached_property
    def path(self) -> tuple[str, ...]:
        return tuple(self.trait.split("."))


# ---------------------------------------------------------------------- engagement


class Limit(_Model):
    """Frequency limit: at most `max` scored hits in any `per_days`-day sliding window."""

    max: Annotated[int, Field(ge=1)]
    per_days: Positive


class When(_Model):
    """What an event must look like for an engagement rule to match (all given keys must hold)."""

    type: Annotated[list[MessageTypeName], BeforeValidator(_as_list)] | None = None
    event: StrList | None = None
    url_contains: StrList | None = None
    form_id: StrList | None = None
    properties: dict[NonEmpty, Annotated[Match, BeforeValidator(_condition)]] | None = None

    @_model_validator(mode="after")
    def _engaging_types(self) -> When:
        for i, t in enumerate(self.type or ()):
            if t in _NON_ENGAGEMENT_TYPES:
                _fail((("type", i), f"{t!r} messages never earn engagement (use track, page or screen)"))
        return self

    @cached_property
    def types(self) -> frozenset[str]:
        if self.type is not None:
            return frozenset(self.type)
        # Naming an event means a track call, as in Segment's own vocabulary.
        return frozenset(["track"]) if self.event else frozenset(["track", "page", "screen"])

    @cached_property
    def events(self) -> frozenset[str] | None:
        return frozenset(e.casefold() for e in self.event) if self.event else None

    @cached_property
    def urls(self) -> tuple[str, ...]:
        return tuple(u.casefold() for u in self.url_contains or ())

    @cached_property
    def forms(self) -> frozenset[str] | None:
        return frozenset(f.casefold() for f in self.form_id) if self.form_id else None

    @cached_property
    def props(self) -> tuple[tuple[tuple[str, ...], Match], ...]:
        return tuple((tuple(k.split(".")), m) for k, m in (self.properties or {}).items())


class EngagementRule(_Model):
    """Points for events (`when` + `points`), or a per-contact counter with `buckets`."""

    id: RuleId
    description: str | None = None
    category: RuleId
    points: float | None = None
    cap: Positive | None = None
    limit: Limit | None = None
    when: When | None = None
    counter: Literal["visits"] | None = None
    buckets: Annotated[list[Bucket], Field(min_length=1)] | None = None

    @_model_validator(mode="after")
    def _shape(self) -> EngagementRule:
        problems: list[tuple[Loc, str]] = []
        if self.counter is not None:
            if self.buckets is None:
                problems.append((("buckets",), "required key missing: a counter rule scores by buckets"))
            for key in ("points", "cap", "limit", "when"):
                if getattr(self, key) is not None:
                    problems.append(((key,), "not allowed on a counter rule (it scores by buckets)"))
            if self.buckets is not None:
                problems += _bucket_problems(self.buckets)
        else:
            if self.buckets is not None:
                problems.append((("buckets",), "only counter rules have buckets (add `counter: visits`)"))
            if self.points is None:
                problems.append((("points",), "required key missing"))
            if self.when is None:
                problems.append((("when",), "required key missing (or make it a `counter` rule)"))
        if problems:
            _fail(*problems)
        return self


# --------------------------------------------------------------- scoring sections


class Lifecycle(_Model):
    mql: float = 35
    sql: float = 65

    @_model_validator(mode="after")
    def _order(self) -> Lifecycle:
        if self.mql >= self.sql:
            _fail((("mql",), f"mql ({_num(self.mql)}) must be below sql ({_num(self.sql)})"))
        return self


class Decay(_Model):
    stale_after_days: NonNegative
    half_life_days: Positive


class Committee(_Model):
    min_personas: Annotated[int, Field(ge=1)] = 2
    recent_days: Positive = 30
    points: float = 15


class Thresholds(_Model):
    sdr_ready: float = 100
    requalify_below: float = 80

    @_model_validator(mode="after")
    def _order(self) -> Thresholds:
        if self.requalify_below >= self.sdr_ready:
            _fail(
                (
                    ("requalify_below",),
                    f"requalify_below ({_num(self.requalify_below)}) must be below "
                    f"sdr_ready ({_num(self.sdr_ready)})",
                )
            )
        return self


class Exclusions(_Model):
    lifecycles: list[NonEmpty] = Field(
        default_factory=lambda: ["customer", "opportunity", "partner", "competitor"]
    )
    own_domains: list[NonEmpty] = Field(default_factory=list)
    unsubscribed_all: bool = True

    @cached_property
    def lifecycle_set(self) -> frozenset[str]:
        return frozenset(v.casefold() for v in self.lifecycles)

    @cached_property
    def own_domain_set(self) -> frozenset[str]:
        return frozenset(v.strip().lower() for v in self.own_domains)


def _default_personas() -> dict[str, list[str]]:
    return {"decision_maker": ["c_level", "vp", "head"], "influencer": ["director", "manager"], "user": []}


def _default_weights() -> dict[str, float]:
    return {"decision_maker": 1.0, "influencer": 0.8, "user": 0.5}


class Account(_Model):
    """Account scoring: fit on group traits plus the top contacts' engagement."""

    top_contacts: Annotated[int, Field(ge=1)] = 5
    contact_cap: Positive = 80
    personas: dict[Name, list[Name]] = Field(default_factory=_default_personas)
    persona_weights: dict[Name, NonNegative] = Field(default_factory=_default_weights)
    committee: Committee = Field(default_factory=Committee)
    fit: list[FitRule] = Field(default_factory=list)
    thresholds: Thresholds = Field(default_factory=Thresholds)
    exclusions: Exclusions = Field(default_factory=Exclusions)
    not_ready_cooldown_days: NonNegative = 14

    @_model_validator(mode="after")
    def _personas(self) -> Account:
        problems: list[tuple[Loc, str]] = []
        owner: dict[str, str] = {}
        for persona, levels in self.personas.items():
            for i, level in enumerate(levels):
                if level in owner:
                    problems.append(
                        (("personas", persona, i), f"level {level!r} is already in persona {owner[level]!r}")
                    )
                owner.setdefault(level, persona)
        names = set(self.personas) | {FALLBACK_PERSONA}
        for persona in sorted(names - set(self.persona_weights)):
            problems.append((("persona_weights",), f"no weight for persona {persona!r}"))
        for persona in self.persona_weights:
            if persona not in names:
                problems.append((("persona_weights", persona), f"unknown persona (known: {_names(names)})"))
        if problems:
            _fail(*problems)
        return self

    @cached_property
    def persona_by_level(self) -> dict[str, str]:
        return {level: persona for persona, levels in self.personas.items() for level in levels}

    def persona(self, seniority: str | None) -> str:
        """The persona of a seniority level; levels no persona lists are `user`."""
        return self.persona_by_level.get(seniority or "", FALLBACK_PERSONA)


class ScoringConfig(_Model):
    """`scoring.yaml`: how contacts and accounts earn points."""

    version: Literal[1]
    seniority: dict[Name, list[Regex]] = Field(default_factory=dict)
    lifecycle: Lifecycle = Field(default_factory=Lifecycle)
    fit: list[FitRule] = Field(default_factory=list)
    engagement: list[EngagementRule] = Field(default_factory=list)
    decay: dict[RuleId, Decay] = Field(default_factory=dict)
    velocity_days: Positive = 7
    visit_gap_minutes: Positive = 30
    account: Account = Field(default_factory=Account)

    @_model_validator(mode="after")
    def _cross_checks(self) -> ScoringConfig:
        problems: list[tuple[Loc, str]] = []
        first: dict[str, str] = {}
        sections: list[tuple[Loc, Sequence[FitRule | EngagementRule]]] = [
            (("fit",), self.fit),
            (("engagement",), self.engagement),
            (("account", "fit"), self.account.fit),
        ]
        for prefix, rules in sections:
            for i, rule in enumerate(rules):
                where = _format_loc((*prefix, i))
                if rule.id in first:
                    reason = f"duplicate rule id {rule.id!r} (first at {first[rule.id]})"
                    problems.append(((*prefix, i, "id"), reason))
                first.setdefault(rule.id, where)
        categories = {r.category for r in self.engagement}
        for category in self.decay:
            if category not in categories:
                problems.append(
                    (
                        ("decay", category),
                        f"no engagement rule has category {category!r} (categories: {_names(categories)})",
                    )
                )
        # Without seniority patterns, levels can only come from a sent `seniority` trait,
        # so any name is plausible; with them, a level they cannot produce is a typo.
        for persona, levels in self.account.personas.items() if self.seniority else ():
            for i, level in enumerate(levels):
                if level not in self.seniority:
                    problems.append(
                        (
                            ("account", "personas", persona, i),
                            f"unknown seniority level {level!r} (levels: {_names(self.seniority)})",
                        )
                    )
        if problems:
            _fail(*problems)
        return self

    @cached_property
    def seniority_patterns(self) -> tuple[tuple[str, tuple[re.Pattern[str], ...]], ...]:
        return tuple((level, tuple(compile_pattern(p) for p in ps)) for level, ps in self.seniority.items())

    @cached_property
    def decaying_rule_ids(self) -> frozenset[str]:
        """Engagement rules whose touches decay (and so keep their dates)."""
        return frozenset(r.id for r in self.event_rules if r.category in self.decay)

    @cached_property
    def _candidates(self) -> dict[tuple[str, str | None], tuple[EngagementRule, ...]]:
        """Event rules by (message type, case-folded event name); name None = any name."""
        index: dict[tuple[str, str | None], list[EngagementRule]] = {}
        for rule in self.event_rules:
            if rule.when is None or rule.points is None:
                continue
            for message_type in rule.when.types:
                for name in rule.when.events if rule.when.events is not None else (None,):
                    index.setdefault((message_type, name), []).append(rule)
        return {key: tuple(rules) for key, rules in index.items()}

    def candidate_rules(self, message_type: str, event_name: str | None) -> tuple[EngagementRule, ...]:
        """The only rules an event can match, in file order: scoring an event looks at a
        handful of rules, not all of them."""
        named = self._candidates.get((message_type, event_name.casefold()), ()) if event_name else ()
        anonymous = self._candidates.get((message_type, None), ())
        if not named or not anonymous:
            return named or anonymous
        ids = {rule.id for rule in (*named, *anonymous)}
        return tuple(rule for rule in self.event_rules if rule.id in ids)

    @cached_property
    def event_rules(self) -> tuple[EngagementRule, ...]:
        return tuple(r for r in self.engagement if r.counter is None)

    @cached_property
    def counter_rules(self) -> tuple[EngagementRule, ...]:
        return tuple(r for r in self.engagement if r.counter is not None)

    @cached_property
    def rules_by_id(self) -> dict[str, EngagementRule]:
        return {r.id: r for r in self.engagement}

    @property
    def rule_count(self) -> int:
        return len(self.fit) + len(self.engagement) + len(self.account.fit)


# -------------------------------------------------------------------------- sources


class Source(_Model):
    """A tracker that posts events; its write key is the HTTP Basic username."""

    id: RuleId
    name: str | None = None
    write_key: NonEmpty
    cors_origins: list[NonEmpty] = Field(default_factory=list)
    trusted: bool = False
    """A server-side source (a CRM sync) whose group calls may set the account's CRM `owner`
    (routing gives the account to that SDR first); collection drops `owner` from the group
    calls of every other source. Its write key stays on a server: no `cors_origins`."""

    @_model_validator(mode="after")
    def _key_and_origins(self) -> Source:
        problems: list[tuple[Loc, str]] = []
        if ":" in self.write_key or any(c.isspace() for c in self.write_key):
            problems.append((("write_key",), "must not contain ':' or spaces (it is an HTTP Basic username)"))
        if self.trusted and self.cors_origins:
            problems.append((("trusted",), "a trusted source's write key stays on a server: a browser source "
                                           "(cors_origins) cannot be trusted"))
        for i, origin in enumerate(self.cors_origins):
            if origin != "*" and not _ORIGIN.match(origin):
                problems.append(
                    (
                        ("cors_origins", i),
                        f"{origin!r} is not an origin like 'https://app.example.com' (no path)",
                    )
                )
        if problems:
            _fail(*problems)
        return self


_ORIGIN = re.compile(r"^https?://[^/\s?#]+$")
_REDIRECT = re.compile(r"^(https?://[^\s]+|/[^\s]*)$")


class BusSource(_Model):
    """EventBridge `source` (exact, or a prefix ending in `*`) -> source id."""

    match: NonEmpty
    source: RuleId

    def matches(self, eventbridge_source: str) -> bool:
        if self.match.endswith("*"):
            return eventbridge_source.startswith(self.match[:-1])
        return eventbridge_source == self.match


class Form(_Model):
    """An HTML form posting to `/v1/forms/{id}`."""

    id: RuleId
    name: str | None = None
    stage: Literal["top", "middle", "bottom"]
    source: RuleId
    redirect: str | None = None

    @_model_validator(mode="after")
    def _redirect(self) -> Form:
        if self.redirect is not None and not _REDIRECT.match(self.redirect):
            _fail((("redirect",), f"{self.redirect!r} is not an http(s) URL or an absolute path"))
        return self


class SourcesConfig(_Model):
    """`sources.yaml`: who may post events, and the forms."""

    version: Literal[1]
    sources: Annotated[list[Source], Field(min_length=1)]
    bus_sources: list[BusSource] = Field(default_factory=list)
    forms: list[Form] = Field(default_factory=list)

    @_model_validator(mode="after")
    def _cross_checks(self) -> SourcesConfig:
        problems: list[tuple[Loc, str]] = []
        ids: dict[str, int] = {}
        keys: dict[str, int] = {}
        for i, s in enumerate(self.sources):
            if s.id in ids:
                reason = f"duplicate source id {s.id!r} (first at sources[{ids[s.id]}])"
                problems.append((("sources", i, "id"), reason))
            if s.write_key in keys:
                problems.append(
                    (("sources", i, "write_key"), f"write key already used by sources[{keys[s.write_key]}]")
                )
            ids.setdefault(s.id, i)
            keys.setdefault(s.write_key, i)
        known = _names(ids)
        for i, b in enumerate(self.bus_sources):
            if b.source not in ids:
                problems.append(
                    (("bus_sources", i, "source"), f"unknown source {b.source!r} (known: {known})")
                )
        forms: dict[str, int] = {}
        for i, f in enumerate(self.forms):
            if f.id in forms:
                reason = f"duplicate form id {f.id!r} (first at forms[{forms[f.id]}])"
                problems.append((("forms", i, "id"), reason))
            forms.setdefault(f.id, i)
            if f.source not in ids:
                problems.append((("forms", i, "source"), f"unknown source {f.source!r} (known: {known})"))
            elif self.sources[ids[f.source]].trusted:
                problems.append((("forms", i, "source"), f"{f.source!r} is trusted: a form posts from browsers, "
                                                         "its source cannot be trusted"))
        if problems:
            _fail(*problems)
        return self

    @cached_property
    def _by_key(self) -> dict[str, Source]:
        return {s.write_key: s for s in self.sources}

    @cached_property
    def _by_id(self) -> dict[str, Source]:
        return {s.id: s for s in self.sources}

    @cached_property
    def _forms(self) -> dict[str, Form]:
        return {f.id: f for f in self.forms}

    def by_write_key(self, key: str | None) -> Source | None:
        return self._by_key.get(key) if key else None

    def source(self, source_id: str) -> Source | None:
        return self._by_id.get(source_id)

    def trusted(self, source_id: str) -> bool:
        """Whether events of `source_id` may set an account's CRM `owner` (`bus:<x>`: never)."""
        source = self._by_id.get(source_id)
        return source is not None and source.trusted

    def form(self, form_id: str) -> Form | None:
        return self._forms.get(form_id)

    def bus_source(self, eventbridge_source: str) -> str:
        """The source id for an EventBridge `source`; unmapped ones stay visible as `bus:<source>`."""
        for b in self.bus_sources:
            if b.matches(eventbridge_source):
                return b.source
        return "bus:" + eventbridge_source


# -------------------------------------------------------------------------- loading


class _Yaml:
    """The YAML readers, built on first use (a function whose rules files are pre-validated
    never imports yaml). Both are SafeLoaders with YAML 1.2 booleans and duplicate keys as
    errors: YAML 1.1 reads `NO`, `yes`, `on` as booleans, which turns Norway's country code
    into `false`, and a repeated key silently keeps the last value. Both are config bugs.

    `fast` parses with libyaml (PyYAML's C extension, some 8x faster) where it is there;
    `pure` is PyYAML's own parser, whose messages (and marks) an error is reported with.
    """

    def __init__(self) -> None:
        import yaml

        class DuplicateKey(yaml.constructor.ConstructorError):
            pass

        class Rules(yaml.constructor.SafeConstructor, yaml.resolver.Resolver):
            def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
                seen: set[Any] = set()
                for key_node, _ in node.value:
                    if key_node.tag == "tag:yaml.org,2002:merge":
                        continue
                    key = self.construct_object(key_node, deep=deep)
                    if isinstance(key, str | int | float | bool) and key in seen:
                        raise DuplicateKey(None, None, f"duplicate key {key!r}", key_node.start_mark)
                    seen.add(key if isinstance(key, str | int | float | bool) else id(key))
                return super().construct_mapping(node, deep=deep)

        Rules.yaml_implicit_resolvers = {
            first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
            for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
        }
        Rules.add_implicit_resolver(
            "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
        )

        class Pure(yaml.reader.Reader, yaml.scanner.Scanner, yaml.parser.Parser, yaml.composer.Composer, Rules):
            def __init__(self, stream: str) -> None:
                yaml.reader.Reader.__init__(self, stream)
                yaml.scanner.Scanner.__init__(self)
                yaml.parser.Parser.__init__(self)
                yaml.composer.Composer.__init__(self)
                Rules.__init__(self)

        self.yaml = yaml
        self.DuplicateKey = DuplicateKey
        self.pure: Any = Pure
        self.fast: Any = Pure
        c_parser: Any = getattr(getattr(yaml, "cyaml", None), "CParser", None)  # libyaml, if PyYAML has it
        if c_parser is not None:

            class Fast(c_parser, Rules):
                def __init__(self, stream: str) -> None:
                    c_parser.__init__(self, stream)
                    Rules.__init__(self)

            self.fast = Fast


@functools.cache
def _yaml() -> _Yaml:
    return _Yaml()


def _compose(loader_class: Any, text: str) -> tuple[Any, Any]:
    loader = loader_class(text)
    try:
        node = loader.get_single_node()
        return (loader.construct_document(node) if node is not None else None), node
    finally:
        loader.dispose()


def _read_yaml(path: Path, label: str) -> tuple[Any, Any]:
    """The data of a rules file and its node tree (for the line of an error)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(label, "(file)", "file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(label, "(file)", f"cannot read: {exc}") from None
    kit = _yaml()
    yaml = kit.yaml
    try:
        try:
            return _compose(kit.fast, text)
        except yaml.YAMLError:
            if kit.fast is kit.pure:
                raise
            # the error again from the pure parser: its messages and marks are the documented ones
            return _compose(kit.pure, text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}" if mark else "(file)"
        col = f" (column {mark.column + 1})" if mark else ""
        if isinstance(exc, kit.DuplicateKey):
            raise ConfigError(label, where, f"{exc.problem}{col}") from None
        problem = ": ".join(p for p in (exc.context, exc.problem) if p) or "invalid YAML"
        raise ConfigError(label, where, f"YAML syntax error: {problem}{col}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(label, "(file)", f"YAML syntax error: {exc}") from None


def _load(model: type[_M], path: str | os.PathLike[str], *, prevalidated: bool = True) -> _M:
    """A rules file as `model`: its pre-validated form when `compiled.json` next to it holds
    one for these exact bytes (and `prevalidated`), else read and validated now."""
    if prevalidated:
        found = _prevalidated(model, Path(path))
        if found is not None:
            return found
    label = os.fspath(path)
    data, node = _read_yaml(Path(path), label)
    if data is None:
        raise ConfigError(label, "(root)", f"the file is empty; it starts with `version: {FORMAT_VERSION}`")
    if not isinstance(data, dict):
        raise ConfigError(label, "(root)", f"expected a mapping of keys, got {_kind(data)}")
    # Checked first: a file in another format version would otherwise drown the one
    # useful message in a page of unknown-key errors.
    version = data.get("version")
    if "version" not in data:
        raise ConfigError(
            label, "version", f"required key missing (this format: `version: {FORMAT_VERSION}`)"
        )
    if version != FORMAT_VERSION or isinstance(version, bool):
        raise ConfigError(
            label, "version", f"unsupported version {version!r}; this release reads version {FORMAT_VERSION}"
        )
    from pydantic import ValidationError

    schema = _schema(model)
    try:
        validated: _M = _plain(schema.model_validate(data))
    except ValidationError as exc:
        raise ConfigError(label, errors=_problems(exc, schema, node)) from None
    return validated


def load_scoring(path: str | os.PathLike[str]) -> ScoringConfig:
    """Read and validate a `scoring.yaml`; `ConfigError` lists every problem found."""
    return _load(ScoringConfig, path)


def load_sources(path: str | os.PathLike[str]) -> SourcesConfig:
    """Read and validate a `sources.yaml`; `ConfigError` lists every problem found."""
    return _load(SourcesConfig, path)


# ------------------------------------------------------------- the pre-validated form
#
# `compiled.json`, next to the rules files (so in the config layer), holds each file's
# validated form: every key, default and shorthand resolved, keyed by the file's SHA-256 and
# by the code that validated it (this module and `routing_config`). `python -m
# leadscore.rulesfiles.config validate --write` writes it (every file valid); `validate` alone fails when
# it is out of date (`make validate-config`, so CI). A function's first
# invocation then builds its rules from it in a few milliseconds, importing neither pydantic
# nor yaml; a file edited since (or other code) does not match, and is read and validated as
# before: slower, never different.

COMPILED_FILE = "compiled.json"


@functools.cache
def _code_digest() -> str:
    """The validating code: this module and the routing rules' (their source bytes; "" when
    they cannot be read, which no compiled.json matches)."""
    digest = hashlib.sha256()
    try:
        for module in ("config.py", "routing.py"):
            digest.update(Path(__file__).with_name(module).read_bytes())
    except OSError:
        return ""
    return digest.hexdigest()


def _compiled_document(directory: Path) -> dict[str, Any] | None:
    path = directory / COMPILED_FILE
    try:
        stat = path.stat()
    except OSError:
        return None
    return _read_compiled(path, stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=8)
def _read_compiled(path: Path, mtime_ns: int, size: int) -> dict[str, Any] | None:
    try:
        document = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None
    code = _code_digest()
    return document if isinstance(document, dict) and code and document.get("code") == code else None


def _prevalidated(model: type[_M], path: Path) -> _M | None:
    document = _compiled_document(path.parent)
    if document is None:
        return None
    entry = (document.get("files") or {}).get(path.name)
    if not isinstance(entry, dict) or entry.get("model") != model.__name__:
        return None
    try:
        raw = path.read_bytes()
    except OSError:
        return None
    if entry.get("sha256") != hashlib.sha256(raw).hexdigest():
        return None
    return _decoded(model, entry["rules"])


def compiled_text(files: Sequence[tuple[Path, _Model]]) -> str:
    """The text of `compiled.json` for rules files and what validating them gave."""
    document = {
        "about": "The validated form of the rules files next to it, which the functions load: written "
                 "by `python -m leadscore.rulesfiles.config validate --write`. Do not edit.",
        "code": _code_digest(),
        "files": {
            path.name: {"sha256": hashlib.sha256(path.read_bytes()).hexdigest(), "model": type(rules).__name__,
                        "rules": _dumped(rules)}
            for path, rules in files
        },
    }
    return json.dumps(document, indent=1, ensure_ascii=False) + "\n"


def write_compiled(directory: Path, files: Sequence[tuple[Path, _Model]]) -> bool:
    """Write `directory/compiled.json` for these validated files; False when it was up to date."""
    text = compiled_text(files)
    path = directory / COMPILED_FILE
    try:
        if path.read_text(encoding="utf-8") == text:
            return False
    except OSError:
        pass
    path.write_text(text, encoding="utf-8")
    return True


@dataclass(frozen=True)
class Config:
    scoring: ScoringConfig
    sources: SourcesConfig
    dir: Path


def default_config_dir() -> Path:
    """`LEADSCORE_CONFIG_DIR`, else the config layer under `/opt`, else the repo's `config/`."""
    env = os.environ.get("LEADSCORE_CONFIG_DIR")
    if env:
        return Path(env)
    # A layer built from `config/` unpacks at /opt; one that keeps the folder at /opt/config.
    for candidate in (Path("/opt/config"), Path("/opt")):
        if (candidate / SCORING_FILE).is_file():
            return candidate
    return Path(__file__).resolve().parents[3] / "config"


@functools.lru_cache(maxsize=8)
def _load_dir(directory: Path) -> Config:
    return Config(
        scoring=load_scoring(directory / SCORING_FILE),
        sources=load_sources(directory / SOURCES_FILE),
        dir=directory,
    )


class _ConfigLoader:
    """`load_config(dir=None)`: both files of a directory, cached per resolved directory."""

    def __call__(self, config_dir: str | os.PathLike[str] | None = None) -> Config:
        directory = Path(config_dir) if config_dir is not None else default_config_dir()
        return _load_dir(directory.resolve())

    def cache_clear(self) -> None:
        _load_dir.cache_clear()


load_config = _ConfigLoader()


# ------------------------------------------------------------------ error messages

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
    "model_type": "expected a mapping",
    "model_attributes_type": "expected a mapping",
}

_BOUNDS = {
    "greater_than": "must be greater than {gt}",
    "greater_than_equal": "must be at least {ge}",
    "less_than": "must be less than {lt}",
    "less_than_equal": "must be at most {le}",
    "string_too_short": "must not be empty",
    "too_short": "needs at least {min_length} item(s)",
}


def _problems(exc: ValidationError, model: type[BaseModel], root: Any) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for err in exc.errors(include_url=False):
        loc: Loc = tuple(err["loc"])
        kind = err["type"]
        ctx = err.get("ctx") or {}
        if kind == "leadscore":
            for sub, reason in ctx["problems"]:
                full = (*loc, *sub)
                out.append((_format_loc(full), _with_line(reason, root, full)))
            continue
        if kind == "extra_forbidden":
            reason = "unknown key" + _suggestion(model, loc)
        elif kind in _MESSAGES:
            reason = _MESSAGES[kind]
            if kind != "missing":
                reason += f", got {_short(err.get('input'))}"
        elif kind in _BOUNDS:
            bounds = {k: _num(v) if isinstance(v, int | float) else v for k, v in ctx.items()}
            reason = _BOUNDS[kind].format(**bounds) + f", got {_short(err.get('input'))}"
        elif kind == "literal_error":
            reason = f"expected {ctx.get('expected')}, got {_short(err.get('input'))}"
        else:
            reason = str(err["msg"]).removeprefix("Value error, ")
            reason = reason[:1].lower() + reason[1:]
        out.append((_format_loc(loc), _with_line(reason, root, loc)))
    return out


def _format_loc(loc: Iterable[str | int]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif re.fullmatch(r"[A-Za-z_][\w-]*", part):
            out += ("." if out else "") + part
        else:
            out += f"[{part!r}]"
    return out or "(root)"


def _with_line(reason: str, root: Any, loc: Loc) -> str:
    line = _line_of(root, loc)
    return f"{reason} (line {line})" if line else reason


def _line_of(node: Any, loc: Loc) -> int | None:
    if node is None:
        return None
    yaml = _yaml().yaml
    line = node.start_mark.line
    for part in loc:
        nxt: Any = None
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode) and key.value == str(part):
                    nxt, line = value, key.start_mark.line
                    break
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            nxt = node.value[part]
            line = nxt.start_mark.line
        if nxt is None:
            break
        node = nxt
    return line + 1


def _suggestion(model: type[BaseModel], loc: Loc) -> str:
    import difflib

    from pydantic import BaseModel

    owner = _type_at(model, loc[:-1])
    if not (isinstance(owner, type) and issubclass(owner, BaseModel)):
        return ""
    allowed = [f.alias or name for name, f in owner.model_fields.items()]
    close = difflib.get_close_matches(str(loc[-1]), allowed, n=1, cutoff=0.6)
    if close:
        return f"; did you mean {close[0]!r}?"
    return f" (allowed: {', '.join(allowed)})"


def _type_at(tp: Any, loc: Loc) -> Any:
    from pydantic import BaseModel

    for part in loc:
        tp = _strip(tp)
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            field = next((f for n, f in tp.model_fields.items() if (f.alias or n) == part), None)
            if field is None:
                return None
            tp = field.annotation
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


# -------------------------------------------------------------------------- helpers


def _range(lo: float | None, hi: float | None) -> str:
    if hi is None:
        return f"{_num(lo)}+"
    if lo is None:
        return f"up to {_num(hi)}"
    return f"{_num(lo)}-{_num(hi)}"


def _names(values: Iterable[str]) -> str:
    names = sorted(values)
    return ", ".join(names) if names else "none"


def _kind(value: Any) -> str:
    return {list: "a list", str: "a string", int: "a number", float: "a number", bool: "a boolean"}.get(
        type(value), type(value).__name__
    )


def _short(value: Any) -> str:
    if isinstance(value, dict | list):
        return _kind(value) if isinstance(value, list) else "a mapping"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


# ------------------------------------------------------------------------------ CLI


def config_warnings(path: Path, loaded: _Model) -> list[str]:
    """`warning: file: key path: reason (line N)` for what a valid file says but probably does
    not mean (a model's `config_warnings()`); not errors: the file still loads."""
    found: list[tuple[Loc, str]] = getattr(loaded, "config_warnings", list)()
    if not found:
        return []
    _, node = _read_yaml(path, os.fspath(path))
    return [f"warning: {path}: {_format_loc(loc)}: {_with_line(reason, node, loc)}" for loc, reason in found]


def print_warnings(path: Path, loaded: _Model) -> None:
    for line in config_warnings(path, loaded):
        print(line, file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m leadscore.rulesfiles.config validate [DIR] [--write]`: exit 1 when a rules file has errors,
    or when DIR/compiled.json (the pre-validated form the functions load) is out of date;
    `--write` (re)writes it."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m leadscore.rulesfiles.config", description="Check the rules files.")
    commands = parser.add_subparsers(dest="command", required=True)
    validate = commands.add_parser("validate", help="validate scoring.yaml, sources.yaml and routing.yaml, "
                                                    f"and check {COMPILED_FILE}")
    validate.add_argument("dir", nargs="?", help="config directory (default: %(default)s)", default=None)
    validate.add_argument("--write", action="store_true",
                          help=f"(re)write {COMPILED_FILE}, the pre-validated rules the functions load")
    args = parser.parse_args(argv)
    directory = Path(args.dir) if args.dir else default_config_dir()
    from leadscore.rulesfiles.routing import ROUTING_FILE, RoutingConfig

    checks: list[tuple[str, type[_Model], Callable[[Any], str]]] = [
        (SCORING_FILE, ScoringConfig, lambda c: f"{c.rule_count} rules"),
        (SOURCES_FILE, SourcesConfig, lambda c: f"{len(c.sources)} sources, {len(c.forms)} forms"),
        (ROUTING_FILE, RoutingConfig, lambda c: f"{len(c.sdrs)} SDRs, {len(c.pools)} pools, "
                                                f"{len(c.territories)} territories"),
    ]
    status = 0
    valid: list[tuple[Path, _Model]] = []
    for name, model, summary in checks:
        path = directory / name
        try:
            loaded = _load(model, path, prevalidated=False)
        except ConfigError as exc:
            print(exc, file=sys.stderr)
            status = 1
        else:
            valid.append((path, loaded))
            print(f"ok: {path} ({summary(loaded)})")
            print_warnings(path, loaded)
    if status:
        return status
    compiled = directory / COMPILED_FILE
    if args.write:
        print(f"{'wrote' if write_compiled(directory, valid) else 'up to date:'} {compiled}")
    elif not compiled.exists():
        print(f"note: no {compiled}: the functions validate the rules on their first invocation (a slower "
              f"cold start); `python -m leadscore.rulesfiles.config validate --write {directory}` writes it")
    elif compiled.read_text(encoding="utf-8") != compiled_text(valid):
        print(f"{compiled}: out of date (the rules files or the code that validates them changed); the functions "
              f"would validate the rules on their first invocation: run `make config` (`python -m "
              f"leadscore.rulesfiles.config validate --write {directory}`)", file=sys.stderr)
        return 1
    else:
        print(f"up to date: {compiled}")
    return 0


if __name__ == "__main__":
    # `python -m` runs this file as `__main__`, a second copy of the module: the routing rules'
    # classes derive from the real one's, so the command runs there.
    from leadscore.rulesfiles.config import main as _main

    sys.exit(_main())
