"""What a rules change would do, before it ships: every person's retained events replayed
under the current rules and under the candidate, with the code that scores live
(rebuild.replay), and their accounts valued under each; nothing is written.

The report: the contacts and accounts whose score moves most, the accounts that would newly
cross the SDR-ready threshold or leave it, how many are SDR-ready under each, and each rule's
point total under each. Both sides are replays of the same retained events as of the same
moment, so what differs is the rules alone (not what live state has accumulated since).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from leadscore.domain.ledgers import ContactEntry
from leadscore.domain.records import Account
from leadscore.engine.account_states import exclusion_of
from leadscore.engine.accounts import account_card, effective_traits, entry_from_contact
from leadscore.engine.routing import AccountTraits, match_pool
from leadscore.engine.rules import score
from leadscore.services.rebuild import Person, replay, root_contact

if TYPE_CHECKING:
    from leadscore.rulesfiles.loading import Config
    from leadscore.rulesfiles.routing import RoutingConfig

#: Rows of each "moves most" list.
TOP = 20


@dataclass
class Side:
    """One rules set's view of the table: contact and account scores, rule totals."""

    contacts: dict[str, float] = field(default_factory=dict)
    accounts: dict[str, float] = field(default_factory=dict)
    ready: set[str] = field(default_factory=set)
    rule_points: dict[str, float] = field(default_factory=dict)
    #: SDR-ready accounts per (territory, pool) they would route to
    load: dict[tuple[str, str], int] = field(default_factory=dict)


@dataclass
class Preview:
    current: Side
    candidate: Side
    persons: int
    events: int
    threshold: tuple[float, float]

    def report(self, top: int = TOP) -> dict[str, Any]:
        """The preview as JSON: moves, threshold crossings, counts, rule totals."""
        def moves(old: Mapping[str, float], new: Mapping[str, float]) -> list[dict[str, Any]]:
            changes = {key: round(new.get(key, 0.0) - old.get(key, 0.0), 2) for key in set(old) | set(new)}
            moved = sorted((key for key, change in changes.items() if change), key=lambda k: (-abs(changes[k]), k))
            return [{"id": key, "current": old.get(key, 0.0), "candidate": new.get(key, 0.0), "change": changes[key]}
                    for key in moved[:top]]

        rules = sorted(set(self.current.rule_points) | set(self.candidate.rule_points))
        return {
            "persons": self.persons, "events": self.events,
            "threshold": {"current": self.threshold[0], "candidate": self.threshold[1]},
            "sdrReady": {"current": len(self.current.ready), "candidate": len(self.candidate.ready)},
            "newlySdrReady": sorted(self.candidate.ready - self.current.ready),
            "noLongerSdrReady": sorted(self.current.ready - self.candidate.ready),
            "accountsMovingMost": moves(self.current.accounts, self.candidate.accounts),
            "contactsMovingMost": moves(self.current.contacts, self.candidate.contacts),
            "rules": [{"rule": rule, "current": round(self.current.rule_points.get(rule, 0.0), 2),
                       "candidate": round(self.candidate.rule_points.get(rule, 0.0), 2)} for rule in rules],
            "sdrLoad": [{"territory": territory, "pool": pool, "current": self.current.load.get((territory, pool), 0),
                         "candidate": self.candidate.load.get((territory, pool), 0)}
                        for territory, pool in sorted(set(self.current.load) | set(self.candidate.load))],
        }


