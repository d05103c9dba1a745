"""Account scoring (pure): roll contacts up, decay as of now, explain, move the state machine.

The account item keeps compact entries for its highest contacts (`tracked_contacts`, a
few more than the top K that count), each with the per-rule points and the decaying
touches needed to value it at any moment. So an account is valued without reading its
contacts: a contact change costs the same for an account of 5 contacts as of 10,000.
A contact outside the tracked set re-enters on its next change.

Also the account rules the stream aggregation applies: how a contact change moves the
account's entries and traits (`membership_changes`, `apply_memberships`), precedence of
group calls over profiles, the name choice, rescoring (`rescore_account`) and the bus
payloads of its state changes (`state_change_events`). Works on `records.Account`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from leadscore.domain.ledgers import ContactEntry, ContactState, CounterPoints, RuleLedger
from leadscore.domain.records import Account, Contact, RoutingStatus, utc_text
from leadscore.engine.account_states import exclusion_of, next_state
from leadscore.engine.rules import derive_traits, evaluate_fit, rule_value, score

if TYPE_CHECKING:
    from leadscore.rulesfiles.scoring import ScoringConfig

EXTRA_TRACKED = 3  # contacts kept beyond the top K, so a falling contact can be replaced
#: An account that becomes SDR-ready is due on the routing index this much later: its
#: `Account SDR Ready` routes it long before, and should that event be lost, the routing
#: pass routes it anyway (the assignment keeps it to once).
ROUTING_SAFETY_NET = timedelta(minutes=15)


def _window_start(now: datetime, days: float) -> float:
    """The epoch `days` before `now`: float arithmetic, so no moment a reader asks about
    (`?at=`) can overflow datetime's range the way `now - timedelta(days)` can."""
    return now.timestamp() - float(days) * 86400


def _round(value: float) -> float:
    return round(value + 0.0, 2)


def _apportion(values: list[float], total: float) -> list[float]:
    """Round shares to cents so they add up to the rounded total (largest remainder), so
    a capped contact shows exactly its cap however its rules split it."""
    cents = [v * 100 for v in values]
    floors = [math.floor(c) for c in cents]
    missing = round(total * 100) - sum(floors)
    order = sorted(range(len(values)), key=lambda i: cents[i] - floors[i], reverse=True)
    for i in order[: max(0, min(missing, len(values)))]:
        floors[i] += 1
    return [f / 100 for f in floors]

# ------------------------------------------------------------------ one contact's entry


def entry_hits(scoring: ScoringConfig, entry: ContactEntry, now: datetime) -> list[tuple[str, str, float, str | None]]:
    """(rule, category, points as of now, arithmetic) for each rule of an entry, valued by
    the rules engine itself so account and contact explanations agree."""
    hits = []
    for rule, stored in entry.rules.items():
        if isinstance(stored, CounterPoints):
            hits.append((rule, stored.category, float(stored.points), stored.detail))
            continue
        hit = rule_value(scoring, rule, stored, now)
        if hit is not None:
            hits.append((hit.rule, hit.category, hit.points, hit.detail))
    return hits


def entry_engagement(scoring: ScoringConfig, entry: ContactEntry, now: datetime) -> float:
    return sum(points for _, _, points, _ in entry_hits(scoring, entry, now))


def entry_contribution(scoring: ScoringConfig, entry: ContactEntry, now: datetime) -> float:
    """What a contact can add to its account: engagement, capped, persona-weighted."""
    value = entry_engagement(scoring, entry, now)
    if entry.excluded or value <= 0:
        return 0.0
    weight = float(scoring.account.persona_weights.get(entry.persona, 1.0))
    return weight * min(value, float(scoring.account.contact_cap))


def entry_velocity(scoring: ScoringConfig, entry: ContactEntry, now: datetime) -> float:
    since = _window_start(now, scoring.velocity_days)
    return sum(points for epoch, points in entry.recent if epoch >= since)



def persona_of(scoring: ScoringConfig, seniority: str | None) -> str:
    return str(scoring.account.persona(seniority))


