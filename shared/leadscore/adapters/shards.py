"""Previews and calibration at any size: a map/reduce over parallel Scan segments, the same
steps on one machine (local/evidence.py runs them in processes) and on AWS (a Step Functions
map, each step a Lambda call). Every step takes and returns JSON; in between, named blobs in a
`ShardStore` (a folder, or S3).

1. `scan_segment(table, store, job, segment)`: one segment of a parallel Scan (consistent
   reads), its items bucketed into `shards` by a stable hash of their partition key and
   written as `<run>/items/<shard>/<segment>` (gzip JSON lines of the items as DynamoDB's JSON
   has them). DynamoDB does not promise that a segment holds a partition's whole item
   collection, so nothing is grouped until every segment is in: a shard then holds whole
   partitions.
2. (calibration) `find_outcomes(table, store, job, shard)`: the outcome records a shard holds
   (`leadscore.services.outcomes.outcomes_in(snapshot)` when that module is there), then
   `merge_outcomes(store, job)` merges them with the job's (the file's row wins for its account)
   into `<run>/outcomes.json`.
3. `replay_shard(table, store, job, shard)`: every person whose contact lives in the shard
   replayed with the live code; an id merged into it from another shard is read from the live
   table (read-only: the contacts in batches of 100, the events of an id that has some by
   Query; the scan writes each shard's ids with a contact and with events,
   `<run>/keys/<shard>/<segment>`, so what is not there is not asked for). Writes the shard's
   partial: each side's contact scores, rule totals and account entries (preview), or each
   closed account's entries, fired rules and the firmographics each person had given it as of
   its close, with its stored traits (calibration).
4. `reduce(store, job)`: the partials merged into the report, exactly as the one-process
   preview / calibration shapes it; also written as `<run>/report.json`.

Each step overwrites its own blobs (same names), so a step run again (a retry, a replay)
changes nothing; a step that finds an earlier step's blob missing says which and stops.

The job (`new_job`): `{"kind": "preview"|"calibrate", "run", "segments", "shards", "asOf",
"candidate": {"scoring": yaml, "routing": yaml|null}, "outcomes": [{"accountId", "outcome",
"closedAt"}], "target": [lo, hi]}`, with an optional "current": {"scoring", "routing"} (yaml
text) or {"dir"} (a config folder this machine has): by default the deployment's own config
is the current side.
"""

from __future__ import annotations

import base64
import functools
import gzip
import io
import json
import os
import tempfile
import uuid
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from leadscore.adapters import items
from leadscore.adapters.snapshot import TableSnapshot
from leadscore.adapters.table import Table, python_value, unmarshal
from leadscore.domain.records import Contact, StoredEvent, VersionConflict

if TYPE_CHECKING:
    from leadscore.rulesfiles.loading import Config
    from leadscore.rulesfiles.routing import RoutingConfig
    from leadscore.services.calibrate import Outcome

KINDS = ("preview", "calibrate")
#: The longest window a preview replays (days): past it, every retained event.
MAX_DAYS = 3650
#: Scan page size in items (None: DynamoDB's own, a page of up to 1 MB).
PAGE_SIZE: int | None = None
_WIDTH = 5  # digits of the shard and segment numbers in blob names (names sort as numbers)


# ------------------------------------------------------------------------------ the store


class ShardStore(Protocol):
    """Named blobs between the steps."""

    def put(self, name: str, data: bytes) -> None: ...

    def get(self, name: str) -> bytes:
        """The blob; KeyError when there is none of that name."""
        ...

    def names(self, prefix: str) -> list[str]:
        """The names starting with `prefix`, sorted."""
        ...