@dataclass
class Replayed:
    """Persons replayed under both rules sets, before their accounts are valued: what one shard
    of the table yields (partials merge: `merge`), per side [current, candidate]."""

    persons: int = 0
    events: int = 0
    contacts: tuple[dict[str, float], dict[str, float]] = field(default_factory=lambda: ({}, {}))
    rule_points: tuple[dict[str, float], dict[str, float]] = field(default_factory=lambda: ({}, {}))
    #: each side's account entries of the replayed contacts, by account id
    members: tuple[dict[str, list[ContactEntry]], dict[str, list[ContactEntry]]] = field(
        default_factory=lambda: ({}, {}))

    def merge(self, other: Replayed) -> None:
        self.persons += other.persons
        self.events += other.events
        for n in (0, 1):
            self.contacts[n].update(other.contacts[n])
            for rule, points in other.rule_points[n].items():
                self.rule_points[n][rule] = self.rule_points[n].get(rule, 0.0) + points
            for account_id, entries in other.members[n].items():
                self.members[n].setdefault(account_id, []).extend(entries)


def replay_persons(persons: Iterable[Person], current: Config, candidate: Config, now: datetime,
                   since: datetime | None = None) -> Replayed:
    """Replay every person under both rules sets as of `now`: each contact's score, each
    rule's points, and the account entries to value their accounts with. Each side matches
    every event against its own rules, as collection would have had they always been in
    force, so a candidate rule that matches other events (a new rule, a changed `when`) is
    previewed too, and the two sides differ by the rules alone. With `since` (the window),
    only events received from then on earn points; older ones still set identity and traits."""
    out = Replayed()
    for person in persons:
        out.persons += 1
        out.events += len(person.events)
        for n, config in enumerate((current, candidate)):
            contact = root_contact(person, replay(config, person, until=now, rematch=True, engagement_since=since))
            if contact is None:
                continue
            card = score(config.scoring, contact.engine_state, now)
            out.contacts[n][contact.user_id or contact.key.split(":", 1)[1]] = card.score
            for hit in card.breakdown:
                out.rule_points[n][hit.rule] = out.rule_points[n].get(hit.rule, 0.0) + hit.points
            if contact.account:
                out.members[n].setdefault(contact.account, []).append(
                    entry_from_contact(config.scoring, contact, now))
    return out


def value_accounts(replayed: Replayed, traits_of: Mapping[str, Mapping[str, Any]], current: Config,
                   candidate: Config, now: datetime,
                   routing: tuple[RoutingConfig, RoutingConfig] | None = None) -> Preview:
    """Value each account under both rules sets from its contacts' entries and its traits as
    stored (`traits_of`: account id -> the stored traits; group calls and profiles do not depend
    on the rules). With `routing` (current and candidate routing.yaml), count each side's
    SDR-ready accounts per territory and pool they would route to."""
    sides = (Side(), Side())
    for n, (side, config) in enumerate(zip(sides, (current, candidate), strict=True)):
        side.contacts = dict(replayed.contacts[n])
        side.rule_points = dict(replayed.rule_points[n])
        threshold = config.scoring.account.thresholds.sdr_ready
        for account_id, entries in replayed.members[n].items():
            traits = effective_traits(traits_of.get(account_id) or {})
            valued = account_card(config.scoring, traits, entries, now)
            side.accounts[account_id] = valued.score
            if valued.score >= threshold and exclusion_of(config.scoring, account_id, traits) is None:
                side.ready.add(account_id)
                if routing is not None:
                    choice = match_pool(routing[n], AccountTraits.from_traits(account_id, traits))
                    where = (choice.territory or "(fallback)", choice.pool)
                    side.load[where] = side.load.get(where, 0) + 1
    return Preview(sides[0], sides[1], replayed.persons, replayed.events,
                   (current.scoring.account.thresholds.sdr_ready, candidate.scoring.account.thresholds.sdr_ready))


def preview(persons: Iterable[Person], accounts: Mapping[str, Account], current: Config, candidate: Config,
            now: datetime, routing: tuple[RoutingConfig, RoutingConfig] | None = None) -> Preview:
    """Replay every person under both rules sets as of `now` and value their accounts, in one
    process (adapters/shards.py runs the same two steps over shards of the table)."""
    return value_accounts(replay_persons(persons, current, candidate, now),
                          {account_id: account.traits for account_id, account in accounts.items()},
                          current, candidate, now, routing)
