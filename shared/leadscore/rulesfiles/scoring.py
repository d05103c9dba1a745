"""`config/scoring.yaml`: how contacts and accounts earn points.

Every mistake a RevOps engineer can make in this file should surface when it is validated
(`make config`, deploy), never as a silently wrong score: unknown keys are errors, numbers
are strict (`points: "10"` and `points: yes` are errors, not coercions), regexes are
compiled, and the checks across rules (duplicate ids, overlapping buckets, thresholds in the
wrong order) run before the rules are handed out (`model.py` says how).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import field
from functools import cached_property
from typing import Annotated, Any, Literal

from leadscore.domain.events import NON_ENGAGEMENT_TYPES, MessageType
from leadscore.domain.values import match_key, number_text
from leadscore.rulesfiles.checks import id_problems
from leadscore.rulesfiles.errors import Loc, Problem, names, number_range
from leadscore.rulesfiles.model import (
    Before,
    Limits,
    Name,
    NonEmpty,
    NonNegative,
    Positive,
    Regex,
    RuleId,
    RulesObject,
    Scalar,
    StrList,
    as_list,
    compile_pattern,
)

#: the persona of a seniority level no persona lists
FALLBACK_PERSONA = "user"


def _condition(value: Any) -> Any:
    # Shorthand: `stage: top` means equals, `stage: [top, middle]` means in.
    if isinstance(value, dict):
        return value
    if isinstance(value, list):
        return {"in": value}
    return {"equals": value}


# ----------------------------------------------------------------------- conditions


class Match(RulesObject):
    """One condition on a value: exactly one of equals / in / contains / pattern / min-max."""

    equals: Scalar | None = None
    in_: list[Scalar] | None = None
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

    def _condition_problems(self) -> list[Problem]:
        problems: list[Problem] = []
        if self.min is not None and self.max is not None and self.min > self.max:
            problems.append((("min",), f"min ({number_text(self.min)}) is above max ({number_text(self.max)})"))
        return problems

    def problems(self) -> list[Problem]:
        found = self._conditions()
        if len(found) != 1:
            return [((), _one_of_message(["equals", "in", "contains", "pattern", "min/max"], found))]
        return self._condition_problems()

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
        return number_range(self.min, self.max)


def _one_of_message(options: list[str], found: list[str]) -> str:
    if not found:
        return "needs one condition: " + ", ".join(options)
    return "give exactly one of " + ", ".join(options) + " (found " + ", ".join(found) + ")"


class Bucket(RulesObject):
    """A numeric range (both ends inclusive; `max` omitted = no upper bound) and its points."""

    min: float | None = None
    max: float | None = None
    points: float
    label: str | None = None

    def problems(self) -> list[Problem]:
        if self.min is None and self.max is None:
            return [((), "a bucket needs min, max or both")]
        if self.min is not None and self.max is not None and self.min > self.max:
            return [(("min",), f"min ({number_text(self.min)}) is above max ({number_text(self.max)})")]
        return []

    def contains(self, value: float) -> bool:
        return (self.min is None or value >= self.min) and (self.max is None or value <= self.max)

    def describe(self) -> str:
        return self.label or f"bucket {number_range(self.min, self.max)}"


def _bucket_problems(buckets: Sequence[Bucket]) -> list[Problem]:
    problems: list[Problem] = []
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
                        f"overlaps buckets[{i}] ({number_range(a.min, a.max)}): exactly one bucket must apply",
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
    buckets: Annotated[list[Bucket], Limits(min_length=1)] | None = None

    def problems(self) -> list[Problem]:
        found = self._conditions() + (["buckets"] if self.buckets is not None else [])
        problems: list[Problem] = []
        if len(found) != 1:
            options = ["equals", "in", "contains", "pattern", "min/max", "buckets"]
            problems.append(((), _one_of_message(options, found)))
        elif self.buckets is not None:
            if self.points is not None:
                problems.append((("points",), "not allowed with buckets: each bucket carries its points"))
            problems += _bucket_problems(self.buckets)
        elif self.points is None:
            problems.append((("points",), "required key missing"))
        return problems + self._condition_problems()

    @cached_property
    def path(self) -> tuple[str, ...]:
        return tuple(self.trait.split("."))


# ---------------------------------------------------------------------- engagement


class Limit(RulesObject):
    """Frequency limit: at most `max` scored hits in any `per_days`-day sliding window."""

    max: Annotated[int, Limits(ge=1)]
    per_days: Positive


class When(RulesObject):
    """What an event must look like for an engagement rule to match (all given keys must hold)."""

    type: Annotated[list[MessageType], Before(as_list)] | None = None
    event: StrList | None = None
    url_contains: StrList | None = None
    form_id: StrList | None = None
    properties: dict[NonEmpty, Annotated[Match, Before(_condition)]] | None = None

    def problems(self) -> list[Problem]:
        for i, t in enumerate(self.type or ()):
            if t in NON_ENGAGEMENT_TYPES:
                return [(("type", i), f"{t!r} messages never earn engagement (use track, page or screen)")]
        return []

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


class EngagementRule(RulesObject):
    """Points for events (`when` + `points`), or a per-contact counter with `buckets`."""

    id: RuleId
    description: str | None = None
    category: RuleId
    points: float | None = None
    cap: Positive | None = None
    limit: Limit | None = None
    when: When | None = None
    counter: Literal["visits"] | None = None
    buckets: Annotated[list[Bucket], Limits(min_length=1)] | None = None

    def problems(self) -> list[Problem]:
        problems: list[Problem] = []
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
        return problems


# --------------------------------------------------------------- scoring sections


class Lifecycle(RulesObject):
    """`lifecycle:`, the contact scores at which a contact is an MQL, then an SQL."""

    mql: float = 35
    sql: float = 65

    def problems(self) -> list[Problem]:
        if self.mql >= self.sql:
            return [(("mql",), f"mql ({number_text(self.mql)}) must be below sql ({number_text(self.sql)})")]
        return []


class Decay(RulesObject):
    """`decay.<category>`: when touches of a category start to lose points, and how fast."""

    stale_after_days: NonNegative
    half_life_days: Positive


class Committee(RulesObject):
    """`account.committee`: points when enough personas engaged recently."""

    min_personas: Annotated[int, Limits(ge=1)] = 2
    recent_days: Positive = 30
    points: float = 15


class Thresholds(RulesObject):
    """`account.thresholds`: SDR-ready at `sdr_ready`, again only after falling below `requalify_below`."""

    sdr_ready: float = 100
    requalify_below: float = 80

    def problems(self) -> list[Problem]:
        if self.requalify_below >= self.sdr_ready:
            return [(("requalify_below",), f"requalify_below ({number_text(self.requalify_below)}) must be below "
                                           f"sdr_ready ({number_text(self.sdr_ready)})")]
        return []


class Exclusions(RulesObject):
    """`account.exclusions`: accounts and contacts scored but never routed."""

    lifecycles: list[NonEmpty] = field(default_factory=lambda: ["customer", "opportunity", "partner", "competitor"])
    own_domains: list[NonEmpty] = field(default_factory=list)
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


class AccountRules(RulesObject):
    """`account:`, account scoring: fit on group traits plus the top contacts' engagement."""

    top_contacts: Annotated[int, Limits(ge=1)] = 5
    contact_cap: Positive = 80
    personas: dict[Name, list[Name]] = field(default_factory=_default_personas)
    persona_weights: dict[Name, NonNegative] = field(default_factory=_default_weights)
    committee: Committee = field(default_factory=Committee)
    fit: list[FitRule] = field(default_factory=list)
    thresholds: Thresholds = field(default_factory=Thresholds)
    exclusions: Exclusions = field(default_factory=Exclusions)
    not_ready_cooldown_days: NonNegative = 14

    def problems(self) -> list[Problem]:
        problems: list[Problem] = []
        owner: dict[str, str] = {}
        for persona, levels in self.personas.items():
            for i, level in enumerate(levels):
                if level in owner:
                    problems.append(
                        (("personas", persona, i), f"level {level!r} is already in persona {owner[level]!r}")
                    )
                owner.setdefault(level, persona)
        known = set(self.personas) | {FALLBACK_PERSONA}
        for persona in sorted(known - set(self.persona_weights)):
            problems.append((("persona_weights",), f"no weight for persona {persona!r}"))
        for persona in self.persona_weights:
            if persona not in known:
                problems.append((("persona_weights", persona), f"unknown persona (known: {names(known)})"))
        return problems

    @cached_property
    def persona_by_level(self) -> dict[str, str]:
        return {level: persona for persona, levels in self.personas.items() for level in levels}

    def persona(self, seniority: str | None) -> str:
        """The persona of a seniority level; levels no persona lists are `user`."""
        return self.persona_by_level.get(seniority or "", FALLBACK_PERSONA)


