"""`config/routing.yaml`: who gets SDR-ready accounts.

Validated as the other rules files are (`model.py`): unknown keys are errors, numbers are
strict, and the checks across the file (unknown SDR ids in pools, empty pools, unknown
pools, duplicate ids, overlapping out-of-office dates, unknown time zones, countries that
are not ISO 3166) run before the rules are handed out; every error names the file, the key
path and the reason (with the line).

Country and region data come from maintained libraries, never a hand list:
- `pycountry` (ISO 3166-1 and 3166-2, already a dependency) through `identity.country_code`,
  with `countryinfo`'s alternative spellings (`Deutschland`, `Russia`, `UAE`) as a second try;
- `countryinfo` for the UN M49 region and sub-region of each country, mapped to the four
  sales regions: `NA` (Northern America), `LATAM` (Latin America and the Caribbean),
  `EMEA` (Europe, Africa, Western Asia), `APAC` (the rest of Asia, Oceania).

Time zones are checked with `zoneinfo`, which reads the system database (Lambda's Amazon
Linux has it) and falls back to the `tzdata` package where the system has none.

Pure: no AWS. The country data loads on first use, not at import.
"""

from __future__ import annotations

import functools
import zoneinfo
from dataclasses import field
from datetime import date, datetime
from functools import cached_property
from typing import Annotated, Any, Literal

from leadscore.domain.business_hours import DAY_NAMES, Week, sla_due
from leadscore.domain.places import REGIONS, country_code, region_of, subdivision_codes
from leadscore.domain.values import SLACK_USER_ID, number_text, text_key
from leadscore.rulesfiles.checks import id_problems
from leadscore.rulesfiles.errors import Problem
from leadscore.rulesfiles.model import Before, Limits, NonEmpty, RuleId, RulesObject, as_list

RoutingMode = Literal["territory", "round_robin"]


@functools.lru_cache(maxsize=1)
def _time_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def _zone_problem(name: str) -> str | None:
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        pass
    else:
        return None
    zones = _time_zones()
    if not zones:
        return f"unknown time zone {name!r}: this machine has no time zone database (pip install tzdata)"
    import difflib

    close = difflib.get_close_matches(name, sorted(zones), n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]!r}?" if close else " (use an IANA name like 'Europe/Madrid')"
    return f"unknown time zone {name!r}{hint}"


# ----------------------------------------------------------------------- field types


def _date(value: Any) -> Any:
    # YAML reads `2026-12-21` as a date; a quoted "2026-12-21" is accepted too. A
    # timestamp is not a day.
    if isinstance(value, datetime):
        raise ValueError(f"expected a date like 2026-12-21, got a timestamp {value.isoformat()!r}")
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            raise ValueError(f"expected a date like 2026-12-21, got {value!r}") from None
    return value


Day = Annotated[date, Before(_date)]
Whole = Annotated[int, Limits(gt=0)]


def _upper_list(value: Any) -> Any:
    value = as_list(value)
    if isinstance(value, list):
        return [v.strip().upper() if isinstance(v, str) else v for v in value]
    return value


def _lower_list(value: Any) -> Any:
    value = as_list(value)
    if isinstance(value, list):
        return [v.strip().lower() if isinstance(v, str) else v for v in value]
    return value


_FULL_DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_DAY_BY_NAME = {name.casefold(): name for name in DAY_NAMES} | {
    full.casefold(): name for full, name in zip(_FULL_DAY_NAMES, DAY_NAMES, strict=True)
}


def _day_names(value: Any) -> Any:
    # `Mon`, `monday`, `MON` are `Mon`; anything else stays as written, for the error to name.
    value = as_list(value)
    if isinstance(value, list):
        return [_DAY_BY_NAME.get(v.strip().casefold(), v) if isinstance(v, str) else v for v in value]
    return value


