"""The stream aggregation on the in-memory store and publisher: events fold into contacts,
contacts into accounts, state changes onto the bus; replays change nothing; conflicts retry.

Stream records carry images as the table would (built by the storage layer's mapping)."""

from __future__ import annotations

from datetime import UTC, datetime
from itertools import count
from typing import Any

import pytest
from leadscore.adapters import items
from leadscore.adapters.streams import aggregate_stream, change_of
from leadscore.domain.events import TrackingEvent
from leadscore.domain.records import Contact
from leadscore.rulesfiles.loading import Config, load_config
from leadscore.services.aggregate import AccountAggregator, Change, ContactAggregator, EventInserted

from tests.support.fakes import MemoryPublisher, MemoryStore

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
_sequence = count(10**20)
_ids = count()


@pytest.fixture(scope="module")
def config() -> Config:
    return load_config()


def event(contact_key: str, type_: str = "track", name: str | None = "Webinar Attended", **fields: Any
          ) -> TrackingEvent:
    return TrackingEvent(type=type_, message_id=f"m-{next(_ids)}", source_id="website",  # type: ignore[arg-type]
                         contact_key=contact_key, timestamp=NOW, received_at=NOW, event=name, **fields)


def _change(sequence: str, name: str, keys: tuple[str, str], new: dict[str, Any], old: dict[str, Any] | None
            ) -> Change:
    change = change_of(sequence, name, keys, new, old)
    assert change is not None
    return change


def event_record(e: TrackingEvent, hits: list[str]) -> Change:
    image = items.event_item(e, hits, 400)
    return _change(str(next(_sequence)), "INSERT", items.table_key(image), image, None)


def contact_record(new: Contact, old: Contact | None = None) -> Change:
    image = items.contact_item(new)
    return _change(str(next(_sequence)), "MODIFY" if old else "INSERT", items.table_key(image), image,
                   items.contact_item(old) if old else None)


class TestContacts:
    def test_events_fold_into_their_contact_and_a_replay_changes_nothing(self, config: Config) -> None:
        store = MemoryStore()
        records = [event_record(event("u:jo", user_id="jo"), ["webinar_attended"])]
        assert ContactAggregator(store, config, NOW).apply(records) == {}
        jo = store.contacts["u:jo"]
        assert jo.scores.engagement == 20 and jo.version == 1 and jo.user_id == "jo"
        assert ContactAggregator(store, config, NOW).apply(records) == {}
        assert store.calls["save_contact"] == 1  # the replay is below the watermark

    def test_an_identify_merges_the_anonymous_history_once(self, config: Config) -> None:
        store = MemoryStore()
        ContactAggregator(store, config, NOW).apply(
            [event_record(event("a:anon", anonymous_id="anon"), ["webinar_attended"])])
        identify = event("u:jo", "identify", None, user_id="jo", anonymous_id="anon", email="jo@acme.com",
                         traits={"title": "VP Sales"}, account_hint="acme.com")
        ContactAggregator(store, config, NOW).apply([event_record(identify, [])])
        jo, anon = store.contacts["u:jo"], store.contacts["a:anon"]
        assert jo.scores.engagement == 20 and jo.title == "VP Sales" and jo.account == "acme.com"
        assert anon.merged_into == "u:jo" and anon.scores.engagement is None
        assert store.calls["save_contacts"] == 1  # one transaction
        # a later anonymous event scores on the contact it joined
        ContactAggregator(store, config, NOW).apply(
            [event_record(event("a:anon", anonymous_id="anon", name="Demo Requested"), ["demo_requested"])])
        assert store.contacts["u:jo"].scores.engagement == 20 + 50

    def test_unsubscribing_from_everything_is_remembered(self, config: Config) -> None:
        store = MemoryStore()
        unsubscribed = event("u:jo", name="Unsubscribed", user_id="jo", properties={"all": True})
        ContactAggregator(store, config, NOW).apply([event_record(unsubscribed, ["unsubscribed"])])
        assert store.contacts["u:jo"].unsubscribed

    def test_a_poison_record_fails_alone(self, config: Config) -> None:
        store = MemoryStore()
        good = event_record(event("u:jo"), ["webinar_attended"])
        poison = _change("1", "INSERT", ("C#u:jo", "E#website#bad"), {"pk": "C#u:jo", "sk": "E#website#bad"}, None)
        assert isinstance(poison, EventInserted)
        aggregator = ContactAggregator(store, config, NOW)
        assert aggregator.apply([poison, good]) == {}
        assert aggregator.poison == ["1"] and store.contacts["u:jo"].scores.engagement == 20

    def test_a_lost_version_race_is_retried_on_a_fresh_read(self, config: Config) -> None:
        store = MemoryStore()
        ContactAggregator(store, config, NOW).apply([event_record(event("u:jo"), ["webinar_attended"])])
        raced = {"done": False}

        def another_lambda_writes() -> None:
            if not raced["done"]:
                raced["done"] = True
                store.contacts["u:jo"].version = 5

        store.before_write = another_lambda_writes
        failed = ContactAggregator(store, config, NOW).apply(
            [event_record(event("u:jo", name="Demo Requested"), ["demo_requested"])])
        assert failed == {} and store.contacts["u:jo"].version == 6
        assert store.contacts["u:jo"].scores.engagement == 70 and store.calls["load_contact"] == 1


