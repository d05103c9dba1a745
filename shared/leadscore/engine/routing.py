"""Which SDR gets an SDR-ready account: the pure routing choice.

Deterministic given its inputs: no clock, no I/O. The caller (the route handler, through
the storage layer) reads the pool's counter and the SDRs' assignment counts, calls
`route`, and writes the decision's counter value and the assignment in one transaction
conditioned on the counter still holding the value read. A retry with the same reads gives
the same decision, so concurrent deliveries converge on one SDR and one counter step.

Two steps, so storage reads only what the choice needs:
1. `match_pool(config, account)`: the territory (first match) and its pool, or the
   fallback pool; in `round_robin` mode the global pool of every SDR; and the account's
   owner in the CRM (`crm_owner_of`), if it has one. No reads needed.
2. `choose_sdr(config, pool, counter=..., assignments=..., now=...)`: the pool's weighted
   round-robin. Reads: the pool's counter (`pool.counter_key`) and the assignment counts
   of `capacity_days(config, pool, now)` (and the CRM owner's, `owner_day`). `route` does both.

The CRM's owner first: an account whose group traits name its owner in the CRM (`owner`, an
SDR id or email of routing.yaml; collection keeps it only from a `trusted` source) goes to
that SDR when they can take it (active, not out of office, under capacity, not already
tried this cycle), before territories and sticky ownership, without a counter step: it is
not the pool's turn, so the round-robin's shares are untouched (LeanData's "matched account
owner"). Otherwise the account is routed as without one, and the decision says why not.

Weighted round-robin: a pool of weights w1..wn has a fixed schedule of W = sum(w) slots
(smooth weighted round-robin order: 2:1:1 gives a, b, c, a). The counter counts slots, not
accounts: the choice starts at slot `counter mod W` and walks forward past SDRs who cannot
take the account; the counter then moves past the chosen slot. Each full turn of W slots
visits every slot once, so the SDRs who are available get exactly their weights' share
(2:1:1 gives 50/25/25% over every 4 accounts), and a skipped SDR's slots are simply
passed over without shifting the others' shares.
"""

from __future__ import annotations

import functools
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any, Literal

from leadscore.domain.places import country_code, region_of, subdivision_codes
from leadscore.domain.values import text_key
from leadscore.rulesfiles.routing import (
    RoutingConfig,
    RoutingMode,
    Sdr,
    Territory,
)

GLOBAL_POOL = "*"
"""The pool id of `mode: round_robin` (every SDR); no configured pool id can be `*`."""

NoSdrReason = Literal["inactive", "out_of_office", "at_capacity", "paused", "unavailable"]
"""Why no SDR was chosen: every SDR of the pool is inactive; every active one is out of
office; every active one is at capacity; every active one is paused by a lead; a mix of those."""

SkipReason = Literal["inactive", "out_of_office", "paused", "at_capacity", "tried", "owner"]

SdrDay = tuple[str, date]
"""(SDR id, the SDR's local calendar day): the key of a daily assignment count."""

CRM_OWNER_TRAIT = "owner"
"""The group trait naming the account's owner in the CRM (kept only from trusted sources)."""
_OWNER_SHOWN = 64  # characters of an owner that names no SDR kept to say so


# ---------------------------------------------------------------------------- inputs


@dataclass(frozen=True)
class AccountTraits:
    """What territories match on. Any spelling of the country; `state` as an ISO 3166-2
    code (`US-CA`), a bare code (`CA`, read within the country) or a name."""

    account_id: str
    country: str | None = None
    state: str | None = None
    industry: str | None = None
    employees: float | None = None
    domain: str | None = None
    owner: str | None = None
    """The account's owner in the CRM (group trait `owner`): an SDR id or email."""

    @classmethod
    def from_traits(cls, account_id: str, traits: Mapping[str, Any]) -> AccountTraits:
        """From an account's `group` traits (Segment Spec: `address.country`,
        `address.state`, `industry`, `employees`; also `country`, `state`, `company.*`).
        The account id is the domain `when.domain` matches."""
        address = traits.get("address")
        address = address if isinstance(address, Mapping) else {}
        company = traits.get("company")
        company = company if isinstance(company, Mapping) else {}

        def text(*values: Any) -> str | None:
            return next((v.strip() for v in values if isinstance(v, str) and v.strip()), None)

        return cls(
            account_id=account_id,
            country=text(address.get("country"), traits.get("country"), company.get("country")),
            state=text(address.get("state"), traits.get("state")),
            industry=text(traits.get("industry"), company.get("industry")),
            employees=_number(traits.get("employees"), company.get("employee_count"), traits.get("employee_count")),
            owner=text(traits.get(CRM_OWNER_TRAIT)),
        )

    @functools.cached_property
    def country_code(self) -> str | None:
        return country_code(self.country)

    @functools.cached_property
    def region(self) -> str | None:
        return region_of(self.country_code) if self.country_code else None

    @functools.cached_property
    def states(self) -> frozenset[str]:
        countries = frozenset([self.country_code]) if self.country_code else frozenset()
        return subdivision_codes(self.state, countries)

    @functools.cached_property
    def industry_word(self) -> str | None:
        return text_key(self.industry)

    @functools.cached_property
    def domain_id(self) -> str:
        return (self.domain or self.account_id).strip().lower()


