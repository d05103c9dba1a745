"""The repositories of the single table: what the services' ports (services/ports.py) ask of
DynamoDB, as requests, conditional writes and their cost.

One repository per item family (events, contacts, accounts, routing, feedback, SDRs), all on
one `table.Table` (generic reads, versioned writes, update expressions, query pages);
`items.py` gives the attribute names, the key layout and the stored JSON. The services hand
in and get back the records of domain/records.py. `Store` is every repository on one table:
what `runtime.store()` hands the handlers.

Single table, string keys `pk` / `sk` (see docs/DESIGN.md):

    event     C#<contactKey>        E#<sourceId>#<messageId>   1 conditional PutItem, 1 WCU (< 1 KB)
    contact   C#<contactKey>        P                          read with the batch, 1 conditional write
    account   A#<accountId>         P                          1 read + 1 conditional write per batch
    rejected  R#<yyyy-mm-dd>#<0-9>  <iso time>#<uuid>          1 PutItem, kept `ttl` days
    assignment A#<accountId>        RT#<cycle>                 written once per cycle, in the routing transaction
    pool counter POOL#<poolId>      RR                         stepped in the routing transaction
    SDR day   SDR#<sdrId>           D#<yyyy-mm-dd>             counted in the routing transaction, TTL
    feedback  A#<accountId>         FB#<seq>                   written with the account, in one transaction

Events and their contact share a partition key so that DynamoDB Streams delivers every
record of one contact on one shard, in write order, and so that a contact's events are one
Query away: a stream record at or below the contact's `seq` watermark rebuilds it from them
(services/rebuild.py). An account's history items share its partition (`H#` sort keys).

The client is created on first use (no AWS call at import) and may be injected.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from leadscore.adapters import items
from leadscore.adapters.items import (
    PROFILE,
    Item,
    account_from_item,
    account_item,
    account_pk,
    assignment_fields,
    assignment_from_item,
    assignment_item,
    assignment_key,
    book_cursor,
    book_start,
    contact_from_item,
    contact_item,
    contact_pk,
    counter_value,
    decode_event,
    event_item,
    event_sk,
    feedback_from_item,
    feedback_item,
    pool_counter_key,
    pool_day_attribute,
    pool_day_counts,
    pool_pause_attribute,
    pool_pause_value,
    pool_pauses,
    rejected_item,
    sdr_activity_item,
    sdr_activity_since,
    sdr_day_count,
    sdr_day_expiry,
    sdr_day_key,
    sdr_pause_fields,
    sdr_record_from_item,
    sdr_record_key,
    storable_text,
)
from leadscore.adapters.table import OWNER_INDEX, Table, Update, marshal, unmarshal
from leadscore.domain.records import (
    Account,
    Assignment,
    CapacityReached,
    Contact,
    ContactScores,
    Feedback,
    PoisonRecord,
    PoolMoved,
    SdrActivity,
    SdrPause,
    SdrRecord,
    StoredEvent,
    TransactionConflict,
    VersionConflict,
    instant_text,
    utc_text,
)

if TYPE_CHECKING:
    from leadscore.domain.events import TrackingEvent
    from leadscore.domain.records import BookChange
    from leadscore.services.history import HistoryItem

__all__ = ["PROFILE", "Account", "AccountRepository", "Contact", "ContactRepository", "ContactScores",
           "EventRepository", "FeedbackRepository", "Item", "RoutingRepository", "SdrRepository", "Store",
           "TransactionConflict", "VersionConflict", "account_pk", "contact_pk", "event_sk", "marshal",
           "storable_text", "unmarshal"]


class Repository:
    """A repository on the table (its own, or one shared with other repositories)."""

    def __init__(self, table: str | Table, client: Any = None) -> None:
        self.table = table if isinstance(table, Table) else Table(table, client)


class EventRepository(Repository):
    """Collection (ports.EventStore): each accepted event stored once, rejected input kept."""

    def put_event(self, event: TrackingEvent, hits: Sequence[str], retention_days: int) -> bool:
        """Store an event once: True if new, False if this (contact, source, messageId) exists.

        One conditional PutItem; the item is its own exactly-once guard.
        """
        return self.table.put_new(event_item(event, hits, retention_days))

    def load_events(self, contact_key: str) -> list[StoredEvent]:
        """Every stored event of one contact key (ports.EventLog): Query pages on its
        partition, 1 RCU per 4 KB read (a rebuild's cost grows with that contact's events).
        An item the collector never writes (poison: the stream fold never applied it either)
        is left out."""
        events = []
        for item in self.table.query(_marshalled(items.contact_events_query(contact_key), ConsistentRead=True)):
            try:
                events.append(decode_event(item))
            except PoisonRecord:
                continue
        return events

    def put_rejected(self, *, reason: str, field: str | None, source_id: str | None, raw: str,
                     received_at: datetime, retention_days: int) -> None:
        """Keep a rejected input with its reason for `retention_days`. One PutItem.

        The partition is spread over ten keys per day so a flood of bad input stays cool.
        """
        pk, sk = items.rejected_key(received_at)
        self.table.put(rejected_item(pk=pk, sk=sk, reason=reason, field=field, source_id=source_id, raw=raw,
                                     expires=int(received_at.timestamp()) + retention_days * 86400))


class ContactRepository(Repository):
    """Contacts (ports.ContactStore, ports.DecayStore), optimistically locked on `ver`."""

    def load_contact(self, key: str) -> Contact | None:
        """One contact, strongly consistent. One GetItem."""
        item = self.table.get(contact_pk(key))
        return contact_from_item(item) if item is not None else None

    def load_contacts(self, keys: Iterable[str]) -> dict[str, Contact]:
        """The contacts of `keys` that exist. One BatchGetItem per 100 distinct keys."""
        found = self.table.get_many((contact_pk(key), PROFILE) for key in keys)
        contacts = (contact_from_item(item) for item in found.values())
        return {contact.key: contact for contact in contacts}

    def save_contact(self, contact: Contact, expected_version: int | None) -> None:
        """Write a contact (its `version` already the next one) if still at `expected_version`.
        One PutItem; VersionConflict when someone wrote it meanwhile."""
        self.table.put_versioned(contact_item(contact), expected_version)

    def save_contacts(self, writes: Sequence[tuple[Contact, int | None]]) -> None:
        """Several contacts that must land together (an identity merge): one transaction.
        TransactionConflict when any of them moved on."""
        self.table.put_versioned_many([(contact_item(contact), expected) for contact, expected in writes])

    def query_due_contacts(self, until: datetime, *, page_size: int = 500) -> Iterator[Contact]:
        """Contacts whose decay re-evaluation is due by `until`, oldest first, as the DueIndex
        projects them (key, state, version, scores, due time): one item read per contact."""
        for item in self.table.query_due(until.isoformat(), page_size=page_size):
            yield contact_from_item(item)

    def save_scores(self, contact: Contact, scores: ContactScores, updated_at: datetime) -> None:
        """Move a contact's stored scores to `scores` if its version is still the one read;
        bumps the version. One UpdateItem; VersionConflict otherwise."""
        if contact.version is None:
            raise VersionConflict(f"{contact_pk(contact.key)} has no stored version")
        sets, remove = items.score_update(contact.scores, scores, updated_at.isoformat())
        self.table.update_versioned(contact_pk(contact.key), PROFILE, contact.version, sets, remove)


class AccountRepository(Repository):
    """Accounts (ports.AccountStore), optimistically locked on `ver`."""

    def load_account(self, account_id: str) -> Account | None:
        """One account, strongly consistent. One GetItem."""
        item = self.table.get(account_pk(account_id))
        return account_from_item(item) if item is not None else None

    def load_accounts(self, account_ids: Iterable[str]) -> dict[str, Account]:
        """The accounts of `account_ids` that exist. One BatchGetItem per 100 distinct ids."""
        found = self.table.get_many((account_pk(account_id), PROFILE) for account_id in account_ids)
        accounts = (account_from_item(item) for item in found.values())
        return {account.id: account for account in accounts}

    def save_account(self, account: Account, expected_version: int | None) -> None:
        """Write an account (its `version` already the next one) if still at `expected_version`.
        One PutItem; VersionConflict when someone wrote it meanwhile."""
        self.table.put_versioned(account_item(account), expected_version)


class RoutingRepository(Repository):
    """Routing (ports.RoutingStore with the accounts): an account and its assignment, the
    pool records and the SDRs' day counts, the routing transaction, the routing pass's index,
    an SDR's assignments on the OwnerIndex."""

    def load_routing(self, account_id: str, cycle: int) -> tuple[Account | None, Assignment | None]:
        """An account and its assignment for `cycle` (None when not routed in that cycle).
        One strongly consistent BatchGetItem of two items in one partition."""
        account_key = (account_pk(account_id), PROFILE)
        route_key = assignment_key(account_id, cycle)
        found = self.table.get_many([account_key, route_key])
        account = account_from_item(found[account_key]) if account_key in found else None
        assignment = assignment_from_item(found[route_key]) if route_key in found else None
        return account, assignment

    def load_pool_state(self, pool_id: str | None, days: Iterable[tuple[str, date]], *,
                        pauses: dict[str, str | None] | None = None
                        ) -> tuple[int | None, dict[tuple[str, date], int]]:
        """A pool's record: its counter (0 when never stepped) and its day counts
        (`pool_day_attribute`): the (SDR, local day) pairs asked (0 when absent), and any
        other it still holds (older days, SDRs since gone, which the next routing transaction
        removes). One strongly consistent read of one item, whatever the pool's size.

        With `pool_id` None: the SDRs' own day counts of the pairs asked instead (one key each)
        and, with `pauses`, their own records' pauses (one more key each, in the same request).
        `pauses`, when given, is filled with the record's copies of its SDRs' pauses (SDR id ->
        its end, None: until returned; `save_pause` writes them): no read of its own."""
        wanted_days = list(dict.fromkeys(days))
        if pool_id is None:
            keys = [sdr_day_key(sdr, day) for sdr, day in wanted_days]
            sdrs = list(dict.fromkeys(sdr for sdr, _ in wanted_days)) if pauses is not None else []
            found = self.table.get_many(keys + [sdr_record_key(sdr) for sdr in sdrs]) if keys else {}
            for sdr in sdrs:  # an SDR of no pool (a lead): the pause is on her own record only
                pause = sdr_record_from_item(sdr, found.get(sdr_record_key(sdr))).pause
                if pause is not None and pauses is not None:
                    pauses[sdr] = pause.until
            return None, {pair: sdr_day_count(found.get(sdr_day_key(*pair))) for pair in wanted_days}
        key = pool_counter_key(pool_id)
        record = self.table.get_many([key]).get(key)
        if pauses is not None:
            pauses.update(pool_pauses(record))
        return counter_value(record), {**dict.fromkeys(wanted_days, 0), **pool_day_counts(record)}

    def save_assignment(self, assignment: Assignment, account: Account, *, expected_state: str,
                        counter: tuple[str, int, int] | None, capacity: int | None,
                        day: date, previous_attempt: int | None = None, pool: str | None = None,
                        tally: Sequence[str] = (), stale: Iterable[tuple[str, date]] = ()) -> None:
        """Route an account: one TransactWriteItems, all or nothing.

        - the assignment for (account, cycle): a Put conditioned on not existing (the first
          route of the cycle), or, for an SLA re-route, an Update conditioned on the attempt
          read (`previous_attempt`): the exactly-once guard;
        - the pool record of the routing: its counter (`counter` = (pool, value read, value to
          write)), conditioned on still holding the value read (left out for a sticky route),
          and the day counts in `stale` (other days) removed;
        - in the record of each pool of `tally` (every pool the SDR is in), +1 to the SDR's
          count for their local `day` (`pool_day_attribute`): unconditional;
        - the SDR's own count for `day`, +1, conditioned on staying within `capacity`: the guard;
        - the account's routing fields (state `routed`, `sdr`, `rt`, the SLA due time on the
          DueIndex), conditioned on the version read; its version moves on.

        2 WCU per KB per item. Raises PoolMoved when only the counter's condition failed (with
        the record as it is now), CapacityReached when only the SDR's day count refused (the
        pool records of `tally` then say the SDR is full: one UpdateItem each, once), else
        TransactionConflict (a concurrent route won, the account changed).
        """
        now = assignment.routed_at
        actions: list[dict[str, Any]] = []
        if previous_attempt is None:
            actions.append({"Put": {"TableName": self.table.name, "Item": marshal(assignment_item(assignment)),
                                    "ConditionExpression": f"attribute_not_exists({items.PK})"}})
        else:
            fields = assignment_fields(assignment)
            route = Update().set_all({name: value for name, value in fields.items() if value is not None})
            route.remove(*(name for name, value in fields.items() if value is None))
            attempt = f"{route.name(items.ATTEMPT)} = {route.value(previous_attempt)}"
            actions.append({"Update": route.request(self.table.name, assignment_key(assignment.account_id,
                                                                                    assignment.cycle), attempt)})
        counter_action: int | None = None
        routing_pool = counter[0] if counter is not None else pool
        for pool_id in dict.fromkeys([*([routing_pool] if routing_pool is not None else []), *tally]):
            record = Update().set(items.KIND, items.POOL_KIND).set(items.UPDATED, now)
            condition: str | None = None
            if counter is not None and pool_id == counter[0]:
                _, read, written = counter
                record.set(items.COUNT, written)
                condition = (f"attribute_not_exists({record.name(items.COUNT)})" if read == 0
                             else f"{record.name(items.COUNT)} = {record.value(read)}")
                counter_action = len(actions)
            if pool_id in tally:
                record.add(pool_day_attribute(assignment.sdr, day), 1)
            if pool_id == routing_pool:
                record.remove(*(pool_day_attribute(sdr_id, old_day) for sdr_id, old_day in dict.fromkeys(stale)))
            update = record.request(self.table.name, pool_counter_key(pool_id), condition)
            if condition is not None:
                update["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"  # the record as it is now
            actions.append({"Update": update})
        count = Update().add(items.COUNT, 1).set(items.EXPIRES, sdr_day_expiry(day)).set(items.KIND,
                                                                                        items.SDR_DAY_KIND)
        guard = (f"attribute_not_exists({count.name(items.COUNT)}) OR {count.name(items.COUNT)} < "
                 f"{count.value(capacity)}" if capacity is not None else None)
        day_action = len(actions)
        actions.append({"Update": count.request(self.table.name, sdr_day_key(assignment.sdr, day), guard)})
        routing, routing_condition = self._routing_update(account, expected_state)
        actions.append({"Update": routing.request(self.table.name, (account_pk(account.id), PROFILE),
                                                  routing_condition)})

        def refused(reasons: list[dict[str, Any]]) -> Exception | None:
            codes = [reason.get("Code") or "None" for reason in reasons]
            failed = [i for i, code in enumerate(codes) if code != "None"] if len(codes) == len(actions) else []
            if capacity is not None and failed == [day_action] and codes[day_action] == "ConditionalCheckFailed":
                self._note_full(tally, assignment.sdr, day, capacity)
                return CapacityReached(f"{assignment.sdr} is at capacity ({capacity}) on {day}")
            if counter is not None and failed == [counter_action] and codes[failed[0]] == "ConditionalCheckFailed":
                record = unmarshal(reasons[failed[0]].get("Item"))
                return PoolMoved(f"pool {counter[0]}'s counter moved on", pool=counter[0],
                                 counter=counter_value(record), counts=pool_day_counts(record))
            return None

        self.table.transact(actions, f"routing {account_pk(account.id)} cycle {assignment.cycle} lost a race",
                            explain=refused)

    def _note_full(self, pools: Iterable[str], sdr_id: str, day: date, capacity: int) -> None:
        """The SDR's own day count refused an assignment the pool records did not expect (they
        missed some): each record says full from now on (never lowered: one UpdateItem each)."""
        for pool_id in pools:
            update = Update().set(pool_day_attribute(sdr_id, day), capacity).set(items.KIND, items.POOL_KIND)
            count = update.name(pool_day_attribute(sdr_id, day))
            # a refusal: another router said so first
            self.table.update(update, pool_counter_key(pool_id),
                              f"attribute_not_exists({count}) OR {count} < {update.value(capacity)}")

    def _routing_update(self, account: Account, expected_state: str) -> tuple[Update, str]:
        """The Update of an account's routing fields (state, sdr, rt, stateWhy, due time) and
        its condition: exactly the version read (`account.version`), and the state and cycle
        read; bumps `ver`. The routing pass works from an index page read minutes earlier: a
        state-and-cycle condition let a stale "nobody available" overwrite a newer SLA
        re-route (the account owned by one SDR, its assignment by another)."""
        sets, removes = items.account_routing_fields(account)
        update = Update().set_all(sets).remove(*removes).add(items.VERSION, 1)
        condition = (f"{update.version_condition(account.version)}"
                     f" AND {update.name(items.STATE)} = {update.value(expected_state)}"
                     f" AND {update.name(items.CYCLE)} = {update.value(account.cycle)}")
        return update, condition

    def save_routing_status(self, account: Account, *, expected_state: str) -> None:
        """Write an account's routing fields alone (waiting for an SDR, leaving the routing
        index): one UpdateItem conditioned on the version read. VersionConflict when the
        account moved on (the router reads it again and decides again)."""
        update, condition = self._routing_update(account, expected_state)
        self.table.update(update, (account_pk(account.id), PROFILE), condition,
                          conflict=f"{account_pk(account.id)} changed since it was read")

    def query_route_due(self, until: datetime, *, page_size: int = 200) -> Iterator[Account]:
        """Accounts the routing pass should look at by `until` (an SLA due, a retry after
        nobody was available), oldest first, as the DueIndex projects them (everything the
        pass needs: state, cycle, traits, entries, routing): one item read per account due."""
        for item in self.table.query_due(utc_text(until), page_size=page_size, partition=items.ROUTE_DUE):
            try:
                yield account_from_item(item)
            except (ValueError, TypeError, KeyError, AttributeError) as error:
                # a corrupt item: still yielded (its key and version), so the pass parks it
                # and goes on instead of stopping at it on every run
                yield items.unreadable_account(item, error)

    def park_route_due(self, account: Account, until: datetime) -> None:
        """Push an account the routing pass failed on back on the routing index, to `until`:
        one UpdateItem of its index time alone (so even an item too large to grow is parked),
        conditioned on the version read and on it still being on the index. VersionConflict
        when it moved on meanwhile (then it is no longer what failed)."""
        update = Update().set(items.DUE_AT, utc_text(until))
        condition = (f"{update.version_condition(account.version)}"
                     f" AND {update.name(items.DUE_PK)} = {update.value(items.ROUTE_DUE)}")
        self.table.update(update, (account_pk(account.id), PROFILE), condition,
                          conflict=f"{account_pk(account.id)} changed since it was read")

    def query_assigned(self, sdr_id: str, *, limit: int = 50) -> list[Assignment]:
        """The assignments `sdr_id` holds now (each account's cycle routed or re-routed to them
        last), newest first, at most `limit`: Query pages on the OwnerIndex, never a scan;
        reads bounded by that SDR's assignments. Eventually consistent (an index)."""
        found = self.table.query(_owned_by(sdr_id, limit), limit=limit)
        return [assignment_from_item(item) for item in found][:limit]


def _owned_by(sdr_id: str, limit: int) -> dict[str, Any]:
    """The Query of an SDR's assignments on the OwnerIndex, newest first."""
    return {"IndexName": OWNER_INDEX, "KeyConditionExpression": "#own = :sdr",
            "ExpressionAttributeNames": {"#own": items.OWNER},
            "ExpressionAttributeValues": marshal({":sdr": sdr_id}), "ScanIndexForward": False, "Limit": limit}


class FeedbackRepository(Repository):
    """Sales feedback (ports.FeedbackStore with the accounts, ports.ReadStore's feedback)."""

    def save_feedback(self, feedback: Feedback, account: Account, expected_version: int | None) -> None:
        """Apply a sales feedback: one TransactWriteItems of two Puts, all or nothing: the
        feedback item (`A#<id>`/`FB#<seq>`, conditioned on not existing) and the account as
        the feedback leaves it (its `version` already the next one, conditioned on the version
        read; `items.account_item` takes it off the DueIndex once it leaves sdr_ready/routed).
        2 WCU per KB per item. TransactionConflict when the account moved on meanwhile."""
        actions = [{"Put": self.table.versioned_put(feedback_item(feedback), None)},
                   {"Put": self.table.versioned_put(account_item(account), expected_version)}]
        self.table.transact(actions, f"{account_pk(account.id)} changed since it was read")

    def load_feedback(self, account_id: str, *, limit: int = 20) -> list[Feedback]:
        """An account's feedback, newest first, at most `limit`: one Query on the account's
        partition (`FB#` sort keys, read backwards), 1 RCU per 4 KB read."""
        found, _ = self.table.query_page({
            "KeyConditionExpression": f"{items.PK} = :pk AND begins_with({items.SK}, :prefix)",
            "ExpressionAttributeValues": marshal({":pk": account_pk(account_id), ":prefix": items.FEEDBACK_PREFIX}),
            "ScanIndexForward": False, "Limit": limit, "ConsistentRead": True})
        return [feedback_from_item(item) for item in found]


class SdrRepository(Repository):
    """The SDRs' records, pauses, activity and books (ports.TeamStore, ports.BookStore)."""

    def load_sdr_record(self, sdr_id: str) -> SdrRecord:
        """An SDR's record (an empty one when never written): one strongly consistent GetItem."""
        return sdr_record_from_item(sdr_id, self.table.get(*sdr_record_key(sdr_id)))

    def save_pause(self, sdr_id: str, pause: SdrPause | None, *, pools: Sequence[str], expected_version: int,
                   at: str) -> int:
        """Pause an SDR (`pause`) or return them (None): one TransactWriteItems of Updates, all
        or nothing: their record (the pause, its version + 1, conditioned on the version read)
        and, in the record of each pool of `pools` (`team.pause_pools`: every pool),
        the pause's copy the router reads with the pool (`pool_pause_attribute`), or its removal.
        Neither touches a counter or a day count. 2 WCU per KB per item. Returns the new
        version; TransactionConflict when the record moved on or a route raced a pool record."""
        sets, removes = sdr_pause_fields(pause)
        record = (Update().set(items.VERSION, expected_version + 1).set(items.UPDATED, at)
                  .set(items.KIND, items.SDR_RECORD_KIND).set_all(sets).remove(*removes))
        actions: list[dict[str, Any]] = [{"Update": record.request(
            self.table.name, sdr_record_key(sdr_id), record.version_condition(expected_version or None))}]
        for pool_id in dict.fromkeys(pools):
            copy = Update()
            if pause is None:
                copy.set(items.KIND, items.POOL_KIND).remove(pool_pause_attribute(sdr_id))
            else:
                copy.set(pool_pause_attribute(sdr_id), pool_pause_value(pause)).set(items.KIND, items.POOL_KIND)
            actions.append({"Update": copy.request(self.table.name, pool_counter_key(pool_id))})
        self.table.transact(actions, f"SDR {sdr_id}'s record or a pool record changed meanwhile")
        return expected_version + 1

    def load_sdr_activity(self, sdr_id: str, since: str) -> SdrActivity:
        """What GET /v1/sdrs shows of an SDR: ONE Query of their partition (`SDR#<id>`) from
        their acceptances since `since` on (then their SLA breaches, their day counts, their
        record: `items.sdr_activity_since`), eventually consistent. Every item is small and
        kept a bounded time (31 days, 8 for the day counts), so it reads about the same
        whatever the table's size or the SDR's history: about 0.5 RCU."""
        pk = sdr_record_key(sdr_id)[0]
        return items.sdr_activity(sdr_id, self.table.query({
            "KeyConditionExpression": f"{items.PK} = :pk AND {items.SK} >= :since",
            "ExpressionAttributeValues": marshal({":pk": pk, ":since": sdr_activity_since(since)})}))

    def apply_book_changes(self, changes: Iterable[BookChange]) -> int:
        """Keep the SDRs' books from the table's stream (`team.book_changes`), each change once
        whatever the retries: an account opened for an SDR is ADDed to their record's `open`
        set and a closed one DELETEd from it (one UpdateItem); an acceptance or an SLA breach
        is one PutItem keyed by its time and account. Returns the writes made."""
        writes = 0
        for change in changes:
            if change.kind == "open":
                self.table.update(Update().add(items.OPEN, {change.key}).set(items.KIND, items.SDR_RECORD_KIND),
                                  sdr_record_key(change.sdr))
            elif change.kind == "close":
                self.table.update(Update().delete(items.OPEN, {change.key}), sdr_record_key(change.sdr))
            else:
                self.table.put(sdr_activity_item(change.sdr, change.kind, change.at, change.key))
            writes += 1
        return writes

    def query_book(self, sdr_id: str, *, limit: int, cursor: str | None = None
                   ) -> tuple[list[Assignment], str | None]:
        """One page of an SDR's book: the assignments they hold, newest first, after `cursor`
        (the page before's, `items.book_cursor`): one Query of at most `limit` items on the
        OwnerIndex, never a scan. Returns them and the cursor to go on from (None: the last
        page); ValueError for a cursor this did not give."""
        start = book_start(cursor, sdr_id) if cursor else None
        request = _owned_by(sdr_id, limit)
        if start:
            request["ExclusiveStartKey"] = marshal(start)
        found, last = self.table.query_page(request)
        return [assignment_from_item(item) for item in found], (book_cursor(last) if last else None)


class ErasureRepository(Repository):
    """Erasure (ports.ErasureStore, with the contacts and accounts) and the suppression check
    collection and the aggregation make (ports.SuppressionCheck). Suppression records are
    keyed by `keyed.keyed_digest` of a contact key: the table never holds the id."""

    def load_suppressed(self, keys: Iterable[str], *, consistent: bool = True) -> set[str]:
        """The contact keys of `keys` (`u:<userId>`, `e:<email>`, `a:<anonymousId>`) an erasure
        suppressed: one BatchGetItem per 100 distinct keys (none for none), strongly consistent
        unless `consistent` is False (half the read units: collection's check)."""
        from leadscore.adapters.keyed import keyed_digest  # cold start: hmac only when a key is checked

        wanted = {items.suppression_key(keyed_digest(key)): key for key in dict.fromkeys(keys)}
        if not wanted:
            return set()
        return {wanted[key] for key in self.table.get_many(wanted, consistent=consistent) if key in wanted}

    def save_suppressions(self, keys: Iterable[str], at: str) -> int:
        """A suppression record per contact key (written again: the same item). BatchWriteItem
        of 25 puts per request. Returns the records written."""
        from leadscore.adapters.keyed import keyed_digest  # cold start: the erase function's only

        records = [items.suppression_item(keyed_digest(key), at) for key in dict.fromkeys(keys)]
        return self.table.write_batch(puts=records) if records else 0

    def delete_contact_events(self, contact_key: str, *, stop: Callable[[], bool], page: int = 100
                              ) -> tuple[int, bool]:
        """Delete a contact's events a page at a time (a Query of `page` keys, then BatchWriteItem
        of 25 deletes per request) until none is left, or `stop()` says to stop before a page.
        Returns (events deleted, whether none is left)."""
        deleted = 0
        request = _marshalled(items.contact_events_query(contact_key), ConsistentRead=True, Limit=page,
                              ProjectionExpression=f"{items.PK}, {items.SK}")
        while not stop():
            found, _ = self.table.query_page(request)
            if not found:
                return deleted, True
            deleted += self.table.write_batch(deletes=[items.table_key(item) for item in found])
        return deleted, False

    def save_erased_account(self, account: Account, expected_version: int | None, at: str) -> None:
        """Write an account an erasure rescored (its `version` already the next one) if still at
        `expected_version`, marked as erased (`items.erasure_marked`: a count and a time, so its
        history names the cause). One PutItem; VersionConflict when it moved on meanwhile."""
        items.erasure_marked(account, at)
        self.table.put_versioned(account_item(account), expected_version)

    def delete_contact(self, contact_key: str) -> None:
        """A contact's item (its profile): one DeleteItem."""
        self.table.delete_key((contact_pk(contact_key), PROFILE))

    def erase_rejected(self, days: Iterable[date], holds: Callable[[str], bool]) -> int:
        """Delete the rejected records of `days` whose kept input (`items.rejected_raw`) `holds`
        says names the contact: a Query of each of a day's ten partitions (eight at a time: 310
        Queries take the time of some 40), one BatchWriteItem per 25 deletes. Returns the
        records deleted."""
        from concurrent.futures import ThreadPoolExecutor  # cold start: the erase function's only

        def named(pk: str) -> list[tuple[str, str]]:
            return [items.table_key(item) for item in self.table.query(_marshalled(items.rejected_query(pk)))
                    if holds(items.rejected_raw(item))]

        partitions = [pk for day in days for pk in items.rejected_partitions(day)]
        with ThreadPoolExecutor(max_workers=8) as pool:
            doomed = [key for found in pool.map(named, partitions) for key in found]
        return self.table.write_batch(deletes=doomed) if doomed else 0

    def redact_feedback(self, account_id: str, redact: Callable[[str], str]) -> int:
        """Rewrite the notes of an account's feedback items that `redact` changes: a Query of the
        account's `FB#` items, one UpdateItem per note changed. Returns the notes changed."""
        changed = 0
        for item in self.table.query(_marshalled(items.feedback_query(account_id), ConsistentRead=True)):
            note = items.feedback_note(item)
            if note is None or redact(note) == note:
                continue
            self.table.update(Update().set(items.FEEDBACK_NOTE, redact(note)), items.table_key(item))
            changed += 1
        return changed

    def erase_history(self, account_id: str, keys: Iterable[str], redact: Callable[[str], str]) -> int:
        """Rewrite an account's history items that name the contacts `keys`
        (`items.history_without`): a Query of the account's `H#` items, one UpdateItem per item
        changed. Returns the items changed."""
        erased = set(keys)
        changed = 0
        request = _marshalled(items.history_query(account_id, start=None, end=None))
        for item in self.table.query(request):
            steps = items.history_without(item, erased, redact)
            if steps is not None:
                self.table.update(Update().set(items.HISTORY_STEPS, steps), items.table_key(item))
                changed += 1
        return changed


def _marshalled(query: dict[str, Any], **options: Any) -> dict[str, Any]:
    """A Query of items.py (its values still plain) as the client takes it."""
    return {**query, "ExpressionAttributeValues": marshal(query["ExpressionAttributeValues"]), **options}


class HistoryRepository(Repository):
    """Accounts' history (ports.HistoryStore): one item per stream batch that wrote an account."""

    def erasures_of(self, account: Account) -> int:
        """How many erasures took a contact out of the account (its marker: items.erasures_of)."""
        return items.erasures_of(account)

    def save_history(self, found: Sequence[HistoryItem], retention_days: int, now: datetime) -> int:
        """Write a stream batch's history items: one BatchWriteItem per 25 (one small item per
        account written, its steps inside). Unconditional: a batch delivered again writes the
        same items. Returns the items written."""
        puts = [item for entry in found
                for item in items.history_items(entry.account_id, [(s.account, s.causes) for s in entry.steps],
                                                retention_days, now)]
        return self.table.write_batch(puts=puts) if puts else 0

    def load_history(self, account_id: str, *, start: str | None, end: str | None, after: tuple[str, int] | None,
                     limit: int) -> tuple[list[tuple[Account, list[dict[str, Any]]]], tuple[str, int] | None]:
        """An account's steps written within [start, end], oldest first, from `after` on (the
        item key and the step a page before stopped at); at most `limit`, and where the next
        page starts (None: none). Query pages of the account's `H#` items, bounded by the range
        asked (and the one item before `start`: the batch it began in)."""
        low, high = (instant_text(start) if start else None), (instant_text(end) if end else None)
        after_sk = after[0] if after is not None else None
        if after_sk is None and start is not None:
            before = list(self.table.query(_marshalled(items.history_query(
                account_id, start=None, end=start, forward=False, limit=1)), limit=1))
            after_sk = items.table_key(before[0])[1] if before else None
        steps: list[tuple[Account, list[dict[str, Any]]]] = []
        seen: set[tuple[str, int]] = set()
        for item in self.table.query(_marshalled(items.history_query(account_id, start=start, end=end,
                                                                     after_sk=after_sk))):
            for index, (account, causes) in enumerate(items.history_steps(item)):
                position = items.table_key(item)[1]
                if after is not None and position == after[0] and index < after[1]:
                    continue
                at = instant_text(account.updated_at) if account.updated_at else ""
                if (low is not None and at < low) or (high is not None and at > high):
                    continue
                mark = (at, int(account.version or 0))
                if mark in seen:
                    continue  # a step two deliveries of one batch both kept
                seen.add(mark)
                if len(steps) == limit:
                    return steps, (position, index)
                steps.append((account, causes))
        return steps, None

    def load_account_at(self, account_id: str, at: str) -> Account | None:
        """The account as last written at or before `at` (ISO time): the latest step of its
        history by then (a Query of at most three items, newest first), else the account
        itself when it was last written by then (its last write may not have reached its history
        yet; or history began after it); None when there is no record of it by then."""
        when = instant_text(at)
        best: Account | None = None
        for item in self.table.query(_marshalled(items.history_query(account_id, start=None, end=at, forward=False,
                                                                     limit=3)), limit=3):
            for account, _ in items.history_steps(item):
                if _written_by(account, when) and (best is None or _newer(account, best)):
                    best = account
        stored = self.table.get(account_pk(account_id))  # its last write may not be in its history yet
        current = account_from_item(stored) if stored is not None else None
        if current is not None and _written_by(current, when) and (best is None or _newer(current, best)):
            return current
        return best


def _written_by(account: Account, when: str) -> bool:
    return account.updated_at is not None and instant_text(account.updated_at) <= when


def _newer(a: Account, b: Account) -> bool:
    return (instant_text(a.updated_at or "1970-01-01T00:00:00Z"), a.version or 0) > \
        (instant_text(b.updated_at or "1970-01-01T00:00:00Z"), b.version or 0)


class Store(EventRepository, ContactRepository, AccountRepository, RoutingRepository, FeedbackRepository,
            SdrRepository, ErasureRepository, HistoryRepository):
    """Every repository on one table (one client): what the handlers get from
    `runtime.store()`, and what the ports' composites (ports.AggregateStore, AssignStore...)
    are satisfied by."""

    @property
    def client(self) -> Any:
        return self.table.client

    @property
    def table_name(self) -> str:
        return self.table.name
