"""Calibration from outcomes: which rules raise the chance of closing, measured.

Outcomes (closed-won, closed-lost, open, per account, with the close date) come from a CSV
or JSON Lines file (`parse_outcomes`: a bad row is refused naming its line and field). Each
closed account is rebuilt as it stood before its outcome (its contacts' events received by
the close date only, no leakage from later events: rebuild.replay; its firmographics as
those events had set them, `traits_at_close`: a group call after the close does not count),
and for every rule:
how many closed accounts it fired on, the close rate with and without it (each with a 95%
Wilson interval), and the lift in percentage points. Too little data overall is said first
(Salesforce's predictive scoring asks for 1,000 accounts and 120 wins), and a rule with too
little support (under 30 accounts or 5 wins with it, or without it) is marked so, not read.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, NamedTuple

from leadscore.domain.ledgers import ContactEntry, ContactState
from leadscore.domain.records import Account, Contact, StoredEvent
from leadscore.engine.accounts import account_card, effective_traits, entry_from_contact, traits_from_contact
from leadscore.engine.rules import score
from leadscore.services.capacity import BAD_FIT_SHARE, bad_fit_share, most_account_fit, threshold_against_team
from leadscore.services.rebuild import MAX_PERSON_KEYS, Person, ScratchContacts, replay, root_contact

if TYPE_CHECKING:
    from leadscore.rulesfiles.loading import Config
    from leadscore.rulesfiles.routing import RoutingConfig

OUTCOMES = ("won", "lost", "open")
_SYNONYMS = {"closed-won": "won", "closed_won": "won", "closed won": "won", "closed-lost": "lost",
             "closed_lost": "lost", "closed lost": "lost"}
#: The data Salesforce's predictive scoring asks for before it scores (accounts, wins).
ENOUGH = (1000, 120)
#: Support under which a rule's lift is not read: accounts with it (and without), wins with it.
MIN_ACCOUNTS, MIN_WINS = 30, 5
Z95 = 1.959964
#: Suggested points shrink a rule's lift toward none by n / (n + SHRINK) (n: accounts with it).
SHRINK = 30
#: A lift (percentage points) under which a rule adds little.
LITTLE = 5
#: More factors than this and a rule set is hard to explain (and to calibrate).
MAX_FACTORS = 20


class OutcomeError(ValueError):
    """A row of the outcomes file that cannot be read: its line, the field and why."""

    def __init__(self, line: int, field_name: str, reason: str) -> None:
        super().__init__(f"line {line}: {field_name}: {reason}")
        self.line, self.field, self.reason = line, field_name, reason


@dataclass(frozen=True)
class Outcome:
    account_id: str
    outcome: str  # won | lost | open
    closed_at: datetime | None


def parse_outcomes(text: str, name: str = "") -> list[Outcome]:
    """Outcomes from CSV (a header with `accountId,outcome,closedAt`) or JSON Lines (one
    object per line with those keys); `name` ending in .jsonl/.json, or text starting with
    `{`, is JSON Lines. OutcomeError for the first bad row."""
    jsonl = name.endswith((".jsonl", ".json")) or text.lstrip().startswith("{")
    rows: list[tuple[int, Mapping[str, Any]]] = []
    if jsonl:
        for n, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
            except ValueError:
                raise OutcomeError(n, "(line)", "not a JSON object") from None
            if not isinstance(data, dict):
                raise OutcomeError(n, "(line)", "not a JSON object")
            rows.append((n, data))
    else:
        reader = csv.DictReader(io.StringIO(text))
        missing = [k for k in ("accountId", "outcome") if k not in (reader.fieldnames or [])]
        if missing:
            raise OutcomeError(1, missing[0], "missing from the header (accountId,outcome,closedAt)")
        rows = [(n, row) for n, row in enumerate(reader, start=2)]
    return [_outcome(n, row) for n, row in rows]


def _outcome(line: int, row: Mapping[str, Any]) -> Outcome:
    account = row.get("accountId")
    if not isinstance(account, str) or not account.strip():
        raise OutcomeError(line, "accountId", "required: the account's id (its domain)")
    raw = row.get("outcome")
    outcome = _SYNONYMS.get(str(raw).strip().lower(), str(raw).strip().lower()) if isinstance(raw, str) else ""
    if outcome not in OUTCOMES:
        raise OutcomeError(line, "outcome", f"{raw!r} is not one of won, lost, open")
    closed = row.get("closedAt")
    when = None
    if closed not in (None, ""):
        try:
            when = datetime.fromisoformat(str(closed).replace("Z", "+00:00"))
        except ValueError:
            raise OutcomeError(line, "closedAt", f"{closed!r} is not an ISO-8601 time") from None
        if when.tzinfo is None:
            raise OutcomeError(line, "closedAt", f"{closed!r} has no zone (add Z or an offset)")
    if outcome != "open" and when is None:
        raise OutcomeError(line, "closedAt", "required for a won or lost account: when it closed")
    domain = account.strip()
    return Outcome(domain.lower() if "." in domain else domain, outcome, when)


# ---------------------------------------------------------------------------- the measure


def wilson(successes: int, total: int) -> tuple[float, float]:
    """The 95% Wilson score interval of a proportion (0, 0 for no trials)."""
    if total == 0:
        return 0.0, 0.0
    p = successes / total
    denominator = 1 + Z95**2 / total
    centre = (p + Z95**2 / (2 * total)) / denominator
    half = Z95 * math.sqrt(p * (1 - p) / total + Z95**2 / (4 * total**2)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass
class RuleStats:
    rule: str
    with_rule: list[int] = field(default_factory=lambda: [0, 0])  # [accounts, wins]
    without: list[int] = field(default_factory=lambda: [0, 0])

    def view(self) -> dict[str, Any]:
        (n1, w1), (n0, w0) = self.with_rule, self.without
        rate1, rate0 = (w1 / n1 if n1 else 0.0), (w0 / n0 if n0 else 0.0)
        lo1, hi1 = wilson(w1, n1)
        lo0, hi0 = wilson(w0, n0)
        enough = n1 >= MIN_ACCOUNTS and w1 >= MIN_WINS and n0 >= MIN_ACCOUNTS
        if not n0:  # a rule every closed account met: nothing to compare it with
            return {"rule": self.rule, "fired": n1, "wins": w1, "closeRateWith": round(rate1, 4),
                    "closeRateWithout": None, "intervalWith": [round(lo1, 4), round(hi1, 4)],
                    "intervalWithout": None, "liftPoints": None, "liftInterval": None,
                    "support": "fired on every closed account: nothing to compare with"}
        lift = 100 * (rate1 - rate0)
        view: dict[str, Any] = {
            "rule": self.rule, "fired": n1, "wins": w1,
            "closeRateWith": round(rate1, 4), "closeRateWithout": round(rate0, 4),
            "intervalWith": [round(lo1, 4), round(hi1, 4)], "intervalWithout": [round(lo0, 4), round(hi0, 4)],
            "liftPoints": round(lift, 1),
            "liftInterval": [round(100 * (lo1 - hi0), 1), round(100 * (hi1 - lo0), 1)],
            "support": "enough" if enough else f"too little to tell (under {MIN_ACCOUNTS} accounts or {MIN_WINS} wins)",
            "suggestedPoints": None}
        if enough:
            # one point per percentage point of lift, shrunk toward no lift (the base rate) by the
            # rule's support: n / (n + SHRINK) of it
            view["suggestedPoints"] = round(lift * n1 / (n1 + SHRINK))
            if abs(lift) < LITTLE:
                view["support"] = f"enough; adds under {LITTLE} points of close rate"
        return view


def suggest_threshold(scored: list[tuple[float, bool]], target: tuple[float, float]) -> dict[str, Any] | None:
    """The SDR-ready threshold whose accounts close at the target rate (fitted on the accounts
    not held out): the lowest score at
    which the accounts at or above it close at least at the target's low end (the most
    accounts for the SDRs at that rate); their close rate, and that of those below. None when
    no score reaches it."""
    for threshold in sorted({value for value, _ in scored}):
        above = [won for value, won in scored if value >= threshold]
        below = [won for value, won in scored if value < threshold]
        rate = sum(above) / len(above)
        if rate >= target[0]:
            return {"threshold": threshold, "accountsAtOrAbove": len(above), "closeRateAtOrAbove": round(rate, 4),
                    "closeRateBelow": round(sum(below) / len(below), 4) if below else None,
                    "withinTarget": target[0] <= rate <= target[1]}
    return None


def held_out(account_id: str) -> bool:
    """Whether an account is kept out of fitting, for the backtest: a quarter of the accounts,
    the same ones on every run (a hash of the id, not a random draw)."""
    return int(hashlib.sha256(account_id.encode("utf-8", "surrogatepass")).hexdigest()[:8], 16) % 4 == 0


def backtest(scored: list[tuple[float, bool]], threshold: float) -> dict[str, Any]:
    """How a threshold does on accounts: close rate at or above it and below it, precision
    (the share of SDR-ready accounts that closed) and recall (the share of wins it made
    SDR-ready)."""
    above = [won for value, won in scored if value >= threshold]
    below = [won for value, won in scored if value < threshold]
    wins = sum(won for _, won in scored)
    return {"threshold": threshold, "accounts": len(scored), "atOrAbove": len(above),
            "closeRateAtOrAbove": round(sum(above) / len(above), 4) if above else None,
            "closeRateBelow": round(sum(below) / len(below), 4) if below else None,
            "precision": round(sum(above) / len(above), 4) if above else None,
            "recall": round(sum(above) / wins, 4) if wins else None}


def lift_chart(scored: list[tuple[float, bool]], bands: int = 4) -> list[dict[str, Any]]:
    """Close rate by score band, lowest first: about `bands` bands of as many accounts, an
    account's whole score tie kept in one band (so no band is told apart by outcome)."""
    by_score: dict[float, list[bool]] = {}
    for value, won in scored:
        by_score.setdefault(value, []).append(won)
    size = math.ceil(len(scored) / bands) if scored else 0
    chart: list[dict[str, Any]] = []
    band: list[tuple[float, list[bool]]] = []
    for value in sorted(by_score):
        band.append((value, by_score[value]))
        if sum(len(w) for _, w in band) >= size:
            chart.append(_band(band))
            band = []
    if band:
        chart.append(_band(band))
    return chart