def _number(*values: Any) -> float | None:
    for v in values:
        if isinstance(v, bool) or v is None:
            continue
        if isinstance(v, int | float):
            return float(v)
        if isinstance(v, str):
            try:
                return float(v.replace(",", "").strip())
            except ValueError:
                continue
    return None


# --------------------------------------------------------------------------- outputs


@dataclass(frozen=True)
class PoolChoice:
    """Where an account goes before an SDR is chosen."""

    routing: RoutingMode
    pool: str
    territory: str | None
    sdrs: tuple[str, ...]
    """The pool's SDR ids in schedule order (inactive ones included: they are skipped)."""
    crm_owner: CrmOwner | None = None
    """The account's owner in the CRM, tried before the pool (None: it names none)."""

    @property
    def counter_key(self) -> str:
        """The id of the atomic counter this pool's round-robin reads and advances."""
        return self.pool


@dataclass(frozen=True)
class CrmOwner:
    """The owner an account's CRM names: `sdr` the routing.yaml SDR it is (by id or email),
    None when it names nobody of routing.yaml (`value` is what it said, cut short)."""

    value: str
    sdr: str | None


@dataclass(frozen=True)
class Skip:
    sdr: str
    reason: SkipReason
    until: date | None = None
    """For `out_of_office`: the last day out (their time zone)."""
    resumes: datetime | None = None
    """For `paused`: when the pause ends (None: until a lead returns them)."""


@dataclass(frozen=True)
class RoutingDecision:
    """The routing choice; `sdr is None` means nobody can take the account now (`reason`)."""

    routing: RoutingMode
    pool: str
    territory: str | None
    sdr: Sdr | None
    reason: NoSdrReason | None
    counter: int
    """The counter value read."""
    counter_step: int
    """How far the counter moves: 0 for sticky ownership and for no SDR."""
    sticky: bool = False
    """The account went back to its previous owner."""
    already_tried: bool = False
    """Every other SDR was unavailable, so one already tried this cycle was chosen."""
    day: date | None = None
    """The chosen SDR's local day: the assignment counts toward this day's capacity."""
    skipped: tuple[Skip, ...] = field(default_factory=tuple)
    retry_at: datetime | None = None
    """With no SDR: the earliest moment someone of the pool may be available (a local
    midnight after an absence or a full day); `None` when only reactivating an SDR helps."""
    crm_owner: CrmOwner | None = None
    """The account's owner in the CRM, when it names one."""
    crm_owner_skip: Skip | None = None
    """Why the CRM owner (an SDR) did not get it; None when they did, or it names nobody known."""
    to_crm_owner: bool = False
    """The account went to its CRM owner (no counter step)."""

    @property
    def by(self) -> str | None:
        """How the SDR was chosen: crm_owner | previous_owner | round_robin, or assigned (named
        by a lead: no counter step); None: nobody."""
        if self.sdr is None:
            return None
        if self.to_crm_owner:
            return "crm_owner"
        return "previous_owner" if self.sticky else "round_robin" if self.counter_step else "assigned"

    @property
    def owner_note(self) -> str | None:
        """Why the CRM owner did not get the account, in words (None: no CRM owner, or they did)."""
        owner = self.crm_owner
        if owner is None or self.to_crm_owner:
            return None
        if owner.sdr is None:
            return f"CRM owner {owner.value!r} is no SDR of routing.yaml"
        skip = self.crm_owner_skip
        return f"CRM owner {owner.sdr} {_skip_words(skip) if skip else 'not chosen'}"

    @property
    def counter_next(self) -> int:
        """The value to write, conditioned on the counter still holding `counter`."""
        return self.counter + self.counter_step

    @property
    def explanation(self) -> str:
        note = f"; {self.owner_note}" if self.owner_note else ""
        if self.sdr is not None:
            how = {"crm_owner": "CRM owner", "previous_owner": "previous owner", "assigned": "named by a lead"
                   }.get(str(self.by), "round-robin")
            return f"{self.sdr.id} ({how}, pool {self.pool}){note}"
        details = []
        for s in self.skipped:
            if s.reason == "out_of_office":
                details.append(f"{s.sdr} out of office until {s.until}")
            elif s.reason == "at_capacity":
                details.append(f"{s.sdr} at daily capacity")
            elif s.reason == "paused":
                details.append(f"{s.sdr} paused" + (f" until {s.resumes.isoformat()}" if s.resumes else ""))
            elif s.reason == "owner":
                details.append(f"{s.sdr} has it (SLA ran out)")
            else:
                details.append(f"{s.sdr} {s.reason}")
        return f"no SDR available in pool {self.pool}: " + ("; ".join(details) or "empty pool") + note