def _clock(value: Any) -> Any:
    # "09:00", 24-hour. YAML 1.1 reads an unquoted 18:00 as the base-60 number 1080.
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        if value <= 24:
            raise ValueError(f'write the time in quotes, like "{value:02d}:00", got the number {value}')
        hint = f"{value // 60:02d}:{value % 60:02d}"
        raise ValueError(f'write the time in quotes, like "{hint}" (unquoted, YAML reads {hint} as the number {value})')
    if isinstance(value, str):
        hours, sep, minutes = value.strip().partition(":")
        if (sep and hours.isdigit() and minutes.isdigit() and len(hours) <= 2 and len(minutes) == 2
                and (int(hours), int(minutes)) <= (24, 0) and int(minutes) < 60):
            return f"{int(hours):02d}:{minutes}"
        raise ValueError(f'expected a time like "09:00" (24-hour; "24:00" is the end of the day), got {value!r}')
    return value


Clock = Annotated[str, Before(_clock)]


def _minutes(clock: str) -> int:
    hours, _, minutes = clock.partition(":")
    return int(hours) * 60 + int(minutes)


# -------------------------------------------------------------------------- models


class OutOfOffice(RulesObject):
    """An absence: both days inclusive, in the SDR's own time zone."""

    from_: Day
    to: Day

    def problems(self) -> list[Problem]:
        if self.from_ > self.to:
            return [(("from",), f"from ({self.from_}) is after to ({self.to})")]
        return []

    def covers(self, day: date) -> bool:
        return self.from_ <= day <= self.to


class BusinessHours(RulesObject):
    """Working hours, in the SDR's own time zone: the SLA counts only these
    (`leadscore.domain.business_hours`). `to` after `from`; `"24:00"` ends at midnight."""

    days: Annotated[list[str], Before(_day_names)] = field(default_factory=lambda: list(DAY_NAMES[:5]))
    from_: Clock
    to: Clock

    def problems(self) -> list[Problem]:
        problems: list[Problem] = []
        if not self.days:
            problems.append((("days",), f"list at least one day ({', '.join(DAY_NAMES)})"))
        for i, day in enumerate(self.days):
            if day not in DAY_NAMES:
                problems.append((("days", i), f"unknown day {day!r} (days: {', '.join(DAY_NAMES)})"))
            elif day in self.days[:i]:
                problems.append((("days", i), f"{day} is listed twice"))
        if self.from_ == "24:00":
            problems.append((("from",), 'a day starts before "24:00" (its end); use "00:00"'))
        elif _minutes(self.to) <= _minutes(self.from_):
            problems.append((("to",), f"to ({self.to}) is not after from ({self.from_}): hours past midnight "
                             'are not supported; end at "24:00" and start the next day at "00:00"'))
        return problems

    @cached_property
    def week(self) -> Week:
        return Week.of({DAY_NAMES.index(d) for d in self.days}, _minutes(self.from_), _minutes(self.to))


class Sdr(RulesObject):
    """A sales development rep who can be routed accounts."""

    id: RuleId
    name: NonEmpty
    email: NonEmpty
    weight: Annotated[int, Limits(gt=0, le=1000)] = 1
    daily_capacity: Whole | None = None
    time_zone: NonEmpty = "UTC"
    sla_business_hours: BusinessHours | None = None  # over routing.yaml's own, for this SDR
    out_of_office: list[OutOfOffice] = field(default_factory=list)
    active: bool = True
    #: their Slack member id (`U0123ABCD`): the Slack notifications mention them as `<@U0123ABCD>`
    slack_user_id: str | None = None

    def problems(self) -> list[Problem]:
        problems: list[Problem] = []
        if self.slack_user_id is not None and not SLACK_USER_ID.fullmatch(self.slack_user_id):
            problems.append((("slack_user_id",), f"{self.slack_user_id!r} is not a Slack member id (like"
                                                 " U0123ABCD: Slack profile > ... > Copy member ID)"))
        if "@" not in self.email.strip("@") or any(c.isspace() for c in self.email):
            problems.append((("email",), f"{self.email!r} is not an email address"))
        if (zone := _zone_problem(self.time_zone)) is not None:
            problems.append((("time_zone",), zone))
        for j, b in enumerate(self.out_of_office):
            for i in range(j):
                a = self.out_of_office[i]
                if a.from_ <= b.to and b.from_ <= a.to:
                    problems.append(
                        (
                            ("out_of_office", j),
                            f"{b.from_}..{b.to} overlaps out_of_office[{i}] ({a.from_}..{a.to})",
                        )
                    )
                    break
        return problems

    @cached_property
    def zone(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.time_zone)

    def local_day(self, now: datetime) -> date:
        """The SDR's calendar day at `now` (capacity and out-of-office count in it)."""
        return now.astimezone(self.zone).date()

    def out_on(self, day: date) -> OutOfOffice | None:
        return next((o for o in self.out_of_office if o.covers(day)), None)


