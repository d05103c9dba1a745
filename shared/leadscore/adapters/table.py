"""The table, generically: DynamoDB's typed JSON both ways (what the store writes and reads,
and what the table's stream delivers), the reads, the versioned writes, UpdateItem
expressions, Query pages. The repositories of storage.py build on it; items.py gives the
attribute names and the item forms.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from decimal import Decimal
from functools import cache
from typing import Any

from leadscore.adapters import items
from leadscore.adapters.clients import LazyClient
from leadscore.domain.records import TransactionConflict, VersionConflict

Item = dict[str, Any]
Key = tuple[str, str]

_MAX_BATCH_GET = 100
_MAX_BATCH_WRITE = 25
#: The sparse index of what is due: contacts with decaying touches (`DUE`), accounts the
#: routing pass looks at (`ROUTE`).
DUE_INDEX = "DueIndex"
#: The sparse index of assignments by the SDR holding them.
OWNER_INDEX = "OwnerIndex"


# DynamoDB's typed JSON is boto3's (TypeSerializer / TypeDeserializer), with this table's rules
# for what boto3 leaves open: a float is stored as its shortest text rounded to 6 places (boto3
# refuses floats), None is never stored in a map, and a number read back is an int when its
# text is whole (no point), else a float (boto3 gives Decimals: the code computes in floats).


@cache
def _types() -> tuple[Any, Any]:
    # cold start: boto3 loads on first use, with the first client
    from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

    return TypeSerializer(), TypeDeserializer()


def _storable(value: Any) -> Any:
    if isinstance(value, float):
        return Decimal(repr(round(value, 6)))  # repr: the shortest exact text; DynamoDB keeps 38 digits
    if isinstance(value, Mapping):
        return {str(k): _storable(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [_storable(v) for v in value]
    return value


def python_value(value: Any) -> Any:
    """A deserialized DynamoDB value with its numbers as the code uses them: an int when the
    number's text is whole, else a float (sets of numbers stay Decimals); a binary as bytes."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() and "." not in str(value) else float(value)
    if isinstance(value, dict):
        return {k: python_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [python_value(v) for v in value]
    binary = getattr(value, "value", None)  # boto3's Binary: the bytes it wraps
    if isinstance(binary, bytes):
        return binary
    return value


def _to_attr(value: Any) -> dict[str, Any]:
    result: dict[str, Any] = _types()[0].serialize(_storable(value))
    return result


def marshal(item: Mapping[str, Any]) -> dict[str, Any]:
    serialize = _types()[0].serialize
    return {k: serialize(_storable(v)) for k, v in item.items() if v is not None}


def unmarshal(image: Mapping[str, Any] | None) -> Item:
    deserialize = _types()[1].deserialize
    return {k: python_value(deserialize(v)) for k, v in (image or {}).items()}


class Update:
    """One UpdateItem's expression, built clause by clause: every attribute and value gets a
    placeholder (`#a0`, `:v0`), so any name (reserved words, `c#...`) is safe."""

    def __init__(self) -> None:
        self.names: dict[str, str] = {}
        self.values: dict[str, Any] = {}
        self._clauses: dict[str, list[str]] = {"SET": [], "ADD": [], "REMOVE": [], "DELETE": []}

    def name(self, attribute: str) -> str:
        """The placeholder of `attribute` (one per attribute), for clauses and conditions."""
        for placeholder, known in self.names.items():
            if known == attribute:
                return placeholder
        placeholder = f"#a{len(self.names)}"
        self.names[placeholder] = attribute
        return placeholder

    def value(self, value: Any) -> str:
        placeholder = f":v{len(self.values)}"
        self.values[placeholder] = value
        return placeholder

    def set(self, attribute: str, value: Any) -> Update:
        self._clauses["SET"].append(f"{self.name(attribute)} = {self.value(value)}")
        return self

    def set_all(self, values: Mapping[str, Any]) -> Update:
        for attribute, value in values.items():
            self.set(attribute, value)
        return self

    def add(self, attribute: str, value: Any) -> Update:
        self._clauses["ADD"].append(f"{self.name(attribute)} {self.value(value)}")
        return self

    def remove(self, *attributes: str) -> Update:
        self._clauses["REMOVE"] += [self.name(attribute) for attribute in attributes]
        return self

    def delete(self, attribute: str, value: Any) -> Update:
        self._clauses["DELETE"].append(f"{self.name(attribute)} {self.value(value)}")
        return self

    def version_condition(self, expected: int | None) -> str:
        """Still at the version read (`expected`; None: never written)."""
        if expected is None:
            return f"attribute_not_exists({self.name(items.VERSION)})"
        return f"{self.name(items.VERSION)} = {self.value(expected)}"

    def request(self, table_name: str, key: Key, condition: str | None = None) -> dict[str, Any]:
        """The UpdateItem (or a transaction's Update) of the item at `key`."""
        expression = " ".join(f"{verb} {', '.join(parts)}" for verb, parts in self._clauses.items() if parts)
        request: dict[str, Any] = {"TableName": table_name, "Key": marshal(items.key_item(*key)),
                                   "UpdateExpression": expression, "ExpressionAttributeNames": self.names}
        if condition:
            request["ConditionExpression"] = condition
        if self.values:
            request["ExpressionAttributeValues"] = marshal(self.values)
        return request


class Table:
    """The single table: generic reads and writes, each with its cost. The client is made on
    first use (no AWS call at import) and may be injected."""

    client = LazyClient("dynamodb")

    def __init__(self, name: str, client: Any = None) -> None:
        self.name = name
        self._client = client

    # --- reads ----------------------------------------------------------------------------

    def get(self, pk: str, sk: str = items.PROFILE, *, consistent: bool = True) -> Item | None:
        """One GetItem (1 RCU per 4 KB, strongly consistent by default)."""
        answer = self.client.get_item(TableName=self.name, Key=marshal(items.key_item(pk, sk)),
                                      ConsistentRead=consistent)
        return unmarshal(answer["Item"]) if "Item" in answer else None

    def get_many(self, keys: Iterable[Key], *, consistent: bool = True) -> dict[Key, Item]:
        """BatchGetItem in chunks of 100, retrying unprocessed keys with backoff.

        Cost: one request per 100 distinct keys; reads grow with the keys asked, nothing else.
        """
        wanted = list(dict.fromkeys(keys))
        found: dict[Key, Item] = {}
        for start in range(0, len(wanted), _MAX_BATCH_GET):
            request: dict[str, Any] = {
                self.name: {
                    "Keys": [marshal(items.key_item(pk, sk)) for pk, sk in wanted[start:start + _MAX_BATCH_GET]],
                    "ConsistentRead": consistent,
                }
            }
            attempt = 0
            while request:
                answer = self.client.batch_get_item(RequestItems=request)
                for raw in answer.get("Responses", {}).get(self.name, []):
                    item = unmarshal(raw)
                    found[items.table_key(item)] = item
                request = answer.get("UnprocessedKeys") or {}
                if request:
                    attempt += 1
                    time.sleep(min(0.05 * 2**attempt, 2.0) * random.random())
        return found

    def query(self, request: dict[str, Any], *, limit: int | None = None) -> Iterator[Item]:
        """The items of a Query (`request`: its key condition, index, order, page size...),
        page after page; with `limit`, no page after the one that reaches it."""
        request = {"TableName": self.name, **request}
        seen = 0
        while True:
            answer = self.client.query(**request)
            for raw in answer.get("Items", []):
                yield unmarshal(raw)
            seen += len(answer.get("Items", []))
            if "LastEvaluatedKey" not in answer or (limit is not None and seen >= limit):
                return
            request["ExclusiveStartKey"] = answer["LastEvaluatedKey"]

    def query_page(self, request: dict[str, Any]) -> tuple[list[Item], Item | None]:
        """One page of a Query, and the key to go on from (None: the last page)."""
        answer = self.client.query(TableName=self.name, **request)
        last = answer.get("LastEvaluatedKey")
        return [unmarshal(raw) for raw in answer.get("Items", [])], (unmarshal(last) if last else None)

    def query_due(self, until: str, *, page_size: int = 500, partition: str = items.DUE) -> Iterator[Item]:
        """Items whose `due_at` is at or before `until` (ISO time) in one partition of the
        sparse DueIndex, oldest first: `DUE` the contacts with decaying touches, `ROUTE` the
        accounts the routing pass looks at.

        The index projects what each job needs: one item read per item due, however large
        the table.
        """
        update = Update()  # only for its placeholders
        condition = f"{update.name(items.DUE_PK)} = :due AND {update.name(items.DUE_AT)} <= :until"
        return self.query({"IndexName": DUE_INDEX, "KeyConditionExpression": condition,
                           "ExpressionAttributeNames": update.names,
                           "ExpressionAttributeValues": marshal({":due": partition, ":until": until}),
                           "Limit": page_size})

    # --- writes ---------------------------------------------------------------------------

    def put(self, item: Mapping[str, Any]) -> None:
        """One PutItem (1 WCU per KB)."""
        self.client.put_item(TableName=self.name, Item=marshal(item))

    def put_new(self, item: Mapping[str, Any]) -> bool:
        """Put an item unless its key exists: True if written. One conditional PutItem."""
        try:
            self.client.put_item(TableName=self.name, Item=marshal(item), ConditionExpression=_NEW)
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def versioned_put(self, item: Mapping[str, Any], expected_version: int | None) -> dict[str, Any]:
        """The Put of an item conditioned on the version read (`ver` optimistic lock; None:
        on not existing), alone or as a transaction's part."""
        put: dict[str, Any] = {"TableName": self.name, "Item": marshal(item)}
        if expected_version is None:
            put["ConditionExpression"] = _NEW
        else:
            put["ConditionExpression"] = f"{items.VERSION} = :expected"
            put["ExpressionAttributeValues"] = {":expected": _to_attr(expected_version)}
        return put

    def put_versioned(self, item: Mapping[str, Any], expected_version: int | None) -> None:
        """Replace an item if nobody wrote it since we read it (`ver` optimistic lock).

        One PutItem (1 WCU per KB). Raises VersionConflict when the version moved on.
        """
        try:
            self.client.put_item(**self.versioned_put(item, expected_version))
        except self.client.exceptions.ConditionalCheckFailedException as error:
            raise VersionConflict(f"{items.table_key(item)[0]} changed since it was read") from error

    def put_versioned_many(self, writes: Sequence[tuple[Mapping[str, Any], int | None]]) -> None:
        """Several versioned puts that must land together: one TransactWriteItems.

        Costs 2 WCU per KB per item; used only where atomicity is needed (identity merges).
        """
        self.transact([{"Put": self.versioned_put(item, expected)} for item, expected in writes],
                      "an item of the transaction changed since it was read")

    def update(self, update: Update, key: Key, condition: str | None = None, *, conflict: str | None = None) -> bool:
        """One UpdateItem (1 WCU per KB of the item). When `condition` fails: VersionConflict
        (`conflict` its message), or False without `conflict`."""
        try:
            self.client.update_item(**update.request(self.name, key, condition))
        except self.client.exceptions.ConditionalCheckFailedException as error:
            if conflict is None:
                return False
            raise VersionConflict(conflict) from error
        return True

    def update_versioned(self, pk: str, sk: str, expected_version: int, set_values: Mapping[str, Any],
                         remove: Iterable[str] = ()) -> None:
        """SET / REMOVE some attributes if `ver` is still `expected_version`; bumps `ver`.

        One UpdateItem (1 WCU per KB of the item). Raises VersionConflict otherwise.
        """
        update = Update().set(items.VERSION, expected_version + 1).set_all(set_values).remove(*remove)
        self.update(update, (pk, sk), update.version_condition(expected_version),
                    conflict=f"{pk} changed since it was read")

    def transact(self, actions: list[dict[str, Any]], conflict: str, *,
                 explain: Callable[[list[dict[str, Any]]], Exception | None] | None = None) -> None:
        """One TransactWriteItems of `actions`, all or nothing (2 WCU per KB per item). When it
        is cancelled: what `explain` makes of the cancellation reasons (one per action, in
        order), else TransactionConflict (`conflict` its message)."""
        try:
            self.client.transact_write_items(TransactItems=actions)
        except self.client.exceptions.TransactionCanceledException as error:
            explained = explain(error.response.get("CancellationReasons") or []) if explain else None
            raise explained or TransactionConflict(conflict) from error


    # --- erasure (the erase function alone is granted these) -------------------------------

    def delete_key(self, key: Key) -> None:
        """One DeleteItem (1 WCU per KB of the item; nothing when it is gone already)."""
        self.client.delete_item(TableName=self.name, Key=marshal(items.key_item(*key)))

    def write_batch(self, *, puts: Sequence[Mapping[str, Any]] = (), deletes: Sequence[Key] = ()) -> int:
        """BatchWriteItem in chunks of 25 (puts and deletes, unconditional), retrying
        unprocessed requests with backoff. Returns the requests written."""
        requests = ([{"PutRequest": {"Item": marshal(item)}} for item in puts]
                    + [{"DeleteRequest": {"Key": marshal(items.key_item(*key))}} for key in dict.fromkeys(deletes)])
        for start in range(0, len(requests), _MAX_BATCH_WRITE):
            pending: dict[str, Any] = {self.name: requests[start:start + _MAX_BATCH_WRITE]}
            attempt = 0
            while pending:
                answer = self.client.batch_write_item(RequestItems=pending)
                pending = answer.get("UnprocessedItems") or {}
                if pending:
                    attempt += 1
                    time.sleep(min(0.05 * 2**attempt, 2.0) * random.random())
        return len(requests)


_NEW = f"attribute_not_exists({items.PK})"