def _skip_words(s: Skip) -> str:
    """Why an SDR was passed over, in words."""
    words = {"out_of_office": f"out of office until {s.until}", "at_capacity": "at daily capacity",
             "paused": "paused" + (f" until {s.resumes.isoformat()}" if s.resumes else ""),
             "owner": "has it (SLA ran out)", "tried": "already had it this cycle"}
    return words.get(s.reason, str(s.reason))


# ----------------------------------------------------------------------- territories


def territory_matches(territory: Territory, account: AccountTraits) -> bool:
    """Every condition of the territory's `when` holds for the account."""
    when = territory.when
    if when.domain is not None and account.domain_id not in when.domains:
        return False
    if when.country is not None and account.country_code not in when.countries:
        return False
    if when.region is not None and account.region not in when.regions:
        return False
    if when.state is not None and not (account.states & when.states):
        return False
    if when.industry is not None and account.industry_word not in when.industries:
        return False
    return not (
        when.employees is not None and (account.employees is None or not when.employees.contains(account.employees))
    )


def match_pool(config: RoutingConfig, account: AccountTraits) -> PoolChoice:
    """The first territory that matches and its pool, else the fallback pool; in
    `round_robin` mode, the global pool of every SDR (territories ignored). With the
    account's CRM owner, if it names one (`choose_sdr` tries them first)."""
    owner = crm_owner_of(config, account)
    if config.mode == "round_robin":
        return PoolChoice("round_robin", GLOBAL_POOL, None, tuple(s.id for s in config.sdrs), owner)
    for territory in config.territories:
        if territory_matches(territory, account):
            return PoolChoice("territory", territory.pool, territory.id, _members(config, territory.pool), owner)
    # Validation guarantees a fallback pool in territory mode.
    pool = config.fallback_pool or ""
    return PoolChoice("territory", pool, None, _members(config, pool), owner)


def crm_owner_of(config: RoutingConfig, account: AccountTraits) -> CrmOwner | None:
    """The SDR the account's CRM `owner` names: their id, or their email in any case."""
    value = account.owner
    if not value:
        return None
    if value in config.sdr_by_id:
        return CrmOwner(value, value)
    folded = value.casefold()
    sdr = next((s.id for s in config.sdrs if s.email.casefold() == folded), None)
    return CrmOwner(value[:_OWNER_SHOWN], sdr)


def owner_day(config: RoutingConfig, pool: PoolChoice, now: datetime) -> SdrDay | None:
    """The CRM owner's (SDR, local day) count `choose_sdr` needs beside `capacity_days`:
    None when there is no known owner or they have no daily capacity."""
    owner = config.sdr_by_id.get(pool.crm_owner.sdr or "") if pool.crm_owner else None
    if owner is None or owner.daily_capacity is None:
        return None
    return owner.id, owner.local_day(now)


def _members(config: RoutingConfig, pool_id: str) -> tuple[str, ...]:
    pool = config.pool_by_id.get(pool_id)
    return tuple(pool.sdrs) if pool else ()


# -------------------------------------------------------------------------- schedule


