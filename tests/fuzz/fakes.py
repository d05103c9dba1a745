"""An in-memory DynamoDB for the fuzz suite: the real `leadscore.adapters.storage.Store` over a fake
client, so items are built and marshalled by the shipped code and only the service is fake.

The fake enforces what the real service refuses (a `ValidationException`, which the
handler must never let through as a 5xx):
- a partition key of 1..2,048 bytes and a sort key of 1..1,024 bytes of UTF-8;
- an item of at most 400 KB (names and values, as DynamoDB counts them);
- strings, names and map keys that are valid UTF-8 (a lone surrogate is not);
- numbers of at most 38 significant digits within 1E-130..9.99E+125, and finite;
- nesting of at most 32 levels.

It counts what a request wrote: accepted-event items (`k == "E"`) and rejection records
(`k == "R"`), whatever call wrote them (PutItem, BatchWriteItem, TransactWriteItems).
"""

from __future__ import annotations

import threading
from collections import Counter
from decimal import Decimal, InvalidOperation
from typing import Any

from botocore.exceptions import ClientError

MAX_PARTITION_KEY_BYTES = 2048
MAX_SORT_KEY_BYTES = 1024
MAX_ITEM_BYTES = 400 * 1024
MAX_DEPTH = 32


class _Exceptions:
    class ConditionalCheckFailedException(ClientError):
        pass

    class ValidationException(ClientError):
        pass

    class TransactionCanceledException(ClientError):
        pass


def _validation(operation: str, message: str) -> ClientError:
    return _Exceptions.ValidationException({"Error": {"Code": "ValidationException", "Message": message}}, operation)


def _utf8_len(text: str, operation: str, what: str) -> int:
    try:
        return len(text.encode("utf-8"))
    except UnicodeEncodeError:
        raise _validation(operation, f"{what} is not valid UTF-8 (a lone surrogate)") from None


def _number_size(text: str, operation: str) -> int:
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise _validation(operation, f"the number {text[:40]!r} is not a number") from None
    if not number.is_finite():
        raise _validation(operation, f"the number {text[:40]!r} is not finite")
    if number != 0:
        sign, digits, exponent = number.normalize().as_tuple()
        assert isinstance(exponent, int)
        if len(digits) > 38:
            raise _validation(operation, "a number has more than 38 significant digits")
        adjusted = number.adjusted()
        if adjusted > 125 or adjusted < -130:
            raise _validation(operation, "a number is out of DynamoDB's range")
    return len(text.lstrip("-").replace(".", "")) // 2 + 1


def _attr_size(attr: dict[str, Any], operation: str, depth: int) -> int:
    if depth > MAX_DEPTH:
        raise _validation(operation, f"nesting is over {MAX_DEPTH} levels")
    ((kind, value),) = attr.items()
    if kind == "S":
        if not isinstance(value, str):
            raise _validation(operation, "an S value is not a string")
        return _utf8_len(value, operation, "a string value")
    if kind == "N":
        return _number_size(str(value), operation)
    if kind == "B":
        return len(value)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "M":
        size = 3
        for key, inner in value.items():
            size += _utf8_len(key, operation, "a map key") + _attr_size(inner, operation, depth + 1) + 1
        return size
    if kind == "L":
        return 3 + sum(_attr_size(inner, operation, depth + 1) + 1 for inner in value)
    if kind in ("SS", "NS", "BS"):
        if not value:
            raise _validation(operation, "an empty set")
        if kind == "SS":
            return sum(_utf8_len(v, operation, "a set member") for v in value)
        if kind == "NS":
            return sum(_number_size(v, operation) for v in value)
        return sum(len(v) for v in value)
    raise _validation(operation, f"unknown attribute type {kind}")


