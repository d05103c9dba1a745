"""The table read whole, for previews and calibration: a Scan, page by page, kept in memory
as a read-only store (ports.RebuildStore) the rebuild reads persons from, with no request more.

`scan` reads the whole table in one process; adapters/shards.py reads it in parallel Scan
segments and builds one snapshot per shard of whole partitions (the way past one process).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from leadscore.adapters import items
from leadscore.adapters.table import Table, unmarshal
from leadscore.domain.records import Account, Contact, PoisonRecord, StoredEvent, VersionConflict
from leadscore.services.rebuild import Person, gather

if TYPE_CHECKING:
    from leadscore.services.ports import RebuildStore


class TableSnapshot:
    """Every contact, event and account of a table as read by one Scan (read-only)."""

    def __init__(self, found: Iterable[dict[str, Any]]) -> None:
        self.contacts: dict[str, Contact] = {}
        self.events: dict[str, list[StoredEvent]] = defaultdict(list)
        self.accounts: dict[str, Account] = {}
        self.items = 0
        for item in found:
            self.items += 1
            key = items.table_key(item)
            if items.is_event_key(key):
                try:
                    self.events[items.contact_key_of(key[0])].append(items.decode_event(item))
                except PoisonRecord:
                    continue  # the stream fold never applied it either
            elif items.is_contact_key(key):
                contact = items.contact_from_item(item)
                self.contacts[contact.key] = contact
            elif items.is_account_key(key):
                account = items.account_from_item(item)
                self.accounts[account.id] = account

    # ports.RebuildStore, read-only
    def load_contact(self, key: str) -> Contact | None:
        return self.contacts.get(key)

    def load_contacts(self, keys: Iterable[str]) -> dict[str, Contact]:
        return {key: self.contacts[key] for key in dict.fromkeys(keys) if key in self.contacts}

    def load_events(self, contact_key: str) -> list[StoredEvent]:
        return list(self.events.get(contact_key, ()))

    def save_contact(self, contact: Contact, expected_version: int | None) -> None:
        raise VersionConflict("a snapshot is read-only")

    def save_contacts(self, writes: Sequence[tuple[Contact, int | None]]) -> None:
        raise VersionConflict("a snapshot is read-only")

    def persons(self, store: RebuildStore | None = None) -> Iterator[Person]:
        """Each person once: from every contact not merged into another (and every id with
        events but no contact yet), with the ids merged into it; read through `store` when
        given (a shard's view, which reads ids of other shards from the table)."""
        seen: set[str] = set()
        roots = [key for key, contact in self.contacts.items() if not contact.merged_into]
        roots += [key for key in self.events if key not in self.contacts]
        for key in roots:
            if key in seen:
                continue
            person = gather(store or self, key)
            if person.root in seen:
                continue
            seen.update(person.stored)
            seen.add(person.root)
            yield person


def scan(table: Table, *, page_size: int = 1000) -> Iterator[dict[str, Any]]:
    """Every item of the table, Scan page after page (consistent reads: a preview must see
    what was written just before it)."""
    request: dict[str, Any] = {"TableName": table.name, "ConsistentRead": True, "Limit": page_size}
    while True:
        answer = table.client.scan(**request)
        for raw in answer.get("Items", []):
            yield unmarshal(raw)
        if "LastEvaluatedKey" not in answer:
            return
        request["ExclusiveStartKey"] = answer["LastEvaluatedKey"]