@functools.lru_cache(maxsize=256)
def schedule(weights: tuple[tuple[str, int], ...]) -> tuple[str, ...]:
    """One full turn of the weighted round-robin: each SDR appears `weight` times, spread
    out (smooth weighted round-robin: 2:1:1 gives a, b, c, a; ties go to the earlier SDR)."""
    total = sum(w for _, w in weights)
    current = [0] * len(weights)
    out: list[str] = []
    for _ in range(total):
        for i, (_, w) in enumerate(weights):
            current[i] += w
        best = max(range(len(weights)), key=lambda i: (current[i], -i))
        current[best] -= total
        out.append(weights[best][0])
    return tuple(out)


def pool_schedule(config: RoutingConfig, pool: PoolChoice) -> tuple[str, ...]:
    return schedule(tuple((sdr_id, config.sdr_by_id[sdr_id].weight) for sdr_id in pool.sdrs))


# -------------------------------------------------------------------------- capacity


def capacity_days(config: RoutingConfig, pool: PoolChoice, now: datetime) -> tuple[SdrDay, ...]:
    """The (SDR, local day) assignment counts `choose_sdr` needs at `now`: one per SDR of
    the pool who has a daily capacity. Storage reads these keys (one batch read)."""
    _check_aware(now)
    return tuple(
        (s.id, s.local_day(now)) for sdr_id in pool.sdrs if (s := config.sdr_by_id[sdr_id]).daily_capacity is not None
    )


def sdr_pools(config: RoutingConfig, sdr_id: str) -> tuple[str, ...]:
    """The pools whose routing can choose this SDR (the global pool in `round_robin` mode):
    each keeps a count of the SDR's day, so every route to the SDR adds to each."""
    if config.mode == "round_robin":
        return (GLOBAL_POOL,)
    return tuple(pool.id for pool in config.pools if sdr_id in pool.sdrs)


def _availability(sdr: Sdr, now: datetime, assignments: Mapping[SdrDay, int],
                  paused: Mapping[str, datetime | None] | None = None) -> Skip | None:
    if not sdr.active:
        return Skip(sdr.id, "inactive")
    day = sdr.local_day(now)
    absence = sdr.out_on(day)
    if absence is not None:
        return Skip(sdr.id, "out_of_office", absence.to)
    if paused and sdr.id in paused and ((resumes := paused[sdr.id]) is None or resumes > now):
        return Skip(sdr.id, "paused", resumes=resumes)
    if sdr.daily_capacity is not None and assignments.get((sdr.id, day), 0) >= sdr.daily_capacity:
        return Skip(sdr.id, "at_capacity")
    return None


def _back_at(sdr: Sdr, skip: Skip, now: datetime) -> datetime | None:
    """The SDR's next local midnight at which this skip may end."""
    day = sdr.local_day(now)
    if skip.reason == "paused":
        return skip.resumes
    if skip.reason == "at_capacity":
        nxt = day + timedelta(days=1)
    elif skip.reason == "out_of_office" and skip.until is not None:
        nxt = skip.until + timedelta(days=1)
        while sdr.out_on(nxt) is not None:  # back-to-back absences
            absence = sdr.out_on(nxt)
            nxt = (absence.to if absence else nxt) + timedelta(days=1)
    else:
        return None
    return datetime.combine(nxt, time(0), tzinfo=sdr.zone)


def _no_sdr_reason(skips: list[Skip]) -> NoSdrReason:
    others = [s for s in skips if s.reason != "owner"]
    reasons = {s.reason for s in others if s.reason != "inactive"}
    if not reasons:
        return "inactive" if others else "unavailable"  # (a pool of one: only its owner)
    if reasons == {"out_of_office"}:
        return "out_of_office"
    if reasons == {"at_capacity"}:
        return "at_capacity"
    if reasons == {"paused"}:
        return "paused"
    return "unavailable"


# ---------------------------------------------------------------------------- choice