class TestAccounts:
    def _contact(self, config: Config, key: str, account: str, points: float = 20) -> Contact:
        from leadscore.domain.ledgers import ContactState, RuleLedger
        from leadscore.engine.contacts import rescored

        state = ContactState(rules={"webinar_attended": RuleLedger(touches=[[NOW.timestamp(), points]], count=1)})
        return rescored(config.scoring, Contact(key=key, state=state, account=account, account_source="profile"),
                        NOW)

    def test_contacts_roll_up_with_one_write_per_account_and_a_replay_writes_nothing(self, config: Config) -> None:
        store = MemoryStore()
        records = [contact_record(self._contact(config, f"u:c{i}", "acme.com")) for i in range(3)]
        assert AccountAggregator(store, config, NOW).apply(records) == {}
        acme = store.accounts["acme.com"]
        assert [e.key for e in acme.entries] == ["u:c0", "u:c1", "u:c2"] and acme.engagement == 30
        assert acme.state == "below_threshold" and store.calls["save_account"] == 1
        AccountAggregator(store, config, NOW).apply(records)
        assert store.calls["save_account"] == 1

    def test_a_contact_that_moves_leaves_its_old_account(self, config: Config) -> None:
        store = MemoryStore()
        before = self._contact(config, "u:jo", "old.com")
        AccountAggregator(store, config, NOW).apply([contact_record(before)])
        moved = self._contact(config, "u:jo", "new.com")
        moved.version = 2
        AccountAggregator(store, config, NOW).apply([contact_record(moved, before)])
        assert store.accounts["old.com"].entries == [] and store.accounts["old.com"].engagement == 0
        assert [e.key for e in store.accounts["new.com"].entries] == ["u:jo"]


class TestBatch:
    def test_state_changes_go_on_the_bus_once_per_account(self, config: Config) -> None:
        # Given an account written twice in one stream batch (two account records)
        store, bus = MemoryStore(), MemoryPublisher()
        records = [contact_record(TestAccounts()._contact(config, f"u:c{i}", "acme.com")) for i in range(2)]
        AccountAggregator(store, config, NOW).apply(records[:1])
        once = items.account_item(store.accounts["acme.com"])
        AccountAggregator(store, config, NOW).apply(records[1:])
        twice = items.account_item(store.accounts["acme.com"])
        keys = _marshal(items.table_key(once))
        stream = [{"eventName": "INSERT", "dynamodb": {"SequenceNumber": "7", "Keys": keys,
                                                      "NewImage": _marshal_item(once)}},
                  {"eventName": "MODIFY", "dynamodb": {"SequenceNumber": "8", "Keys": keys,
                                                      "NewImage": _marshal_item(twice),
                                                      "OldImage": _marshal_item(once)}}]
        # When the batch is aggregated
        outcome = aggregate_stream(stream, store=store, config=config, publisher=bus, now=NOW)
        # Then one coalesced score change goes out, from the score before the batch
        assert outcome.failed == []
        assert [t for t, _ in bus.events] == ["Account Score Changed"]
        detail = bus.events[0][1]
        assert detail["accountId"] == "acme.com" and detail["engagement"] == 20 and detail["previousScore"] == 0

    def test_a_bus_failure_reports_the_account_records(self, config: Config) -> None:
        store = MemoryStore()
        account = TestAccounts()._contact(config, "u:c0", "acme.com")
        AccountAggregator(store, config, NOW).apply([contact_record(account)])
        image = items.account_item(store.accounts["acme.com"])
        stream = [{"eventName": "INSERT", "dynamodb": {"SequenceNumber": "9", "Keys": _marshal(items.table_key(image)),
                                                      "NewImage": _marshal_item(image)}}]
        outcome = aggregate_stream(stream, store=store, config=config, publisher=MemoryPublisher(fail=True), now=NOW)
        assert outcome.failed == ["9"] and outcome.poison == []