class Pool(RulesObject):
    """SDRs who share a round-robin (in this order)."""

    id: RuleId
    sdrs: list[RuleId]


class Employees(RulesObject):
    """An employee band, both ends inclusive; either may be left out."""

    min: Annotated[float, Limits(ge=0)] | None = None
    max: Annotated[float, Limits(ge=0)] | None = None

    def problems(self) -> list[Problem]:
        if self.min is None and self.max is None:
            return [((), "give min, max or both")]
        if self.min is not None and self.max is not None and self.min > self.max:
            return [(("min",), f"min ({number_text(self.min)}) is above max ({number_text(self.max)})")]
        return []

    def contains(self, value: float) -> bool:
        return (self.min is None or value >= self.min) and (self.max is None or value <= self.max)


class TerritoryWhen(RulesObject):
    """Conditions on an account; every key given must hold (a list means any of)."""

    country: Annotated[list[NonEmpty], Before(as_list)] | None = None
    region: Annotated[list[str], Before(_upper_list)] | None = None
    state: Annotated[list[NonEmpty], Before(as_list)] | None = None
    industry: Annotated[list[NonEmpty], Before(as_list)] | None = None
    employees: Employees | None = None
    domain: Annotated[list[NonEmpty], Before(_lower_list)] | None = None

    def problems(self) -> list[Problem]:
        problems: list[Problem] = []
        for i, c in enumerate(self.country or ()):
            if country_code(c) is None:
                problems.append(
                    (("country", i), f"{c!r} is not an ISO 3166 country (use a code like DE or a name like Germany)")
                )
        for i, r in enumerate(self.region or ()):
            if r not in REGIONS:
                problems.append((("region", i), f"unknown region {r!r} (regions: {', '.join(REGIONS)})"))
        for i, s in enumerate(self.state or ()):
            if not subdivision_codes(s, self.countries):
                where = f" of {', '.join(sorted(self.countries))}" if self.countries else ""
                problems.append(
                    (
                        ("state", i),
                        f"{s!r} is not an ISO 3166-2 subdivision{where} (use a code like US-CA or a name "
                        "like California)",
                    )
                )
        return problems

    @cached_property
    def countries(self) -> frozenset[str]:
        return frozenset(code for c in self.country or () if (code := country_code(c)))

    @cached_property
    def regions(self) -> frozenset[str]:
        return frozenset(self.region or ())

    @cached_property
    def states(self) -> frozenset[str]:
        return frozenset(code for s in self.state or () for code in subdivision_codes(s, self.countries))

    @cached_property
    def industries(self) -> frozenset[str]:
        return frozenset(i for v in self.industry or () if (i := text_key(v)))

    @cached_property
    def domains(self) -> frozenset[str]:
        return frozenset(self.domain or ())

    @property
    def is_empty(self) -> bool:
        return all(
            v is None for v in (self.country, self.region, self.state, self.industry, self.employees, self.domain)
        )


