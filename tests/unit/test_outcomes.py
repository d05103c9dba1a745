"""Outcomes kept in the table (services/outcomes.py): a CRM's `Opportunity Won` / `Opportunity
Lost` events and group traits, the sales feedback on accounts, and the precedence when they
and a file disagree (file over CRM over feedback; within one, the latest close)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from leadscore.domain.events import TrackingEvent
from leadscore.domain.records import Account, Contact, Feedback, StoredEvent
from leadscore.services.calibrate import Outcome, parse_outcomes
from leadscore.services.outcomes import (
    CLOSE_FALLBACK,
    NO_ACCOUNT,
    by_source,
    close_date,
    group_accounts,
    merge_outcomes,
    merge_report,
    outcome_from_json,
    outcome_json,
    outcomes_from_snapshot,
)

AT = datetime(2026, 11, 20, 15, 30, tzinfo=UTC)


@dataclass
class Shard:
    """A snapshot-like: what a TableSnapshot (or one shard of one) holds."""

    events: dict[str, list[StoredEvent]] = field(default_factory=dict)
    contacts: dict[str, Contact] = field(default_factory=dict)
    accounts: dict[str, Account] = field(default_factory=dict)

    def add(self, event: TrackingEvent) -> None:
        self.events.setdefault(event.contact_key, []).append(StoredEvent(event, []))


def track(name: str, *, user: str = "jo", at: datetime = AT, group: str | None = None, hint: str | None = None,
          **properties: Any) -> TrackingEvent:
    return TrackingEvent(type="track", message_id=f"m-{name}-{at:%s}-{user}", source_id="crm", contact_key=f"u:{user}",
                         timestamp=at, received_at=at, event=name, user_id=user, group_id=group,
                         properties=properties, account_hint=hint)


def group_call(group: str, account: str, *, user: str = "jo", at: datetime = AT, **traits: Any) -> TrackingEvent:
    return TrackingEvent(type="group", message_id=f"g-{group}-{at:%s}", source_id="crm", contact_key=f"u:{user}",
                         timestamp=at, received_at=at, user_id=user, group_id=group, traits=traits,
                         account_hint=account)


def one(found: list[Any]) -> tuple[str, str, datetime | None, str | None]:
    assert len(found) == 1, found
    return found[0].account_id, found[0].outcome, found[0].closed_at, found[0].note


class TestCrmEvents:
    def test_won_and_lost_on_a_contact_count_for_its_account_at_the_close_date(self) -> None:
        shard = Shard(contacts={"u:jo": Contact("u:jo", account="acme.com")})
        shard.add(track("Opportunity Won", closeDate="2026-11-19T10:00:00Z", amount=12000, opportunityId="o-1"))
        assert one(outcomes_from_snapshot(shard)) == ("acme.com", "won", datetime(2026, 11, 19, 10, tzinfo=UTC), None)
        assert outcomes_from_snapshot(shard)[0].source == "crm"

    def test_names_match_as_the_rules_match_them_case_insensitively(self) -> None:
        shard = Shard(contacts={"u:jo": Contact("u:jo", account="acme.com")})
        shard.add(track("opportunity LOST"))
        shard.add(track("Opportunity Lost Reason Given", user="other"))  # another event: not an outcome
        shard.add(track("Opportunity Won ", user="other"))  # not the name either
        assert one(outcomes_from_snapshot(shard)) == ("acme.com", "lost", AT, None)

    def test_the_group_id_names_the_account_before_the_contact_does(self) -> None:
        shard = Shard(contacts={"u:jo": Contact("u:jo", account="acme.com")})
        shard.add(track("Opportunity Won", group="www.globex.com"))  # a domain: its registrable domain
        shard.add(track("Opportunity Lost", user="crm", group="0015g00000XyZ"))  # an opaque CRM id ...
        shard.add(group_call("0015g00000XyZ", "initech.de", user="crm"))  # ... whose group call named the account
        found = {o.account_id: o.outcome for o in outcomes_from_snapshot(shard)}
        assert found == {"globex.com": "won", "initech.de": "lost"}

    def test_a_group_id_no_group_call_ties_waits_for_the_other_shards(self) -> None:
        # the CRM's event in one shard, the group call tying its company id to a domain in another
        events = Shard(contacts={"u:jo": Contact("u:jo", account="acme.com")})
        events.add(track("Opportunity Won", user="crm", group="0015Hooli"))  # no contact: no account here
        events.add(track("Opportunity Lost", group="0015Umbrella"))  # jo's account, unless tied elsewhere
        groups = Shard()
        groups.add(group_call("0015Hooli", "hooli.com", user="web"))
        found = outcomes_from_snapshot(events)
        assert sorted((o.account_id, o.group_id, o.note) for o in found) == [
            ("", "0015Hooli", NO_ACCOUNT), ("acme.com", "0015Umbrella", None)]
        # on its own: one outcome naming no account, one for the contact's account
        merged, counts = merge_report([], *by_source(found))
        assert [(o.account_id, o.outcome) for o in merged] == [("acme.com", "lost")] and counts["noAccount"] == 1
        # with every shard's group calls (through JSON, as the steps hand them on)
        tied = {**group_accounts(events), **group_accounts(groups), "0015Umbrella": "umbrella.com"}
        again = [outcome_from_json(outcome_json(o)) for o in found]
        merged, counts = merge_report([], *by_source(again), groups=tied)
        assert sorted((o.account_id, o.outcome, o.note) for o in merged) == [
            ("hooli.com", "won", None), ("umbrella.com", "lost", None)]
        assert counts["noAccount"] == 0

    def test_a_merged_contact_counts_for_the_account_of_the_one_it_joined(self) -> None:
        shard = Shard(contacts={"a:anon": Contact("a:anon", merged_into="u:jo"),
                                "u:jo": Contact("u:jo", account="acme.com")})
        shard.add(replace(track("Opportunity Won"), contact_key="a:anon"))
        assert one(outcomes_from_snapshot(shard))[:2] == ("acme.com", "won")

    def test_without_an_account_the_outcome_is_counted_not_guessed(self) -> None:
        shard = Shard()
        shard.add(track("Opportunity Won", user="stranger"))
        found = outcomes_from_snapshot(shard)
        assert one(found) == ("", "won", AT, NO_ACCOUNT)
        merged, counts = merge_report([], *by_source(found))
        assert merged == [] and counts["noAccount"] == 1
        # the event's own company (context.traits.company, a corporate email) is used before giving up
        shard = Shard()
        shard.add(track("Opportunity Won", user="stranger", hint="acme.com"))
        assert one(outcomes_from_snapshot(shard))[:2] == ("acme.com", "won")

    @pytest.mark.parametrize(("value", "expected"), [
        ("2026-11-19", datetime(2026, 11, 19, 23, 59, 59, 999999, tzinfo=UTC)),  # a date: the end of that day
        ("2026-11-20", AT),  # posted that very day: not later than the event itself
        ("2026-11-19T12:00:00+01:00", datetime(2026, 11, 19, 11, tzinfo=UTC)),
        ("2027-01-01T00:00:00Z", AT),  # a future close: known when posted
    ])
    def test_a_readable_close_date_is_used(self, value: str, expected: datetime) -> None:
        assert close_date(value, AT) == expected

    @pytest.mark.parametrize("value", ["next tuesday", "2026-11-19T10:00:00", "2026-13-45", 1763600000000,
                                       "2026-11-19" * 10])
    def test_an_unreadable_close_date_falls_back_to_the_event_time_and_says_so(self, value: Any) -> None:
        shard = Shard(contacts={"u:jo": Contact("u:jo", account="acme.com")})
        shard.add(track("Opportunity Lost", closeDate=value))
        found = outcomes_from_snapshot(shard)
        assert one(found) == ("acme.com", "lost", AT, CLOSE_FALLBACK)
        assert merge_report([], *by_source(found))[1]["closeDateFallback"] == 1

    def test_without_a_close_date_the_event_time_is_the_close(self) -> None:
        shard = Shard(contacts={"u:jo": Contact("u:jo", account="acme.com")})
        shard.add(track("Opportunity Lost", amount=500))
        found = outcomes_from_snapshot(shard)
        assert one(found) == ("acme.com", "lost", AT, None)
        assert merge_report([], *by_source(found))[1]["closeDateFallback"] == 0

    def test_the_close_date_keys_a_crm_may_send(self) -> None:
        for key in ("closeDate", "closedAt", "close_date", "closed_at", "closedate", "CloseDate"):
            shard = Shard(contacts={"u:jo": Contact("u:jo", account="acme.com")})
            shard.add(track("Opportunity Won", **{key: "2026-11-01T00:00:00Z"}))
            assert one(outcomes_from_snapshot(shard))[2] == datetime(2026, 11, 1, tzinfo=UTC), key


class TestGroupTraits:
    def test_a_group_call_with_a_status_trait_is_an_outcome(self) -> None:
        shard = Shard()
        shard.add(group_call("acme.com", "acme.com", opportunityStatus="Closed Won", closeDate="2026-11-18T09:00:00Z"))
        shard.add(group_call("globex.com", "globex.com", opportunity_status="lost"))  # no date: the call's time
        shard.add(group_call("hooli.com", "hooli.com", opportunityStatus="won", closeDate="soon"))  # unreadable
        shard.add(group_call("initech.de", "initech.de", opportunityStatus="open"))
        shard.add(group_call("umbrella.com", "umbrella.com", opportunityStatus="maybe"))  # not the vocabulary
        found = sorted((o.account_id, o.outcome, o.closed_at, o.note) for o in outcomes_from_snapshot(shard))
        assert found == [("acme.com", "won", datetime(2026, 11, 18, 9, tzinfo=UTC), None),
                         ("globex.com", "lost", AT, None), ("hooli.com", "won", AT, CLOSE_FALLBACK),
                         ("initech.de", "open", None, None)]

    def test_stored_group_traits_outlive_the_events_but_need_their_close_date(self) -> None:
        shard = Shard(accounts={
            "acme.com": Account("acme.com", traits={"group": {"opportunityStatus": "won", "closeDate": "2026-10-01"}}),
            "globex.com": Account("globex.com", traits={"group": {"opportunityStatus": "lost"}}),  # when? unknown
            "initech.de": Account("initech.de", traits={"company": {"opportunityStatus": "won",
                                                                    "closeDate": "2026-10-01"}}),  # a profile's
        })
        assert one(outcomes_from_snapshot(shard)) == (
            "acme.com", "won", datetime(2026, 10, 1, 23, 59, 59, 999999, tzinfo=UTC), None)


class TestFeedback:
    @staticmethod
    def account(outcome: str, at: str = "2026-11-10T08:00:00Z") -> Account:
        return Account("acme.com", last_feedback=Feedback("acme.com", 1, outcome, "maya", at))

    def test_disqualified_is_lost_at_its_time(self) -> None:
        found = outcomes_from_snapshot(Shard(accounts={"acme.com": self.account("disqualified")}))
        assert one(found) == ("acme.com", "lost", datetime(2026, 11, 10, 8, tzinfo=UTC), None)
        assert found[0].source == "feedback"

    @pytest.mark.parametrize("outcome", ["accepted", "not_ready", "reset"])
    def test_the_other_feedback_leaves_the_account_open(self, outcome: str) -> None:
        found = outcomes_from_snapshot(Shard(accounts={"acme.com": self.account(outcome)}))
        assert one(found) == ("acme.com", "open", None, None)

    def test_an_account_without_feedback_has_no_outcome(self) -> None:
        assert outcomes_from_snapshot(Shard(accounts={"acme.com": Account("acme.com")})) == []


class TestPrecedence:
    def test_file_over_crm_over_feedback(self) -> None:
        file = parse_outcomes("accountId,outcome,closedAt\nacme.com,won,2026-11-01T00:00:00Z\n")
        crm = [Outcome("acme.com", "lost", AT), Outcome("globex.com", "won", AT)]
        feedback = [Outcome("acme.com", "lost", AT), Outcome("globex.com", "lost", AT),
                    Outcome("initech.de", "lost", AT)]
        merged, counts = merge_report(file, crm, feedback)
        assert [(o.account_id, o.outcome, o.source) for o in merged] == [
            ("acme.com", "won", "file"), ("globex.com", "won", "crm"), ("initech.de", "lost", "feedback")]
        assert counts["accounts"] == {"file": 1, "crm": 1, "feedback": 1}
        assert counts["read"] == {"file": 1, "crm": 2, "feedback": 3} and counts["setAside"] == 3

    def test_accepted_feedback_is_open_unless_the_crm_closes_it(self) -> None:
        shard = Shard(contacts={"u:jo": Contact("u:jo", account="acme.com")},
                      accounts={"acme.com": TestFeedback.account("accepted")})
        assert one(merge_outcomes([], *by_source(outcomes_from_snapshot(shard))))[:2] == ("acme.com", "open")
        shard.add(track("Opportunity Won"))
        merged = merge_outcomes([], *by_source(outcomes_from_snapshot(shard)))
        assert one(merged)[:2] == ("acme.com", "won") and merged[0].source == "crm"

    def test_within_a_source_the_latest_close_wins_and_a_close_beats_open(self) -> None:
        later = AT + timedelta(days=30)
        crm = [Outcome("acme.com", "won", AT), Outcome("acme.com", "lost", later), Outcome("acme.com", "open", None)]
        assert one(merge_outcomes([], crm)) == ("acme.com", "lost", later, None)
        # a tie: won; and the file's own duplicates are merged the same way
        file = [Outcome("acme.com", "lost", AT), Outcome("acme.com", "won", AT), Outcome("acme.com", "open", None)]
        assert one(merge_outcomes(file))[:2] == ("acme.com", "won")

    def test_the_same_events_in_any_order_or_split_over_shards_merge_the_same(self) -> None:
        shard = Shard(contacts={key: Contact(key, account="acme.com") for key in ("u:jo", "u:al")})
        shard.add(track("Opportunity Lost", at=AT))
        shard.add(track("Opportunity Won", user="al", at=AT + timedelta(days=3)))
        whole = merge_outcomes([], *by_source(outcomes_from_snapshot(shard)))
        halves = [Shard(events={k: v}, contacts=shard.contacts) for k, v in shard.events.items()]
        found = [o for half in reversed(halves) for o in outcomes_from_snapshot(half)]
        # through JSON, as a step hands them on
        again = merge_outcomes([], *by_source([outcome_from_json(outcome_json(o)) for o in found]))
        assert whole == again and one(whole)[:2] == ("acme.com", "won")