class ScoringConfig(RulesObject):
    """`scoring.yaml`: how contacts and accounts earn points."""

    version: Literal[1]
    seniority: dict[Name, list[Regex]] = field(default_factory=dict)
    lifecycle: Lifecycle = field(default_factory=Lifecycle)
    fit: list[FitRule] = field(default_factory=list)
    engagement: list[EngagementRule] = field(default_factory=list)
    decay: dict[RuleId, Decay] = field(default_factory=dict)
    velocity_days: Positive = 7
    visit_gap_minutes: Positive = 30
    account: AccountRules = field(default_factory=AccountRules)

    def problems(self) -> list[Problem]:
        sections: list[tuple[Loc, Sequence[FitRule | EngagementRule]]] = [
            (("fit",), self.fit),
            (("engagement",), self.engagement),
            (("account", "fit"), self.account.fit),
        ]
        problems = id_problems((((*prefix, i), rule.id) for prefix, rules in sections for i, rule in enumerate(rules)),
                               key="id", repeated="duplicate rule id {value!r} (first at {first})")
        categories = {r.category for r in self.engagement}
        for category in self.decay:
            if category not in categories:
                problems.append(
                    (
                        ("decay", category),
                        f"no engagement rule has category {category!r} (categories: {names(categories)})",
                    )
                )
        # Without seniority patterns, levels can only come from a sent `seniority` trait,
        # so any name is plausible; with them, a level they cannot produce is a typo.
        for persona, levels in self.account.personas.items() if self.seniority else ():
            problems += id_problems(((("account", "personas", persona, i), level) for i, level in enumerate(levels)),
                                    known=self.seniority.keys(),
                                    unknown="unknown seniority level {value!r} (levels: {known})")
        return problems

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