class Territory(RulesObject):
    """Accounts matching `when` go to `pool`; territories are tried in file order."""

    id: RuleId
    pool: RuleId
    when: TerritoryWhen = field(default_factory=TerritoryWhen)


class RoutingConfig(RulesObject):
    """`routing.yaml`: SDRs, pools, territories and the routing clock settings."""

    version: Literal[1]
    mode: RoutingMode = "territory"
    sla_hours: Annotated[float, Limits(ge=1)] = 48  # under an hour: re-routes faster than anyone reads
    cooldown_days: Annotated[float, Limits(ge=0)] = 30
    sdrs: Annotated[list[Sdr], Limits(min_length=1)]
    pools: list[Pool] = field(default_factory=list)
    territories: list[Territory] = field(default_factory=list)
    fallback_pool: RuleId | None = None
    leads: list[RuleId] = field(default_factory=list)
    """Team leads: ids of `sdrs` (who may be in no pool: managers) who may give feedback on,
    and act on, any account."""
    sla_business_hours: BusinessHours | None = None
    """The SLA counts only these hours of the owning SDR (their own `sla_business_hours`
    first); none: wall-clock hours."""

    def problems(self) -> list[Problem]:
        sdr_ids = {s.id for s in self.sdrs}
        pool_ids = {p.id for p in self.pools}
        problems = [
            *id_problems(((("sdrs", i), s.id) for i, s in enumerate(self.sdrs)), key="id",
                         repeated="duplicate id {value!r} (first at {first})"),
            *id_problems(((("pools", i), p.id) for i, p in enumerate(self.pools)), key="id",
                         repeated="duplicate id {value!r} (first at {first})"),
            *id_problems(((("territories", i), t.id) for i, t in enumerate(self.territories)), key="id",
                         repeated="duplicate id {value!r} (first at {first})"),
        ]
        for i, pool in enumerate(self.pools):
            if not pool.sdrs:
                problems.append((("pools", i, "sdrs"), f"pool {pool.id!r} is empty: list at least one SDR id"))
            problems += id_problems(((("pools", i, "sdrs", j), sdr) for j, sdr in enumerate(pool.sdrs)),
                                    known=sdr_ids, unknown="unknown SDR {value!r} (SDRs: {known})",
                                    repeated="SDR {value!r} is listed twice in this pool")
        problems += id_problems(((("territories", i), t.pool) for i, t in enumerate(self.territories)), key="pool",
                                known=pool_ids, unknown="unknown pool {value!r} (pools: {known})")
        problems += self._shadowed() + self._never_routed()
        problems += id_problems(((("leads", i), lead) for i, lead in enumerate(self.leads)), known=sdr_ids,
                                unknown="unknown SDR {value!r}: a lead is one of `sdrs` (SDRs: {known})",
                                repeated="lead {value!r} is listed twice")
        if self.fallback_pool is not None:
            problems += id_problems([(("fallback_pool",), self.fallback_pool)], known=pool_ids,
                                    unknown="unknown pool {value!r} (pools: {known})")
        elif self.mode == "territory":
            problems.append((("fallback_pool",), "required key missing: the pool for accounts no territory matches"))
        return problems

    def _shadowed(self) -> list[Problem]:
        """Territories an earlier one always wins over (first match wins), each named once."""
        problems: list[Problem] = []
        for j, later in enumerate(self.territories):
            for i, earlier in enumerate(self.territories[:j]):
                if earlier.when.is_empty:
                    why = "has no conditions and matches every account"
                elif _covers(earlier.when, later.when):
                    why = "matches every account this one matches (its conditions are the same or looser)"
                else:
                    continue
                problems.append((("territories", j), f"never reached: territories[{i}] ({earlier.id!r}) {why}"))
                break
        return problems

    def _never_routed(self) -> list[Problem]:
        """Pools nobody active can take accounts from, and active SDRs no account can reach."""
        problems: list[Problem] = []
        active = {s.id for s in self.sdrs if s.active}
        if self.mode == "round_robin":
            if not active:
                problems.append((("sdrs",), "no active SDR: with `mode: round_robin` every account would wait "
                                 "for ever"))
            return problems
        pool_ids = {p.id for p in self.pools}
        for i, pool in enumerate(self.pools):
            users = [f"territories[{j}] ({t.id!r})" for j, t in enumerate(self.territories) if t.pool == pool.id]
            if pool.sdrs and users and not active & set(pool.sdrs) and set(pool.sdrs) <= self.sdr_by_id.keys():
                problems.append((("pools", i, "sdrs"), f"every SDR of pool {pool.id!r} is inactive "
                                 f"({', '.join(pool.sdrs)}): accounts of {', '.join(users)} would never be routed"))
        fallback = self.pool_by_id.get(self.fallback_pool or "")
        if fallback is not None and fallback.sdrs and not active & set(fallback.sdrs) \
                and set(fallback.sdrs) <= self.sdr_by_id.keys():
            problems.append((("fallback_pool",), f"every SDR of pool {fallback.id!r} is inactive "
                             f"({', '.join(fallback.sdrs)}): accounts no territory matches would never be routed"))
        if pool_ids:
            pooled = {sdr for p in self.pools for sdr in p.sdrs}
            for i, sdr in enumerate(self.sdrs):
                if sdr.active and sdr.id not in pooled and sdr.id not in self.leads:
                    problems.append((("sdrs", i), f"SDR {sdr.id!r} is active but in no pool and not in `leads`: no "
                                     "account is ever routed to them; add them to a pool, to `leads`, or set "
                                     "`active: false`"))
        return problems

    def config_warnings(self) -> list[Problem]:
        if self.mode == "round_robin" and self.territories:
            return [(("territories",), "ignored with `mode: round_robin` (one round-robin over every active SDR); "
                                       "remove them or set `mode: territory`")]
        return []

    def sla_due(self, sdr: Sdr, routed_at: datetime) -> datetime:
        """When an account routed to `sdr` at `routed_at` is due (UTC): `sla_hours` of the
        SDR's working hours in their time zone, or of wall clock with no business hours."""
        hours = sdr.sla_business_hours or self.sla_business_hours
        return sla_due(routed_at, float(self.sla_hours), hours.week if hours else None, sdr.zone)

    @cached_property
    def sdr_by_id(self) -> dict[str, Sdr]:
        return {s.id: s for s in self.sdrs}

    @cached_property
    def pool_by_id(self) -> dict[str, Pool]:
        return {p.id: p for p in self.pools}


