"""Counting what the functions ask of AWS: requests, capacity units, bus entries, invocations.

A `Meter` hooks the boto3 clients the functions use (`runtime.store().client`,
`runtime.publisher().client`) through botocore's event system and wraps
`TemplateStack.invoke`, so every call is charged to the invocation (and phase) that made it.

Capacity units follow DynamoDB's rules, computed from the items themselves (moto does not
report consumed capacity):
- item size = attribute names + values (strings/binaries by bytes, numbers ~1 byte per two
  significant digits + 1, maps/lists 3 bytes + 1 per element);
- a write costs 1 WCU per KB of the larger of the item before and after it; a transaction
  2x per item; a global secondary index write adds the index entry (projected attributes,
  both keys, 100 bytes of overhead): 1 write when it appears, changes or disappears, 2 when
  its key moves;
- a read costs 1 RCU per 4 KB per item (BatchGetItem/GetItem, a missing key costs the
  minimum), Query sums the items of a page before rounding; eventually consistent reads
  (every GSI query) cost half.

The before-image of a write is read with a separate, uncounted client (`shadow`).
CPU time spent inside AWS calls (botocore + the emulated service + the shadow reads) is
measured per thread and subtracted from the invocation's CPU time: what remains is the
function's own work, used as its billed duration.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from leadscore.adapters.items import SUPPRESSION_PREFIX, is_history_key, partition_of

KB = 1024
RCU_BYTES = 4 * KB
INDEX_OVERHEAD = 100


# ------------------------------------------------------------------ item sizes


def _number_size(text: str) -> int:
    digits = text.lstrip("-+").lower().split("e", 1)[0].replace(".", "").strip("0") or "0"
    return math.ceil(len(digits) / 2) + 1


def attr_size(attr: Mapping[str, Any]) -> int:
    """Bytes of one DynamoDB-JSON value (without its name)."""
    ((kind, value),) = attr.items()
    if kind == "S":
        return len(value.encode("utf-8"))
    if kind == "N":
        return _number_size(str(value))
    if kind == "B":
        return len(value)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(v.encode("utf-8")) for v in value)
    if kind == "NS":
        return sum(_number_size(str(v)) for v in value)
    if kind == "BS":
        return sum(len(v) for v in value)
    if kind == "M":
        return 3 + sum(1 + len(k.encode("utf-8")) + attr_size(v) for k, v in value.items())
    if kind == "L":
        return 3 + sum(1 + attr_size(v) for v in value)
    raise ValueError(f"unknown DynamoDB type {kind}")


def item_size(item: Mapping[str, Any] | None) -> int:
    """Bytes of a marshalled item, as DynamoDB counts them (names + values)."""
    if not item:
        return 0
    return sum(len(name.encode("utf-8")) + attr_size(value) for name, value in item.items())


def write_units(*sizes: int) -> int:
    return max(1, math.ceil(max(sizes) / KB))


def read_units(size: int, consistent: bool) -> float:
    units = max(1, math.ceil(size / RCU_BYTES))
    return units if consistent else units / 2


@dataclass
class Index:
    """A global secondary index: what it keys on and what it carries."""

    name: str
    keys: tuple[str, ...]
    table_keys: tuple[str, ...]
    projection: str  # ALL | KEYS_ONLY | INCLUDE
    attributes: tuple[str, ...] = ()

    def entry(self, item: Mapping[str, Any] | None) -> dict[str, Any] | None:
        """The index entry of a marshalled item (None when the item is not in the index)."""
        if not item or any(k not in item for k in self.keys):
            return None
        if self.projection == "ALL":
            return dict(item)
        names = set(self.keys) | set(self.table_keys)
        if self.projection == "INCLUDE":
            names |= set(self.attributes)
        return {k: v for k, v in item.items() if k in names}

    def write_units(self, old: Mapping[str, Any] | None, new: Mapping[str, Any] | None) -> int:
        before, after = self.entry(old), self.entry(new)
        if before is None and after is None:
            return 0
        if before is None or after is None:
            return write_units(item_size(before or after) + INDEX_OVERHEAD)
        if any(before[k] != after[k] for k in self.keys):
            return write_units(item_size(before) + INDEX_OVERHEAD) + write_units(item_size(after) + INDEX_OVERHEAD)
        if before == after:
            return 0
        return write_units(item_size(before) + INDEX_OVERHEAD, item_size(after) + INDEX_OVERHEAD)


def table_indexes(client: Any, table: str) -> tuple[tuple[str, ...], list[Index]]:
    description = client.describe_table(TableName=table)["Table"]
    table_keys = tuple(k["AttributeName"] for k in description["KeySchema"])
    indexes = []
    for ix in description.get("GlobalSecondaryIndexes") or []:
        projection = ix.get("Projection") or {}
        indexes.append(Index(
            name=ix["IndexName"], keys=tuple(k["AttributeName"] for k in ix["KeySchema"]),
            table_keys=table_keys, projection=projection.get("ProjectionType", "ALL"),
            attributes=tuple(projection.get("NonKeyAttributes") or ())))
    return table_keys, indexes


# ------------------------------------------------------------------ invocations


@dataclass
class Invocation:
    phase: str
    function: str
    counts: Counter[str] = field(default_factory=Counter)
    cpu: float = 0.0  # process CPU seconds of the whole invocation
    aws_cpu: float = 0.0  # of which inside AWS calls (client + emulated service)
    wall: float = 0.0
    records: dict[str, Any] = field(default_factory=dict)  # what the event carried (stream batches)
    score_changed: Counter[str] = field(default_factory=Counter)  # account id -> entries this invocation

    @property
    def own_cpu(self) -> float:
        return max(0.0, self.cpu - self.aws_cpu)


def describe_stream_batch(event: Any) -> dict[str, Any]:
    """Distinct keys of a stream batch, as the aggregation folds them."""
    from leadscore.adapters.streams import parse_batch
    from leadscore.services.aggregate import AccountChanged, ContactChanged, EventInserted

    raw = (event or {}).get("Records") or []
    changes, _ = parse_batch(raw)
    contacts = {c.contact_key for c in changes if isinstance(c, EventInserted)}
    accounts: set[str] = set()
    for change in changes:
        if isinstance(change, ContactChanged):
            new, old = change.new(), change.old()
            if new.account and not new.merged_into:
                accounts.add(new.account)
            if old is not None and old.account and old.account != new.account:
                accounts.add(old.account)
    account_records = {c.account_id for c in changes if isinstance(c, AccountChanged)}
    return {"records": len(raw), "event_records": sum(1 for c in changes if isinstance(c, EventInserted)),
            "contacts": len(contacts), "accounts": len(accounts), "account_records": len(account_records)}


class Meter:
    """Charges every AWS call of the functions to the current invocation and phase."""

    def __init__(self, stack: Any, store_client: Any, events_client: Any, table_name: str) -> None:
        self.stack = stack
        self.table = table_name
        self.shadow = stack.client("dynamodb")  # not hooked: reads before-images for free
        self.table_keys, self.indexes = table_indexes(self.shadow, table_name)
        self.phase = "setup"
        self.invocations: list[Invocation] = []
        self._current: Invocation | None = None
        self._outside = Invocation("outside", "-")
        self._lock = threading.Lock()
        self._local = threading.local()
        store_client.meta.events.register("provide-client-params.dynamodb.*", self._ddb_before)
        store_client.meta.events.register("after-call.dynamodb.*", self._ddb_after)
        events_client.meta.events.register("provide-client-params.events.*", self._events_before)
        events_client.meta.events.register("after-call.events.*", self._span_end)
        self._wrap_invoke()

    # -- phases and invocations ---------------------------------------------------------

    @contextmanager
    def measuring(self, phase: str) -> Iterator[None]:
        previous, self.phase = self.phase, phase
        try:
            yield
        finally:
            self.phase = previous

    def _wrap_invoke(self) -> None:
        original = self.stack.invoke

        def invoke(logical_id: str, event: Any, context: Any = None) -> Any:
            invocation = Invocation(self.phase, logical_id)
            if logical_id == "AggregateFunction":
                invocation.records = describe_stream_batch(event)
            outer, self._current = self._current, invocation
            cpu, wall = time.process_time(), time.perf_counter()
            try:
                return original(logical_id, event, context)
            finally:
                invocation.cpu = time.process_time() - cpu
                invocation.wall = time.perf_counter() - wall
                self._current = outer
                self.invocations.append(invocation)

        self.stack.invoke = invoke

    def of(self, phase: str, function: str | None = None) -> list[Invocation]:
        return [i for i in self.invocations if i.phase == phase and (function is None or i.function == function)]

    def totals(self, phase: str, function: str | None = None) -> Counter[str]:
        total: Counter[str] = Counter()
        for invocation in self.of(phase, function):
            for key, value in invocation.counts.items():
                total[key] = max(total[key], value) if key.startswith("max_") else total[key] + value
        return total

    # -- spans (CPU inside AWS calls) ---------------------------------------------------

    def _target(self) -> Invocation:
        return self._current or self._outside

    def _span_start(self, context: dict[str, Any]) -> None:
        context["_bench_cpu"] = time.thread_time()

    def _span_end(self, context: dict[str, Any], **_: Any) -> None:
        started = context.pop("_bench_cpu", None)
        if started is not None:
            spent = time.thread_time() - started
            with self._lock:
                self._target().aws_cpu += spent

    # -- DynamoDB -------------------------------------------------------------------------

    def _key(self, item: Mapping[str, Any]) -> dict[str, Any]:
        return {k: item[k] for k in self.table_keys}

    def _key_text(self, key: Mapping[str, Any]) -> str:
        return json.dumps([key[k] for k in self.table_keys], sort_keys=True)

    def _read_partition(self, key: Mapping[str, Any]) -> str:
        """What a key read belongs to, for the read units by kind: `contact`, `account`,
        `suppression` (the erased-id check), `history`, ..."""
        pk, sk = key[self.table_keys[0]]["S"], key[self.table_keys[1]]["S"]
        if pk.startswith(SUPPRESSION_PREFIX):
            return "suppression"
        return "history" if is_history_key((pk, sk)) else partition_of(pk)

    def _image(self, table: str, key: Mapping[str, Any]) -> dict[str, Any] | None:
        answer = self.shadow.get_item(TableName=table, Key=dict(key), ConsistentRead=True)
        return answer.get("Item")

    def _ddb_before(self, params: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        self._span_start(context)
        operation = model.name
        counts: Counter[str] = Counter({"ddb_requests": 1, f"ddb:{operation}": 1})
        pending: list[tuple[str, dict[str, Any], dict[str, Any] | None, dict[str, Any] | None, int]] = []
        if operation == "PutItem":
            item = params["Item"]
            pending.append((params["TableName"], self._key(item), self._image(params["TableName"], self._key(item)),
                            item, 1))
        elif operation in ("UpdateItem", "DeleteItem"):
            pending.append((params["TableName"], params["Key"], self._image(params["TableName"], params["Key"]),
                            None, 1))
        elif operation == "TransactWriteItems":
            for action in params["TransactItems"]:
                ((kind, body),) = action.items()
                key = self._key(body["Item"]) if kind == "Put" else body["Key"]
                new = body["Item"] if kind == "Put" else None
                pending.append((body["TableName"], key, self._image(body["TableName"], key), new, 2))
        elif operation == "BatchWriteItem":
            for table, requests in params["RequestItems"].items():
                for request in requests:
                    if "PutRequest" in request:
                        item = request["PutRequest"]["Item"]
                        pending.append((table, self._key(item), self._image(table, self._key(item)), item, 1))
                    else:
                        key = request["DeleteRequest"]["Key"]
                        pending.append((table, key, self._image(table, key), None, 1))
        elif operation == "BatchGetItem":
            counts["keys_read"] += sum(len(t["Keys"]) for t in params["RequestItems"].values())
        elif operation == "GetItem":
            counts["keys_read"] += 1
        context["_bench_ddb"] = (operation, dict(params), pending)
        with self._lock:
            self._target().counts.update(counts)

    def _ddb_after(self, http_response: Any, parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        stashed = context.pop("_bench_ddb", None)
        try:
            if stashed is not None:
                self._charge(stashed, parsed, ok=http_response.status_code < 300)
        finally:
            self._span_end(context)

    def _charge(self, stashed: tuple[str, dict[str, Any], list[Any]], parsed: dict[str, Any], ok: bool) -> None:
        operation, params, pending = stashed
        counts: Counter[str] = Counter()
        for table, key, old, new, factor in pending:
            if new is None and operation == "UpdateItem":
                new = self._image(table, key) if ok else old
            elif not ok:
                new = old  # a failed condition changes nothing (its WCU is still consumed)
            size = max(item_size(old), item_size(new if new is not None else old))
            units = write_units(size) * factor
            partition = partition_of(key[self.table_keys[0]]["S"])
            if is_history_key((key[self.table_keys[0]]["S"], key[self.table_keys[1]]["S"])):
                partition = "history"  # an account's history item: counted apart from the account's own writes
                counts["max_history_bytes"] = max(counts["max_history_bytes"], size)
            counts["wcu"] += units
            counts[f"wcu:{partition}"] += units
            counts["items_written"] += 1
            counts[f"write:{partition}"] += 1
            if partition != "history":
                counts["max_item_bytes"] = max(counts["max_item_bytes"], size)
            counts[f"max_bytes:{partition}"] = max(counts[f"max_bytes:{partition}"], size)
            if ok and table == self.table:
                after = new if operation != "DeleteItem" else None
                gsi = sum(ix.write_units(old, after) for ix in self.indexes)
                counts["gsi_wcu"] += gsi
                counts["wcu"] += gsi
        if not ok:
            counts["ddb_failed"] += 1
        if operation == "GetItem":
            consistent = bool(params.get("ConsistentRead"))
            units = read_units(item_size(parsed.get("Item")), consistent)
            counts["rcu"] += units  # type: ignore[assignment]
            counts[f"rcu:{self._read_partition(params['Key'])}"] += units  # type: ignore[assignment]
            counts["items_read"] += 1 if parsed.get("Item") else 0
        elif operation == "BatchGetItem":
            for table, request in params["RequestItems"].items():
                consistent = bool(request.get("ConsistentRead"))
                found = (parsed.get("Responses") or {}).get(table, [])
                unprocessed = {self._key_text(k) for k in
                               ((parsed.get("UnprocessedKeys") or {}).get(table) or {}).get("Keys", [])}
                sizes = {self._key_text(self._key(i)): item_size(i) for i in found}
                for key in request["Keys"]:
                    text = self._key_text(key)
                    if text in unprocessed:
                        continue
                    units = read_units(sizes.get(text, 0), consistent)  # a missing key costs the minimum
                    counts["rcu"] += units  # type: ignore[assignment]
                    counts[f"rcu:{self._read_partition(key)}"] += units  # type: ignore[assignment]
                    counts[f"keys_read:{self._read_partition(key)}"] += 1
                counts["items_read"] += len(found)
        elif operation in ("Query", "Scan"):
            items = parsed.get("Items") or []
            consistent = bool(params.get("ConsistentRead")) and not params.get("IndexName")
            counts["rcu"] += read_units(sum(item_size(i) for i in items), consistent)  # type: ignore[assignment]
            counts["items_read"] += len(items)
        with self._lock:
            target = self._target()
            for name in [k for k in counts if k.startswith("max_")]:  # the largest, not a sum
                target.counts[name] = max(target.counts[name], counts.pop(name))
            target.counts.update(counts)

    # -- SQS (the routed queue) -----------------------------------------------------------

    def watch_sqs(self, client: Any) -> None:
        """Count the SQS requests a function makes through `client` (the routed queue's)."""
        client.meta.events.register("provide-client-params.sqs.*", self._sqs_before)
        client.meta.events.register("after-call.sqs.*", self._span_end)

    def _sqs_before(self, params: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        self._span_start(context)
        with self._lock:
            self._target().counts.update({"sqs_requests": 1, f"sqs:{model.name}": 1})

    # -- EventBridge ----------------------------------------------------------------------

    def _events_before(self, params: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        self._span_start(context)
        if model.name != "PutEvents":
            return
        counts: Counter[str] = Counter({"put_events_requests": 1})
        changed: Counter[str] = Counter()
        for entry in params.get("Entries", []):
            counts["bus_entries"] += 1
            counts[f"bus:{entry.get('DetailType')}"] += 1
            if entry.get("DetailType") == "Account Score Changed":
                detail = json.loads(entry.get("Detail") or "{}")
                changed[str(detail.get("accountId"))] += 1
        with self._lock:
            target = self._target()
            target.counts.update(counts)
            target.score_changed.update(changed)


def as_number(value: Any) -> float:
    return float(value) if isinstance(value, int | float | Decimal) else 0.0