def _band(band: list[tuple[float, list[bool]]]) -> dict[str, Any]:
    outcomes = [won for _, wins in band for won in wins]
    return {"scoreFrom": band[0][0], "scoreTo": band[-1][0], "accounts": len(outcomes),
            "closeRate": round(sum(outcomes) / len(outcomes), 4)}


@dataclass(frozen=True)
class CalibrationRow:
    """One closed account as it stood at its close: what the report is computed from (and
    all it needs: the map/reduce over shards hands the reduce these rows)."""

    account_id: str
    score: float
    fit: float
    engagement: float
    fired: frozenset[str]  # the rules that gave it points then, contact and account rules
    won: bool
    closed_at: datetime


@dataclass(frozen=True)
class SaidTraits:
    """The firmographics one person had given an account by its close, as the live
    aggregation merges them (engine/accounts.py `apply_memberships`): after each of its
    events, the contact's company traits (its profile) and group traits (its last group
    call) merged over what it had said before; `at`, when its last such change came (the
    epoch; 0: none by then). `later_company` / `later_group`: the keys its events after the
    close set, which the account's stored traits may hold from then (not to be counted)."""

    person: str
    at: float = 0.0
    company: Mapping[str, Any] = field(default_factory=dict)
    group: Mapping[str, Any] = field(default_factory=dict)
    later_company: frozenset[str] = frozenset()
    later_group: frozenset[str] = frozenset()

    def doc(self) -> dict[str, Any]:
        """As JSON (a shard's partial carries it to the reduce)."""
        return {"person": self.person, "at": self.at, "company": dict(self.company), "group": dict(self.group),
                "laterCompany": sorted(self.later_company), "laterGroup": sorted(self.later_group)}

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> SaidTraits:
        return cls(str(doc["person"]), float(doc["at"]), dict(doc["company"]), dict(doc["group"]),
                   frozenset(doc["laterCompany"]), frozenset(doc["laterGroup"]))