def _covers(wide: TerritoryWhen, narrow: TerritoryWhen) -> bool:
    """Every account `narrow` matches also matches `wide` (see `routing.territory_matches`):
    each condition of `wide` is implied by `narrow`'s. Only sure implications count (a
    country implies its region; a state does not imply the country trait is set)."""
    if narrow.domain == [] or narrow.country == [] or narrow.state == [] or narrow.industry == [] \
            or narrow.region == []:
        return False  # an empty list matches nothing: another mistake, not this one
    if wide.domain is not None and (narrow.domain is None or not narrow.domains <= wide.domains):
        return False
    if wide.country is not None and (narrow.country is None or not narrow.countries <= wide.countries):
        return False
    if wide.region is not None:
        by_region = narrow.region is not None and narrow.regions <= wide.regions
        by_country = narrow.country is not None and all(region_of(c) in wide.regions for c in narrow.countries)
        if not (by_region or by_country):
            return False
    if wide.state is not None and (narrow.state is None or not narrow.states <= wide.states):
        return False
    if wide.industry is not None and (narrow.industry is None or not narrow.industries <= wide.industries):
        return False
    if wide.employees is not None:
        band, within = wide.employees, narrow.employees
        if within is None:
            return False
        if band.min is not None and (within.min is None or within.min < band.min):
            return False
        if band.max is not None and (within.max is None or within.max > band.max):
            return False
    return True