class LocalShardStore:
    """Blobs as files under a folder (a name's slashes are folders); each written whole or
    not at all (a temporary file renamed), so a process killed mid-write leaves no half blob."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def put(self, name: str, data: bytes) -> None:
        target = self.path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        partial.write_bytes(data)
        os.replace(partial, target)

    def get(self, name: str) -> bytes:
        try:
            return (self.path / name).read_bytes()
        except FileNotFoundError:
            raise KeyError(name) from None

    def names(self, prefix: str) -> list[str]:
        if not self.path.is_dir():
            return []
        found = (p.relative_to(self.path).as_posix() for p in self.path.rglob("*")
                 if p.is_file() and not p.name.startswith("."))
        return sorted(n for n in found if n.startswith(prefix))


class S3ShardStore:
    """Blobs as S3 objects under `prefix` of `bucket` (the client handed in)."""

    def __init__(self, client: Any, bucket: str, prefix: str = "") -> None:
        self.client, self.bucket, self.prefix = client, bucket, prefix

    def put(self, name: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=self.prefix + name, Body=data)

    def get(self, name: str) -> bytes:
        try:
            answer = self.client.get_object(Bucket=self.bucket, Key=self.prefix + name)
        except self.client.exceptions.NoSuchKey:
            raise KeyError(name) from None
        data: bytes = answer["Body"].read()
        return data

    def names(self, prefix: str) -> list[str]:
        found: list[str] = []
        request: dict[str, Any] = {"Bucket": self.bucket, "Prefix": self.prefix + prefix}
        while True:
            page = self.client.list_objects_v2(**request)
            found += [entry["Key"][len(self.prefix):] for entry in page.get("Contents", [])]
            if not page.get("IsTruncated"):
                return sorted(found)
            request["ContinuationToken"] = page["NextContinuationToken"]


def _put_json(store: ShardStore, name: str, value: Any) -> None:
    # mtime=0: the same content, the same bytes (a step run again writes what it wrote)
    store.put(name, gzip.compress(json.dumps(value, separators=(",", ":")).encode(), compresslevel=3, mtime=0))


def _get_json(store: ShardStore, name: str) -> Any:
    return json.loads(gzip.decompress(store.get(name)).decode())


def items_name(run: str, shard: int, segment: int) -> str:
    return f"{run}/items/{shard:0{_WIDTH}d}/{segment:0{_WIDTH}d}"


def keys_name(run: str, shard: int, segment: int) -> str:
    return f"{run}/keys/{shard:0{_WIDTH}d}/{segment:0{_WIDTH}d}"


def partial_name(run: str, shard: int) -> str:
    return f"{run}/partials/{shard:0{_WIDTH}d}"


def outcomes_name(run: str, shard: int) -> str:
    return f"{run}/outcomes/{shard:0{_WIDTH}d}"


def groups_name(run: str, shard: int) -> str:
    return f"{run}/groups/{shard:0{_WIDTH}d}"


def merged_outcomes_name(run: str) -> str:
    return f"{run}/outcomes.json"


def report_name(run: str) -> str:
    return f"{run}/report.json"


# ------------------------------------------------------------------------------ the job


def new_job(kind: str, *, segments: int, shards: int | None = None, as_of: datetime,
            candidate_scoring: str | None = None, candidate_routing: str | None = None,
            outcomes: Iterable[Outcome] = (), target: Sequence[float] = (0.10, 0.15),
            current: Mapping[str, str | None] | None = None, run: str | None = None,
            days: int | None = None) -> dict[str, Any]:
    """A job as every step takes it (JSON). The candidate rules (preview) are validated here:
    ConfigError names the key path and the reason."""
    job: dict[str, Any] = {
        "kind": kind, "run": run or f"{kind}-{as_of:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}",
        "segments": segments, "shards": shards or segments, "asOf": as_of.isoformat()}
    if current is not None:
        job["current"] = dict(current)
    if kind == "preview":
        job["candidate"] = {"scoring": candidate_scoring, "routing": candidate_routing}
        if days is not None:
            job["days"] = days
    elif kind == "calibrate":
        job["outcomes"] = [_outcome_doc(o) for o in outcomes]
        job["target"] = [float(target[0]), float(target[1])]
    check_job(job)
    if kind == "preview":
        configs(job)  # validated before any step runs
    return job


def check_job(job: Mapping[str, Any]) -> None:
    """ValueError naming the first field of `job` that no step could run with."""
    def need(ok: bool, field: str, what: str) -> None:
        if not ok:
            raise ValueError(f"job.{field}: {what}")

    need(isinstance(job, Mapping), "(job)", "a JSON object")
    need(job.get("kind") in KINDS, "kind", f"one of {', '.join(KINDS)}")
    need(isinstance(job.get("run"), str) and bool(job["run"]) and "/" not in job["run"]
         and not job["run"].startswith("."), "run", "a name (no slash)")
    for field in ("segments", "shards"):
        value = job.get(field)
        need(isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 1_000_000, field,
             "a whole number from 1 to 1000000")
    try:
        datetime.fromisoformat(str(job.get("asOf")))
    except ValueError:
        need(False, "asOf", "an ISO-8601 time")
    if job["kind"] == "preview":
        candidate = job.get("candidate")
        need(isinstance(candidate, Mapping) and isinstance(candidate.get("scoring"), str), "candidate.scoring",
             "the candidate scoring.yaml's text")
        days = job.get("days")
        need(days is None or (isinstance(days, int) and not isinstance(days, bool) and 1 <= days <= MAX_DAYS),
             "days", f"a whole number of days from 1 to {MAX_DAYS}, or none for every retained event")
    else:
        need(isinstance(job.get("outcomes"), list), "outcomes", "a list of {accountId, outcome, closedAt}")
        target = job.get("target")
        need(isinstance(target, list) and len(target) == 2 and all(isinstance(t, int | float) for t in target)
             and 0 < target[0] <= target[1] <= 1, "target", "[low, high] close rates, 0 < low <= high <= 1")


def _outcome_doc(outcome: Outcome) -> dict[str, Any]:
    doc = {"accountId": outcome.account_id, "outcome": outcome.outcome,
           "closedAt": outcome.closed_at.isoformat() if outcome.closed_at else None}
    for name, key in (("source", "source"), ("note", "note"), ("group_id", "groupId")):
        if getattr(outcome, name, None):  # services/outcomes.py's FoundOutcome: where it was read
            doc[key] = getattr(outcome, name)
    return doc


def _outcomes(docs: Iterable[Mapping[str, Any]]) -> list[Outcome]:
    from leadscore.services.calibrate import Outcome  # cold start: only a calibration's steps read outcomes

    return [Outcome(doc["accountId"], doc["outcome"],
                    datetime.fromisoformat(doc["closedAt"]) if doc.get("closedAt") else None) for doc in docs]


@functools.lru_cache(maxsize=8)
def _rules_from_text(kind: str, text: str) -> Any:
    # cold start: the rules loader only when a job's yaml is read (once per text and process)
    from leadscore.rulesfiles.loading import load_routing, load_scoring

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"{kind}.yaml"
        path.write_text(text, encoding="utf-8")
        return (load_scoring if kind == "scoring" else load_routing)(path)


def configs(job: Mapping[str, Any]) -> tuple[Config, Config, tuple[RoutingConfig, RoutingConfig]]:
    """The current config (the job's "current" yaml, else the deployment's own), the candidate
    (the job's scoring.yaml with the current sources) and both sides' routing."""
    from dataclasses import replace  # cold start: only the steps read configs

    from leadscore.rulesfiles.loading import load_config, load_routing  # cold start: as above

    given = job.get("current") or {}
    current = load_config(given["dir"]) if given.get("dir") else load_config()
    if given.get("scoring"):
        current = replace(current, scoring=_rules_from_text("scoring", given["scoring"]))
    routing_now = (_rules_from_text("routing", given["routing"]) if given.get("routing")
                   else load_routing(current.dir / "routing.yaml"))
    candidate = current
    routing = (routing_now, routing_now)
    spec = job.get("candidate") or {}
    if spec.get("scoring"):
        candidate = replace(current, scoring=_rules_from_text("scoring", spec["scoring"]))
    if spec.get("routing"):
        routing = (routing_now, _rules_from_text("routing", spec["routing"]))
    return current, candidate, routing


# --------------------------------------------------------------------- 1. scan a segment


def _wire(value: bytes) -> str:
    """A binary attribute in JSON: base64, as DynamoDB's own JSON has it."""
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode("ascii")
    raise TypeError(f"{type(value).__name__} is not JSON")


def _unwire(value: dict[str, Any]) -> dict[str, Any]:
    if "B" in value:
        return {"B": base64.b64decode(value["B"])}
    if "BS" in value:
        return {"BS": [base64.b64decode(v) for v in value["BS"]]}
    if "M" in value:
        return {"M": {k: _unwire(v) for k, v in value["M"].items()}}
    if "L" in value:
        return {"L": [_unwire(v) for v in value["L"]]}
    return value


def _number(text: str) -> int | float:
    """A number as table.python_value gives it: an int when its text is whole, else a float."""
    value = Decimal(text)
    return int(value) if value == value.to_integral_value() and "." not in str(value) else float(value)


def _value(attribute: dict[str, Any]) -> Any:
    """One attribute of a blob's line as `unmarshal` reads it (the common types decoded here,
    a set through boto3's deserializer: what the replay step spends its reading on)."""
    if "S" in attribute:
        return attribute["S"]
    if "N" in attribute:
        return _number(attribute["N"])
    if "M" in attribute:
        return {k: _value(v) for k, v in attribute["M"].items()}
    if "L" in attribute:
        return [_value(v) for v in attribute["L"]]
    if "BOOL" in attribute:
        return attribute["BOOL"]
    if "NULL" in attribute:
        return None
    if "B" in attribute:
        return base64.b64decode(attribute["B"])
    return unmarshal({"_": _unwire(attribute)})["_"]


def decode_line(line: str | bytes) -> dict[str, Any]:
    """An item of a shard's blob, as `unmarshal` of the item Scan returned would give it."""
    return {name: _value(attribute) for name, attribute in json.loads(line).items()}


class _Keys(Mapping[str, Any]):
    """A raw item read as a mapping only as far as asked (its key attributes)."""

    def __init__(self, raw: Mapping[str, Any]) -> None:
        self.raw = raw

    def __getitem__(self, name: str) -> Any:
        return python_value(unmarshal({name: self.raw[name]})[name])

    def __iter__(self) -> Iterator[str]:
        return iter(self.raw)

    def __len__(self) -> int:
        return len(self.raw)


def shard_of(partition_key: str, shards: int) -> int:
    """The shard of a partition: a stable hash (the same in every process and run)."""
    return zlib.crc32(partition_key.encode("utf-8", "surrogatepass")) % shards


def scan_segment(table: Table, store: ShardStore, job: Mapping[str, Any], segment: int, *,
                 page_size: int | None = PAGE_SIZE) -> dict[str, Any]:
    """Segment `segment` of the job's parallel Scan into one blob per shard (every shard's,
    empty ones too, so a segment scanned again replaces all it wrote). Counts its items and
    events."""
    check_job(job)
    segments, shards = job["segments"], job["shards"]
    if not (isinstance(segment, int) and 0 <= segment < segments):
        raise ValueError(f"segment: {segment!r} is not one of 0..{segments - 1}")
    buffers = [io.BytesIO() for _ in range(shards)]
    writers = [gzip.GzipFile(fileobj=buffer, mode="wb", compresslevel=3, mtime=0) for buffer in buffers]
    request: dict[str, Any] = {"TableName": table.name, "ConsistentRead": True,
                               "Segment": segment, "TotalSegments": segments}
    if page_size is not None:
        request["Limit"] = page_size
    counts = {"segment": segment, "items": 0, "events": 0, "pages": 0}
    #: each shard's ids (contact keys) with a contact, and with events, in this segment
    ids: list[tuple[set[str], set[str]]] = [(set(), set()) for _ in range(shards)]
    while True:
        answer = table.client.scan(**request)
        counts["pages"] += 1
        for raw in answer.get("Items", []):
            key = items.table_key(_Keys(raw))
            shard = shard_of(key[0], shards)
            writers[shard].write(json.dumps(raw, default=_wire, separators=(",", ":")).encode() + b"\n")
            counts["items"] += 1
            event = items.is_event_key(key)
            counts["events"] += event
            if event:
                ids[shard][1].add(items.contact_key_of(key[0]))
            elif items.is_contact_key(key):
                ids[shard][0].add(items.contact_key_of(key[0]))
        if "LastEvaluatedKey" not in answer:
            break
        request["ExclusiveStartKey"] = answer["LastEvaluatedKey"]
    for shard, (writer, buffer) in enumerate(zip(writers, buffers, strict=True)):
        writer.close()
        store.put(items_name(job["run"], shard, segment), buffer.getvalue())
        _put_json(store, keys_name(job["run"], shard, segment),
                  {"contacts": sorted(ids[shard][0]), "events": sorted(ids[shard][1])})
    return counts


def shard_items(store: ShardStore, job: Mapping[str, Any], shard: int) -> Iterator[dict[str, Any]]:
    """Every item of a shard, from every segment's blob (RuntimeError naming a segment not
    scanned yet)."""
    names = [items_name(job["run"], shard, segment) for segment in range(job["segments"])]
    present = set(store.names(f"{job['run']}/items/{shard:0{_WIDTH}d}/"))
    missing = [n for n, name in enumerate(names) if name not in present]
    if missing:
        raise RuntimeError(f"run {job['run']}: segment(s) {', '.join(map(str, missing[:10]))} not scanned yet "
                           "(scan every segment before the shards are read)")
    for name in names:
        for line in gzip.decompress(store.get(name)).decode().splitlines():  # str: json reads it faster
            if line:
                yield decode_line(line)


# --------------------------------------------------------------- a shard, whole partitions


class ShardView:
    """ports.RebuildStore over one shard (read-only): its partitions from the shard's snapshot,
    any other partition from the live table (a person with an id merged in from another shard;
    `foreign_reads` counts the requests). The Scan's index of every shard's ids (`ids_of`: those
    with a contact, those with events) spares the reads of what is not there: most ids an
    identify links (`e:<email>`) are a stub contact with no events, or nothing at all."""

    def __init__(self, snapshot: TableSnapshot, shard: int, shards: int, table: Table | None,
                 ids_of: Callable[[int], tuple[set[str], set[str]]] | None = None) -> None:
        self.snapshot, self.shard, self.shards, self.table = snapshot, shard, shards, table
        self.foreign_reads = 0
        self._live: Any = None
        self._ids_of = ids_of
        self._ids: dict[int, tuple[set[str], set[str]]] = {}
        self._contacts: dict[str, Contact | None] = {}  # other shards' contacts read so far

    def _mine(self, key: str) -> bool:
        return shard_of(items.contact_pk(key), self.shards) == self.shard

    def _has(self, key: str, what: int) -> bool:
        """Whether another shard's id had a contact (what=0) or events (what=1) when scanned
        (True when there is no index to tell)."""
        if self._ids_of is None:
            return True
        shard = shard_of(items.contact_pk(key), self.shards)
        if shard not in self._ids:
            self._ids[shard] = self._ids_of(shard)
        return key in self._ids[shard][what]

    def _store(self) -> Any:
        if self._live is None:
            if self.table is None:
                raise RuntimeError("a person spans shards and no table was given to read the rest from")
            from leadscore.adapters.storage import Store  # cold start: only a person spanning shards needs it

            self._live = Store(self.table)
        self.foreign_reads += 1
        return self._live

    def prefetch(self) -> None:
        """Read, in batches of 100, the other shards' contacts this shard's events link to (the
        ids an identify or alias names) or its contacts are merged into: one BatchGetItem per
        100 instead of a read per person."""
        from leadscore.engine.contacts import linked_keys  # cold start: the replay step only

        wanted = {key for events in self.snapshot.events.values() for stored in events
                  for key in linked_keys(stored.event)}
        wanted |= {c.merged_into for c in self.snapshot.contacts.values() if c.merged_into}
        self._foreign_contacts(sorted(wanted), batch=100)

    def _foreign_contacts(self, keys: Iterable[str], batch: int = 100) -> dict[str, Contact]:
        todo = [k for k in dict.fromkeys(keys) if not self._mine(k) and k not in self._contacts]
        for key in todo:
            self._contacts[key] = None
        todo = [k for k in todo if self._has(k, 0)]
        for start in range(0, len(todo), batch):
            self._contacts.update(self._store().load_contacts(todo[start:start + batch]))
        return {k: c for k in keys if (c := self._contacts.get(k)) is not None}

    def load_contact(self, key: str) -> Contact | None:
        if self._mine(key):
            return self.snapshot.load_contact(key)
        if key not in self._contacts:  # one id not fetched up front (a merge followed): one GetItem
            self._contacts[key] = self._store().load_contact(key) if self._has(key, 0) else None
        return self._contacts[key]

    def load_contacts(self, keys: Iterable[str]) -> dict[str, Contact]:
        keys = list(dict.fromkeys(keys))
        found = self.snapshot.load_contacts(k for k in keys if self._mine(k))
        found.update(self._foreign_contacts(k for k in keys if not self._mine(k)))
        return found

    def load_events(self, contact_key: str) -> list[StoredEvent]:
        if self._mine(contact_key) or not self._has(contact_key, 1):
            return self.snapshot.load_events(contact_key)
        events: list[StoredEvent] = self._store().load_events(contact_key)
        return events

    def save_contact(self, contact: Contact, expected_version: int | None) -> None:
        raise VersionConflict("a shard is read-only")

    def save_contacts(self, writes: Sequence[tuple[Contact, int | None]]) -> None:
        raise VersionConflict("a shard is read-only")


def shard_view(table: Table | None, store: ShardStore, job: Mapping[str, Any], shard: int,
               observe: Callable[[dict[str, Any]], None] | None = None) -> ShardView:
    check_job(job)
    if not (isinstance(shard, int) and 0 <= shard < job["shards"]):
        raise ValueError(f"shard: {shard!r} is not one of 0..{job['shards'] - 1}")

    def ids_of(other: int) -> tuple[set[str], set[str]]:
        contacts: set[str] = set()
        events: set[str] = set()
        for segment in range(job["segments"]):
            try:
                found = _get_json(store, keys_name(job["run"], other, segment))
            except KeyError:
                raise RuntimeError(f"run {job['run']}: segment {segment} not scanned yet") from None
            contacts.update(found["contacts"])
            events.update(found["events"])
        return contacts, events

    found = shard_items(store, job, shard)
    if observe is not None:  # another reader of the same items, in the same single pass
        found = _observed(found, observe)
    return ShardView(TableSnapshot(found), shard, job["shards"], table, ids_of)


def _observed(found: Iterable[dict[str, Any]], observe: Callable[[dict[str, Any]], None]) -> Iterator[dict[str, Any]]:
    for item in found:
        observe(item)
        yield item


# ------------------------------------------------------------------- 2. outcomes (calibration)


def _outcome_finder() -> Callable[[TableSnapshot], list[Outcome]] | None:
    try:
        from leadscore.services import outcomes  # cold start: a calibration's outcomes step only
    except ImportError:
        return None
    found: Callable[[TableSnapshot], list[Outcome]] | None = getattr(outcomes, "outcomes_in", None)
    return found


def find_outcomes(table: Table | None, store: ShardStore, job: Mapping[str, Any], shard: int, *,
                  finder: Callable[[TableSnapshot], list[Outcome]] | None = None) -> dict[str, Any]:
    """The outcome records a shard holds (a CRM's `Opportunity Won/Lost` events and group
    traits, feedback on its accounts), found by `finder` (default: services/outcomes.py's
    `outcomes_in`, when there), written as `<run>/outcomes/<shard>`."""
    view = shard_view(table, store, job, shard)
    finder = finder or _outcome_finder()
    found = finder(view.snapshot) if finder is not None else []
    _put_json(store, outcomes_name(job["run"], shard), [_outcome_doc(o) for o in found])
    # the CRM's company ids this shard's group calls tie to accounts: the merge ties every shard's
    from leadscore.services.outcomes import group_accounts  # cold start: a calibration's outcomes step only

    _put_json(store, groups_name(job["run"], shard), group_accounts(view.snapshot))
    return {"shard": shard, "outcomes": len(found)}


def merge_outcomes(store: ShardStore, job: Mapping[str, Any]) -> dict[str, Any]:
    """The table's outcomes (every shard's) merged with the job's (the file's), one per
    account by services/outcomes.py's precedence (the file's, else the CRM's, else the
    feedback's); without that module, an account the file names keeps the file's rows only.
    Written as `<run>/outcomes.json` with the counts, which are returned."""
    check_job(job)
    given = list(job.get("outcomes") or [])
    table_docs: list[dict[str, Any]] = []
    for shard in range(job["shards"]):
        try:
            table_docs += _get_json(store, outcomes_name(job["run"], shard))
        except KeyError:
            raise RuntimeError(f"run {job['run']}: the outcomes of shard {shard} are not found yet "
                               "(run find_outcomes on every shard first)") from None
    table_docs.sort(key=lambda doc: json.dumps(doc, sort_keys=True))  # the same whatever order shards ran in
    try:
        from leadscore.services import outcomes  # cold start: a calibration's merge only
    except ImportError:
        named = {doc["accountId"] for doc in given}
        merged = given + [doc for doc in table_docs if doc["accountId"] not in named]
        counts: dict[str, Any] = {"outcomes": len(merged), "fromFile": len(given),
                                  "fromTable": len(merged) - len(given)}
    else:
        crm, feedback = outcomes.by_source([outcomes.outcome_from_json(doc) for doc in table_docs])
        tied: dict[str, str] = {}  # every shard's groupId -> account (a CRM event's shard may lack it)
        for shard in range(job["shards"]):
            try:
                tied.update(_get_json(store, groups_name(job["run"], shard)))
            except KeyError:
                continue
        kept, counts = outcomes.merge_report(_outcomes(given), crm, feedback, groups=tied)
        merged = [outcomes.outcome_json(o) for o in kept]
        counts = {"outcomes": len(merged), **counts}
    _put_json(store, merged_outcomes_name(job["run"]), {"outcomes": merged, "counts": counts})
    return counts


def _job_outcomes(store: ShardStore, job: Mapping[str, Any]) -> list[Outcome]:
    try:
        return _outcomes(_get_json(store, merged_outcomes_name(job["run"]))["outcomes"])
    except KeyError:  # no outcomes step run: the job's own
        return _outcomes(job.get("outcomes") or [])


# --------------------------------------------------------------------- 3. replay a shard


def replay_shard(table: Table | None, store: ShardStore, job: Mapping[str, Any], shard: int) -> dict[str, Any]:
    """Every person rooted in the shard replayed; the shard's partial written as
    `<run>/partials/<shard>`."""
    from leadscore.adapters.items import entry_doc  # cold start: only this step encodes entries

    highs = None
    if job["kind"] == "calibrate":
        # each account's record highs from its history items (its partition: this shard's), for
        # the threshold against the team (services/capacity.py), read in the snapshot's pass
        from leadscore.adapters.score_highs import ScoreHighs  # cold start: a calibration's step

        highs = ScoreHighs()
    view = shard_view(table, store, job, shard, observe=highs.add if highs is not None else None)
    view.prefetch()
    snapshot = view.snapshot
    now = datetime.fromisoformat(job["asOf"])
    current, candidate, _ = configs(job)
    partial: dict[str, Any]
    if job["kind"] == "preview":
        from leadscore.services.preview import replay_persons  # cold start: only a preview's step

        days = job.get("days")
        since = now - timedelta(days=days) if days else None
        replayed = replay_persons(snapshot.persons(view), current, candidate, now, since)
        partial = {"persons": replayed.persons, "events": replayed.events,
                   "contacts": list(replayed.contacts), "rulePoints": list(replayed.rule_points),
                   "members": [{account: [entry_doc(e) for e in entries] for account, entries in side.items()}
                               for side in replayed.members],
                   "traits": {account_id: account.traits for account_id, account in snapshot.accounts.items()}}
        counts = {"persons": replayed.persons, "events": replayed.events}
    else:
        from leadscore.services.calibrate import closed, contact_at_close  # cold start: a calibration's step

        by_account: dict[str, list[Outcome]] = {}
        for outcome in closed(_job_outcomes(store, job)):
            by_account.setdefault(outcome.account_id, []).append(outcome)
        rows: dict[str, dict[str, dict[str, Any]]] = {}
        persons = events = 0
        for person in snapshot.persons(view):
            persons += 1
            events += len(person.events)
            contact = snapshot.contacts.get(person.root)
            if contact is None or contact.account not in by_account:
                continue
            account = rows.setdefault(contact.account, {})
            for outcome in by_account.get(contact.account, []):
                assert outcome.closed_at is not None
                row = account.setdefault(outcome.closed_at.isoformat(), {"entries": [], "fired": [], "said": []})
                at_close = contact_at_close(current, person, outcome.closed_at, contact.account)
                if at_close.entry is not None:
                    row["entries"].append(entry_doc(at_close.entry))
                    row["fired"] = sorted(set(row["fired"]) | at_close.fired)
                # the firmographics it had given the account by then (the reduce merges every shard's)
                row["said"].append(at_close.said.doc())
        partial = {"persons": persons, "events": events, "rows": rows,
                   "traits": {account_id: snapshot.accounts[account_id].traits
                              for account_id in by_account if account_id in snapshot.accounts}}
        assert highs is not None
        partial["highs"] = highs.result()
        counts = {"persons": persons, "events": events}
    _put_json(store, partial_name(job["run"], shard), partial)
    return {"shard": shard, **counts, "foreignReads": view.foreign_reads}


# ------------------------------------------------------------------------------- 4. reduce


def _partials(store: ShardStore, job: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    present = set(store.names(f"{job['run']}/partials/"))
    missing = [s for s in range(job["shards"]) if partial_name(job["run"], s) not in present]
    if missing:
        raise RuntimeError(f"run {job['run']}: shard(s) {', '.join(map(str, missing[:10]))} not replayed yet "
                           "(replay every shard before the reduce)")
    for shard in range(job["shards"]):
        yield _get_json(store, partial_name(job["run"], shard))


def reduce(store: ShardStore, job: Mapping[str, Any]) -> dict[str, Any]:
    """Every shard's partial merged into the report (the shapes of services/preview.py's
    `Preview.report` and services/calibrate.py's `calibration_report`), written as
    `<run>/report.json` and returned."""
    from leadscore.adapters.items import entry_from_doc  # cold start: only the reduce decodes entries

    check_job(job)
    current, candidate, routing = configs(job)
    now = datetime.fromisoformat(job["asOf"])
    traits: dict[str, Any] = {}
    if job["kind"] == "preview":
        from leadscore.services.preview import Replayed, value_accounts  # cold start: a preview's reduce

        replayed = Replayed()
        for partial in _partials(store, job):
            traits.update(partial["traits"])
            members = tuple({account: [entry_from_doc(e) for e in entries] for account, entries in side.items()}
                            for side in partial["members"])
            replayed.merge(Replayed(partial["persons"], partial["events"],
                                    (partial["contacts"][0], partial["contacts"][1]),
                                    (partial["rulePoints"][0], partial["rulePoints"][1]),
                                    (members[0], members[1])))
        report = value_accounts(replayed, traits, current, candidate, now, routing).report()
        days = job.get("days")
        report["window"] = {"days": days, "since": (now - timedelta(days=days)).isoformat() if days else None}
    else:
        from leadscore.services.calibrate import (  # cold start: a calibration's reduce
            SaidTraits,
            account_at_close,
            calibration_report,
            closed,
            traits_at_close,
        )

        rows: dict[str, dict[str, dict[str, Any]]] = {}
        highs: dict[str, Any] = {}
        for partial in _partials(store, job):
            traits.update(partial["traits"])
            highs.update(partial.get("highs") or {})
            for account_id, by_close in partial["rows"].items():
                mine = rows.setdefault(account_id, {})
                for closed_at, row in by_close.items():
                    merged = mine.setdefault(closed_at, {"entries": [], "fired": set(), "said": []})
                    merged["entries"] += row["entries"]
                    merged["fired"] |= set(row["fired"])
                    merged["said"] += [SaidTraits.from_doc(doc) for doc in row.get("said") or []]
        found, unknown = [], []
        for outcome in closed(_job_outcomes(store, job)):
            if outcome.account_id not in rows:
                unknown.append(outcome.account_id)
                continue
            assert outcome.closed_at is not None
            row = rows[outcome.account_id].get(outcome.closed_at.isoformat(),
                                               {"entries": [], "fired": set(), "said": []})
            at_close = traits_at_close(traits.get(outcome.account_id) or {}, row["said"])
            found.append(account_at_close(current, outcome.account_id, at_close,
                                          [entry_from_doc(e) for e in row["entries"]], row["fired"], outcome))
        target = job["target"]
        try:
            sources = _get_json(store, merged_outcomes_name(job["run"])).get("counts")
        except KeyError:  # no outcomes step run
            sources = None
        report = calibration_report(found, current, (target[0], target[1]), unknown=unknown, sources=sources,
                                    highs=highs, routing=routing[0])
    store.put(report_name(job["run"]), json.dumps(report, indent=2).encode())
    return report
