"""Outcome data with planted lifts: synthetic accounts whose close rate is known, to check that
calibration (services/calibrate.py) measures what is there.

    python -m local.plant --accounts 4000 --seed 7 --out <dir> [--rule demo_requested:0.3:20 ...]
        [--base-rate 0.03] [--open-share 0.1] [--late-share 0.1] [--config config/]

Each account has one to three contacts (an identify and a group call each, at the company's
domain, titles with no seniority so no fit rule fires unless planted). Each planted rule
(`rule:rate:lift`, a rule id of scoring.yaml, the share of accounts it fires on and the
percentage points it adds to the close probability) fires on an account independently of the
others with its rate: an engagement rule by one message that matches it (and no other rule), a
contact fit rule by a trait of one of its contacts, an account fit rule by a trait of its group
calls. Each account then closes (or stays open, `open_share`) with a close date after its last
event, and is won with probability `base_rate + the sum of the lifts of its rules that fired`.
Because the rules fire independently, a rule's close rate with it minus without it is its
planted lift, whatever the others do: what calibration should measure. A `late_share` of the
closed accounts get a message after their close that would make a planted rule fire that had
not (an event, a contact's new title, the company's new industry), which calibration must not
count (an account is valued as it stood before its outcome).

Writes to --out: `journeys/planted.json`, a journey (events/journeys/README.md: `/v1/batch`
steps of Segment Spec messages at their times, which `python -m local.demo --journeys
<out>/journeys` replays on the local stack with the clock at each step), `outcomes.csv` (the
README's outcomes format, for `make calibrate DATA=...`) and `manifest.json` (the plan, the
planted lifts and each rule's firing counts).

For tests, `table_items` builds the table items the pipeline would hold for the same data
without a stack: each message through the live `Collector` into an in-memory event store
(adapters/items.py encodes it as collection stores it), each contact as the stream fold leaves
it (a replay of its events), each account with its group traits. `TableSnapshot(items)` reads
them as it reads a Scan.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import random
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from leadscore.adapters import items
from leadscore.engine.accounts import account_traits_for_rules
from leadscore.engine.messages import parse_message
from leadscore.engine.rules import derive_traits, evaluate_fit, matching_rules

if TYPE_CHECKING:
    from leadscore.domain.events import TrackingEvent
    from leadscore.rulesfiles.loading import Config
    from leadscore.rulesfiles.scoring import EngagementRule, FitRule, Match, ScoringConfig

#: The write key the planted messages are sent with (config/sources.yaml's website source).
WRITE_KEY = "wk_demo_website"
#: Where in --out the events go (a folder of journeys, as local.demo --journeys reads).
JOURNEY = Path("journeys") / "planted.json"
#: When the first account starts; accounts start over SPREAD_DAYS from it.
START = datetime(2026, 3, 2, tzinfo=UTC)
SPREAD_DAYS = 120
#: A contact's planted events fall within this many days of its account's start; the close
#: comes 1 to CLOSE_AFTER_DAYS days after the account's last event.
ACTIVE_DAYS, CLOSE_AFTER_DAYS = 21, 30
#: A title no seniority level of the shipped rules matches (so no title rule fires unplanted).
PLAIN_TITLE = "Analyst"
#: The default plan: four engagement rules, one in three accounts each, lifting 0 to 20 points.
DEFAULT_PLAN = ("demo_requested:0.3:20", "webinar_attended:0.3:10", "case_study_downloaded:0.3:5",
                "pricing_page:0.3:0")


class PlanError(ValueError):
    """A plan that cannot be generated: the rule or number named and why."""


@dataclass(frozen=True)
class Plant:
    """One planted rule: it fires on `rate` of the accounts and adds `lift` percentage points
    to the close probability of each account it fires on."""

    rule: str
    rate: float
    lift: float

    @classmethod
    def parse(cls, text: str) -> Plant:
        """`rule:rate:lift`, e.g. `demo_requested:0.3:20`."""
        parts = text.split(":")
        if len(parts) != 3:
            raise PlanError(f"{text!r}: expected rule:rate:lift, e.g. demo_requested:0.3:20")
        try:
            rate, lift = float(parts[1]), float(parts[2])
        except ValueError:
            raise PlanError(f"{text!r}: rate and lift must be numbers") from None
        return cls(parts[0], rate, lift)


@dataclass
class PlantedAccount:
    domain: str
    contacts: list[str]  # userIds
    fired: set[str]  # planted rules that fired before the close
    probability: float
    outcome: str  # won | lost | open
    closed_at: datetime | None
    late: str | None = None  # a planted rule whose message came after the close (not to be counted)
    messages: list[tuple[datetime, dict[str, Any]]] = field(default_factory=list)


@dataclass
class Planted:
    """What `generate` draws: the accounts, their messages and outcomes, and the plan."""

    plan: list[Plant]
    seed: int
    base_rate: float
    accounts: list[PlantedAccount]
    fit_rules: frozenset[str] = frozenset()  # the planted rules that are fit rules (not events)

    def messages(self) -> Iterator[tuple[datetime, dict[str, Any]]]:
        """Every message with the moment it is received, in time order."""
        found = [m for account in self.accounts for m in account.messages]
        yield from sorted(found, key=lambda pair: (pair[0], pair[1]["messageId"]))

    def outcomes_csv(self) -> str:
        """The outcomes in the README's CSV format (accountId,outcome,closedAt)."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["accountId", "outcome", "closedAt"])
        for account in self.accounts:
            writer.writerow([account.domain, account.outcome,
                             account.closed_at.isoformat().replace("+00:00", "Z") if account.closed_at else ""])
        return out.getvalue()

    def journey(self) -> dict[str, Any]:
        """The messages as a demo journey: one `/v1/batch` step per moment (at most 100 each)."""
        steps: list[dict[str, Any]] = []
        for at, message in self.messages():
            moment = at.isoformat().replace("+00:00", "Z")
            last = steps[-1] if steps else None
            if last is not None and last["at"] == moment and len(last["body"]["batch"]) < 100:
                last["body"]["batch"].append(message)
            else:
                steps.append({"at": moment, "route": "/v1/batch", "key": WRITE_KEY, "body": {"batch": [message]}})
        return {"name": f"Planted lifts (seed {self.seed})",
                "description": "Generated by python -m local.plant: accounts whose close rate is known",
                "steps": steps}

    def manifest(self) -> dict[str, Any]:
        """The plan and what was drawn: per planted rule, on how many closed accounts it fired
        (before the close) and how many of those won; the late messages calibration must not count;
        `fitOnly`, the closed accounts on which only planted fit rules fired (no planted event)."""
        closed = [a for a in self.accounts if a.outcome != "open"]
        rules = []
        for plant in self.plan:
            fired = [a for a in closed if plant.rule in a.fired]
            rules.append({"rule": plant.rule, "rate": plant.rate, "plantedLiftPoints": plant.lift,
                          "firedOnClosed": len(fired), "winsWith": sum(a.outcome == "won" for a in fired)})
        return {"seed": self.seed, "accounts": len(self.accounts), "baseRate": self.base_rate,
                "closed": len(closed), "wins": sum(a.outcome == "won" for a in closed),
                "open": len(self.accounts) - len(closed),
                "lateMessages": sum(a.late is not None for a in closed), "rules": rules,
                "fitOnly": sum(bool(a.fired) and a.fired <= self.fit_rules for a in closed)}

    def write(self, out: Path) -> None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "journeys").mkdir(exist_ok=True)
        (out / JOURNEY).write_text(json.dumps(self.journey(), indent=1) + "\n", encoding="utf-8")
        (out / "outcomes.csv").write_text(self.outcomes_csv(), encoding="utf-8")
        (out / "manifest.json").write_text(json.dumps(self.manifest(), indent=2) + "\n", encoding="utf-8")


