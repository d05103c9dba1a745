"""The decay job at two table sizes with the same number of contacts due.

Contacts are put straight into the table in the aggregator's own item format (built by
`ContactAggregator` itself, so the item is exactly what the stream would have written), not
through the functions: seeding 100,000 contacts through the pipeline would take long and
measure nothing. `preload_contacts` hands them to moto's table directly (no request, no
stream record): a batch write of 100,000 items through botocore takes some 70 s here, almost
all of it moto building and size-checking each item, where the pass itself takes a second.
A third of the decaying contacts are due now; the rest of the table is contacts whose
touches never decay (not in the sparse index) or are not due yet.

Per contact due, the pass's reads (items, read units), writes (write units, the DueIndex
entry included) and own CPU time are compared between the two sizes: the work per item due
must not grow with the table.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from bench.pipeline import START
from bench.stack import CONFIG_DIR, Bench, metered_stack


@dataclass
class DecayFigures:
    table_contacts: int
    due: int
    written: int
    items_read: int
    rcu: float
    requests: int
    scans: int
    wcu: float = 0.0  # DueIndex entries included
    cpu_ms: float = 0.0  # the pass's own CPU (AWS calls and the emulator left out)
    seed_s: float = 0.0  # seconds to put the table in place (not measured work)

    @property
    def items_read_per_due(self) -> float:
        return self.items_read / self.due if self.due else float("nan")

    def per_due(self, value: float) -> float:
        return value / self.due if self.due else float("nan")


def _contact(aggregator: Any, key: str, event_name: str, at: Any) -> Any:
    from leadscore.domain.events import TrackingEvent

    event = TrackingEvent(type="track", message_id=f"m-{key}", source_id="email", contact_key=key,
                          timestamp=at, received_at=at, event=event_name, user_id=key[2:],
                          email=f"{key[2:]}@acct{hash(key) % 1000}.io", account_hint=f"acct{hash(key) % 1000}.io")
    update = aggregator._load(key, None)
    from leadscore.engine.contacts import remember_identity, rescored
    from leadscore.engine.rules import matching_rules

    aggregator._fold(update, [(event, matching_rules(aggregator.config.scoring, event))])
    remember_identity(update.contact, event)
    update.contact.watermark = "0" * 40
    return rescored(aggregator.config.scoring, update.contact, aggregator.now)


def contact_items(contacts: int, due: int, now: datetime) -> Any:
    """(kind, marshalled item) of each contact: `due` due now, twice as many due later (in the
    index), the rest never decaying. A generator: 100,000 items are never all in memory twice."""
    from dataclasses import replace

    from leadscore.adapters.items import contact_item
    from leadscore.adapters.storage import marshal
    from leadscore.rulesfiles.loading import load_config
    from leadscore.services.aggregate import ContactAggregator

    config = load_config(CONFIG_DIR)
    templates = {}
    stale_touch = now - timedelta(days=40)  # stale 10 days ago: due
    fresh_touch = now - timedelta(days=5)  # stale in 25 days: in the index, not due
    for kind, name, at in (("due", "Email Opened", stale_touch), ("later", "Email Opened", fresh_touch),
                           ("never", "Webinar Attended", now - timedelta(days=3))):
        aggregator = ContactAggregator(store=None, config=config, now=at)  # type: ignore[arg-type]
        templates[kind] = _contact(aggregator, "u:template", name, at)
    for i in range(contacts):
        kind = "due" if i < due else "later" if i < 3 * due else "never"
        contact = replace(templates[kind], key=f"u:d{i}", user_id=f"d{i}")
        yield kind, marshal(contact_item(contact))


def seed_contacts(client: Any, table: str, contacts: int, due: int, now: Any) -> None:
    """The same contacts through BatchWriteItem (25 a request): the slow, ordinary path."""
    requests = []
    for _, item in contact_items(contacts, due, now):
        requests.append({"PutRequest": {"Item": item}})
        if len(requests) == 25:
            client.batch_write_item(RequestItems={table: requests})
            requests = []
    if requests:
        client.batch_write_item(RequestItems={table: requests})


def moto_table(bench: Bench) -> Any:
    """moto's own model of the stack's table."""
    from moto.dynamodb.models import dynamodb_backends

    region = bench.meter.shadow.meta.region_name
    return dynamodb_backends[bench.stack.account_id][region].get_table(bench.table)


def preload_contacts(bench: Bench, contacts: int, due: int, now: datetime) -> None:
    """The contacts of `contact_items`, put into moto's table as its PutItem would store them,
    without a request or a stream record. moto builds an item attribute by attribute, summing
    the item's size at each one; here each kind's item is built once and every contact shares
    its attributes but those that differ (key, ids). The contacts due, which the pass rewrites,
    get copies of their own, so a write of one never touches another."""
    from moto.dynamodb.models.dynamo_type import DynamoType, Item, LimitedSizeDict

    table = moto_table(bench)
    hash_name, range_name = table.hash_key_attr, table.range_key_attr
    built: dict[str, tuple[dict[str, Any], Item]] = {}
    for kind, attrs in contact_items(contacts, due, now):
        if kind not in built:
            built[kind] = (attrs, Item(DynamoType(attrs[hash_name]), DynamoType(attrs[range_name]), attrs))
        marshalled, template = built[kind]
        source = copy.deepcopy(template) if kind == "due" else template
        item = cast(Item, Item.__new__(Item))
        item.hash_key, item.range_key = DynamoType(attrs[hash_name]), DynamoType(attrs[range_name])
        item.attrs = LimitedSizeDict.__new__(LimitedSizeDict)
        dict.update(item.attrs, source.attrs)  # no size check per attribute: the template passed it
        for name, value in attrs.items():
            if marshalled.get(name) != value:
                dict.__setitem__(item.attrs, name, DynamoType(value))
        table.items[item.hash_key][item.range_key] = item


def run_decay(contacts: int, due: int) -> DecayFigures:
    import time

    now = START + timedelta(days=60)
    with metered_stack() as bench:
        bench.set_clock(now)
        started = time.perf_counter()
        preload_contacts(bench, contacts, due, now)
        seeded = time.perf_counter() - started
        with bench.meter.measuring("decay"):
            result = bench.stack.run_schedule("DecayFunction", now)
        counts = bench.meter.totals("decay", "DecayFunction")
        cpu = sum(i.own_cpu for i in bench.meter.of("decay", "DecayFunction"))
    return DecayFigures(table_contacts=contacts, due=int(result["due"]), written=int(result["written"]),
                        items_read=int(counts["items_read"]) + int(counts["ddb:GetItem"]),
                        rcu=float(counts["rcu"]), requests=int(counts["ddb_requests"]), scans=int(counts["ddb:Scan"]),
                        wcu=float(counts["wcu"]), cpu_ms=1000 * cpu, seed_s=round(seeded, 1))