class AtClose(NamedTuple):
    """A person as it stood at an account's close: its account entry then (None: no events by
    then), the rules that gave it points, and the firmographics it had given the account."""

    entry: ContactEntry | None
    fired: set[str]
    said: SaidTraits


def _landed(scratch: ScratchContacts, key: str) -> Contact | None:
    """The contact an event of `key` changed: its own, or the one it is merged into."""
    contact = scratch.contacts.get(key)
    for _ in range(MAX_PERSON_KEYS):
        if contact is None or not contact.merged_into:
            break
        contact = scratch.contacts.get(contact.merged_into)
    return contact


def _later_keys(events: Iterable[tuple[str, StoredEvent]], account: str | None) -> tuple[set[str], set[str]]:
    """The company and group trait keys that events (those after a close) set: a group call's
    traits (one naming `account`, when given), an identify's company traits."""
    company: set[str] = set()
    group: set[str] = set()
    for key, stored in events:
        event = stored.event
        if event.type == "group" and event.traits and (account is None or event.account_hint == account):
            group.update(event.traits)
        elif event.type == "identify" and event.traits:
            said, _ = traits_from_contact(Contact(key=key, state=ContactState(traits=dict(event.traits))))
            company.update(said)
    return company, group


def contact_at_close(config: Config, person: Person, closed_at: datetime, account: str | None = None) -> AtClose:
    """A person rebuilt from the events received by `closed_at` only: their account entry
    then, the rules that gave them points, and the firmographics they had given `account`
    by then (with no account given: whichever account the contact was in)."""
    company: dict[str, Any] = {}
    group: dict[str, Any] = {}
    last = 0.0
    replayed = 0

    def said(key: str, stored: StoredEvent, scratch: ScratchContacts) -> None:
        # the aggregation merges a contact's traits into its account on each change: the same here
        nonlocal last, replayed
        replayed += 1
        contact = _landed(scratch, key)
        if contact is None or not contact.account or (account is not None and contact.account != account):
            return
        profile, called = traits_from_contact(contact)
        company.update(profile)
        group.update(called)
        last = stored.event.received_at.timestamp()

    contact = root_contact(person, replay(config, person, until=closed_at, after_each=said))
    later_company, later_group = _later_keys(person.events[replayed:], account)
    traits = SaidTraits(person.root, last, company, group, frozenset(later_company), frozenset(later_group))
    if contact is None:
        return AtClose(None, set(), traits)
    card = score(config.scoring, contact.engine_state, closed_at)
    return AtClose(entry_from_contact(config.scoring, contact, closed_at),
                   {hit.rule for hit in card.breakdown if hit.points}, traits)