# --------------------------------------------------------------------------- triggers


def _value_for(match: Match, rule_id: str) -> Any:
    """A value the condition holds for."""
    if match.equals is not None:
        return match.equals
    if match.in_:
        return match.in_[0]
    if match.contains is not None:
        return f"x {match.contains} x"
    if match.min is not None or match.max is not None:
        low = match.min if match.min is not None else (match.max or 0) - 10
        high = match.max if match.max is not None else low + 10
        value = (low + high) / 2
        return int(value) if float(value).is_integer() else value
    raise PlanError(f"{rule_id}: cannot make a value for its condition (a pattern): plant another rule")


def _fit_value(rule: FitRule) -> Any:
    if rule.buckets:
        bucket = next((b for b in rule.buckets if b.points), None)
        if bucket is None:
            raise PlanError(f"{rule.id}: no bucket gives points")
        low = bucket.min if bucket.min is not None else (bucket.max or 0) - 10
        return int(low) if float(low).is_integer() else low
    return _value_for(rule, rule.id)


def _nested(path: str, value: Any) -> dict[str, Any]:
    head, _, rest = path.partition(".")
    return {head: _nested(rest, value) if rest else value}


def _fit_traits(rule: FitRule) -> dict[str, Any]:
    """Traits that make a fit rule hold (derived traits by what they are derived from)."""
    value = _fit_value(rule)
    if rule.trait == "country_code":
        return {"country": value}
    if rule.trait in ("email_domain", "email_domain_type"):
        raise PlanError(f"{rule.id}: a rule on {rule.trait} cannot be planted (every contact's email is at "
                        "its company's domain)")
    return _nested(rule.trait, value)


