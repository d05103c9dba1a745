"""The one module that speaks DynamoDB: requests, conditional writes, and their cost.

With `items.py` (records <-> items: attribute names, key layout, stored JSON) this is the
storage layer. Domain code hands in and gets back the records of `records.py`.

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
record of one contact on one shard, in write order: the contact's `seq` watermark is
then enough to make replayed stream batches change nothing.

The client is created on first use (no AWS call at import) and may be injected.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from leadscore.adapters.items import (
    DUE,
    FEEDBACK_PREFIX,
    PROFILE,
    ROUTE_DUE,
    Item,
    account_from_item,
    account_id_of,
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
    event_item,
    event_sk,
    feedback_from_item,
    feedback_item,
    key_item,
    pool_counter_key,
    pool_day_attribute,
    pool_day_counts,
    pool_pause_attribute,
    pool_pause_value,
    pool_pauses,
    rejected_item,
    route_due_of,
    routing_doc,
    score_update,
    sdr_activity_item,
    sdr_activity_since,
    sdr_day_count,
    sdr_day_expiry,
    sdr_day_key,
    sdr_day_of,
    sdr_pause_fields,
    sdr_record_from_item,
    sdr_record_key,
    storable_text,
    table_key,
)
from leadscore.adapters.table import _to_attr, marshal, unmarshal
from leadscore.domain.records import (
    UNREADABLE,
    Account,
    Assignment,
    CapacityReached,
    Contact,
    ContactScores,
    Feedback,
    PoolMoved,
    SdrActivity,
    SdrPause,
    SdrRecord,
    TransactionConflict,
    VersionConflict,
    utc_text,
)

if TYPE_CHECKING:
    from datetime import date

    from leadscore.domain.events import TrackingEvent
    from leadscore.domain.records import BookChange

Key = tuple[str, str]

_MAX_BATCH_GET = 100
_VERSION = "ver"  # the optimistic-lock attribute of contacts and accounts
__all__ = ["PROFILE", "Account", "Contact", "ContactScores", "Item", "Store", "TransactionConflict",
           "VersionConflict", "account_pk", "contact_pk", "event_sk", "marshal", "storable_text",
           "unmarshal"]


# Each client has its own exception classes: a ConditionalCheckFailedException raised by one
# is not caught as another's, so the threads of one batch must share one client.
_CLIENT_LOCK = threading.Lock()


class Store:
    """DynamoDB access for the single table. Every method documents its cost."""

    def __init__(self, table_name: str, client: Any = None) -> None:
        self.table_name = table_name
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            with _CLIENT_LOCK:  # a batch's first writes run on several threads: one client for all
                if self._client is None:
                    import boto3  # deferred: import cost belongs to the first call, not the cold start

                    self._client = boto3.client("dynamodb")
        return self._client

    # --- collection -------------------------------------------------------------------

    def put_event(self, event: TrackingEvent, hits: Sequence[str], retention_days: int) -> bool:
        """Store an event once: True if new, False if this (contact, source, messageId) exists.

        One conditional PutItem; the item is its own exactly-once guard.
        """
        try:
            self.client.put_item(
                TableName=self.table_name,
                Item=marshal(event_item(event, hits, retention_days)),
                ConditionExpression="attribute_not_exists(pk)",
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def put_rejected(self, *, reason: str, field: str | None, source_id: str | None, raw: str,
                     received_at: datetime, retention_days: int) -> None:
        """Keep a rejected input with its reason for `retention_days`. One PutItem.

        The partition is spread over ten keys per day so a flood of bad input stays cool.
        """
        day = received_at.strftime("%Y-%m-%d")
        item = rejected_item(pk=f"R#{day}#{random.randrange(10)}",
                             sk=f"{received_at.isoformat()}#{uuid.uuid4().hex[:12]}", reason=reason, field=field,
                             source_id=source_id, raw=raw,
                             expires=int(received_at.timestamp()) + retention_days * 86400)
        self.client.put_item(TableName=self.table_name, Item=marshal(item))

    # --- reads --------------------------------------------------------------------------

    def get(self, pk: str, sk: str = PROFILE, *, consistent: bool = True) -> Item | None:
        """One GetItem (1 RCU per 4 KB, strongly consistent by default)."""
        answer = self.client.get_item(
            TableName=self.table_name, Key=marshal(key_item(pk, sk)), ConsistentRead=consistent
        )
        return unmarshal(answer["Item"]) if "Item" in answer else None

    def get_many(self, keys: Iterable[Key], *, consistent: bool = True) -> dict[Key, Item]:
        """BatchGetItem in chunks of 100, retrying unprocessed keys with backoff.

        Cost: one request per 100 distinct keys; reads grow with the keys asked, nothing else.
        """
        wanted = list(dict.fromkeys(keys))
        found: dict[Key, Item] = {}
        for start in range(0, len(wanted), _MAX_BATCH_GET):
            request: dict[str, Any] = {
                self.table_name: {
                    "Keys": [marshal(key_item(pk, sk)) for pk, sk in wanted[start:start + _MAX_BATCH_GET]],
                    "ConsistentRead": consistent,
                }
            }
            attempt = 0
            while request:
                answer = self.client.batch_get_item(RequestItems=request)
                for raw in answer.get("Responses", {}).get(self.table_name, []):
                    item = unmarshal(raw)
                    found[table_key(item)] = item
                request = answer.get("UnprocessedKeys") or {}
                if request:
                    attempt += 1
                    time.sleep(min(0.05 * 2**attempt, 2.0) * random.random())
        return found

    # --- versioned writes (aggregation) --------------------------------------------------

    @staticmethod
    def _version_condition(expected_version: int | None) -> tuple[str, dict[str, Any]]:
        if expected_version is None:
            return "attribute_not_exists(pk)", {}
        return f"{_VERSION} = :expected", {":expected": _to_attr(expected_version)}

    def put_versioned(self, item: Mapping[str, Any], expected_version: int | None) -> None:
        """Replace an item if nobody wrote it since we read it (`ver` optimistic lock).

        One PutItem (1 WCU per KB). Raises VersionConflict when the version moved on.
        """
        condition, values = self._version_condition(expected_version)
        kwargs: dict[str, Any] = {
            "TableName": self.table_name,
            "Item": marshal(item),
            "ConditionExpression": condition,
        }
        if values:
            kwargs["ExpressionAttributeValues"] = values
        try:
            self.client.put_item(**kwargs)
        except self.client.exceptions.ConditionalCheckFailedException as error:
            raise VersionConflict(f"{table_key(item)[0]} changed since it was read") from error

    def put_versioned_many(self, writes: Sequence[tuple[Mapping[str, Any], int | None]]) -> None:
        """Several versioned puts that must land together: one TransactWriteItems.

        Costs 2 WCU per KB per item; used only where atomicity is needed (identity merges).
        """
        actions = []
        for item, expected in writes:
            condition, values = self._version_condition(expected)
            put: dict[str, Any] = {"TableName": self.table_name, "Item": marshal(item),
                                   "ConditionExpression": condition}
            if values:
                put["ExpressionAttributeValues"] = values
            actions.append({"Put": put})
        try:
            self.client.transact_write_items(TransactItems=actions)
        except self.client.exceptions.TransactionCanceledException as error:
            raise TransactionConflict("an item of the transaction changed since it was read") from error

    # --- decay (the due-time index) -------------------------------------------------------

    DUE_INDEX = "DueIndex"  # sparse: only contacts with decaying touches carry its key

    def query_due(self, until: str, *, page_size: int = 500, partition: str = DUE) -> Iterator[Item]:
        """Items whose `due_at` is at or before `until` (ISO time) in one partition of the
        sparse `DueIndex`, oldest first: `DUE` the contacts with decaying touches, `ROUTE` the
        accounts the routing pass looks at.

        The index projects what each job needs: one item read per item due, however large
        the table.
        """
        kwargs: dict[str, Any] = {
            "TableName": self.table_name,
            "IndexName": self.DUE_INDEX,
            "KeyConditionExpression": "due_pk = :due AND due_at <= :until",
            "ExpressionAttributeValues": marshal({":due": partition, ":until": until}),
            "Limit": page_size,
        }
        while True:
            answer = self.client.query(**kwargs)
            for raw in answer.get("Items", []):
                yield unmarshal(raw)
            if "LastEvaluatedKey" not in answer:
                return
            kwargs["ExclusiveStartKey"] = answer["LastEvaluatedKey"]

    def update_versioned(self, pk: str, sk: str, expected_version: int, set_values: Mapping[str, Any],
                         remove: Iterable[str] = ()) -> None:
        """SET / REMOVE some attributes if `ver` is still `expected_version`; bumps `ver`.

        One UpdateItem (1 WCU per KB of the item). Raises VersionConflict otherwise.
        """
        names: dict[str, str] = {"#ver": _VERSION}
        values: dict[str, Any] = {":expected": expected_version, ":next": expected_version + 1}
        sets = ["#ver = :next"]
        for index, (name, value) in enumerate(set_values.items()):
            names[f"#s{index}"] = name
            values[f":s{index}"] = value
            sets.append(f"#s{index} = :s{index}")
        expression = "SET " + ", ".join(sets)
        removals = []
        for index, name in enumerate(remove):
            names[f"#r{index}"] = name
            removals.append(f"#r{index}")
        if removals:
            expression += " REMOVE " + ", ".join(removals)
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key=marshal(key_item(pk, sk)),
                UpdateExpression=expression,
                ConditionExpression="#ver = :expected",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=marshal(values),
            )
        except self.client.exceptions.ConditionalCheckFailedException as error:
            raise VersionConflict(f"{pk} changed since it was read") from error

    # --- typed records (what domain code calls) -----------------------------------------

    def load_contact(self, key: str) -> Contact | None:
        """One contact, strongly consistent. One GetItem."""
        item = self.get(contact_pk(key))
        return contact_from_item(item) if item is not None else None

    def load_contacts(self, keys: Iterable[str]) -> dict[str, Contact]:
        """The contacts of `keys` that exist. One BatchGetItem per 100 distinct keys."""
        found = self.get_many((contact_pk(key), PROFILE) for key in keys)
        contacts = (contact_from_item(item) for item in found.values())
        return {contact.key: contact for contact in contacts}

    def save_contact(self, contact: Contact, expected_version: int | None) -> None:
        """Write a contact (its `version` already the next one) if still at `expected_version`.
        One PutItem; VersionConflict when someone wrote it meanwhile."""
        self.put_versioned(contact_item(contact), expected_version)

    def save_contacts(self, writes: Sequence[tuple[Contact, int | None]]) -> None:
        """Several contacts that must land together (an identity merge): one transaction.
        TransactionConflict when any of them moved on."""
        self.put_versioned_many([(contact_item(contact), expected) for contact, expected in writes])

    def query_due_contacts(self, until: datetime, *, page_size: int = 500) -> Iterator[Contact]:
        """Contacts whose decay re-evaluation is due by `until`, oldest first, as the DueIndex
        projects them (key, state, version, scores, due time): one item read per contact."""
        for item in self.query_due(until.isoformat(), page_size=page_size):
            yield contact_from_item(item)

    def save_scores(self, contact: Contact, scores: ContactScores, updated_at: datetime) -> None:
        """Move a contact's stored scores to `scores` if its version is still the one read;
        bumps the version. One UpdateItem; VersionConflict otherwise."""
        if contact.version is None:
            raise VersionConflict(f"{contact_pk(contact.key)} has no stored version")
        sets, remove = score_update(contact.scores, scores, updated_at.isoformat())
        self.update_versioned(contact_pk(contact.key), PROFILE, contact.version, sets, remove)

    def load_account(self, account_id: str) -> Account | None:
        """One account, strongly consistent. One GetItem."""
        item = self.get(account_pk(account_id))
        return account_from_item(item) if item is not None else None

    def load_accounts(self, account_ids: Iterable[str]) -> dict[str, Account]:
        """The accounts of `account_ids` that exist. One BatchGetItem per 100 distinct ids."""
        found = self.get_many((account_pk(account_id), PROFILE) for account_id in account_ids)
        accounts = (account_from_item(item) for item in found.values())
        return {account.id: account for account in accounts}

    def save_account(self, account: Account, expected_version: int | None) -> None:
        """Write an account (its `version` already the next one) if still at `expected_version`.
        One PutItem; VersionConflict when someone wrote it meanwhile."""
        self.put_versioned(account_item(account), expected_version)

    # --- routing ----------------------------------------------------------------------------

    def load_routing(self, account_id: str, cycle: int) -> tuple[Account | None, Assignment | None]:
        """An account and its assignment for `cycle` (None when not routed in that cycle).
        One strongly consistent BatchGetItem of two items in one partition."""
        account_key = (account_pk(account_id), PROFILE)
        route_key = assignment_key(account_id, cycle)
        found = self.get_many([account_key, route_key])
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
            found = self.get_many(keys + [sdr_record_key(sdr) for sdr in sdrs]) if keys else {}
            for sdr in sdrs:  # an SDR of no pool (a lead): the pause is on her own record only
                pause = sdr_record_from_item(sdr, found.get(sdr_record_key(sdr))).pause
                if pause is not None and pauses is not None:
                    pauses[sdr] = pause.until
            return None, {pair: sdr_day_count(found.get(sdr_day_key(*pair))) for pair in wanted_days}
        key = pool_counter_key(pool_id)
        record = self.get_many([key]).get(key)
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
        route_pk, route_sk = assignment_key(assignment.account_id, assignment.cycle)
        actions: list[dict[str, Any]] = []
        if previous_attempt is None:
            actions.append({"Put": {"TableName": self.table_name, "Item": marshal(assignment_item(assignment)),
                                    "ConditionExpression": "attribute_not_exists(pk)"}})
        else:
            fields = assignment_fields(assignment)
            names = {f"#a{i}": name for i, name in enumerate(fields)}
            values = {f":a{i}": value for i, value in enumerate(fields.values())}
            sets = ", ".join(f"#a{i} = :a{i}" for i in range(len(fields)) if values[f":a{i}"] is not None)
            removes = [f"#a{i}" for i in range(len(fields)) if values[f":a{i}"] is None]
            expression = f"SET {sets}" + (f" REMOVE {', '.join(removes)}" if removes else "")
            actions.append({"Update": {
                "TableName": self.table_name, "Key": marshal(key_item(route_pk, route_sk)),
                "UpdateExpression": expression, "ConditionExpression": "#att = :previous",
                "ExpressionAttributeNames": {**names, "#att": "att"},
                "ExpressionAttributeValues": marshal({**{k: v for k, v in values.items() if v is not None},
                                                      ":previous": previous_attempt})}})
        counter_action: int | None = None
        routing_pool = counter[0] if counter is not None else pool
        for pool_id in dict.fromkeys([*([routing_pool] if routing_pool is not None else []), *tally]):
            names = {"#k": "k", "#upd": "upd"}
            values = {":kind": "RR", ":now": now}
            sets_, adds, removes_ = ["#k = :kind", "#upd = :now"], [], []
            update: dict[str, Any] = {"TableName": self.table_name,
                                      "Key": marshal(key_item(*pool_counter_key(pool_id)))}
            if counter is not None and pool_id == counter[0]:
                _, read, written = counter
                names["#n"] = "n"
                values.update({":next": written, **({":read": read} if read else {})})
                sets_.append("#n = :next")
                update["ConditionExpression"] = "attribute_not_exists(#n)" if read == 0 else "#n = :read"
                update["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"  # the record as it is now
                counter_action = len(actions)
            if pool_id in tally:
                names["#c"] = pool_day_attribute(assignment.sdr, day)
                values[":one"] = 1
                adds.append("#c :one")
            if pool_id == routing_pool:
                for i, (sdr_id, old_day) in enumerate(dict.fromkeys(stale)):
                    names[f"#x{i}"] = pool_day_attribute(sdr_id, old_day)
                    removes_.append(f"#x{i}")
            update["UpdateExpression"] = ("SET " + ", ".join(sets_) + (" ADD " + ", ".join(adds) if adds else "")
                                          + (" REMOVE " + ", ".join(removes_) if removes_ else ""))
            update.update(ExpressionAttributeNames=names, ExpressionAttributeValues=marshal(values))
            actions.append({"Update": update})
        pk, sk = sdr_day_key(assignment.sdr, day)
        day_update: dict[str, Any] = {
            "TableName": self.table_name, "Key": marshal(key_item(pk, sk)),
            "UpdateExpression": "ADD #n :one SET #ttl = :ttl, #k = :kind",
            "ExpressionAttributeNames": {"#n": "n", "#ttl": "ttl", "#k": "k"},
            "ExpressionAttributeValues": marshal({":one": 1, ":ttl": sdr_day_expiry(day), ":kind": "SD",
                                                  **({":cap": capacity} if capacity is not None else {})})}
        if capacity is not None:
            day_update["ConditionExpression"] = "attribute_not_exists(#n) OR #n < :cap"
        day_action = len(actions)
        actions.append({"Update": day_update})
        actions.append({"Update": self._account_routing_update(account, expected_state)})
        try:
            self.client.transact_write_items(TransactItems=actions)
        except self.client.exceptions.TransactionCanceledException as error:
            reasons = error.response.get("CancellationReasons") or []
            codes = [reason.get("Code") or "None" for reason in reasons]
            failed = [i for i, code in enumerate(codes) if code != "None"] if len(codes) == len(actions) else []
            if capacity is not None and failed == [day_action] and codes[day_action] == "ConditionalCheckFailed":
                self._note_full(tally, assignment.sdr, day, capacity)
                raise CapacityReached(f"{assignment.sdr} is at capacity ({capacity}) on {day}") from error
            if counter is not None and failed == [counter_action] and codes[failed[0]] == "ConditionalCheckFailed":
                record = unmarshal(reasons[failed[0]].get("Item"))
                raise PoolMoved(f"pool {counter[0]}'s counter moved on", pool=counter[0],
                                counter=counter_value(record), counts=pool_day_counts(record)) from error
            raise TransactionConflict(f"routing {account_pk(account.id)} cycle {assignment.cycle} lost a race"
                                      ) from error

    def _note_full(self, pools: Iterable[str], sdr_id: str, day: date, capacity: int) -> None:
        """The SDR's own day count refused an assignment the pool records did not expect (they
        missed some): each record says full from now on (never lowered: one UpdateItem each)."""
        for pool_id in pools:
            try:
                self.client.update_item(
                    TableName=self.table_name, Key=marshal(key_item(*pool_counter_key(pool_id))),
                    UpdateExpression="SET #c = :cap, #k = :kind",
                    ConditionExpression="attribute_not_exists(#c) OR #c < :cap",
                    ExpressionAttributeNames={"#c": pool_day_attribute(sdr_id, day), "#k": "k"},
                    ExpressionAttributeValues=marshal({":cap": capacity, ":kind": "RR"}))
            except self.client.exceptions.ConditionalCheckFailedException:
                continue  # another router said so first

    def _account_routing_update(self, account: Account, expected_state: str) -> dict[str, Any]:
        """The Update of an account's routing fields (state, sdr, rt, stateWhy, due time),
        conditioned on exactly the version read (`account.version`, and the state and cycle
        read); bumps `ver`. The routing pass works from an index page read minutes earlier: a
        state-and-cycle condition let a stale "nobody available" overwrite a newer SLA
        re-route (the account owned by one SDR, its assignment by another)."""
        due = route_due_of(account.state, account.routing, account.cooldown_until)
        sets: dict[str, Any] = {"state": account.state, "stateWhy": account.state_why, "upd": account.updated_at,
                                "stateAt": account.state_at, "sdr": account.sdr,
                                "rt": routing_doc(account.routing) if account.routing is not None else None}
        if due:
            sets.update(due_pk=ROUTE_DUE, due_at=due)
        names = {"#ver": "ver", "#state": "state", "#cycle": "cycle"}
        values: dict[str, Any] = {":one": 1, ":expected": expected_state, ":cycle": account.cycle}
        if account.version is not None:
            values[":ver"] = account.version
        clauses: list[str] = []
        removes: list[str] = []
        for i, (name, value) in enumerate(sets.items()):
            if value is not None:  # what the record leaves out is left as stored
                names[f"#s{i}"] = name
                values[f":s{i}"] = value
                clauses.append(f"#s{i} = :s{i}")
        if not due:
            names.update({"#dp": "due_pk", "#da": "due_at"})
            removes += ["#dp", "#da"]
        expression = "SET " + ", ".join(clauses) + (" REMOVE " + ", ".join(removes) if removes else "")
        return {"TableName": self.table_name, "Key": marshal(key_item(account_pk(account.id), PROFILE)),
                "UpdateExpression": expression + " ADD #ver :one",
                "ConditionExpression": ("#ver = :ver" if account.version is not None else "attribute_not_exists(#ver)")
                + " AND #state = :expected AND #cycle = :cycle",
                "ExpressionAttributeNames": names, "ExpressionAttributeValues": marshal(values)}

    def save_routing_status(self, account: Account, *, expected_state: str) -> None:
        """Write an account's routing fields alone (waiting for an SDR, leaving the routing
        index): one UpdateItem conditioned on the version read. VersionConflict when the
        account moved on (the router reads it again and decides again)."""
        update = self._account_routing_update(account, expected_state)
        try:
            self.client.update_item(**update)
        except self.client.exceptions.ConditionalCheckFailedException as error:
            raise VersionConflict(f"{account_pk(account.id)} changed since it was read") from error

    def query_route_due(self, until: datetime, *, page_size: int = 200) -> Iterator[Account]:
        """Accounts the routing pass should look at by `until` (an SLA due, a retry after
        nobody was available), oldest first, as the DueIndex projects them (everything the
        pass needs: state, cycle, traits, entries, routing): one item read per account due."""
        for item in self.query_due(utc_text(until), page_size=page_size, partition=ROUTE_DUE):
            try:
                yield account_from_item(item)
            except (ValueError, TypeError, KeyError, AttributeError) as error:
                # a corrupt item: still yielded (its key and version), so the pass parks it
                # and goes on instead of stopping at it on every run
                yield Account(id=str(item.get("id") or account_id_of(str(item.get("pk", "")))),
                              version=int(ver) if isinstance(ver := item.get("ver"), int | Decimal) else None,
                              extra={UNREADABLE: f"{type(error).__name__}: {error}"})

    def park_route_due(self, account: Account, until: datetime) -> None:
        """Push an account the routing pass failed on back on the routing index, to `until`:
        one UpdateItem of its index time alone (so even an item too large to grow is parked),
        conditioned on the version read and on it still being on the index. VersionConflict
        when it moved on meanwhile (then it is no longer what failed)."""
        try:
            self.client.update_item(
                TableName=self.table_name, Key=marshal(key_item(account_pk(account.id), PROFILE)),
                UpdateExpression="SET #da = :until",
                ConditionExpression=("#ver = :ver" if account.version is not None else "attribute_not_exists(#ver)")
                + " AND #dp = :route",
                ExpressionAttributeNames={"#da": "due_at", "#dp": "due_pk", "#ver": "ver"},
                ExpressionAttributeValues=marshal({":until": utc_text(until), ":route": ROUTE_DUE,
                                                   **({":ver": account.version} if account.version is not None
                                                      else {})}))
        except self.client.exceptions.ConditionalCheckFailedException as error:
            raise VersionConflict(f"{account_pk(account.id)} changed since it was read") from error

    # --- an SDR's assignments (the owner index) ----------------------------------------------

    OWNER_INDEX = "OwnerIndex"  # sparse: only assignments carry its key (the SDR holding the cycle)

    def query_assigned(self, sdr_id: str, *, limit: int = 50) -> list[Assignment]:
        """The assignments `sdr_id` holds now (each account's cycle routed or re-routed to them
        last), newest first, at most `limit`: Query pages on the OwnerIndex, never a scan;
        reads bounded by that SDR's assignments. Eventually consistent (an index)."""
        kwargs: dict[str, Any] = {
            "TableName": self.table_name, "IndexName": self.OWNER_INDEX,
            "KeyConditionExpression": "#own = :sdr", "ExpressionAttributeNames": {"#own": "own"},
            "ExpressionAttributeValues": marshal({":sdr": sdr_id}), "ScanIndexForward": False, "Limit": limit,
        }
        found: list[Assignment] = []
        while len(found) < limit:
            answer = self.client.query(**kwargs)
            found += [assignment_from_item(unmarshal(raw)) for raw in answer.get("Items", [])]
            if "LastEvaluatedKey" not in answer:
                break
            kwargs["ExclusiveStartKey"] = answer["LastEvaluatedKey"]
        return found[:limit]

    # --- sales feedback ----------------------------------------------------------------------

    def save_feedback(self, feedback: Feedback, account: Account, expected_version: int | None) -> None:
        """Apply a sales feedback: one TransactWriteItems of two Puts, all or nothing: the
        feedback item (`A#<id>`/`FB#<seq>`, conditioned on not existing) and the account as
        the feedback leaves it (its `version` already the next one, conditioned on the version
        read; `items.account_item` takes it off the DueIndex once it leaves sdr_ready/routed).
        2 WCU per KB per item. TransactionConflict when the account moved on meanwhile."""
        condition, values = self._version_condition(expected_version)
        account_put: dict[str, Any] = {"TableName": self.table_name, "Item": marshal(account_item(account)),
                                       "ConditionExpression": condition}
        if values:
            account_put["ExpressionAttributeValues"] = values
        actions = [{"Put": {"TableName": self.table_name, "Item": marshal(feedback_item(feedback)),
                            "ConditionExpression": "attribute_not_exists(pk)"}},
                   {"Put": account_put}]
        try:
            self.client.transact_write_items(TransactItems=actions)
        except self.client.exceptions.TransactionCanceledException as error:
            raise TransactionConflict(f"{account_pk(account.id)} changed since it was read") from error

    def load_feedback(self, account_id: str, *, limit: int = 20) -> list[Feedback]:
        """An account's feedback, newest first, at most `limit`: one Query on the account's
        partition (`FB#` sort keys, read backwards), 1 RCU per 4 KB read."""
        answer = self.client.query(
            TableName=self.table_name,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
            ExpressionAttributeValues=marshal({":pk": account_pk(account_id), ":prefix": FEEDBACK_PREFIX}),
            ScanIndexForward=False, Limit=limit, ConsistentRead=True)
        return [feedback_from_item(unmarshal(raw)) for raw in answer.get("Items", [])]

    # --- the team lead's reads and the SDRs' pauses (leadscore.services.team) ------------------------

    def load_sdr_record(self, sdr_id: str) -> SdrRecord:
        """An SDR's record (an empty one when never written): one strongly consistent GetItem."""
        return sdr_record_from_item(sdr_id, self.get(*sdr_record_key(sdr_id)))

    def save_pause(self, sdr_id: str, pause: SdrPause | None, *, pools: Sequence[str], expected_version: int,
                   at: str) -> int:
        """Pause an SDR (`pause`) or return them (None): one TransactWriteItems of Updates, all
        or nothing: their record (the pause, its version + 1, conditioned on the version read)
        and, in the record of each pool of `pools` (`team.pause_pools`: every pool),
        the pause's copy the router reads with the pool (`pool_pause_attribute`), or its removal.
        Neither touches a counter or a day count. 2 WCU per KB per item. Returns the new
        version; TransactionConflict when the record moved on or a route raced a pool record."""
        sets, removes = sdr_pause_fields(pause)
        names = {f"#s{i}": name for i, name in enumerate(sets)} | {f"#r{i}": name for i, name in enumerate(removes)}
        names.update({"#ver": "ver", "#upd": "upd", "#k": "k"})
        values: dict[str, Any] = {f":s{i}": value for i, value in enumerate(sets.values())}
        values.update({":next": expected_version + 1, ":at": at, ":kind": "S"})
        clauses = ["#ver = :next", "#upd = :at", "#k = :kind", *(f"#s{i} = :s{i}" for i in range(len(sets)))]
        record: dict[str, Any] = {
            "TableName": self.table_name, "Key": marshal(key_item(*sdr_record_key(sdr_id))),
            "UpdateExpression": "SET " + ", ".join(clauses)
            + (" REMOVE " + ", ".join(f"#r{i}" for i in range(len(removes))) if removes else ""),
            "ExpressionAttributeNames": names}
        if expected_version:
            record["ConditionExpression"] = "#ver = :read"
            values[":read"] = expected_version
        else:
            record["ConditionExpression"] = "attribute_not_exists(#ver)"
        record["ExpressionAttributeValues"] = marshal(values)
        actions: list[dict[str, Any]] = [{"Update": record}]
        for pool_id in dict.fromkeys(pools):
            copy: dict[str, Any] = {"TableName": self.table_name, "Key": marshal(key_item(*pool_counter_key(pool_id))),
                                    "ExpressionAttributeNames": {"#p": pool_pause_attribute(sdr_id), "#k": "k"}}
            if pause is None:
                copy["UpdateExpression"] = "SET #k = :kind REMOVE #p"
                copy["ExpressionAttributeValues"] = marshal({":kind": "RR"})
            else:
                copy["UpdateExpression"] = "SET #p = :until, #k = :kind"
                copy["ExpressionAttributeValues"] = marshal({":until": pool_pause_value(pause), ":kind": "RR"})
            actions.append({"Update": copy})
        try:
            self.client.transact_write_items(TransactItems=actions)
        except self.client.exceptions.TransactionCanceledException as error:
            raise TransactionConflict(f"SDR {sdr_id}'s record or a pool record changed meanwhile") from error
        return expected_version + 1

    def load_sdr_activity(self, sdr_id: str, since: str) -> SdrActivity:
        """What GET /v1/sdrs shows of an SDR: ONE Query of their partition (`SDR#<id>`) from
        their acceptances since `since` on (then their SLA breaches, their day counts, their
        record: `items.sdr_activity_since`), eventually consistent. Every item is small and
        kept a bounded time (31 days, 8 for the day counts), so it reads about the same
        whatever the table's size or the SDR's history: about 0.5 RCU."""
        pk = sdr_record_key(sdr_id)[0]
        kwargs: dict[str, Any] = {
            "TableName": self.table_name,
            "KeyConditionExpression": "pk = :pk AND sk >= :since",
            "ExpressionAttributeValues": marshal({":pk": pk, ":since": sdr_activity_since(since)})}
        activity = SdrActivity(SdrRecord(sdr_id))
        while True:
            answer = self.client.query(**kwargs)
            for raw in answer.get("Items", []):
                item = unmarshal(raw)
                kind = item.get("k")
                if kind == "S":
                    activity.record = sdr_record_from_item(sdr_id, item)
                elif kind == "SD":
                    day = sdr_day_of(item)
                    if day is not None:
                        activity.days[day] = sdr_day_count(item)
                elif kind == "SA" and isinstance(item.get("at"), str):
                    sk = str(item["sk"])
                    target = activity.accepted if sk.startswith("AC#") else activity.breaches
                    target.append((item["at"], sk.split("#", 2)[-1]))
            if "LastEvaluatedKey" not in answer:
                return activity
            kwargs["ExclusiveStartKey"] = answer["LastEvaluatedKey"]

    def apply_book_changes(self, changes: Iterable[BookChange]) -> int:
        """Keep the SDRs' books from the table's stream (`team.book_changes`), each change once
        whatever the retries: an account opened for an SDR is ADDed to their record's `open`
        set and a closed one DELETEd from it (one UpdateItem); an acceptance or an SLA breach
        is one PutItem keyed by its time and account. Returns the writes made."""
        writes = 0
        for change in changes:
            if change.kind in ("open", "close"):
                self.client.update_item(
                    TableName=self.table_name, Key=marshal(key_item(*sdr_record_key(change.sdr))),
                    UpdateExpression=("ADD #o :keys SET #k = :kind" if change.kind == "open" else "DELETE #o :keys"),
                    ExpressionAttributeNames={"#o": "open", **({"#k": "k"} if change.kind == "open" else {})},
                    ExpressionAttributeValues={":keys": {"SS": [change.key]},
                                               **({":kind": {"S": "S"}} if change.kind == "open" else {})})
            else:
                self.client.put_item(TableName=self.table_name,
                                     Item=marshal(sdr_activity_item(change.sdr, change.kind, change.at, change.key)))
            writes += 1
        return writes

    def query_book(self, sdr_id: str, *, limit: int, cursor: str | None = None
                   ) -> tuple[list[Assignment], str | None]:
        """One page of an SDR's book: the assignments they hold, newest first, after `cursor`
        (the page before's, `items.book_cursor`): one Query of at most `limit` items on the
        OwnerIndex, never a scan. Returns them and the cursor to go on from (None: the last
        page); ValueError for a cursor this did not give."""
        start = book_start(cursor, sdr_id) if cursor else None
        kwargs: dict[str, Any] = {
            "TableName": self.table_name, "IndexName": self.OWNER_INDEX,
            "KeyConditionExpression": "#own = :sdr", "ExpressionAttributeNames": {"#own": "own"},
            "ExpressionAttributeValues": marshal({":sdr": sdr_id}), "ScanIndexForward": False, "Limit": limit}
        if start:
            kwargs["ExclusiveStartKey"] = marshal(start)
        answer = self.client.query(**kwargs)
        found = [assignment_from_item(unmarshal(raw)) for raw in answer.get("Items", [])]
        last = answer.get("LastEvaluatedKey")
        return found, (book_cursor(unmarshal(last)) if last else None)
