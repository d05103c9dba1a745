"""The account model, pure: roll-up arithmetic, explanations, and the state machine."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from leadscore.adapters import items
from leadscore.adapters.streams import change_of
from leadscore.domain.ledgers import ContactEntry, RuleLedger
from leadscore.engine.account_states import exclusion_of, next_state
from leadscore.engine.accounts import account_card, entry_engagement
from leadscore.rulesfiles.loading import load_config
from leadscore.services.aggregate import Change, state_changes

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def scoring() -> Any:
    return load_config().scoring


def entry(key: str, points: float, persona: str = "user", *, rule: str = "webinar_attended",
          at: datetime = NOW, excluded: str | None = None) -> ContactEntry:
    return ContactEntry(key=f"u:{key}", version=1, persona=persona, excluded=excluded,
                        rules={rule: RuleLedger(touches=[[at.timestamp(), points]], count=1)},
                        recent=[[at.timestamp(), points]], last_engaged=at.timestamp())


def total(card: Any) -> float:
    return round(sum(line["points"] for line in card.breakdown), 2)


class TestAccountCard:
    def test_fit_plus_weighted_capped_engagement_plus_committee(self, scoring: Any) -> None:
        traits = {"industry": "Software", "employees": 200, "address": {"country": "United States"}}
        entries = [entry("vp", 40, "decision_maker"), entry("dir", 40, "influencer"),
                   entry("eng", 40, "user", rule="case_study_downloaded")]
        card = account_card(scoring, traits, entries, NOW)
        assert card.fit == 30
        assert card.engagement == 40 * 1.0 + 40 * 0.8 + 30 * 0.5  # case study capped at 30 by its rule
        assert card.bonus == 15
        assert card.score == total(card) == 30 + 87 + 15
        assert [c["contactId"] for c in card.contacts] == ["vp", "dir", "eng"]

    def test_each_contact_is_capped_and_only_the_top_k_count(self, scoring: Any) -> None:
        rules = ("webinar_attended", "demo_link_clicked", "demo_requested")
        big = ContactEntry(key="u:big", version=1, persona="decision_maker",
                           rules={r: RuleLedger(touches=[[NOW.timestamp(), 40]], count=1) for r in rules})
        assert entry_engagement(scoring, big, NOW) == 40 + 40 + 40
        others = [entry(f"c{i}", 10 + i, "decision_maker") for i in range(8)]
        card = account_card(scoring, {}, [big, *others], NOW)
        counted = [c["contactId"] for c in card.contacts]
        assert len(counted) == scoring.account.top_contacts and counted[0] == "big"
        assert card.engagement == 80 + 17 + 16 + 15 + 14  # 120 capped at contact_cap 80
        assert card.score == total(card)

    def test_committee_needs_recent_engagement_of_two_personas(self, scoring: Any) -> None:
        old = NOW - timedelta(days=45)
        card = account_card(scoring, {}, [entry("vp", 20, "decision_maker"),
                                          entry("dir", 20, "influencer", at=old)], NOW)
        assert card.bonus == 0
        assert total(card) == card.score

    def test_excluded_contacts_do_not_count(self, scoring: Any) -> None:
        card = account_card(scoring, {}, [entry("gone", 50, excluded="unsubscribed")], NOW)
        assert card.engagement == 0 and card.contacts == []

    def test_email_touches_decay_inside_the_account(self, scoring: Any) -> None:
        opened = NOW - timedelta(days=60)
        vp = entry("vp", 20, "decision_maker", rule="email_opened", at=opened)
        card = account_card(scoring, {}, [vp], NOW)
        assert card.engagement == 10  # 20 x 0.5 one half-life after going stale
        assert "0.5^" in card.breakdown[0]["detail"]

    def test_entries_round_trip(self) -> None:
        original = entry("vp", 20, "decision_maker")
        assert items.entry_from_doc(items.entry_doc(original)) == original


class TestStateMachine:
    @pytest.mark.parametrize(("state", "score", "expected"), [
        ("below_threshold", 99.99, ("below_threshold", 1)),
        ("below_threshold", 100, ("sdr_ready", 2)),
        ("sdr_ready", 85, ("sdr_ready", 1)),  # hysteresis: between requalify_below and sdr_ready
        ("sdr_ready", 79.9, ("recycled", 1)),
        ("routed", 50, ("routed", 1)),  # once routed, the cycle is the SDR's (issue 21, item 6)
        ("recycled", 99, ("recycled", 1)),  # must re-cross sdr_ready
        ("recycled", 120, ("sdr_ready", 2)),
        ("accepted", 10, ("accepted", 1)),  # people decide after acceptance
        ("disqualified", 500, ("disqualified", 1)),
    ])
    def test_thresholds_with_hysteresis(self, scoring: Any, state: str, score: float,
                                        expected: tuple[str, int]) -> None:
        moved = next_state(scoring, state=state, cycle=1, score=score, excluded=None, now=NOW)
        assert (moved.state, moved.cycle) == expected

    def test_exclusions_win_and_lifting_them_starts_over(self, scoring: Any) -> None:
        assert exclusion_of(scoring, "acme.com", {"lifecycle": "Customer"}) == "customer"
        assert exclusion_of(scoring, "example.com", {}) == "own_domain"
        assert exclusion_of(scoring, "acme.com", {"lifecycle": "lead"}) is None
        moved = next_state(scoring, state="sdr_ready", cycle=1, score=300, excluded="customer", now=NOW)
        assert moved.state == "excluded"
        lifted = next_state(scoring, state="excluded", cycle=1, score=300, excluded=None, now=NOW)
        assert (lifted.state, lifted.cycle) == ("sdr_ready", 2)

    def test_a_cooldown_keeps_a_recycled_account_out(self, scoring: Any) -> None:
        until = (NOW + timedelta(days=3)).isoformat()
        held = next_state(scoring, state="recycled", cycle=1, score=150, excluded=None, cooldown_until=until, now=NOW)
        assert held.state == "recycled"


def _account_record(sequence: int, old: dict[str, Any] | None, new: dict[str, Any]) -> Change:
    change = change_of(str(sequence), "MODIFY" if old else "INSERT", ("A#acme.com", "P"),
                       {"id": "acme.com", **new}, {"id": "acme.com", **old} if old else None)
    assert change is not None
    return change


class TestStateChanges:
    def test_score_changes_coalesce_per_account_and_transitions_go_out_as_they_happened(self) -> None:
        records = [
            _account_record(1, None, {"score": 40, "state": "below_threshold", "cycle": 0}),
            _account_record(2, {"score": 40, "state": "below_threshold", "cycle": 0},
                            {"score": 104, "state": "sdr_ready", "cycle": 1}),
            _account_record(3, {"score": 104, "state": "sdr_ready", "cycle": 1},
                            {"score": 110, "state": "sdr_ready", "cycle": 1}),
        ]
        events = state_changes(records, NOW)
        assert [t for t, _ in events] == ["Account SDR Ready", "Account Score Changed"]
        ready, changed = events[0][1], events[1][1]
        assert ready["cycle"] == 1 and ready["accountId"] == "acme.com"
        assert changed["score"] == 110 and changed["previousScore"] == 0

    def test_nothing_moved_nothing_published(self) -> None:
        same = {"score": 50, "state": "below_threshold", "cycle": 0}
        assert state_changes([_account_record(1, same, same)], NOW) == []