def entry_from_contact(scoring: ScoringConfig, contact: Contact, now: datetime) -> ContactEntry:
    """Summarise a contact into the account's entry for it: the engine's ledgers (so the
    account can value them at any later moment) and the contact's profile."""
    state = contact.state if contact.state is not None else ContactState()
    traits = derive_traits(scoring, state.traits)
    card = score(scoring, state, now)
    rules: dict[str, RuleLedger | CounterPoints] = {}
    for rule_id, ledger in state.rules.items():
        rule = scoring.rules_by_id.get(rule_id)
        if rule is not None and rule.counter is None:
            rules[rule_id] = RuleLedger(base=round(ledger.base, 4), touches=ledger.touches, count=ledger.count)
    for hit in card.breakdown:
        rule = scoring.rules_by_id.get(hit.rule)
        if rule is not None and rule.counter is not None:
            rules[hit.rule] = CounterPoints(category=hit.category, points=hit.points, detail=hit.detail)
    since = _window_start(now, scoring.velocity_days)
    by_day: dict[int, float] = {}
    last_engaged: float | None = None
    for ledger in state.rules.values():
        for epoch, points in ledger.touches:
            if points > 0:
                last_engaged = max(last_engaged or 0.0, float(epoch))
            if epoch >= since:
                day = int(epoch // 3600 * 3600)  # hourly buckets: bounded size, velocity off by < 1 h
                by_day[day] = by_day.get(day, 0.0) + float(points)
    return ContactEntry(
        key=contact.key, version=int(contact.version or 0), email=contact.email, title=contact.title,
        name=contact.name, persona=persona_of(scoring, traits.get("seniority")), fit=float(card.fit),
        rules=rules, recent=[[float(d), round(p, 4)] for d, p in sorted(by_day.items())],
        last_engaged=last_engaged,
        excluded="unsubscribed" if contact.unsubscribed else None,
    )


@dataclass
class AccountCard:
    fit: float
    engagement: float
    bonus: float
    score: float
    velocity: float
    breakdown: list[dict[str, Any]]
    contacts: list[dict[str, Any]]  # the counted top contacts, highest first


def account_card(scoring: ScoringConfig, traits: Mapping[str, Any], entries: Iterable[ContactEntry],
                 now: datetime) -> AccountCard:
    """Account fit + persona-weighted, capped engagement of the top K contacts + committee bonus.

    The breakdown's points (rounded) sum exactly to the score shown.
    """
    settings = scoring.account
    breakdown: list[dict[str, Any]] = []
    fit_hits = evaluate_fit(scoring, settings.fit, account_traits_for_rules(scoring, traits))
    for hit in fit_hits:
        breakdown.append({"rule": hit.rule, "category": "account_fit", "points": _round(hit.points),
                          "contactId": None, **({"detail": hit.detail} if hit.detail else {})})

    ranked = sorted(((entry_contribution(scoring, entry, now), entry) for entry in entries),
                    key=lambda p: (-p[0], p[1].key))
    counted = [(entry, entry_engagement(scoring, entry, now))
               for worth, entry in ranked[: settings.top_contacts] if worth > 0]
    contacts: list[dict[str, Any]] = []
    velocity = 0.0
    for entry, value in counted:
        weight = float(settings.persona_weights.get(entry.persona, 1.0))
        capped = min(value, float(settings.contact_cap))
        scale = weight * capped / value
        hits = entry_hits(scoring, entry, now)
        shares = _apportion([points * scale for _, _, points, _ in hits], weight * capped)
        for (rule, category, _, detail), share in zip(hits, shares, strict=True):
            if share:
                line = {"rule": rule, "category": category, "points": share, "contactId": entry.public_id}
                if detail or scale != 1:
                    line["detail"] = "; ".join(filter(None, [detail, f"x {scale:.4f} (persona {entry.persona}"
                                                                    f" weight {weight:g}, cap {settings.contact_cap})"
                                                         if scale != 1 else None]))
                breakdown.append(line)
        # capped like engagement, so velocity never outruns what the contact can add
        velocity += min(entry_velocity(scoring, entry, now), float(settings.contact_cap)) * weight
        contacts.append({"contactId": entry.public_id, "email": entry.email, "title": entry.title, "name": entry.name,
                         "persona": entry.persona, "score": _round(entry.fit + value),
                         "engagement": _round(value)})

    committee = settings.committee
    since = _window_start(now, committee.recent_days)
    personas = {entry.persona for entry, _ in counted if (entry.last_engaged or 0) >= since}
    bonus = 0.0
    if committee.points and len(personas) >= committee.min_personas:
        bonus = float(committee.points)
        breakdown.append({"rule": "buying_committee", "category": "committee", "points": _round(bonus),
                          "contactId": None, "detail": f"personas engaged in {committee.recent_days} days: "
                                                         f"{', '.join(sorted(personas))}"})
    fit = _round(sum(line["points"] for line in breakdown if line["category"] == "account_fit"))
    total = _round(sum(line["points"] for line in breakdown))
    return AccountCard(fit=fit, engagement=_round(total - fit - bonus), bonus=_round(bonus), score=total,
                       velocity=_round(velocity), breakdown=breakdown, contacts=contacts)


def account_traits_for_rules(scoring: ScoringConfig, traits: Mapping[str, Any]) -> dict[str, Any]:
    """Group traits as sent, with the Spec's aliases filled so one rule fits both spellings,
    and the derived traits (country_code...) the contact rules also see."""
    merged = dict(traits)
    if "employees" not in merged and isinstance(merged.get("employee_count"), int | float | str):
        merged["employees"] = merged["employee_count"]
    return derive_traits(scoring, merged)


def traits_from_contact(contact: Contact) -> tuple[dict[str, Any], dict[str, Any]]:
    """Firmographics a contact brings: (its company traits, its last group call's traits)."""
    profile = contact.state.traits if contact.state is not None else {}
    company_traits: dict[str, Any] = {}
    company = profile.get("company")
    if isinstance(company, dict):
        for source, target in (("name", "name"), ("industry", "industry"), ("employee_count", "employees"),
                               ("employees", "employees"), ("domain", "domain"), ("website", "website")):
            if company.get(source) is not None:
                company_traits[target] = company[source]
    address = profile.get("address")
    if isinstance(address, dict) and address.get("country"):
        company_traits["address"] = {"country": address["country"]}
    return company_traits, dict(contact.group_traits or {})


def effective_traits(stored: Mapping[str, Any]) -> dict[str, Any]:
    """The account's traits: what its group calls said, else what its contacts' profiles say."""
    return {**(stored.get("company") or {}), **(stored.get("group") or {})}


# --------------------------------------------------------------------------- aggregation rules


@dataclass
class Membership:
    """What one contact change brings an account: its entry (joined or changed, with the
    firmographics it carries) or, with no entry, that the contact left at `version`."""

    contact_key: str
    version: int
    entry: ContactEntry | None = None
    company: dict[str, Any] = field(default_factory=dict)
    group: dict[str, Any] = field(default_factory=dict)


def membership_changes(scoring: ScoringConfig, new: Contact, old: Contact | None, now: datetime
                       ) -> list[tuple[str, Membership]]:
    """(account id, change) pairs one contact change brings: an upsert where it belongs now
    (a merged contact belongs nowhere), a removal where it belonged before."""
    pairs: list[tuple[str, Membership]] = []
    new_account = None if new.merged_into else new.account
    old_account = old.account if old is not None else None
    if new_account:
        company, group = traits_from_contact(new)
        entry = entry_from_contact(scoring, new, now)
        pairs.append((new_account, Membership(new.key, entry.version, entry, company, group)))
    if old_account and old_account != new_account:
        pairs.append((old_account, Membership(new.key, int(new.version or 0))))
    return pairs


def new_account(account_id: str, now: datetime) -> Account:
    return Account(id=account_id, state="below_threshold", cycle=0, first_seen=now.isoformat())


def apply_memberships(scoring: ScoringConfig, account: Account, changes: Iterable[Membership],
                      now: datetime) -> None:
    """Move the account's entries and traits (mutated): newer contact versions win, a group
    call (the account speaking for itself) beats what a contact's profile says, and only
    the highest `top_contacts + EXTRA_TRACKED` contacts are kept."""
    entries = {entry.key: entry for entry in account.entries}
    traits = dict(account.traits)
    for change in changes:
        if change.entry is not None:
            known = entries.get(change.contact_key)
            if known is None or known.version < change.entry.version:
                entries[change.contact_key] = change.entry
            traits["company"] = {**traits.get("company", {}), **change.company}
            traits["group"] = {**traits.get("group", {}), **change.group}
        elif change.contact_key in entries and entries[change.contact_key].version <= change.version:
            del entries[change.contact_key]
    keep = scoring.account.top_contacts + EXTRA_TRACKED
    account.entries = sorted(entries.values(), key=lambda e: (-entry_contribution(scoring, e, now), e.key))[:keep]
    account.traits = traits


def rescore_account(scoring: ScoringConfig, account: Account, now: datetime) -> None:
    """Value the account as of `now` and move its state machine (mutates the account)."""
    traits = effective_traits(account.traits)
    card = account_card(scoring, traits, account.entries, now)
    excluded = exclusion_of(scoring, account.id, traits)
    transition = next_state(scoring, state=account.state or "below_threshold", cycle=int(account.cycle or 0),
                            score=card.score, excluded=excluded, cooldown_until=account.cooldown_until,
                            baseline=account.engagement_baseline, now=now)
    if transition.state != account.state or transition.cycle != account.cycle:
        account.state_at = now.isoformat()
        account.state_why = transition.reason
        if transition.state == "sdr_ready" and transition.cycle != account.cycle:
            # a new cycle: its routing starts afresh (the last SDR stays in `sdr`: sticky),
            # and what a not_ready held back is spent
            account.routing = RoutingStatus(due_at=utc_text(now + ROUTING_SAFETY_NET))
            if account.engagement_baseline is not None:
                account.state_why = "crossed sdr_ready with new engagement after not_ready"
            account.engagement_baseline = None
            account.cooldown_until = None
    account.threshold = scoring.account.thresholds.sdr_ready
    account.fit, account.engagement, account.bonus = card.fit, card.engagement, card.bonus
    account.score, account.velocity = card.score, card.velocity
    account.state, account.cycle, account.excluded = transition.state, transition.cycle, excluded
    account.name = str(traits.get("name")) if traits.get("name") else account.name
    account.domain = account.id if "." in account.id else traits.get("domain")


def account_changed(before: Account, after: Account) -> bool:
    """Whether a rescored account differs from what is stored in what it is worth a write
    for (a replay moves none of these)."""
    return any(getattr(before, name) != getattr(after, name) for name in (
        "entries", "traits", "score", "fit", "engagement", "bonus", "velocity", "state", "cycle", "threshold"))