def traits_at_close(stored: Mapping[str, Any], said: Iterable[SaidTraits]) -> dict[str, Any]:
    """An account's traits at its close, in the stored shape ({"company", "group"}): what its
    persons had said by then, merged in the order they said it (the last change wins a key, as
    in the aggregation), over the stored traits that no retained event of theirs explains (set
    by events past the retention, by a contact erased or gone to another account: the best
    known). A stored key that only events after the close set is left out."""
    ordered = sorted(said, key=lambda s: (s.at, s.person))
    traits = dict(stored)
    for section in ("company", "group"):
        explained: set[str] = set()
        for person in ordered:
            explained |= set(person.company if section == "company" else person.group)
            explained |= person.later_company if section == "company" else person.later_group
        merged = {k: v for k, v in (stored.get(section) or {}).items() if k not in explained}
        for person in ordered:
            merged.update(person.company if section == "company" else person.group)
        if merged or section in stored:
            traits[section] = merged
    return traits


def account_at_close(config: Config, account_id: str, traits: Mapping[str, Any], entries: Iterable[ContactEntry],
                     fired: Iterable[str], outcome: Outcome) -> CalibrationRow:
    """The account valued at its close from its contacts' entries then and its traits then
    (`traits_at_close`)."""
    assert outcome.closed_at is not None
    valued = account_card(config.scoring, effective_traits(traits), entries, outcome.closed_at)
    fired_all = set(fired) | {line["rule"] for line in valued.breakdown
                              if line["contactId"] is None and line["points"]}
    return CalibrationRow(account_id, valued.score, valued.fit, valued.engagement, frozenset(fired_all),
                          outcome.outcome == "won", outcome.closed_at)


def closed(outcomes: Iterable[Outcome]) -> list[Outcome]:
    """The outcomes a calibration reads: won or lost, with a close date."""
    return [o for o in outcomes if o.outcome != "open" and o.closed_at is not None]


def calibrate(persons_by_account: Mapping[str, list[Person]], accounts: Mapping[str, Account],
              outcomes: Iterable[Outcome], config: Config, target: tuple[float, float] = (0.10, 0.15)
              ) -> dict[str, Any]:
    """Each closed account as it stood before its outcome; per rule, its lift on closing; the
    threshold that gives the target close rate; how many would be SDR-ready on fit alone.
    (In one process; adapters/shards.py runs the same over shards of the table.)"""
    rows: list[CalibrationRow] = []
    unknown: list[str] = []
    for outcome in closed(outcomes):
        persons = persons_by_account.get(outcome.account_id)
        if persons is None:
            unknown.append(outcome.account_id)
            continue
        assert outcome.closed_at is not None
        fired: set[str] = set()
        entries = []
        said = []
        for person in persons:
            at_close = contact_at_close(config, person, outcome.closed_at, outcome.account_id)
            if at_close.entry is not None:
                entries.append(at_close.entry)
                fired |= at_close.fired
            said.append(at_close.said)
        stored = accounts.get(outcome.account_id)
        traits = traits_at_close(stored.traits if stored is not None else {}, said)
        rows.append(account_at_close(config, outcome.account_id, traits, entries, fired, outcome))
    return calibration_report(rows, config, target, unknown=unknown)