def _engagement_message(rule: EngagementRule) -> dict[str, Any]:
    """A Segment Spec message (without ids and time) that matches the rule's `when`."""
    when = rule.when
    if when is None:
        raise PlanError(f"{rule.id}: a counter rule cannot be planted (it counts visits)")
    types = list(when.type or (["track"] if when.event else ["page"]))
    kind = "track" if when.event else types[0]
    message: dict[str, Any] = {"type": kind}
    properties: dict[str, Any] = {}
    if when.event:
        message["event"] = when.event[0]
    elif kind == "track":
        message["event"] = f"Planted {rule.id}"
    if when.url_contains:
        properties["url"] = f"https://www.example.net{'' if when.url_contains[0].startswith('/') else '/'}" \
                            f"{when.url_contains[0]}"
        properties["path"] = when.url_contains[0]
    if when.form_id:
        properties["form_id"] = when.form_id[0]
    for key, match in (when.properties or {}).items():
        properties.update(_nested(key, _value_for(match, rule.id)))
    if properties:
        message["properties"] = properties
    return message


@dataclass(frozen=True)
class _Trigger:
    kind: str  # engagement | fit | account_fit
    message: dict[str, Any] = field(default_factory=dict)
    traits: dict[str, Any] = field(default_factory=dict)


def triggers(scoring: ScoringConfig, plan: Sequence[Plant]) -> dict[str, _Trigger]:
    """How each planted rule is made to fire, checked with the live matching: a message that
    matches that rule and no other, or traits that make that fit rule hold and no other."""
    engagement = {r.id: r for r in scoring.engagement}
    fit = {r.id: r for r in scoring.fit}
    account_fit = {r.id: r for r in scoring.account.fit}
    found: dict[str, _Trigger] = {}
    received = START
    for plant in plan:
        if plant.rule in found:
            raise PlanError(f"{plant.rule}: planted twice")
        if not 0 < plant.rate < 1:
            raise PlanError(f"{plant.rule}: rate {plant.rate} is not a share between 0 and 1")
        if plant.rule in engagement:
            message = _engagement_message(engagement[plant.rule])
            event = parse_message({**message, "userId": "u-check", "messageId": "check"}, source_id="check",
                                  received_at=received)
            hits = matching_rules(scoring, event)
            if hits != [plant.rule]:
                raise PlanError(f"{plant.rule}: the message made for it matches {hits or 'no rule'}")
            found[plant.rule] = _Trigger("engagement", message=message)
        elif plant.rule in fit:
            traits = _fit_traits(fit[plant.rule])
            hits = [h.rule for h in evaluate_fit(scoring, scoring.fit, derive_traits(scoring, {
                "title": PLAIN_TITLE, **traits})) if h.points]
            if hits != [plant.rule]:
                raise PlanError(f"{plant.rule}: the traits made for it hold for {hits or 'no rule'}")
            found[plant.rule] = _Trigger("fit", traits=traits)
        elif plant.rule in account_fit:
            traits = _fit_traits(account_fit[plant.rule])
            hits = [h.rule for h in evaluate_fit(scoring, scoring.account.fit,
                                                 account_traits_for_rules(scoring, traits)) if h.points]
            if hits != [plant.rule]:
                raise PlanError(f"{plant.rule}: the group traits made for it hold for {hits or 'no rule'}")
            found[plant.rule] = _Trigger("account_fit", traits=traits)
        else:
            raise PlanError(f"{plant.rule}: not a rule of scoring.yaml (fit, engagement or account.fit)")
    return found


