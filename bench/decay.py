"""The decay job at two table sizes with the same number of contacts due.

Contacts are written straight into the table in the aggregator's own item format (built
by `ContactAggregator` itself, so the item is exactly what the stream would have written),
with an uncounted client: seeding 100,000 contacts through the pipeline would take long
and measure nothing. A third of the decaying contacts are due now; the rest of the table
is contacts whose touches never decay (not in the sparse index) or are not due yet.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from bench.pipeline import START
from bench.stack import CONFIG_DIR, metered_stack


@dataclass
class DecayFigures:
    table_contacts: int
    due: int
    written: int
    items_read: int
    rcu: float
    requests: int
    scans: int

    @property
    def items_read_per_due(self) -> float:
        return self.items_read / self.due if self.due else float("nan")


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


def seed_contacts(client: Any, table: str, contacts: int, due: int, now: Any) -> None:
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
    requests = []
    for i in range(contacts):
        kind = "due" if i < due else "later" if i < 3 * due else "never"
        key = f"u:d{i}"
        contact = replace(templates[kind], key=key, user_id=f"d{i}")
        requests.append({"PutRequest": {"Item": marshal(contact_item(contact))}})
        if len(requests) == 25:
            client.batch_write_item(RequestItems={table: requests})
            requests = []
    if requests:
        client.batch_write_item(RequestItems={table: requests})


def run_decay(contacts: int, due: int) -> DecayFigures:
    now = START + timedelta(days=60)
    with metered_stack() as bench:
        bench.set_clock(now)
        seed_contacts(bench.meter.shadow, bench.table, contacts, due, now)
        with bench.meter.measuring("decay"):
            result = bench.stack.run_schedule("DecayFunction", now)
        counts = bench.meter.totals("decay", "DecayFunction")
    return DecayFigures(table_contacts=contacts, due=int(result["due"]), written=int(result["written"]),
                        items_read=int(counts["items_read"]) + int(counts["ddb:GetItem"]),
                        rcu=float(counts["rcu"]), requests=int(counts["ddb_requests"]), scans=int(counts["ddb:Scan"]))