def calibration_report(rows: Iterable[CalibrationRow], config: Config, target: tuple[float, float] = (0.10, 0.15),
                       *, unknown: Iterable[str] = (), sources: Mapping[str, Any] | None = None,
                       highs: Mapping[str, Any] | None = None, routing: RoutingConfig | None = None
                       ) -> dict[str, Any]:
    """The calibration report over the closed accounts' rows (in the outcomes' order): per
    rule its lift on closing, the threshold for the target close rate with a backtest on
    held-out accounts, a lift chart, how many were SDR-ready on fit alone; `unknown`: the
    accounts of the outcomes not in the table. Also the share of SDR-ready accounts of bad fit
    and low engagement (services/capacity.py); with `sources` (outcomes.merge_report's counts)
    where the outcomes came from; with `routing` and `highs` (account id -> its record highs,
    capacity.record_highs) the threshold against the team."""
    scoring = config.scoring
    rows = list(rows)
    unknown = list(unknown)
    stats: dict[str, RuleStats] = {}
    closed_count = len(rows)
    wins = sum(row.won for row in rows)
    scored: list[tuple[float, bool]] = []  # each closed account's score at its close, and whether it won
    testing: list[tuple[float, bool]] = []  # those held out of the threshold's fitting
    for row in rows:
        (testing if held_out(row.account_id) else scored).append((row.score, row.won))
    fit_alone = sum(row.fit >= scoring.account.thresholds.sdr_ready for row in rows)
    rules = [r.id for r in scoring.engagement] + [r.id for r in scoring.fit] + [r.id for r in scoring.account.fit]
    for rule in dict.fromkeys(rules):
        stats[rule] = RuleStats(rule)
        for row in rows:
            side = stats[rule].with_rule if rule in row.fired else stats[rule].without
            side[0] += 1
            side[1] += row.won
    warnings = []
    if closed_count < ENOUGH[0] or wins < ENOUGH[1]:
        warnings.append(f"too little data to calibrate on: {closed_count} closed accounts and {wins} wins "
                        f"(predictive scoring asks for {ENOUGH[0]} and {ENOUGH[1]}); read the lifts as hints")
    factors = len(scoring.engagement) + len(scoring.fit)  # what a contact is scored by (account fit repeats fit)
    if factors > MAX_FACTORS:
        warnings.append(f"{factors} contact rules: over {MAX_FACTORS} factors, a score is hard to explain "
                        "and each rule has less data behind it")
    if unknown:
        warnings.append(f"{len(unknown)} account(s) of the outcomes are not in the table: {', '.join(unknown[:5])}")
    current = scoring.account.thresholds.sdr_ready
    suggested = suggest_threshold(scored, target) if scored else None
    scored_all = scored + testing
    at_current = [won for score_, won in scored_all if score_ >= current]
    most_fit = most_account_fit(scoring)
    at_close = [(row.score, row.fit, row.engagement) for row in rows]
    bad_fit = {"current": bad_fit_share(at_close, current, most_fit),
               "suggested": bad_fit_share(at_close, suggested["threshold"], most_fit) if suggested else None}
    for name, share in bad_fit.items():
        if share is not None and share["retune"]:
            warnings.append(f"{share['share']:.1%} of the accounts SDR-ready at the {name} threshold "
                            f"({share['threshold']:g}) were bad fit and low engagement (over {BAD_FIT_SHARE:.0%}): "
                            "re-tune the rules")
    extra: dict[str, Any] = {"badFit": bad_fit}
    if sources is not None:
        extra["outcomes"] = dict(sources)
    if routing is not None:
        extra["team"] = threshold_against_team(highs or {}, routing, current,
                                               suggested["threshold"] if suggested else None)
    return {"warnings": warnings, "closed": closed_count, "wins": wins,
            "baseRate": round(wins / closed_count, 4) if closed_count else 0.0,
            "threshold": {"current": current, "accountsAtOrAbove": len(at_current),
                          "closeRateAtOrAbove": round(sum(at_current) / len(at_current), 4) if at_current else None,
                          "target": list(target), "suggested": suggested,
                          "sdrReadyOnFitAlone": fit_alone,
                          "sdrReadyOnFitAloneShare": round(fit_alone / closed_count, 4) if closed_count else 0.0},
            "backtest": {"heldOut": len(testing), "current": backtest(testing, current),
                         "suggested": backtest(testing, suggested["threshold"]) if suggested else None},
            "liftChart": lift_chart(scored_all),
            "rules": sorted((s.view() for s in stats.values() if s.with_rule[0]),
                            key=lambda v: (v["liftPoints"] is None, -(v["liftPoints"] or 0.0), v["rule"])),
            **extra}