# --------------------------------------------------------------------------- the draw


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def generate(config: Config, *, accounts: int = 4000, seed: int = 7, plan: Sequence[Plant] | None = None,
             base_rate: float = 0.03, open_share: float = 0.1, late_share: float = 0.1) -> Planted:
    """Draw `accounts` accounts with the plan's rules firing independently at their rates and
    outcomes from the planted lifts; the same seed draws the same data."""
    plants = list(plan) if plan is not None else [Plant.parse(p) for p in DEFAULT_PLAN]
    if accounts < 1:
        raise PlanError(f"accounts: {accounts} is not a positive number")
    top = base_rate + sum(max(p.lift, 0) for p in plants) / 100
    bottom = base_rate + sum(min(p.lift, 0) for p in plants) / 100
    if not 0 <= bottom <= top <= 1:
        raise PlanError(f"base rate {base_rate} with the lifts gives close probabilities from {bottom:.2f} to "
                        f"{top:.2f}: they must stay between 0 and 1")
    if not 0 <= open_share < 1 or not 0 <= late_share <= 1:
        raise PlanError("open_share and late_share are shares between 0 and 1")
    how = triggers(config.scoring, plants)
    rng = random.Random(seed)
    width = len(str(accounts - 1))
    drawn: list[PlantedAccount] = []
    for n in range(accounts):
        domain = f"planted{n:0{width}d}.io"
        users = [f"{domain}-c{j}" for j in range(rng.randint(1, 3))]
        start = START + timedelta(days=rng.uniform(0, SPREAD_DAYS))
        fired = {p.rule for p in plants if rng.random() < p.rate}
        account = PlantedAccount(domain, users, fired, base_rate + sum(p.lift for p in plants if p.rule in fired) / 100,
                                 "open", None)
        group_traits: dict[str, Any] = {"name": domain.split(".")[0].title(), "website": f"https://{domain}"}
        profile = [{"email": f"c{j}@{domain}", "title": PLAIN_TITLE, "name": f"Contact {j}"} for j in range(len(users))]
        for plant in plants:
            trigger = how[plant.rule]
            if plant.rule not in fired or trigger.kind == "engagement":
                continue
            if trigger.kind == "account_fit":
                group_traits.update(trigger.traits)
            else:
                profile[rng.randrange(len(users))].update(trigger.traits)
        seq = 0

        def add(at: datetime, message: dict[str, Any], user: str, account: PlantedAccount = account) -> None:
            nonlocal seq
            seq += 1
            stamp = at.replace(microsecond=0)
            account.messages.append((stamp + timedelta(seconds=1), {
                **message, "userId": user, "messageId": f"{user}-{seq}", "timestamp": _iso(stamp)}))

        last = start
        for user, traits in zip(users, profile, strict=True):
            add(start, {"type": "identify", "traits": traits}, user)
            add(start + timedelta(seconds=1), {"type": "group", "groupId": domain, "traits": group_traits}, user)
        for plant in plants:
            if plant.rule in fired and how[plant.rule].kind == "engagement":
                at = start + timedelta(minutes=5, days=rng.uniform(0, ACTIVE_DAYS))
                add(at, how[plant.rule].message, rng.choice(users))
                last = max(last, at)
        closes = rng.random() >= open_share
        won = rng.random() < account.probability
        if closes:
            account.closed_at = (last + timedelta(days=rng.uniform(1, CLOSE_AFTER_DAYS))).replace(microsecond=0)
            account.outcome = "won" if won else "lost"
            if rng.random() < late_share:
                # a rule that had not fired, so counting it would show (any, when all had)
                account.late = rng.choice([p.rule for p in plants if p.rule not in fired] or sorted(fired))
                at, user, trigger = account.closed_at + timedelta(days=rng.uniform(1, 10)), rng.choice(users), \
                    how[account.late]
                if trigger.kind == "engagement":
                    add(at, trigger.message, user)
                elif trigger.kind == "fit":  # the contact's profile changes after the close
                    add(at, {"type": "identify", "traits": {**profile[users.index(user)], **trigger.traits}}, user)
                else:  # the company's firmographics change after the close
                    add(at, {"type": "group", "groupId": domain, "traits": {**group_traits, **trigger.traits}}, user)
        drawn.append(account)
    return Planted(plants, seed, base_rate, drawn,
                   frozenset(p.rule for p in plants if how[p.rule].kind != "engagement"))


# --------------------------------------------------------------------------- table items


