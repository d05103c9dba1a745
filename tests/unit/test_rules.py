"""The rules engine against the shipped defaults (config/scoring.yaml) and small custom rules."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from itertools import count
from pathlib import Path
from typing import Any

import pytest
from leadscore.adapters import items
from leadscore.domain.events import TrackingEvent
from leadscore.domain.ledgers import ContactState, RuleLedger
from leadscore.engine import rules
from leadscore.engine.rules import Hit
from leadscore.rulesfiles.loading import load_scoring
from leadscore.rulesfiles.scoring import ScoringConfig

REPO = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
_ids = count()


@pytest.fixture(scope="module")
def cfg() -> ScoringConfig:
    return load_scoring(REPO / "config" / "scoring.yaml")


def custom(**sections: Any) -> ScoringConfig:
    return ScoringConfig.model_validate({"version": 1, **sections})


def event(type_: str, name: str | None = None, at: datetime = T0, **fields: Any) -> TrackingEvent:
    return TrackingEvent(
        type=type_,  # type: ignore[arg-type]
        message_id=f"m-{next(_ids)}",
        source_id="website",
        contact_key="u:jo",
        timestamp=at,
        received_at=at,
        event=name,
        **fields,
    )


def page(path: str, at: datetime = T0) -> TrackingEvent:
    return event("page", at=at, url=f"https://www.acme.io{path}", path=path)


def identify(at: datetime = T0, **traits: Any) -> TrackingEvent:
    return event("identify", at=at, traits=traits)


def apply_all(cfg: ScoringConfig, state: ContactState, events: list[TrackingEvent]) -> list[Hit]:
    hits: list[Hit] = []
    for e in events:
        hits += rules.apply_event(cfg, state, e)
    return hits


def points(card: rules.ScoreCard) -> dict[str, float]:
    return {h.rule: h.points for h in card.breakdown}


VP_TRAITS: dict[str, Any] = {
    "email": "jo@acme.com",
    "title": "VP Sales",
    "company": {"name": "Acme", "industry": "Software", "employee_count": 200},
    "address": {"country": "US"},
}


# ------------------------------------------------------------------------ journey


def test_vp_at_a_us_software_company_who_engages_is_an_sql_with_score_120(cfg: ScoringConfig) -> None:
    # Given a VP at a 200-person US software company
    state = ContactState()
    journey = [
        identify(**VP_TRAITS),
        page("/pricing", T0 + timedelta(minutes=1)),
        event("track", "Case Study Downloaded", T0 + timedelta(minutes=2)),
        event("track", "Webinar Attended", T0 + timedelta(days=1)),
        event("track", "Demo Link Clicked", T0 + timedelta(days=2)),
    ]

    # When the contact views pricing, downloads a case study, attends a webinar, clicks a demo link
    credited = apply_all(cfg, state, journey)
    card = rules.score(cfg, state, T0 + timedelta(days=3))

    # Then fit 50 + engagement 70 = 120, an SQL, and the breakdown adds up to the score
    assert [h.points for h in credited] == [15, 10, 20, 25]
    assert (card.fit, card.engagement, card.score) == (50, 70, 120)
    assert card.lifecycle == "sql"
    assert card.velocity == 70
    assert sum(h.points for h in card.breakdown) == card.score
    assert points(card) == {
        "title_executive": 20,
        "industry_technology": 15,
        "company_size": 10,
        "country_focus": 5,
        "pricing_page": 15,
        "case_study_downloaded": 10,
        "webinar_attended": 20,
        "demo_link_clicked": 25,
    }
    assert [h.category for h in card.breakdown[:4]] == ["fit"] * 4


def test_breakdown_lists_fit_then_engagement_with_details(cfg: ScoringConfig) -> None:
    # Given the VP who viewed pricing
    state = ContactState()
    apply_all(cfg, state, [identify(**VP_TRAITS), page("/pricing")])

    # When scored
    card = rules.score(cfg, state, T0)

    # Then each line names its rule, category and why
    assert card.breakdown[0] == Hit("title_executive", "fit", 20, "seniority = vp")
    assert card.breakdown[-1] == Hit("pricing_page", "web", 15, None)
    assert card.as_dict()["breakdown"][-1] == {"rule": "pricing_page", "category": "web", "points": 15}


# ---------------------------------------------------------------------------- fit


@pytest.mark.parametrize(
    ("title", "level"),
    [
        ("Chief Technology Officer", "c_level"),
        ("CTO", "c_level"),
        ("Co-Founder & CEO", "c_level"),
        ("President", "c_level"),
        ("VP of Sales", "vp"),
        ("Senior Vice President, Marketing", "vp"),
        ("SVP Engineering", "vp"),
        ("Head of Growth", "head"),
        ("Director of Engineering", "director"),
        ("Managing Director", "director"),
        ("Sales Manager", "manager"),
        ("Senior Engineer", "senior"),
        ("Marketing Intern", "entry"),
        ("Engineer", None),
        ("", None),
    ],
)
def test_seniority_is_derived_from_the_title(cfg: ScoringConfig, title: str, level: str | None) -> None:
    # Given a title, When the traits are derived, Then the first matching level is the seniority
    assert rules.derive_traits(cfg, {"title": title}).get("seniority") == level


def test_a_seniority_trait_wins_over_the_title(cfg: ScoringConfig) -> None:
    # Given a tracker that sends seniority itself
    traits = {"title": "VP Sales", "seniority": "Director"}

    # When derived and scored for fit
    derived = rules.derive_traits(cfg, traits)
    hits = rules.evaluate_fit(cfg, cfg.fit, derived)

    # Then the sent seniority is used (normalised to a level name)
    assert derived["seniority"] == "director"
    assert [(h.rule, h.points) for h in hits] == [("title_manager", 10)]
    assert rules.derive_traits(cfg, {"seniority": "C-Level"})["seniority"] == "c_level"
    assert rules.derive_traits(cfg, {"seniority": "Vice President"})["seniority"] == "vp"


def test_email_domain_type_and_country_code_are_derived(cfg: ScoringConfig) -> None:
    # Given identify traits with an address and a country name
    derived = rules.derive_traits(cfg, {"email": "Jo@Acme.com", "address": {"country": "United Kingdom"}})

    # Then the derived traits are there for fit rules
    assert derived["email_domain"] == "acme.com"
    assert derived["email_domain_type"] == "corporate"
    assert derived["country_code"] == "GB"
    assert rules.derive_traits(cfg, {"country": "UK"})["country_code"] == "GB"
    assert rules.derive_traits(cfg, {"country": "USA"})["country_code"] == "US"
    assert "country_code" not in rules.derive_traits(cfg, {"country": "Atlantis"})


@pytest.mark.parametrize(
    ("email", "fit"),
    [("jo@acme.com", 0), ("jo@gmail.com", 0), ("jo@mailinator.com", -10), (None, 0)],
)
def test_only_a_disposable_email_changes_fit(cfg: ScoringConfig, email: str | None, fit: float) -> None:
    # Given a contact known only by email, When scored,
    # Then corporate or free mail adds nothing and throwaway mail costs
    state = ContactState(traits={"email": email} if email else {})
    assert rules.score(cfg, state, T0).fit == fit


def test_fit_rules_compare_case_insensitively_and_across_number_spellings(cfg: ScoringConfig) -> None:
    # Given traits typed by people: lowercase industry, employee count as a string, country as a name
    traits = {"company": {"industry": "  saas", "employee_count": "1,20"}, "address": {"country": "canada"}}

    # When evaluated
    hits = rules.evaluate_fit(cfg, cfg.fit, rules.derive_traits(cfg, traits))

    # Then they match like their canonical spellings ("1,20" is 120)
    assert [h.rule for h in hits] == ["industry_technology", "company_size", "country_focus"]


def test_fit_range_bounds_are_inclusive(cfg: ScoringConfig) -> None:
    for employees, expected in [(49, 0), (50, 10), (500, 10), (501, 0)]:
        hits = rules.evaluate_fit(cfg, cfg.fit, {"company": {"employee_count": employees}})
        assert sum(h.points for h in hits) == expected, employees


def test_fit_buckets_give_exactly_one_bucket() -> None:
    # Given a banded company-size rule
    c = custom(
        fit=[
            {
                "id": "size",
                "trait": "company.employee_count",
                "buckets": [
                    {"min": 1, "max": 49, "points": 2},
                    {"min": 50, "max": 500, "points": 10},
                    {"min": 501, "points": 5, "label": "enterprise"},
                ],
            }
        ]
    )

    # When evaluated at several sizes, Then one bucket applies, never a sum
    def fit(n: Any) -> list[Hit]:
        return rules.evaluate_fit(c, c.fit, {"company": {"employee_count": n}})

    assert fit(200) == [Hit("size", "fit", 10, "company.employee_count = 200: bucket 50-500")]
    assert fit(9000) == [Hit("size", "fit", 5, "company.employee_count = 9000: enterprise")]
    assert fit(0) == []
    assert fit("many") == []


def test_fit_conditions_contains_pattern_flat_keys_and_lists() -> None:
    # Given rules of each condition kind
    c = custom(
        fit=[
            {"id": "bank", "trait": "company.industry", "contains": "bank", "points": 1},
            {"id": "gov", "trait": "email_domain", "pattern": r"\.gov$", "points": 2},
            {"id": "tag", "trait": "tags", "equals": "target", "points": 4},
            {"id": "flag", "trait": "target_account", "equals": True, "points": 8},
        ]
    )
    traits = {
        "company.industry": "Investment Banking",  # flattened by some trackers
        "email_domain": "state.GOV",
        "tags": ["Target", "emea"],
        "target_account": "true",
    }

    # When evaluated, Then every rule matches
    assert [h.points for h in rules.evaluate_fit(c, c.fit, traits)] == [1, 2, 4, 8]


def test_account_fit_uses_group_traits(cfg: ScoringConfig) -> None:
    # Given group traits of a British software company of 120
    traits = {"name": "Acme", "industry": "Computer Software", "employees": 120, "address": {"country": "UK"}}

    # When the account fit rules are evaluated on the derived traits
    hits = rules.evaluate_fit(cfg, cfg.account.fit, rules.derive_traits(cfg, traits))

    # Then industry, size and country all score
    assert [(h.rule, h.points) for h in hits] == [
        ("account_industry_technology", 15),
        ("account_size", 10),
        ("account_country_focus", 5),
    ]


def test_fit_follows_trait_changes(cfg: ScoringConfig) -> None:
    # Given a manager who is later promoted (identify traits are deep-merged, later wins)
    state = ContactState()
    rules.apply_event(
        cfg, state, identify(title="Sales Manager", company={"industry": "Retail", "name": "Acme"})
    )
    assert rules.score(cfg, state, T0).fit == 10

    # When a later identify changes the title and the industry only
    rules.apply_event(
        cfg, state, identify(T0 + timedelta(days=1), title="VP Sales", company={"industry": "SaaS"})
    )

    # Then fit follows, and nested traits not sent again are kept
    assert rules.score(cfg, state, T0).fit == 35
    assert state.traits["company"] == {"industry": "SaaS", "name": "Acme"}


# --------------------------------------------------------------------- engagement


def test_identify_group_alias_and_bots_earn_no_engagement(cfg: ScoringConfig) -> None:
    # Given a contact
    state = ContactState()

    # When it sends identify, group and alias calls, and a bot views pricing
    hits = apply_all(
        cfg,
        state,
        [
            identify(email="jo@acme.com"),
            event("group", traits={"industry": "Software"}, group_id="acme.com"),
            event("alias", previous_id="anon-1"),
            event("page", url="https://acme.io/pricing", path="/pricing", bot=True),
        ],
    )

    # Then nothing is credited, group traits stay on the account, and the bot is no visit
    assert hits == []
    assert state.rules == {}
    assert state.visits == 0
    assert "industry" not in state.traits
    assert rules.matching_rules(cfg, event("group", traits={})) == []


def test_matching_rules_is_stateless_and_case_insensitive(cfg: ScoringConfig) -> None:
    # Given events as trackers send them
    # When matched, Then the rule ids come back regardless of caps or history
    assert rules.matching_rules(cfg, event("track", "email opened")) == ["email_opened"]
    assert rules.matching_rules(cfg, page("/Pricing/enterprise")) == ["pricing_page"]
    assert rules.matching_rules(cfg, event("track", "Page Viewed")) == []
    form = event("track", "Form Submitted", properties={"form_id": "demo-request", "stage": "bottom"})
    assert rules.matching_rules(cfg, form) == ["form_bottom_of_funnel"]


def test_form_submissions_score_by_funnel_stage(cfg: ScoringConfig) -> None:
    # Given three forms of each stage
    state = ContactState()
    stages = ["top", "middle", "bottom"]
    forms = [event("track", "Form Submitted", properties={"stage": s}) for s in stages]

    # When submitted
    hits = apply_all(cfg, state, forms)

    # Then top +5, middle +10, bottom +50
    assert [(h.rule, h.points) for h in hits] == [
        ("form_top_of_funnel", 5),
        ("form_middle_of_funnel", 10),
        ("form_bottom_of_funnel", 50),
    ]


def test_negative_rules_subtract(cfg: ScoringConfig) -> None:
    # Given a contact who engaged, then unsubscribed, opened a support ticket and browsed careers
    state = ContactState()
    apply_all(
        cfg,
        state,
        [
            event("track", "Webinar Attended"),
            event("track", "Unsubscribed"),
            event("track", "Support Ticket Created"),
            page("/careers"),
        ],
    )

    # When scored
    card = rules.score(cfg, state, T0)

    # Then 20 - 10 - 3 - 5 = 2, and velocity counts the negatives too
    assert card.engagement == 2
    assert points(card)["careers_page"] == -5
    assert card.velocity == 2


def test_a_negative_cap_limits_how_far_a_rule_subtracts(cfg: ScoringConfig) -> None:
    # Given a job seeker who views careers pages three times (cap 10)
    state = ContactState()
    hits = apply_all(cfg, state, [page("/careers", T0 + timedelta(minutes=m)) for m in range(3)])

    # Then only -10 is subtracted; the third view credits nothing
    assert [h.points for h in hits] == [-5, -5]
    assert rules.score(cfg, state, T0 + timedelta(hours=1)).engagement == -10


def test_caps_and_frequency_limits(cfg: ScoringConfig) -> None:
    # Given pricing +15, at most once a day, capped at 45
    state = ContactState()

    # When pricing is viewed five times in one day
    same_day = apply_all(cfg, state, [page("/pricing", T0 + timedelta(minutes=m)) for m in range(5)])

    # Then it scores once
    assert [h.points for h in same_day if h.rule == "pricing_page"] == [15]

    # When it is viewed once a day for the next five days
    later = apply_all(cfg, state, [page("/pricing", T0 + timedelta(days=d)) for d in range(1, 6)])

    # Then it scores on two more days and then the cap holds at 45
    assert [h.points for h in later if h.rule == "pricing_page"] == [15, 15]
    assert state.rules["pricing_page"].count == 3
    assert points(rules.score(cfg, state, T0 + timedelta(days=6)))["pricing_page"] == 45


def test_a_partial_credit_fills_the_cap_exactly() -> None:
    # Given a rule of 20 capped at 50
    c = custom(engagement=[{"id": "r", "category": "c", "points": 20, "cap": 50, "when": {"event": "E"}}])
    state = ContactState()

    # When it matches three times
    hits = apply_all(c, state, [event("track", "E", T0 + timedelta(hours=h)) for h in range(3)])

    # Then the third hit is credited only the 10 left under the cap, and says so
    assert [(h.points, h.detail) for h in hits] == [(20, None), (20, None), (10, "capped at 50")]


def test_frequency_limit_is_a_sliding_window() -> None:
    # Given a rule scored at most twice in any 7 days
    c = custom(
        engagement=[
            {
                "id": "docs",
                "category": "web",
                "points": 1,
                "limit": {"max": 2, "per_days": 7},
                "when": {"event": "D"},
            }
        ]
    )
    state = ContactState()
    days = [0, 1, 2, 6, 7, 8, 9]

    # When the event happens on these days
    hits = [rules.apply_event(c, state, event("track", "D", T0 + timedelta(days=d))) for d in days]

    # Then a hit scores only when fewer than 2 scored hits lie in the 7 days before it
    assert [len(h) for h in hits] == [1, 1, 0, 0, 1, 1, 0]
    assert len(state.rules["docs"].recent) <= 2


def test_site_visit_buckets_do_not_add_up(cfg: ScoringConfig) -> None:
    # Given page views in separate visits (more than 30 minutes apart)
    def visits(n: int) -> ContactState:
        state = ContactState()
        apply_all(cfg, state, [page("/blog", T0 + timedelta(hours=h)) for h in range(n)])
        return state

    # When scored, Then 1 visit gives nothing, 3 visits +3, 7 visits +6 (not 3 + 6)
    assert "site_visits" not in points(rules.score(cfg, visits(1), T0))
    assert points(rules.score(cfg, visits(3), T0))["site_visits"] == 3
    seven = rules.score(cfg, visits(7), T0 + timedelta(hours=7))
    assert points(seven)["site_visits"] == 6
    assert seven.engagement == 6
    assert seven.velocity == 6


def test_page_views_within_the_visit_gap_are_one_visit(cfg: ScoringConfig) -> None:
    # Given page views 20 minutes apart, then one after an hour's pause
    state = ContactState()
    views = [page("/a", T0 + timedelta(minutes=m)) for m in (0, 20, 40, 60, 130)]

    # When applied
    hits = apply_all(cfg, state, views)

    # Then that is two visits, and reaching the 2-5 bucket is credited as it happens
    assert state.visits == 2
    assert hits == [Hit("site_visits", "web", 3, "2 visits: 2-5 visits")]


def test_event_conditions_on_properties_form_id_and_type() -> None:
    # Given rules on properties, form ids and types
    c = custom(
        engagement=[
            {
                "id": "big_plan",
                "category": "product",
                "points": 30,
                "when": {
                    "event": "Plan Selected",
                    "properties": {"plan.tier": ["pro", "enterprise"], "seats": {"min": 10}},
                },
            },
            {"id": "contact_form", "category": "form", "points": 40, "when": {"form_id": "contact-us"}},
            {
                "id": "docs",
                "category": "web",
                "points": 1,
                "when": {"type": ["page", "screen"], "url_contains": ["/docs"]},
            },
        ]
    )

    def match(e: TrackingEvent) -> list[str]:
        return rules.matching_rules(c, e)

    # Then each condition must hold
    assert match(event("track", "Plan Selected", properties={"plan": {"tier": "Pro"}, "seats": 12})) == [
        "big_plan"
    ]
    assert match(event("track", "Plan Selected", properties={"plan": {"tier": "Pro"}, "seats": "3"})) == []
    assert match(event("track", "Plan Selected", properties={"seats": 50})) == []
    assert match(event("track", "Form Submitted", properties={"formId": "Contact-Us"})) == ["contact_form"]
    assert match(event("screen", "Docs", path="/docs/setup")) == ["docs"]
    assert match(event("track", "Docs", url="https://x.io/docs")) == []


# -------------------------------------------------------------------------- decay


def opens(cfg: ScoringConfig, n: int, at: datetime = T0) -> ContactState:
    state = ContactState()
    apply_all(cfg, state, [event("track", "Email Opened", at + timedelta(minutes=i)) for i in range(n)])
    return state


def test_email_opens_decay_after_they_go_stale(cfg: ScoringConfig) -> None:
    # Given five email opens today (+5 each, cap 25), kept as one touch for the day
    state = opens(cfg, 5)
    assert state.rules["email_opened"].touches == [[T0.timestamp(), 25.0]]

    def email(days: float) -> float:
        return points(rules.score(cfg, state, T0 + timedelta(days=days))).get("email_opened", 0.0)

    # Then full value today and up to exactly stale_after_days (30)
    assert email(0) == 25
    assert email(30) == 25
    # And half after stale_after + half_life, a quarter after another half-life
    assert email(60) == 12.5
    assert email(90) == 6.25


def test_the_breakdown_shows_the_decay_arithmetic(cfg: ScoringConfig) -> None:
    # Given one email open two months ago
    state = opens(cfg, 1)

    # When scored 60 days later
    card = rules.score(cfg, state, T0 + timedelta(days=60))

    # Then the line explains the decayed value
    assert card.breakdown == [Hit("email_opened", "email", 2.5, "5.0 x 0.5^(30.0/30) = 2.5")]
    assert card.velocity == 0


def test_decay_factor(cfg: ScoringConfig) -> None:
    assert rules.decay_factor(cfg, "email", 0) == 1.0
    assert rules.decay_factor(cfg, "email", 30 * 86400) == 1.0
    assert rules.decay_factor(cfg, "email", 45 * 86400) == pytest.approx(0.5**0.5)
    assert rules.decay_factor(cfg, "email", 60 * 86400) == 0.5
    assert rules.decay_factor(cfg, "web", 10_000 * 86400) == 1.0


def test_the_cap_is_measured_against_the_decayed_value(cfg: ScoringConfig) -> None:
    # Given 25 points of opens (at the cap) that have decayed to 12.5
    state = opens(cfg, 5)
    later = T0 + timedelta(days=60)

    # When three more opens happen
    hits = apply_all(cfg, state, [event("track", "Email Opened", later) for _ in range(3)])

    # Then they earn up to the cap again: 5 + 5 + 2.5
    assert [h.points for h in hits] == [5, 5, 2.5]
    assert points(rules.score(cfg, state, later))["email_opened"] == 25


def test_breakdown_sums_exactly_to_the_score_with_decayed_fractions(cfg: ScoringConfig) -> None:
    # Given opens and clicks of different ages, scored at an odd moment
    state = ContactState(traits=dict(VP_TRAITS))
    for d in (0, 3, 11, 17):
        apply_all(cfg, state, [event("track", "Email Opened", T0 + timedelta(days=d, hours=d))])
        apply_all(cfg, state, [event("track", "Email Link Clicked", T0 + timedelta(days=d, hours=d + 1))])

    # When scored 47 days and some seconds later
    card = rules.score(cfg, state, T0 + timedelta(days=47, seconds=12345))

    # Then every line has 2 decimals and the lines add up to the score exactly
    assert all(round(h.points, 2) == h.points for h in card.breakdown)
    assert round(sum(h.points for h in card.breakdown), 2) == card.score
    assert card.fit + card.engagement == pytest.approx(card.score, abs=1e-9)
    assert 0 < card.engagement < 60


def test_next_decay_at(cfg: ScoringConfig) -> None:
    # Given an email open today and a pricing view (which never decays)
    state = opens(cfg, 1)
    rules.apply_event(cfg, state, page("/pricing"))

    # Then the next re-evaluation is when the open turns stale
    assert rules.next_decay_at(cfg, state, T0 + timedelta(days=1)) == T0 + timedelta(days=30)
    # Then, once stale, daily while it is still worth something
    now = T0 + timedelta(days=40)
    assert rules.next_decay_at(cfg, state, now) == now + timedelta(days=1)
    # And never once it has faded away
    assert rules.next_decay_at(cfg, state, T0 + timedelta(days=400)) is None
    # And never for a contact without decaying touches
    assert rules.next_decay_at(cfg, ContactState(), T0) is None


def test_faded_touches_are_dropped_as_new_ones_arrive(cfg: ScoringConfig) -> None:
    # Given an open a year ago (worth far less than a hundredth of a point now)
    state = opens(cfg, 1)

    # When a new open arrives
    rules.apply_event(cfg, state, event("track", "Email Opened", T0 + timedelta(days=400)))

    # Then only the new touch is kept
    assert [p for _, p in state.rules["email_opened"].touches] == [5]


# ----------------------------------------------------------------------- velocity


def test_velocity_counts_the_last_seven_days_before_decay(cfg: ScoringConfig) -> None:
    # Given a webinar 10 days ago, a demo click 3 days ago and an unsubscribe yesterday
    now = T0 + timedelta(days=10)
    state = ContactState()
    apply_all(
        cfg,
        state,
        [
            event("track", "Webinar Attended", T0),
            event("track", "Demo Link Clicked", now - timedelta(days=3)),
            event("track", "Unsubscribed", now - timedelta(days=1)),
        ],
    )

    # When scored
    card = rules.score(cfg, state, now)

    # Then velocity is 25 - 10; the webinar counts for the score only
    assert card.velocity == 15
    assert card.engagement == 35
    # And compacting before a write folds the webinar touch into the ledger's base
    rules.compact(cfg, state, now)
    assert state.rules["webinar_attended"].base == 20
    assert rules.score(cfg, state, now).engagement == 35
    assert state.rules["webinar_attended"].touches == []


# -------------------------------------------------------------------------- merge


def test_merge_states_counts_nothing_twice(cfg: ScoringConfig) -> None:
    # Given an anonymous visitor who viewed pricing, read case studies and opened emails
    anon = ContactState(traits={"title": "Engineer", "utm": "ads"})
    apply_all(
        cfg,
        anon,
        [
            page("/pricing", T0),
            event("track", "Case Study Downloaded", T0 + timedelta(minutes=1)),
            event("track", "Case Study Downloaded", T0 + timedelta(minutes=2)),
            *[event("track", "Email Opened", T0 + timedelta(minutes=3 + i)) for i in range(3)],
        ],
    )
    # And the known contact who did the same the same day
    known = ContactState(traits={"title": "VP Sales"})
    apply_all(
        cfg,
        known,
        [
            page("/pricing", T0 + timedelta(minutes=20)),
            event("track", "Case Study Downloaded", T0 + timedelta(minutes=21)),
            event("track", "Case Study Downloaded", T0 + timedelta(minutes=22)),
            *[event("track", "Email Opened", T0 + timedelta(minutes=23 + i)) for i in range(3)],
        ],
    )

    # When the anonymous contact is folded into the known one
    rules.merge_states(cfg, known, anon)
    card = rules.score(cfg, known, T0 + timedelta(hours=1))

    # Then caps and limits hold across both: pricing once that day, case studies capped
    # at 30, opens capped at 25; one visit that spanned both ids counts once
    assert points(card) == {
        "title_executive": 20,
        "pricing_page": 15,
        "case_study_downloaded": 30,
        "email_opened": 25,
    }
    assert known.visits == 1
    assert known.traits == {"title": "VP Sales", "utm": "ads"}
    assert known.rules["case_study_downloaded"].count == 3
    assert card.velocity == 70


def test_merge_states_adds_separate_visits_and_rebuckets(cfg: ScoringConfig) -> None:
    # Given 3 anonymous visits last week and 3 known visits today
    anon, known = ContactState(), ContactState()
    apply_all(cfg, anon, [page("/a", T0 - timedelta(days=7, hours=h)) for h in range(3)])
    apply_all(cfg, known, [page("/b", T0 + timedelta(hours=h)) for h in range(3)])

    # When merged
    rules.merge_states(cfg, known, anon)
    card = rules.score(cfg, known, T0 + timedelta(hours=3))

    # Then 6 visits: the 6+ bucket, once, and velocity agrees with the bucket
    assert known.visits == 6
    assert points(card)["site_visits"] == 6
    assert known.rules["site_visits"].total() == 6


def test_merge_into_an_empty_contact_copies(cfg: ScoringConfig) -> None:
    # Given an anonymous contact with engagement
    anon = ContactState()
    apply_all(cfg, anon, [event("track", "Webinar Attended")])
    known = ContactState()

    # When merged into a fresh contact, Then the score moves over unchanged and the source is untouched
    rules.merge_states(cfg, known, anon)
    rules.apply_event(cfg, known, event("track", "Webinar Attended", T0 + timedelta(hours=1)))
    assert rules.score(cfg, known, T0).engagement == 40
    assert rules.score(cfg, anon, T0).engagement == 20


# ----------------------------------------------------------------- serialisation


def test_state_round_trips_through_json(cfg: ScoringConfig) -> None:
    # Given a contact with traits, decaying and non-decaying ledgers, limits and visits
    state = ContactState()
    apply_all(
        cfg,
        state,
        [
            identify(**VP_TRAITS),
            page("/pricing", T0 + timedelta(seconds=0.123456)),
            page("/blog", T0 + timedelta(hours=2)),
            event("track", "Email Opened", T0 + timedelta(hours=3)),
            event("track", "Webinar Attended", T0 - timedelta(days=9)),
        ],
    )
    state.rules["odd"] = RuleLedger(base=1 / 3, touches=[[1.5, 2 / 3]], count=1, recent=[1.5])

    # When written and read back
    text = items.state_json(state)
    again = items.state_from_json(text)

    # Then it is the same state (floats at 4 decimals), compactly
    assert items.state_json(again) == text
    assert again.traits == state.traits
    assert again.visits == 2
    assert again.rules["odd"] == RuleLedger(base=0.3333, touches=[[1.5, 0.6667]], count=1, recent=[1.5])
    assert again.rules["pricing_page"] == state.rules["pricing_page"]
    assert rules.score(cfg, again, T0) == rules.score(cfg, state, T0)
    assert " " not in text.replace("VP Sales", "")
    assert set(json.loads(text)) == {"t", "r", "v", "p", "f"}


def test_empty_state_from_nothing() -> None:
    assert items.state_from_json(None) == ContactState()
    assert items.state_from_json("") == ContactState()
    assert items.state_json(ContactState()) == "{}"
    with pytest.raises(ValueError):
        items.state_from_json("[1]")


# ---------------------------------------------------------------------- lifecycle


@pytest.mark.parametrize(
    ("score", "label"),
    [(0, "subscriber"), (34.99, "subscriber"), (35, "mql"), (64.9, "mql"), (65, "sql"), (500, "sql")],
)
def test_lifecycle_labels(cfg: ScoringConfig, score: float, label: str) -> None:
    assert rules.lifecycle(cfg, score) == label
