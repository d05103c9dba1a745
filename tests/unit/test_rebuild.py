"""The rebuild (services/rebuild.py) on the in-memory store: a contact rebuilt from its stored
events equals the live one, over generated journeys (anonymous browsing, identify and form
merges, decaying email touches, caps, batches of any size); stream batches replayed after newer
ones, in any order, end where no failure ends; a rebuild as of a moment counts only what had
arrived by then."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from leadscore.adapters import items
from leadscore.adapters.streams import change_of
from leadscore.domain.events import TrackingEvent
from leadscore.domain.records import Contact
from leadscore.engine.rules import matching_rules, score
from leadscore.rulesfiles.loading import Config, load_config
from leadscore.services.changes import Change
from leadscore.services.contact_fold import ContactAggregator
from leadscore.services.rebuild import Rebuilder, gather, replay, root_contact

from tests.support.fakes import MemoryStore

START = datetime(2026, 9, 1, 9, 0, tzinfo=UTC)
CONFIG = load_config()
TRACKS = ["Demo Link Clicked", "Email Opened", "Email Link Clicked", "Webinar Attended", "Case Study Downloaded",
          "Unsubscribed", "Support Ticket Created", "Feature Used"]
PAGES = ["/pricing", "/careers", "/blog/x", "/docs"]
#: the ids a person is known by: anonymous in the browser, an email from a form, a userId from the app
IDS = {"anon": {"anonymous_id": "anon-1"}, "email": {"email": "jo@acmetech.io"}, "user": {"user_id": "jo"}}


def _key(ids: dict[str, Any]) -> str:
    if ids.get("user_id"):
        return f"u:{ids['user_id']}"
    if ids.get("email"):
        return f"e:{ids['email']}"
    return f"a:{ids['anonymous_id']}"


def _event(n: int, at: datetime, kind: str, who: str, what: str | None) -> TrackingEvent:
    ids = dict(IDS[who])
    fields: dict[str, Any] = {}
    if kind == "identify":
        # an identify links what it knows: the app's (userId + anonymousId + email), a form's (email + anonymousId)
        ids = {"user_id": "jo", "anonymous_id": "anon-1", "email": "jo@acmetech.io"} if who == "user" else \
            {"email": "jo@acmetech.io", "anonymous_id": "anon-1"}
        fields = {"traits": {"title": "VP Sales", "company": {"name": "Acme Tech", "industry": "Software",
                                                              "employee_count": 200}},
                  "account_hint": "acmetech.io"}
    elif kind == "page":
        fields = {"path": what, "url": f"https://acmetech.io{what}"}
    event = TrackingEvent(type=kind, message_id=f"m{n}", source_id="website", contact_key=_key(ids),  # type: ignore[arg-type]
                          timestamp=at, received_at=at, event=what if kind == "track" else None, **ids, **fields)
    return event


step = st.tuples(
    st.floats(min_value=0.001, max_value=96),  # hours since the step before
    st.sampled_from(["track", "track", "page", "identify"]),
    st.sampled_from(sorted(IDS)),
    st.integers(min_value=0, max_value=20),
    st.booleans(),  # in the same stream batch as the step before
)


def _journey(steps: list[tuple[float, str, str, int, bool]]) -> list[list[TrackingEvent]]:
    batches: list[list[TrackingEvent]] = []
    at = START
    for n, (hours, kind, who, pick, joined) in enumerate(steps):
        joined = joined and bool(batches)
        # what the table keeps: milliseconds; a stream batch holds what was written within a second or so
        at += timedelta(milliseconds=round(hours * 10) if joined else round(hours * 3_600_000))
        what = TRACKS[pick % len(TRACKS)] if kind == "track" else PAGES[pick % len(PAGES)] if kind == "page" else None
        event = _event(n, at, kind, who, what)
        if joined:
            batches[-1].append(event)
        else:
            batches.append([event])
    return batches


_sequence = iter(range(10**20, 10**21))


def _records(store: MemoryStore, batch: list[TrackingEvent]) -> list[Change]:
    records: list[Change] = []
    for event in batch:
        hits = matching_rules(CONFIG.scoring, event)
        store.put_event(event, hits, 400)
        image = items.event_item(event, hits, 400)
        change = change_of(str(next(_sequence)), "INSERT", items.table_key(image), image, None)
        assert change is not None
        records.append(change)
    return records


def _fold(store: MemoryStore, records: list[Change], now: datetime, config: Config = CONFIG) -> None:
    rebuilder = Rebuilder(store, config, now, retention_days=400)
    assert ContactAggregator(store, config, now, on_replay=rebuilder.on_replay).apply(records) == {}


def _person(store: MemoryStore) -> Contact:
    """The contact the person ended up as (whichever id they were last known by)."""
    for key in ("u:jo", "e:jo@acmetech.io", "a:anon-1"):
        contact = store.contacts.get(key)
        if contact is not None and not contact.merged_into:
            return contact
    raise AssertionError("no live contact")


def _values(contact: Contact, at: datetime) -> tuple[Any, ...]:
    card = score(CONFIG.scoring, contact.engine_state, at)
    return (card.fit, card.engagement, card.score, card.velocity, card.lifecycle,
            sorted((h.rule, h.points, h.detail) for h in card.breakdown),
            contact.user_id, contact.email, contact.title, contact.account, contact.unsubscribed)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(step, min_size=1, max_size=25))
def test_the_live_contact_equals_its_rebuild_from_stored_events(steps: list[Any]) -> None:
    store = MemoryStore()
    batches = _journey(steps)
    for batch in batches:
        _fold(store, _records(store, batch), batch[-1].received_at)
    live = _person(store)
    end = batches[-1][-1].received_at
    person = gather(store, live.key)
    rebuilt = root_contact(person, replay(CONFIG, person))
    assert rebuilt is not None and rebuilt.key == live.key
    for later in (timedelta(0), timedelta(days=9), timedelta(days=60)):  # email touches decay meanwhile
        assert _values(rebuilt, end + later) == _values(live, end + later)


@pytest.mark.parametrize("seed", range(6))
def test_batches_replayed_after_newer_ones_in_any_order_end_as_without_failure(seed: int) -> None:
    rng = random.Random(seed)
    steps = [(rng.uniform(0.5, 30), rng.choice(["track", "track", "page", "identify"]), rng.choice(sorted(IDS)),
              rng.randrange(20), False) for _ in range(14)]
    batches = _journey(steps)
    # without failures
    clean = MemoryStore()
    for batch in batches:
        _fold(clean, _records(clean, batch), batch[-1].received_at)
    # with some batches given up on (their events stored, never folded), replayed at the end, shuffled
    faulty = MemoryStore()
    failed: list[tuple[list[Change], datetime]] = []
    for n, batch in enumerate(batches):
        records = _records(faulty, batch)
        if n % 3 == 1:
            failed.append((records, batch[-1].received_at))
        else:
            _fold(faulty, records, batch[-1].received_at)
    end = batches[-1][-1].received_at
    rng.shuffle(failed)
    for records, _ in failed:
        _fold(faulty, records, end + timedelta(hours=1))
    # and the whole stream delivered once more, for good measure (a retry after a timeout)
    for batch in batches:
        _fold(faulty, [r for r in _records(MemoryStore(), batch)], end + timedelta(hours=2))
    for later in (timedelta(hours=2), timedelta(days=30)):
        assert _values(_person(faulty), end + later) == _values(_person(clean), end + later)


def _webinar_then_demo_link(days_between: float) -> tuple[MemoryStore, TrackingEvent]:
    """Jo's webinar, then a demo link click `days_between` later, each folded as it arrived;
    the store and the click."""
    store = MemoryStore()
    first = _event(1, START, "track", "user", "Webinar Attended")
    second = _event(2, START + timedelta(days=days_between), "track", "user", "Demo Link Clicked")
    for event in (first, second):
        _fold(store, _records(store, [event]), event.received_at)
    return store, second


def test_a_rebuild_as_of_a_moment_counts_only_what_had_arrived_by_then() -> None:
    store, _ = _webinar_then_demo_link(2)
    person = gather(store, "u:jo")
    before_any = root_contact(person, replay(CONFIG, person, until=START - timedelta(seconds=1)))
    assert before_any is None  # nothing had happened yet
    between = root_contact(person, replay(CONFIG, person, until=START + timedelta(days=1)))
    assert between is not None
    assert score(CONFIG.scoring, between.engine_state, START + timedelta(days=1)).engagement == 20
    assert score(CONFIG.scoring, _person(store).engine_state, START + timedelta(days=1)).engagement == 45, \
        "today's ledger valued at that moment counts the later event: the reason for a rebuild"


def test_a_contact_older_than_the_retention_is_not_rebuilt_from_what_is_left() -> None:
    store, newer = _webinar_then_demo_link(500)
    del store.events[("u:jo", "website", "m1")]  # expired (TTL)
    kept = _person(store)
    # the newer batch delivered again: a rebuild would drop the expired event's points
    _fold(store, _records(MemoryStore(), [newer]), newer.received_at + timedelta(hours=1))
    assert replace(_person(store), version=kept.version) == kept
    assert score(CONFIG.scoring, _person(store).engine_state, newer.received_at).engagement == 45