class TestRoutedOutbox:
    """The routing transaction is the outbox: the stream's account change to `routed` (or to
    an SLA re-route's next attempt) is what sends the routed message, once per change."""

    def _routed_stream(self, config: Config, *, attempt: int = 1, old_attempt: int | None = None
                       ) -> list[dict[str, Any]]:
        from dataclasses import replace

        from leadscore.domain.records import RoutingStatus

        store = MemoryStore()
        AccountAggregator(store, config, NOW).apply([contact_record(TestAccounts()._contact(config, "u:c0",
                                                                                         "acme.com"))])
        ready = replace(store.accounts["acme.com"], state="sdr_ready", cycle=1)

        def routed(at: int) -> Any:
            return replace(ready, state="routed", sdr={"id": f"sdr{at}", "name": f"SDR {at}", "email": None},
                           routing=RoutingStatus(pool="team", territory="na", mode="territory",
                                                 routed_at="2026-11-25T12:00:00Z", sla_due_at="2026-11-27T12:00:00Z",
                                                 attempt=at, tried=[f"sdr{i}" for i in range(1, at + 1)]))

        old = items.account_item(ready if old_attempt is None else routed(old_attempt))
        new = items.account_item(routed(attempt))
        return [{"eventName": "MODIFY", "dynamodb": {"SequenceNumber": "11", "Keys": _marshal(items.table_key(new)),
                                                    "NewImage": _marshal_item(new), "OldImage": _marshal_item(old)}}]

    def test_an_account_becoming_routed_sends_one_message_and_one_bus_event(self, config: Config) -> None:
        from tests.support.fakes import MemoryQueue

        queue, bus = MemoryQueue(), MemoryPublisher()
        outcome = aggregate_stream(self._routed_stream(config), store=MemoryStore(), config=config, publisher=bus,
                                  now=NOW, routed_queue=queue)
        assert outcome.failed == []
        (message,) = queue.messages
        assert (message.group_id, message.deduplication_id) == ("sdr1", "acme.com#1")
        body = message.body
        assert body["schema"] == "account-routed/v1" and body["sdr"]["id"] == "sdr1"
        assert (body["routedAt"], body["slaDueAt"], body["territory"]) == (
            "2026-11-25T12:00:00Z", "2026-11-27T12:00:00Z", "na")
        assert body["reasons"] and round(sum(r["points"] for r in body["reasons"]), 2) == body["score"]
        assert [t for t, _ in bus.events] == ["Account Routed"]

    def test_an_sla_reroute_sends_the_next_attempt_and_a_rewrite_sends_nothing(self, config: Config) -> None:
        from tests.support.fakes import MemoryQueue

        queue = MemoryQueue()
        aggregate_stream(self._routed_stream(config, attempt=2, old_attempt=1), store=MemoryStore(), config=config,
                        publisher=MemoryPublisher(), now=NOW, routed_queue=queue)
        assert [(m.group_id, m.deduplication_id) for m in queue.messages] == [("sdr2", "acme.com#1#2")]
        aggregate_stream(self._routed_stream(config, attempt=2, old_attempt=2), store=MemoryStore(), config=config,
                        publisher=MemoryPublisher(), now=NOW, routed_queue=queue)
        assert queue.sends == 1

    def test_a_failed_send_reports_the_account_record_and_the_retry_sends_once(self, config: Config) -> None:
        from leadscore.services.outbox import SEND_TRIES

        from tests.support.fakes import MemoryQueue

        # every try of the invocation fails, and there is no parked queue to put it on
        queue, stream = MemoryQueue(fail=SEND_TRIES), self._routed_stream(config)
        first = aggregate_stream(stream, store=MemoryStore(), config=config, publisher=MemoryPublisher(), now=NOW,
                                routed_queue=queue)
        assert first.failed == ["11"] and first.poison == [] and queue.messages == []
        again = aggregate_stream(stream, store=MemoryStore(), config=config, publisher=MemoryPublisher(), now=NOW,
                                routed_queue=queue)
        assert again.failed == [] and len(queue.messages) == 1
        # a third delivery (a crash after the send) is dropped by the FIFO deduplication id
        aggregate_stream(stream, store=MemoryStore(), config=config, publisher=MemoryPublisher(), now=NOW,
                        routed_queue=queue)
        assert queue.sends == SEND_TRIES + 2 and len(queue.messages) == 1

    def test_without_a_routed_queue_the_record_fails_rather_than_dropping_the_message(self, config: Config) -> None:
        outcome = aggregate_stream(self._routed_stream(config), store=MemoryStore(), config=config,
                                  publisher=MemoryPublisher(), now=NOW)
        assert outcome.failed == ["11"]

def _marshal(keys: tuple[str, str]) -> dict[str, Any]:
    from leadscore.adapters.storage import marshal

    return marshal(items.key_item(*keys))


def _marshal_item(image: dict[str, Any]) -> dict[str, Any]:
    from leadscore.adapters.storage import marshal

    return marshal(image)