def choose_sdr(
    config: RoutingConfig,
    pool: PoolChoice,
    *,
    counter: int,
    assignments: Mapping[SdrDay, int],
    now: datetime,
    previous_owner: str | None = None,
    tried: Collection[str] = (),
    paused: Mapping[str, datetime | None] | None = None,
) -> RoutingDecision:
    """Pick the pool's SDR for one account.

    - `counter`: the pool's counter as read (0 when it does not exist yet).
    - `assignments`: accounts assigned per (SDR id, their local day); missing keys are 0.
      Only the keys of `capacity_days` are looked at.
    - `now`: an aware datetime; capacity and absences use each SDR's own local day.
    - `previous_owner`: the SDR who had the account last (sticky ownership): chosen again,
      without a counter step, when still in the pool, available and not in `tried`. When
      in `tried` (an SLA re-route away from them), never chosen: with nobody else available
      the decision has no SDR and the account stays theirs (no new message, no capacity).
    - `tried`: SDRs who already had the account this cycle (SLA re-routes); chosen only
      when nobody else of the pool is available (`already_tried`).
    - the pool's CRM owner (`pool.crm_owner`) first: chosen, without a counter step, when
      available and not in `tried` (`assignments` then holds their `owner_day` too).
    - `paused`: SDR id -> the end of a lead's pause (None: until returned); a pause over by
      `now` is ignored. A paused SDR is skipped like one out of office (reason `paused`): their
      slots are passed over, so back from the pause they get their share, not a catch-up.
    """
    _check_aware(now)
    counter = max(counter, 0)
    tried_set = frozenset(tried)
    owner = pool.crm_owner
    owner_sdr = config.sdr_by_id.get(owner.sdr) if owner is not None and owner.sdr else None
    owner_skip: Skip | None = None
    if owner_sdr is not None:
        owner_skip = _availability(owner_sdr, now, assignments, paused)
        if owner_skip is None and owner_sdr.id in tried_set:
            owner_skip = Skip(owner_sdr.id, "tried")
        if owner_skip is None:
            return RoutingDecision(pool.routing, pool.pool, pool.territory, owner_sdr, None, counter, 0,
                                   day=owner_sdr.local_day(now), crm_owner=owner, to_crm_owner=True)
    noted: dict[str, Any] = {"crm_owner": owner, "crm_owner_skip": owner_skip}
    skips: dict[str, Skip | None] = {
        sdr_id: _availability(config.sdr_by_id[sdr_id], now, assignments, paused)
        for sdr_id in dict.fromkeys(pool.sdrs)
    }
    if previous_owner is not None and previous_owner in tried_set and previous_owner in skips:
        # their SLA ran out: sending it back to them would be a new message and their capacity
        # spent for nothing (they keep it anyway while nobody else can take it)
        skips[previous_owner] = skips[previous_owner] or Skip(previous_owner, "owner")

    # Sticky ownership: still in the pool, available, and not already tried this cycle.
    if previous_owner in skips and skips[previous_owner] is None and previous_owner not in tried_set:
        sdr = config.sdr_by_id[previous_owner]
        return RoutingDecision(
            pool.routing, pool.pool, pool.territory, sdr, None, counter, 0, sticky=True, day=sdr.local_day(now),
            **noted,
        )

    slots = pool_schedule(config, pool)
    if slots:
        for allow_tried in (False, True):
            for offset in range(len(slots)):
                sdr_id = slots[(counter + offset) % len(slots)]
                if skips[sdr_id] is not None or (sdr_id in tried_set and not allow_tried):
                    continue
                sdr = config.sdr_by_id[sdr_id]
                passed = dict.fromkeys(slots[(counter + k) % len(slots)] for k in range(offset))
                return RoutingDecision(
                    pool.routing,
                    pool.pool,
                    pool.territory,
                    sdr,
                    None,
                    counter,
                    offset + 1,
                    already_tried=sdr_id in tried_set,
                    day=sdr.local_day(now),
                    skipped=tuple(skips[i] or Skip(i, "tried") for i in passed),
                    **noted,
                )

    unavailable = [s for s in skips.values() if s is not None]
    back = [t for s in unavailable if (t := _back_at(config.sdr_by_id[s.sdr], s, now)) is not None]
    return RoutingDecision(
        pool.routing,
        pool.pool,
        pool.territory,
        None,
        _no_sdr_reason(unavailable),
        counter,
        0,
        skipped=tuple(unavailable),
        retry_at=min(back, key=lambda t: t.timestamp()) if back else None,
        **noted,
    )


def route(
    config: RoutingConfig,
    account: AccountTraits,
    *,
    counter: int,
    assignments: Mapping[SdrDay, int],
    now: datetime,
    previous_owner: str | None = None,
    tried: Collection[str] = (),
) -> RoutingDecision:
    """`match_pool` then `choose_sdr`: the whole routing choice for one account."""
    return choose_sdr(
        config,
        match_pool(config, account),
        counter=counter,
        assignments=assignments,
        now=now,
        previous_owner=previous_owner,
        tried=tried,
    )


def _check_aware(now: datetime) -> None:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be an aware datetime (datetime.now(timezone.utc))")