class _EventItems:
    """ports.CollectStore in memory: each accepted event encoded as collection stores it."""

    def __init__(self) -> None:
        self.items: dict[tuple[str, str], dict[str, Any]] = {}

    def put_event(self, event: TrackingEvent, hits: Sequence[str], retention_days: int) -> bool:
        item = items.event_item(event, hits, retention_days)
        key = items.table_key(item)
        if key in self.items:
            return False
        self.items[key] = {name: value for name, value in item.items() if value is not None}
        return True

    def put_rejected(self, **_: Any) -> None:
        raise AssertionError("a planted message was rejected")

    def load_suppressed(self, keys: Iterable[str], *, consistent: bool = True) -> set[str]:
        return set()


def table_items(planted: Planted, config: Config) -> list[dict[str, Any]]:
    """The table items the pipeline would hold for the planted messages, without a stack:
    events through the live Collector (as /v1/batch stores them), contacts as the stream fold
    leaves them (a replay of their events: the live state equals a rebuild), accounts as the
    aggregation makes them from those contacts (their entries, traits and scores)."""
    from leadscore.adapters.snapshot import TableSnapshot
    from leadscore.domain.records import Account
    from leadscore.engine.accounts import apply_memberships, membership_changes, new_account, rescore_account
    from leadscore.services.collect import Collector
    from leadscore.services.rebuild import replay, root_contact

    store = _EventItems()
    collector = Collector(store, config, max_workers=1)
    for at, message in planted.messages():
        result = collector.collect([message], source_id="website", received_at=at)
        if result.rejected or not result.accepted:
            raise PlanError(f"a planted message was not stored: {message['messageId']} {result.rejected}")
    found = list(store.items.values())
    now = max((at for at, _ in planted.messages()), default=START) + timedelta(seconds=1)
    accounts: dict[str, Account] = {}
    for person in TableSnapshot(found).persons():
        contact = root_contact(person, replay(config, person))
        if contact is None:
            continue
        contact.version, contact.updated_at = 1, _iso(now)
        found.append(items.contact_item(contact))
        for account_id, change in membership_changes(config.scoring, contact, None, now):
            account = accounts.setdefault(account_id, new_account(account_id, now))
            apply_memberships(config.scoring, account, [change], now)
    for account in accounts.values():
        rescore_account(config.scoring, account, now)
        account.version, account.domain, account.updated_at = 1, account.id, _iso(now)
        found.append(items.account_item(account))
    return found


# --------------------------------------------------------------------------- command line


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.plant", description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=4000, help="how many accounts (default 4000)")
    parser.add_argument("--seed", type=int, default=7, help="the random seed (the same seed, the same data)")
    parser.add_argument("--out", required=True,
                        help="the folder to write journeys/planted.json, outcomes.csv and manifest.json to")
    parser.add_argument("--rule", action="append", metavar="RULE:RATE:LIFT",
                        help=f"a planted rule (repeat; default: {' '.join(DEFAULT_PLAN)})")
    parser.add_argument("--base-rate", type=float, default=0.03, help="close probability with no rule (0.03)")
    parser.add_argument("--open-share", type=float, default=0.1, help="share of accounts still open (0.1)")
    parser.add_argument("--late-share", type=float, default=0.1,
                        help="share of closed accounts with a planted rule's message after the close (0.1)")
    parser.add_argument("--config", help="the rules folder (default: config/)")
    args = parser.parse_args(argv)

    from leadscore.rulesfiles.loading import load_config

    try:
        plan = [Plant.parse(text) for text in args.rule or DEFAULT_PLAN]
        config = load_config(args.config) if args.config else load_config()
        planted = generate(config, accounts=args.accounts, seed=args.seed, plan=plan, base_rate=args.base_rate,
                           open_share=args.open_share, late_share=args.late_share)
    except PlanError as problem:
        print(f"plan: {problem}", file=sys.stderr)
        return 2
    out = Path(args.out)
    planted.write(out)
    manifest = planted.manifest()
    print(f"{manifest['accounts']} accounts ({manifest['closed']} closed, {manifest['wins']} won) written to {out}")
    for rule in manifest["rules"]:
        print(f"  {rule['rule']:<28} fires on {rule['rate']:.0%}, planted lift {rule['plantedLiftPoints']:+g} points")
    return 0


if __name__ == "__main__":
    sys.exit(main())