def check_key(item: dict[str, Any], operation: str) -> None:
    """Raise a ValidationException where DynamoDB would refuse this (marshalled) key: on a
    read as on a write."""
    for key_name, limit in (("pk", MAX_PARTITION_KEY_BYTES), ("sk", MAX_SORT_KEY_BYTES)):
        attr = item.get(key_name)
        if not attr or "S" not in attr:
            raise _validation(operation, f"the key attribute {key_name} is missing or not a string")
        size = _utf8_len(attr["S"], operation, f"the key {key_name}")
        if not 1 <= size <= limit:
            raise _validation(operation, f"the key {key_name} is {size} bytes; the limit is {limit}")


def check_item(item: dict[str, Any], operation: str) -> None:
    """Raise a ValidationException where DynamoDB would refuse this (marshalled) item."""
    check_key(item, operation)
    total = 0
    for name, attr in item.items():
        total += _utf8_len(name, operation, "an attribute name") + _attr_size(attr, operation, 1)
    if total > MAX_ITEM_BYTES:
        raise _validation(operation, f"the item is {total} bytes; the limit is 400 KB")


class FakeDynamoDB:
    """The few DynamoDB calls collection, the read API and feedback make, in memory, with the
    service's limits; conditions: `attribute_not_exists(pk)` and the version check
    (`ver = :expected`), a transaction all or nothing."""

    exceptions = _Exceptions

    def __init__(self) -> None:
        self.items: dict[tuple[str, str], dict[str, Any]] = {}
        self.calls: Counter[str] = Counter()
        self.writes: Counter[str] = Counter()  # by item kind: "E" accepted events, "R" rejections
        self._lock = threading.Lock()

    # -- what the counters mean ----------------------------------------------------------------

    @property
    def event_writes(self) -> int:
        return self.writes["E"]

    @property
    def rejection_writes(self) -> int:
        return self.writes["R"]

    @property
    def total_writes(self) -> int:
        return sum(self.writes.values())

    def stored(self, kind: str) -> list[dict[str, Any]]:
        from leadscore.adapters.storage import unmarshal

        return [unmarshal(item) for item in self.items.values() if item.get("k", {}).get("S") == kind]

    # -- the calls -------------------------------------------------------------------------------

    def _holds(self, item: dict[str, Any], operation: str, condition: str | None,
               values: dict[str, Any] | None) -> bool:
        check_item(item, operation)
        if condition is None:
            return True
        known = self.items.get((item["pk"]["S"], item["sk"]["S"]))
        if condition == "attribute_not_exists(pk)":
            return known is None
        if condition == "ver = :expected" and values is not None:
            return known is not None and known.get("ver") == values[":expected"]
        raise _validation(operation, f"the fake knows no condition {condition!r}")

    def _write(self, item: dict[str, Any], operation: str, condition: str | None,
               values: dict[str, Any] | None = None) -> None:
        holds = self._holds(item, operation, condition, values)
        self.writes[item.get("k", {}).get("S", "?")] += 1  # a refused conditional write is billed too
        if not holds:
            raise _Exceptions.ConditionalCheckFailedException(
                {"Error": {"Code": "ConditionalCheckFailedException", "Message": "exists"}}, operation)
        self.items[(item["pk"]["S"], item["sk"]["S"])] = item

    def put_item(self, *, TableName: str, Item: dict[str, Any], ConditionExpression: str | None = None,
                 **_: Any) -> dict[str, Any]:
        with self._lock:
            self.calls["PutItem"] += 1
            self._write(Item, "PutItem", ConditionExpression)
        return {}

    def batch_write_item(self, *, RequestItems: dict[str, list[dict[str, Any]]], **_: Any) -> dict[str, Any]:
        with self._lock:
            self.calls["BatchWriteItem"] += 1
            requests = [r for table in RequestItems.values() for r in table]
            if len(requests) > 25:
                raise _validation("BatchWriteItem", "more than 25 requests")
            for request in requests:
                if "PutRequest" in request:
                    self._write(request["PutRequest"]["Item"], "BatchWriteItem", None)
        return {"UnprocessedItems": {}}

    def transact_write_items(self, *, TransactItems: list[dict[str, Any]], **_: Any) -> dict[str, Any]:
        with self._lock:
            self.calls["TransactWriteItems"] += 1
            if len(TransactItems) > 100:
                raise _validation("TransactWriteItems", "more than 100 actions")
            puts = [action["Put"] for action in TransactItems if "Put" in action]
            if len(puts) != len(TransactItems):
                raise _validation("TransactWriteItems", "the fake knows Put actions only")
            if not all([self._holds(put["Item"], "TransactWriteItems", put.get("ConditionExpression"),
                                    put.get("ExpressionAttributeValues")) for put in puts]):
                raise _Exceptions.TransactionCanceledException(
                    {"Error": {"Code": "TransactionCanceledException", "Message": "a condition failed"}},
                    "TransactWriteItems")
            for put in puts:
                self._write(put["Item"], "TransactWriteItems", None)
        return {}

    def get_item(self, *, TableName: str, Key: dict[str, Any], **_: Any) -> dict[str, Any]:
        with self._lock:
            self.calls["GetItem"] += 1
            check_key(Key, "GetItem")
            item = self.items.get((Key["pk"]["S"], Key["sk"]["S"]))
        return {"Item": item} if item else {}

    def batch_get_item(self, *, RequestItems: dict[str, dict[str, Any]], **_: Any) -> dict[str, Any]:
        with self._lock:
            self.calls["BatchGetItem"] += 1
            found: dict[str, list[dict[str, Any]]] = {}
            for table, request in RequestItems.items():
                if len(request["Keys"]) > 100:
                    raise _validation("BatchGetItem", "more than 100 keys")
                for key in request["Keys"]:
                    check_key(key, "BatchGetItem")
                found[table] = [self.items[k] for k in ((key["pk"]["S"], key["sk"]["S"]) for key in request["Keys"])
                                if k in self.items]
        return {"Responses": found, "UnprocessedKeys": {}}

    def query(self, *, TableName: str, KeyConditionExpression: str, ExpressionAttributeValues: dict[str, Any],
              ScanIndexForward: bool = True, Limit: int | None = None, **_: Any) -> dict[str, Any]:
        """A partition's items whose sort key begins with a prefix, or lies between two (the
        queries the read API makes: feedback, events, history)."""
        with self._lock:
            self.calls["Query"] += 1
            pk = ExpressionAttributeValues[":pk"]["S"]
            if KeyConditionExpression == "pk = :pk AND begins_with(sk, :prefix)":
                prefix = ExpressionAttributeValues[":prefix"]["S"]
                check_key({"pk": {"S": pk}, "sk": {"S": prefix or "-"}}, "Query")
                keys = sorted(k for k in self.items if k[0] == pk and k[1].startswith(prefix))
            elif KeyConditionExpression == "pk = :pk AND sk BETWEEN :low AND :high":
                low, high = ExpressionAttributeValues[":low"]["S"], ExpressionAttributeValues[":high"]["S"]
                if low > high:  # as DynamoDB refuses it
                    raise _validation("Query", "Invalid KeyConditionExpression: the BETWEEN bounds are reversed")
                check_key({"pk": {"S": pk}, "sk": {"S": low}}, "Query")
                keys = sorted(k for k in self.items if k[0] == pk and low <= k[1] <= high)
            else:
                raise _validation("Query", f"the fake knows no key condition {KeyConditionExpression!r}")
            if not ScanIndexForward:
                keys.reverse()
            items = [self.items[k] for k in keys[:Limit]]
        return {"Items": items, "Count": len(items)}


def fake_store() -> tuple[Any, FakeDynamoDB]:
    """(the shipped Store over a fresh fake table, the fake, to count and read back)."""
    from leadscore.adapters.storage import Store

    client = FakeDynamoDB()
    return Store("fuzz-table", client=client), client
