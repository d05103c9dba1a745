"""The collector on the in-memory store: each event stored once with the rules it matched,
bad input recorded, never stored as an event."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from leadscore.rulesfiles.loading import Config, load_config
from leadscore.services.collect import MAX_REJECTION_RECORDS, Collector

from tests.support.fakes import MemoryStore

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"


@pytest.fixture(scope="module")
def config() -> Config:
    return load_config()


def _collector(config: Config) -> tuple[Collector, MemoryStore]:
    store = MemoryStore()
    return Collector(store, config, retention_days=30), store


def test_an_event_is_stored_once_with_the_rules_it_matched(config: Config) -> None:
    collector, store = _collector(config)
    message = {"type": "track", "userId": "u-1", "event": "Webinar Attended", "messageId": "m-1"}
    first = collector.collect([message], source_id="website", received_at=NOW)
    again = collector.collect([message], source_id="website", received_at=NOW)
    assert (first.accepted, first.duplicates) == (1, 0)
    assert (again.accepted, again.duplicates) == (0, 1)
    (stored,) = store.events.values()
    assert stored.event.contact_key == "u:u-1" and stored.hits == ["webinar_attended"]


def test_a_batch_stores_each_good_event_and_records_the_bad_ones(config: Config) -> None:
    collector, store = _collector(config)
    good = [{"type": "track", "userId": f"u-{i}", "event": "Webinar Attended", "messageId": f"m-{i}"}
            for i in range(20)]
    bad = [{"type": "track", "event": "No One", "messageId": f"bad-{i}"} for i in range(15)]
    result = collector.collect(good + bad, source_id="website", received_at=NOW, indexed=True)
    assert result.accepted == 20 and len(store.events) == 20
    assert len(result.rejected) == 15 and result.rejected[0].index == 20
    # ten records one by one, the rest in one summary record
    assert len(store.rejected) == MAX_REJECTION_RECORDS + 1


def test_all_or_nothing_stores_none_when_one_is_bad(config: Config) -> None:
    collector, store = _collector(config)
    messages = [{"type": "identify", "userId": "u-1", "traits": {"email": "jo@acme.com"}},
                {"type": "track", "event": "Form Submitted"}]
    result = collector.collect(messages, source_id="website", received_at=NOW, all_or_nothing=True)
    assert result.accepted == 0 and store.events == {} and len(store.rejected) == 1


def test_bots_are_recorded_with_the_reason_never_scored(config: Config) -> None:
    collector, store = _collector(config)
    result = collector.collect([{"type": "page", "userId": "u-b", "properties": {"url": "https://x.com/pricing"}}],
                               source_id="website", received_at=NOW, user_agent=GOOGLEBOT)
    assert (result.bots, result.accepted, result.rejected, result.bot_matches) == (1, 0, [], ["Googlebot"])
    assert store.events == {}
    (record,) = store.rejected
    assert record.reason == f'bot user agent: crawlerdetect matched "Googlebot" in "{GOOGLEBOT}"'


def _group(owner: object, message_id: str) -> dict[str, object]:
    return {"type": "group", "userId": "u-crm", "groupId": "acme.com", "messageId": message_id,
            "traits": {"name": "Acme", "website": "acme.com", "owner": owner}}


def test_only_a_trusted_source_may_name_the_crm_owner(config: Config) -> None:
    # Given the CRM sync (trusted: true) and the website (a browser source) sending a group
    # call naming an owner
    collector, store = _collector(config)
    collector.collect([_group("ben", "g-crm")], source_id="crm-sync", received_at=NOW)
    collector.collect([_group("mallory@example.com", "g-web")], source_id="website", received_at=NOW)
    collector.collect([_group("ben", "g-bus")], source_id="bus:com.example.crm", received_at=NOW)
    stored = {s.event.message_id: s.event.traits for s in store.events.values()}

    # Then the trusted one keeps it; the others are stored without it (their other traits kept)
    assert stored["g-crm"]["owner"] == "ben"
    assert stored["g-web"] == {"name": "Acme", "website": "acme.com"}
    assert "owner" not in stored["g-bus"]


def test_an_untrusted_source_cannot_clear_the_crm_owner_either(config: Config) -> None:
    collector, store = _collector(config)
    collector.collect([_group(None, "g-null")], source_id="product", received_at=NOW)
    (stored,) = store.events.values()
    assert "owner" not in stored.event.traits
    # an identify's own `owner` trait is the contact's, never the account's: left as sent
    collector.collect([{"type": "identify", "userId": "u-1", "traits": {"owner": "x"}, "messageId": "i-1"}],
                      source_id="website", received_at=NOW)
    assert any(s.event.traits.get("owner") == "x" for s in store.events.values())
