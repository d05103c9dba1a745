"""Records <-> DynamoDB items: every attribute name, key layout and stored JSON format.

With `storage.py` (the repositories), `table.py` (the requests) and `streams.py` (the table's
stream) this is the storage adapter, and this module alone names an item attribute or a key
prefix: the rest of the layer, the functions, local/ and bench/ go through it
(tests/unit/test_storage_boundary.py checks). Item kinds, their
keys and which hold personal data are listed in docs/DESIGN.md ("Item kinds") and in
`ITEM_KINDS` below.

Formats are those the table has always held, so existing items keep working:
- the engine state (`lg` on a contact) is JSON `{"t": traits, "r": {rule: ledger}, "v":
  visits, "p": last page, "f": first page}`;
- one rule-ledger format, used by the contact state and by account entries alike:
  `{"b": base, "x": [[epoch, points]...], "n": hits, "q": [recent epochs]}` (zero and empty
  parts left out). Account entries written before this format (`"t"` for the touches, `"b"`
  and `"n"` always present) are still read;
- counter buckets in account entries: `{"c": category, "p": points, "d": detail}`.
"""

from __future__ import annotations

import base64
import json
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from functools import cache
from typing import Any, get_args

from leadscore.domain.events import MessageType, TrackingEvent
from leadscore.domain.json_bounds import EVENT_JSON_BYTES, bounded_json_object, json_text
from leadscore.domain.ledgers import ContactEntry, ContactState, CounterPoints, RuleLedger
from leadscore.domain.records import (
    UNREADABLE,
    Account,
    Assignment,
    Contact,
    ContactScores,
    Feedback,
    HandAssignment,
    PoisonRecord,
    RoutingStatus,
    SdrActivity,
    SdrPause,
    SdrRecord,
    SkippedSdr,
    StoredEvent,
    instant_text,
)

Item = dict[str, Any]

#: Attribute names the store's expressions name (conditions, updates, key conditions).
PK = "pk"
SK = "sk"
KIND = "k"
VERSION = "ver"  # the optimistic lock of contacts, accounts and SDR records
UPDATED = "upd"
STATE = "state"
CYCLE = "cycle"
DUE_PK = "due_pk"  # the DueIndex's partition key (sparse)
DUE_AT = "due_at"  # and its sort key
OWNER = "own"  # the OwnerIndex's partition key (sparse: assignments only)
ATTEMPT = "att"
COUNT = "n"  # a pool counter's value, an SDR's day count
EXPIRES = "ttl"
OPEN = "open"  # an SDR record's set of open accounts
#: Item kinds (`k`) the store writes in updates, where no item is built.
SDR_RECORD_KIND = "S"
SDR_DAY_KIND = "SD"
SDR_ACTIVITY_KIND = "SA"
POOL_KIND = "RR"

PROFILE = "P"
CONTACT_PREFIX = "C#"
ACCOUNT_PREFIX = "A#"
EVENT_PREFIX = "E#"
DUE = "DUE"
ROUTE_DUE = "ROUTE"  # the DueIndex partition of accounts the routing pass looks at (SLA, retry)
ROUTE_PREFIX = "RT#"
POOL_PREFIX = "POOL#"
POOL_COUNTER = "RR"
SDR_PREFIX = "SDR#"
DAY_PREFIX = "D#"
FEEDBACK_PREFIX = "FB#"
SDR_RECORD = "S"
ACCEPTED_PREFIX = "AC#"
BREACH_PREFIX = "BR#"
REJECTED_PREFIX = "R#"
SUPPRESSION_PREFIX = "X#"  # an erased id's suppression record (keyed digest): see "erasure" below
POOL_DAY_PREFIX = "c#"  # a pool record's day count of an SDR: an attribute name
POOL_PAUSE_PREFIX = "p#"  # a pool record's copy of an SDR's pause: an attribute name
#: Days an acceptance or an SLA breach is kept in the SDR's partition (GET /v1/sdrs counts 30).
SDR_ACTIVITY_KEEP_DAYS = 31
#: Routing states in which an account can be due for the routing pass.
ROUTE_DUE_STATES = ("sdr_ready", "routed")
#: `Account.extra` key of a routing index item that could not be read (why): the pass parks it.
#: Days an SDR's daily count is kept after the day (capacity only looks at today).
SDR_DAY_KEEP_DAYS = 8

#: kind -> (pk, sk, personal data it may hold). Erasure walks this list.
ITEM_KINDS: dict[str, tuple[str, str, str]] = {
    "event": ("C#<contactKey>", "E#<sourceId>#<messageId>",
              "yes: uid, aid, pid, em, url, ref, tr, pr (and the contact key in pk)"),
    "contact": ("C#<contactKey>", "P", "yes: ck, uid, em, name, title, lg (traits), gtr (and pk)"),
    "account": ("A#<accountId>", "P", "yes: top (compressed: each entry's c, em, ti, nm; tr, the traits, company "
                "data; before, top and tr two JSON texts); name is company data"),
    "rejected": ("R#<yyyy-mm-dd>#<0-9>", "<iso time>#<uuid>", "yes: raw (the input as sent, truncated), reason"),
    "assignment": ("A#<accountId>", "RT#<cycle, 6 digits>",
                   "no contact data: the account id, the SDR ids (from routing.yaml), times"),
    "pool counter": ("POOL#<poolId>", "RR", "no: a counter, and day counts named c#<sdrId>#<yyyy-mm-dd>"),
    "SDR day": ("SDR#<sdrId>", "D#<yyyy-mm-dd>", "no: an SDR id (from routing.yaml) and a count; TTL ttl"),
    "SDR record": ("SDR#<sdrId>", "S", "yes: pr (a pause's reason, free text), pb (the IAM caller's ARN); open: "
                   "account ids"),
    "SDR acceptance": ("SDR#<sdrId>", "AC#<iso time>#<accountId>#<cycle>", "no: ids and a time; TTL ttl"),
    "SDR breach": ("SDR#<sdrId>", "BR#<iso time>#<accountId>#<cycle>#<attempt>", "no: ids and a time; TTL ttl"),
    "feedback": ("A#<accountId>", "FB#<seq, 10 digits>",
                 "yes: note (free text, may name people), sdr (as sent), by (the IAM caller's ARN)"),
}

#: Every attribute name this module writes or reads, item and stored-JSON alike (the
#: boundary test looks for them elsewhere).
EVENT_ATTRIBUTES = ("pk", "sk", "k", "ty", "ev", "ts", "rx", "src", "mid", "uid", "aid", "gid", "pid", "em", "url",
                    "path", "ref", "ah", "tr", "pr", "hits", "bot", "ttl")
CONTACT_ATTRIBUTES = ("pk", "sk", "k", "ck", "ver", "lg", "seq", "uid", "em", "title", "name", "acct", "acctSrc",
                      "gtr", "unsub", "fit", "eng", "score", "vel", "life", "due_pk", "due_at", "into", "first",
                      "upd")
ACCOUNT_ATTRIBUTES = ("pk", "sk", "k", "id", "ver", "top", "tr", "name", "domain", "thr", "fit", "eng", "bonus",
                      "score", "vel", "state", "cycle", "excl", "stateAt", "stateWhy", "cooldown", "sdr", "rt",
                      "eb", "fb", "due_pk", "due_at", "first", "upd")
REJECTED_ATTRIBUTES = ("pk", "sk", "k", "reason", "field", "src", "raw", "ttl")
ASSIGNMENT_ATTRIBUTES = ("pk", "sk", "k", "acct", "cycle", "sdr", "pool", "terr", "mode", "at", "sla", "att",
                         "tried", "own", "own_at")
POOL_COUNTER_ATTRIBUTES = ("pk", "sk", "k", "n", "upd")  # and the day counts, `c#<sdrId>#<yyyy-mm-dd>`
SDR_DAY_ATTRIBUTES = ("pk", "sk", "k", "n", "ttl")
SDR_RECORD_ATTRIBUTES = ("pk", "sk", "k", "pz", "pu", "pr", "pa", "pb", "ver", "upd", "open")
SDR_ACTIVITY_ATTRIBUTES = ("pk", "sk", "k", "at", "ttl")
FEEDBACK_ATTRIBUTES = ("pk", "sk", "k", "acct", "cycle", "out", "sdr", "note", "by", "at", "state")
#: Keys of an account's last feedback (`fb`, a map).
LAST_FEEDBACK_KEYS = ("o", "s", "at", "c", "h", "n")
#: Keys of an account's routing status (`rt`, a map).
ROUTING_KEYS = ("pl", "te", "mo", "at", "sla", "n", "tx", "w", "wr", "ra", "due", "by", "sx", "sxn", "co", "hand")
#: Keys of a lead's hand assignment in the routing status (`rt.hand`, a map).
HAND_KEYS = ("by", "at", "fr", "cl", "nt")
#: Every key prefix, and the fixed key values too plain to be one (the boundary test looks for
#: both elsewhere: only this module builds a key).
KEY_PREFIXES: tuple[str, ...] = (
                CONTACT_PREFIX, ACCOUNT_PREFIX, EVENT_PREFIX, ROUTE_PREFIX, POOL_PREFIX, SDR_PREFIX, DAY_PREFIX,
                FEEDBACK_PREFIX, ACCEPTED_PREFIX, BREACH_PREFIX, REJECTED_PREFIX, POOL_DAY_PREFIX, POOL_PAUSE_PREFIX,
                SUPPRESSION_PREFIX)
KEY_VALUES = (DUE, ROUTE_DUE, POOL_COUNTER)
_CONTACT_KNOWN = frozenset(CONTACT_ATTRIBUTES)
_ACCOUNT_KNOWN = frozenset(ACCOUNT_ATTRIBUTES)
ENTRY_KEYS = ("c", "v", "em", "ti", "nm", "p", "f", "r", "rc", "le", "x")
STATE_KEYS = ("t", "r", "v", "p", "f")
LEDGER_KEYS = ("b", "x", "n", "q", "t")
COUNTER_KEYS = ("c", "p", "d")


# --------------------------------------------------------------------------- keys


def contact_pk(contact_key: str) -> str:
    return f"{CONTACT_PREFIX}{contact_key}"


def account_pk(account_id: str) -> str:
    return f"{ACCOUNT_PREFIX}{account_id}"


def contact_key_of(pk: str) -> str:
    return pk[len(CONTACT_PREFIX):]


def account_id_of(pk: str) -> str:
    return pk[len(ACCOUNT_PREFIX):]


# DynamoDB limits a sort key to 1,024 bytes of UTF-8; a 256-character id can take 1,024.
_MAX_ID_KEY_BYTES = 512


def event_sk(source_id: str, message_id: str) -> str:
    """The event's sort key. An id too long in bytes for a key is keyed by its SHA-256 (the
    item keeps the id itself), so the conditional write stays an exact duplicate check."""
    if len(message_id.encode("utf-8")) > _MAX_ID_KEY_BYTES:
        import hashlib

        message_id = "~sha256:" + hashlib.sha256(message_id.encode("utf-8")).hexdigest()
    return f"{EVENT_PREFIX}{source_id}#{message_id}"


def table_key(item: Mapping[str, Any]) -> tuple[str, str]:
    """(pk, sk) of an item or of a stream record's `Keys`."""
    return item["pk"], item["sk"]


def key_item(pk: str, sk: str = PROFILE) -> Item:
    return {"pk": pk, "sk": sk}


def is_event_key(keys: tuple[str, str]) -> bool:
    return keys[1].startswith(EVENT_PREFIX)


def is_contact_key(keys: tuple[str, str]) -> bool:
    return keys[0].startswith(CONTACT_PREFIX) and keys[1] == PROFILE


def is_account_key(keys: tuple[str, str]) -> bool:
    return keys[0].startswith(ACCOUNT_PREFIX) and keys[1] == PROFILE


_PARTITIONS = ((CONTACT_PREFIX, "contact"), (ACCOUNT_PREFIX, "account"), (REJECTED_PREFIX, "rejected"),
               (POOL_PREFIX, "pool"), (SDR_PREFIX, "sdr"))


def partition_of(pk: str) -> str:
    """What a partition holds, by its key: `contact` (a contact and its events), `account` (an
    account, its assignments and feedback), `rejected`, `pool`, `sdr`; `other` else."""
    return next((name for prefix, name in _PARTITIONS if pk.startswith(prefix)), "other")


def is_routed_image(item: Mapping[str, Any]) -> bool:
    """Whether an account item is routed, read without decoding the rest of it."""
    return item.get("state") == "routed"


def assignment_key(account_id: str, cycle: int) -> tuple[str, str]:
    """An account's assignment for one cycle: in the account's partition, beside it."""
    return account_pk(account_id), f"{ROUTE_PREFIX}{int(cycle):06d}"


def pool_counter_key(pool_id: str) -> tuple[str, str]:
    """A pool's round-robin counter (`*` for the global pool of `mode: round_robin`)."""
    return f"{POOL_PREFIX}{pool_id}", POOL_COUNTER


def feedback_key(account_id: str, seq: int) -> tuple[str, str]:
    """One feedback on an account, beside it; `seq` (the account version its write produced)
    orders them, so the newest are read first."""
    return account_pk(account_id), f"{FEEDBACK_PREFIX}{int(seq):010d}"


def sdr_day_key(sdr_id: str, day: date) -> tuple[str, str]:
    """The count of accounts assigned to an SDR on one of their local days."""
    return f"{SDR_PREFIX}{sdr_id}", f"{DAY_PREFIX}{day.isoformat()}"


# --------------------------------------------------------------------------- events

def compact_json(value: Any, budget: int = EVENT_JSON_BYTES, rank: Callable[[str], int] | None = None
                 ) -> str | None:
    """JSON of a traits/properties object, trimmed so the stored event stays one write unit."""
    trimmed = bounded_json_object(value, budget, rank)
    return json_text(trimmed) if trimmed else None


def event_item(event: TrackingEvent, hits: Sequence[str], retention_days: int) -> Item:
    """The stored form of an accepted event: compact, short attribute names, with a TTL."""
    return {
        "pk": contact_pk(event.contact_key),
        "sk": event_sk(event.source_id, event.message_id),
        "k": "E",
        "ty": event.type,
        "ev": event.event,
        "ts": int(event.timestamp.timestamp() * 1000),
        "rx": int(event.received_at.timestamp() * 1000),
        "src": event.source_id,
        "mid": event.message_id,
        "uid": event.user_id,
        "aid": event.anonymous_id,
        "gid": event.group_id,
        "pid": event.previous_id,
        "em": event.email,
        "url": event.url[:300] if event.url else None,
        "path": event.path[:200] if event.path else None,
        "ref": event.referrer[:200] if event.referrer else None,
        "ah": event.account_hint,
        "tr": compact_json(event.traits),
        "pr": compact_json(event.properties),
        "hits": list(hits) or None,
        "bot": True if event.bot else None,
        "ttl": int(event.received_at.timestamp()) + retention_days * 86400,
    }


def event_from_item(item: Mapping[str, Any]) -> TrackingEvent:
    """Rebuild the domain event from its stored form (stream images and replays)."""
    def when(millis: Any) -> datetime:
        return datetime.fromtimestamp(int(millis) / 1000, tz=UTC)

    return TrackingEvent(
        type=item["ty"],
        message_id=item["mid"],
        source_id=item["src"],
        contact_key=contact_key_of(item["pk"]),
        timestamp=when(item["ts"]),
        received_at=when(item.get("rx", item["ts"])),
        event=item.get("ev"),
        user_id=item.get("uid"),
        anonymous_id=item.get("aid"),
        group_id=item.get("gid"),
        previous_id=item.get("pid"),
        email=item.get("em"),
        traits=json.loads(item["tr"]) if item.get("tr") else {},
        properties=json.loads(item["pr"]) if item.get("pr") else {},
        url=item.get("url"),
        path=item.get("path"),
        referrer=item.get("ref"),
        account_hint=item.get("ah"),
        bot=bool(item.get("bot")),
    )


@cache
def _message_types() -> frozenset[str]:
    return frozenset(get_args(MessageType))


_OPTIONAL_TEXT = ("event", "user_id", "anonymous_id", "group_id", "previous_id", "email", "url", "path",
                  "referrer", "account_hint")


def decode_event(item: Mapping[str, Any]) -> StoredEvent:
    """The event and the rule ids collection matched, from a stored event image.

    Raises PoisonRecord for an image the collector never writes: missing or garbage
    attributes, traits or properties that are not a JSON object, a time out of range, an
    unknown message type, matched rules that are not a list of ids. A decoded event is
    well-formed, so folding it can only fail by a bug, never by its data.
    """
    try:
        event = event_from_item(item)
    except Exception as error:  # noqa: BLE001 - whatever the garbage, it is this record's alone
        raise PoisonRecord(f"unreadable event image ({type(error).__name__})") from None
    hits = item.get("hits") or []
    if event.type not in _message_types():
        raise PoisonRecord("ty: not a message type")
    if not isinstance(event.message_id, str) or not isinstance(event.source_id, str):
        raise PoisonRecord("mid/src: not text")
    for name in _OPTIONAL_TEXT:
        if not isinstance(getattr(event, name), str | None):
            raise PoisonRecord(f"{name}: not text")
    if not isinstance(event.traits, dict) or not isinstance(event.properties, dict):
        raise PoisonRecord("tr/pr: not a JSON object")
    if not isinstance(hits, list) or not all(isinstance(rule, str) for rule in hits):
        raise PoisonRecord("hits: not a list of rule ids")
    return StoredEvent(event, list(hits))


# --------------------------------------------------------------------------- rejections


def storable_text(text: str, limit: int) -> str:
    """At most `limit` characters that DynamoDB accepts: lone surrogates (valid JSON escapes
    that are not UTF-8) become visible escapes instead of failing the write."""
    text = text[:limit]
    if text.isascii():
        return text
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def rejected_key(received_at: datetime) -> tuple[str, str]:
    """Where a rejected input is kept: its day's partition spread over ten keys, so that a
    flood of bad input stays cool; sorted by time, unique by a random suffix."""
    import random
    import uuid

    return (f"{REJECTED_PREFIX}{received_at.strftime('%Y-%m-%d')}#{random.randrange(10)}",
            f"{received_at.isoformat()}#{uuid.uuid4().hex[:12]}")


def rejected_item(*, pk: str, sk: str, reason: str, field: str | None, source_id: str | None, raw: str,
                  expires: int) -> Item:
    return {
        "pk": pk,
        "sk": sk,
        "k": "R",
        "reason": storable_text(reason, 500),
        "field": storable_text(field, 200) if field else None,
        "src": source_id,
        "raw": storable_text(raw, 2000),
        "ttl": expires,
    }


# --------------------------------------------------------------------------- engine state and ledgers


def _compact_number(x: float) -> float | int:
    # Whole numbers without ".0": most epochs and points are, and the item stays smaller.
    x = round(float(x), 4)
    return int(x) if x.is_integer() else x


def ledger_doc(ledger: RuleLedger) -> dict[str, Any]:
    """The one stored form of a rule ledger (zero and empty parts left out)."""
    doc: dict[str, Any] = {}
    if ledger.base:
        doc["b"] = _compact_number(ledger.base)
    if ledger.touches:
        doc["x"] = [[_compact_number(t), _compact_number(p)] for t, p in ledger.touches]
    if ledger.count:
        doc["n"] = ledger.count
    if ledger.recent:
        doc["q"] = [_compact_number(t) for t in ledger.recent]
    return doc


def ledger_from_doc(doc: Mapping[str, Any]) -> RuleLedger:
    """A rule ledger from its stored form; also reads account entries written before the one
    format (touches under `t`)."""
    touches = doc.get("x", doc.get("t", ()))
    return RuleLedger(
        base=float(doc.get("b", 0.0)),
        touches=[[float(t), float(p)] for t, p in touches],
        count=int(doc.get("n", 0)),
        recent=[float(t) for t in doc.get("q", ())],
    )


def state_json(state: ContactState) -> str:
    doc: dict[str, Any] = {}
    if state.traits:
        doc["t"] = state.traits
    if state.rules:
        doc["r"] = {rule_id: ledger_doc(ledger) for rule_id, ledger in state.rules.items()}
    if state.visits:
        doc["v"] = state.visits
    if state.last_page_at is not None:
        doc["p"] = _compact_number(state.last_page_at)
    if state.first_page_at is not None:
        doc["f"] = _compact_number(state.first_page_at)
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False, default=str)


def state_from_json(text: str | None) -> ContactState:
    if not text:
        return ContactState()
    doc = json.loads(text)
    if not isinstance(doc, dict):
        raise ValueError("contact state must be a JSON object")
    return ContactState(
        traits=dict(doc.get("t") or {}),
        rules={rule_id: ledger_from_doc(d) for rule_id, d in (doc.get("r") or {}).items()},
        visits=int(doc.get("v", 0)),
        last_page_at=None if doc.get("p") is None else float(doc["p"]),
        first_page_at=None if doc.get("f") is None else float(doc["f"]),
    )


# --------------------------------------------------------------------------- contacts


def contact_item(contact: Contact) -> Item:
    """The stored form of a contact (None values are not stored)."""
    scores = contact.scores
    item: Item = {
        **contact.extra,
        "pk": contact_pk(contact.key),
        "sk": PROFILE,
        "k": "C",
        "ck": contact.key,
        "first": contact.first_seen,
        "uid": contact.user_id,
        "em": contact.email,
        "title": contact.title,
        "name": contact.name,
        "acct": contact.account,
        "acctSrc": contact.account_source,
        "gtr": (json.dumps(contact.group_traits, separators=(",", ":"), default=str)[:4000]
                if contact.group_traits else None),
        "unsub": True if contact.unsubscribed else None,
        "into": contact.merged_into,
        "seq": contact.watermark or None,
        "lg": state_json(contact.state) if contact.state is not None else None,
        "ver": contact.version,
        "upd": contact.updated_at,
        "fit": scores.fit,
        "eng": scores.engagement,
        "score": scores.score,
        "vel": scores.velocity,
        "life": scores.lifecycle,
        "due_pk": DUE if scores.due_at else None,
        "due_at": scores.due_at,
    }
    return {name: value for name, value in item.items() if value is not None}


def _group_traits(text: Any) -> dict[str, Any] | None:
    if not text:
        return None
    try:
        loaded = json.loads(text)
    except ValueError:
        return {}
    return loaded if isinstance(loaded, dict) else {}


def contact_from_item(item: Mapping[str, Any], *, summary: bool = False) -> Contact:
    """A contact from its item, or from the DueIndex's projection of it; `summary` leaves
    its engine state out (so even a corrupt image says which account it was in)."""
    known = _CONTACT_KNOWN
    key = item.get("ck") or contact_key_of(item.get("pk", ""))
    return Contact(
        key=key,
        version=int(item["ver"]) if item.get("ver") is not None else None,
        state=state_from_json(item["lg"]) if "lg" in item and not summary else None,
        user_id=item.get("uid"),
        email=item.get("em"),
        title=item.get("title"),
        name=item.get("name"),
        account=item.get("acct"),
        account_source=item.get("acctSrc"),
        group_traits=None if summary else _group_traits(item.get("gtr")),
        unsubscribed=bool(item.get("unsub")),
        scores=ContactScores(fit=item.get("fit"), engagement=item.get("eng"), score=item.get("score"),
                             velocity=item.get("vel"), lifecycle=item.get("life"), due_at=item.get("due_at")),
        merged_into=item.get("into"),
        watermark=item.get("seq") or "",
        first_seen=item.get("first"),
        updated_at=item.get("upd"),
        extra={name: value for name, value in item.items() if name not in known},
    )


_SCORE_ATTRIBUTES = (("fit", "fit"), ("eng", "engagement"), ("score", "score"), ("vel", "velocity"),
                     ("life", "lifecycle"))


def score_update(before: ContactScores, after: ContactScores, updated_at: str
                 ) -> tuple[dict[str, Any], list[str]]:
    """(SET, REMOVE) that move a stored contact's scores from `before` to `after`: only the
    fields that changed, the update time, and the due time (or its removal)."""
    sets: dict[str, Any] = {name: getattr(after, field) for name, field in _SCORE_ATTRIBUTES
                            if getattr(before, field) != getattr(after, field)}
    sets["upd"] = updated_at
    if after.due_at:
        sets["due_at"] = after.due_at
    return sets, ([] if after.due_at else ["due_pk", "due_at"])


# --------------------------------------------------------------------------- accounts


def counter_doc(counter: CounterPoints) -> dict[str, Any]:
    return {"c": counter.category, "p": counter.points, "d": counter.detail}


def entry_rule_from_doc(doc: Mapping[str, Any]) -> RuleLedger | CounterPoints:
    """One rule of an account entry: a counter bucket (`p`) or a ledger."""
    if "p" in doc:
        return CounterPoints(category=doc["c"], points=float(doc["p"]), detail=doc.get("d"))
    return ledger_from_doc(doc)


def entry_doc(entry: ContactEntry) -> dict[str, Any]:
    rules = {rule: counter_doc(value) if isinstance(value, CounterPoints) else ledger_doc(value)
             for rule, value in entry.rules.items()}
    return {"c": entry.key, "v": entry.version, "em": entry.email, "ti": entry.title, "nm": entry.name,
            "p": entry.persona, "f": entry.fit, "r": rules, "rc": entry.recent, "le": entry.last_engaged,
            "x": entry.excluded}


def entry_from_doc(data: Mapping[str, Any]) -> ContactEntry:
    return ContactEntry(key=data["c"], version=int(data["v"]), email=data.get("em"), title=data.get("ti"),
                        name=data.get("nm"), persona=data.get("p") or "user", fit=float(data.get("f") or 0),
                        rules={rule: entry_rule_from_doc(doc) for rule, doc in (data.get("r") or {}).items()},
                        recent=list(data.get("rc") or []), last_engaged=data.get("le"), excluded=data.get("x"))


#: The account's entries and traits: ONE Binary attribute, the zlib-compressed JSON
#: `{"top": [entry...], "tr": traits}` (account_body_blob). As two JSON texts (`top`, `tr`) the
#: typical account item was 1.3-1.4 KB, two write units per write; compressed it is under 1 KB,
#: one (tests/integration/test_account_item_size.py). It keeps the name `top`, which the
#: DueIndex projects (DynamoDB cannot change an existing index's projection): the routing pass
#: still reads entries and traits from the index. Items written before hold `top` and `tr` as
#: JSON texts: still read (account_body), and replaced by their next write (a whole Put).
ACCOUNT_BODY = "top"
_OLD_TRAITS = "tr"  # the traits' JSON text of an account written before ACCOUNT_BODY held them
#: zlib's preset dictionary of the body: what an entry's JSON and a contact's title are made of,
#: the likeliest last (the nearest matches cost the fewest bits). A long title or name is where
#: the bytes are: with it, an account of 8 named contacts with titles is ~180 bytes smaller, one
#: write unit instead of two. NEVER EDIT IT: the stream names it by its Adler-32 (zlib's
#: DICTID) and every body written with it needs it to be read; add another to _DICTIONARIES.
_BODY_DICTIONARY_1 = (
    b"Intern Junior Trainee Student Assistant Coordinator Specialist Associate Consultant Analyst Engineer "
    b"Developer Architect Administrator Representative Executive Partner Owner Founder Co-Founder President "
    b"CEO CTO CFO CMO COO CIO CRO CISO Chief Executive Officer Chief Technology Officer Chief Financial "
    b"Officer Chief Marketing Officer Chief Revenue Officer Chief Operating Officer Chief Information Officer "
    b"Senior Vice President Vice President of Sales Vice President of Marketing VP Sales VP Marketing "
    b"VP Engineering Head of Sales Head of Marketing Head of Growth Head of Product Head of Engineering "
    b"Director of Sales Director of Marketing Director of Engineering Director of Operations Director of IT "
    b"Senior Manager Sales Manager Marketing Manager Product Manager Engineering Manager Project Manager "
    b"Account Executive Account Manager Sales Development Business Development Customer Success Revenue "
    b"Operations Marketing Operations Demand Generation Growth Procurement Finance Human Resources Security "
    b"Infrastructure Platform Data Analytics Software Solutions Technical Technology Enterprise Strategic "
    b"Partnerships Global Regional International North America EMEA APAC Principal Lead Team Lead Senior "
    b"Software Engineer Data Engineer Data Scientist DevOps IT Manager Operations Manager Sales Director "
    b"Marketing Director Product Marketing Manager Inc. LLC Ltd GmbH Corporation Technologies Systems Labs "
    b'"employees":"employee_count":"industry":"technology","industry":"software","country":"US",'
    b'"address":{"country":"annual_revenue":"plan":"website":"https://www.'
    b'"company":{"name":"group":{"name":}},"tr":{"company":{},"group":{}}}'
    b'"r":{"site_visits":{"c":"web","p":3,"d":"2-5 visits"}},"form_top_of_funnel":"form_middle_of_funnel":'
    b'"form_bottom_of_funnel":"demo_requested":"support_ticket":"unsubscribed":"email_link_clicked":'
    b'"email_opened":"demo_link_clicked":"careers_page":"pricing_page":"webinar_attended":'
    b'"case_study_downloaded":{"b":"x":[[1793,10]],"n":1,"q":[1793'
    b'"p":"decision_maker","p":"influencer","p":"user","f":0,"f":0.0,"rc":[[1793.0,10.0]],"le":1793.0,'
    b'"x":"unsubscribed"},{"c":"a:","c":"e:","c":"u:","v":1,"em":".com","ti":"Manager","nm":"'
    b'{"top":[{"c":"u:","v":1,"em":"@","ti":"","nm":"","p":"user","f":0.0,"r":{"'
)
_DICTIONARIES = {zlib.adler32(_BODY_DICTIONARY_1): _BODY_DICTIONARY_1}
_WRITE_DICTIONARY = _BODY_DICTIONARY_1


def account_body_doc(account: Account) -> dict[str, Any]:
    """ACCOUNT_BODY's JSON (a history step keeps it as its account's `top` and `tr`)."""
    return {"top": [entry_doc(e) for e in account.entries], "tr": account.traits}


def account_body_blob(account: Account) -> bytes:
    """ACCOUNT_BODY as stored: its JSON (each entry without its empty parts: read back the same)
    compressed with zlib and the dictionary. The entries repeat their keys and their contacts'
    domain, which zlib keeps once."""
    doc = {"top": [{key: value for key, value in entry_doc(e).items() if value is not None and value != []
                    and value != {}} for e in account.entries],
           "tr": account.traits}
    packer = zlib.compressobj(9, zlib.DEFLATED, 15, 9, zlib.Z_DEFAULT_STRATEGY, zdict=_WRITE_DICTIONARY)
    text = json.dumps(doc, separators=(",", ":"), ensure_ascii=False, default=str).encode("utf-8", "surrogatepass")
    return packer.compress(text) + packer.flush()


def _unpacked_body(blob: bytes) -> bytes:
    """A body's JSON bytes; ValueError (what the readers of a corrupt item expect) naming the problem."""
    try:
        if len(blob) >= 6 and blob[1] & 0x20:  # FDICT: a preset dictionary, its Adler-32 follows
            dictionary = _DICTIONARIES.get(int.from_bytes(blob[2:6], "big"))
            if dictionary is None:
                raise ValueError(f"account body `{ACCOUNT_BODY}` names an unknown zlib dictionary")
            unpacker = zlib.decompressobj(15, zdict=dictionary)
            text = unpacker.decompress(blob) + unpacker.flush()
            if not unpacker.eof:
                raise ValueError(f"account body `{ACCOUNT_BODY}` is truncated")
            return text
        return zlib.decompress(blob)
    except zlib.error as error:
        raise ValueError(f"account body `{ACCOUNT_BODY}` does not decompress: {error}") from error


def account_body(item: Mapping[str, Any]) -> tuple[list[Any], dict[str, Any]]:
    """An account item's entries (their JSON docs) and traits, in any stored form: a history
    step's JSON values, the compressed body (bytes; a Lambda stream event carries a Binary as
    base64 text, which Powertools leaves as text), or the two JSON texts `top` and `tr` written
    before it (a JSON text of entries starts with `[`, which base64 never holds)."""
    stored = item.get(ACCOUNT_BODY)
    if isinstance(stored, list):  # a history step's account: its entries and traits as JSON values
        traits = item.get(_OLD_TRAITS)
        return list(stored), dict(traits) if isinstance(traits, Mapping) else json.loads(traits or "{}")
    if isinstance(stored, str) and stored and not stored.startswith("["):
        stored = base64.b64decode(stored, validate=True)
    if isinstance(stored, bytes | bytearray):
        doc = json.loads(_unpacked_body(bytes(stored)).decode("utf-8", "surrogatepass"))
        if not isinstance(doc, dict) or not isinstance(doc.get("top", []), list) \
                or not isinstance(doc.get("tr", {}), dict):
            raise ValueError(f"account body `{ACCOUNT_BODY}` is not {{\"top\": [...], \"tr\": {{...}}}}")
        return list(doc.get("top") or []), dict(doc.get("tr") or {})
    return json.loads(stored or "[]"), json.loads(item.get(_OLD_TRAITS) or "{}")


def account_item(account: Account, *, body: Any = None) -> Item:
    """The account's item; `body` in place of ACCOUNT_BODY's blob (a history step keeps it as JSON)."""
    item: Item = {
        **account.extra,
        "pk": account_pk(account.id),
        "sk": PROFILE,
        "k": "A",
        "id": account.id,
        "first": account.first_seen,
        ACCOUNT_BODY: body if body is not None else account_body_blob(account),
        "name": account.name,
        "domain": account.domain,
        "thr": account.threshold,
        "fit": account.fit,
        "eng": account.engagement,
        "bonus": account.bonus,
        "score": account.score,
        "vel": account.velocity,
        "state": account.state,
        "cycle": account.cycle,
        "excl": account.excluded,
        "stateAt": account.state_at,
        "stateWhy": account.state_why,
        "cooldown": account.cooldown_until,
        "sdr": account.sdr,
        "rt": routing_doc(account.routing) if account.routing is not None else None,
        "eb": account.engagement_baseline,
        "fb": last_feedback_doc(account.last_feedback) if account.last_feedback is not None else None,
        "ver": account.version,
        "upd": account.updated_at,
    }
    due = route_due_of(account.state, account.routing, account.cooldown_until)
    item["due_pk"], item["due_at"] = (ROUTE_DUE, due) if due else (None, None)
    return {name: value for name, value in item.items() if value is not None}


def route_due_of(state: str | None, routing: RoutingStatus | None, cooldown_until: str | None = None) -> str | None:
    """When the routing pass looks at an account: while it is `sdr_ready` or `routed`, and
    while it is `recycled` by a `not_ready` (its cooldown's end), so an account that leaves
    those states leaves the index with its next write."""
    if routing is None:
        return None
    if state in ROUTE_DUE_STATES or (state == "recycled" and cooldown_until):
        return routing.due_at
    return None


def account_from_item(item: Mapping[str, Any], *, summary: bool = False) -> Account:
    """An account from its item; `summary` leaves its entries and traits out (what a state
    change says of it), so even a corrupt image yields its scores and state."""
    known = _ACCOUNT_KNOWN
    entries, traits = ([], {}) if summary else account_body(item)
    return Account(
        id=item.get("id") or account_id_of(item.get("pk", "")),
        version=int(item["ver"]) if item.get("ver") is not None else None,
        entries=[entry_from_doc(e) for e in entries],
        traits=traits,
        name=item.get("name"),
        domain=item.get("domain"),
        threshold=item.get("thr"),
        fit=item.get("fit"),
        engagement=item.get("eng"),
        bonus=item.get("bonus"),
        score=item.get("score"),
        velocity=item.get("vel"),
        state=item.get("state"),
        cycle=item.get("cycle"),
        excluded=item.get("excl"),
        state_at=item.get("stateAt"),
        state_why=item.get("stateWhy"),
        cooldown_until=item.get("cooldown"),
        sdr=item.get("sdr"),
        routing=routing_from_doc(item["rt"]) if isinstance(item.get("rt"), Mapping) else None,
        engagement_baseline=item.get("eb"),
        last_feedback=(last_feedback_from_doc(item.get("id") or account_id_of(item.get("pk", "")), item["fb"])
                       if isinstance(item.get("fb"), Mapping) else None),
        first_seen=item.get("first"),
        updated_at=item.get("upd"),
        extra={name: value for name, value in item.items() if name not in known},
    )


# --------------------------------------------------------------------------- routing


def routing_doc(status: RoutingStatus) -> dict[str, Any]:
    """An account's routing status as stored (`rt`, a map; empty parts left out)."""
    doc = {"pl": status.pool, "te": status.territory, "mo": status.mode, "at": status.routed_at,
           "sla": status.sla_due_at, "n": status.attempt or None, "tx": list(status.tried) or None,
           "w": status.waiting, "wr": status.waiting_reason, "ra": status.retry_at, "due": status.due_at,
           **why_doc(status),
           "hand": hand_doc(status.assigned) if status.assigned is not None else None}
    return {key: value for key, value in doc.items() if value is not None}


def hand_doc(hand: HandAssignment) -> dict[str, Any]:
    doc = {"by": hand.by, "at": hand.at, "fr": hand.previous, "cl": hand.caller, "nt": hand.note}
    return {key: value for key, value in doc.items() if value is not None}


def hand_from_doc(doc: Any) -> HandAssignment | None:
    if not isinstance(doc, Mapping) or not doc.get("by"):
        return None
    return HandAssignment(by=str(doc["by"]), at=str(doc.get("at") or ""), previous=doc.get("fr"),
                          caller=doc.get("cl"), note=doc.get("nt"))


def why_doc(status: RoutingStatus) -> dict[str, Any]:
    """Why the routing went where it did, compactly (it is on the routing index too): `by`,
    `sx` the SDRs passed over as [sdr, reason(, until)], `sxn` how many more, `co` the CRM
    owner as [sdr or what it said(, why not(, until))]."""
    def pair(s: SkippedSdr) -> list[str]:
        return [s.sdr, *([s.reason] if s.reason else []), *([s.until] if s.until else [])]

    return {"by": status.by, "sx": [pair(s) for s in status.skipped] or None, "sxn": status.skipped_more or None,
            "co": pair(status.crm_owner) if status.crm_owner is not None else None}


def _skipped_from(value: Any) -> SkippedSdr | None:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        return None
    return SkippedSdr(value[0], value[1] if len(value) > 1 else None, value[2] if len(value) > 2 else None)


def why_from_doc(doc: Mapping[str, Any]) -> dict[str, Any]:
    """`why_doc` read back, as RoutingStatus fields (what cannot be read is left out)."""
    skipped = [s for v in (doc.get("sx") or []) if (s := _skipped_from(v)) is not None]
    return {"by": doc.get("by") if isinstance(doc.get("by"), str) else None, "skipped": skipped,
            "skipped_more": int(doc.get("sxn") or 0), "crm_owner": _skipped_from(doc.get("co"))}


def account_routing_fields(account: Account) -> tuple[Item, list[str]]:
    """(SET, REMOVE) of an account's routing attributes as the record leaves them (state and
    why, times, SDR, routing status, and its place on the DueIndex); what the record leaves
    out (None) is left as stored, but an account off the index leaves it."""
    due = route_due_of(account.state, account.routing, account.cooldown_until)
    sets: Item = {STATE: account.state, "stateWhy": account.state_why, UPDATED: account.updated_at,
                  "stateAt": account.state_at, "sdr": account.sdr,
                  "rt": routing_doc(account.routing) if account.routing is not None else None}
    if due:
        sets.update({DUE_PK: ROUTE_DUE, DUE_AT: due})
    return {name: value for name, value in sets.items() if value is not None}, ([] if due else [DUE_PK, DUE_AT])


def unreadable_account(item: Mapping[str, Any], error: Exception) -> Account:
    """What the routing pass can still use of an account item it cannot read: its id and
    version, marked unreadable (so it is parked, not stopped at on every run)."""
    version = item.get(VERSION)
    return Account(id=str(item.get("id") or account_id_of(str(item.get(PK, "")))),
                   version=int(version) if isinstance(version, int | Decimal) else None,
                   extra={UNREADABLE: f"{type(error).__name__}: {error}"})


def routing_from_doc(doc: Mapping[str, Any]) -> RoutingStatus:
    return RoutingStatus(pool=doc.get("pl"), territory=doc.get("te"), mode=doc.get("mo"), routed_at=doc.get("at"),
                         sla_due_at=doc.get("sla"), attempt=int(doc.get("n") or 0), tried=list(doc.get("tx") or []),
                         waiting=doc.get("w"), waiting_reason=doc.get("wr"), retry_at=doc.get("ra"),
                         due_at=doc.get("due"), **why_from_doc(doc), assigned=hand_from_doc(doc.get("hand")))


def assignment_item(assignment: Assignment) -> Item:
    pk, sk = assignment_key(assignment.account_id, assignment.cycle)
    item: Item = {"pk": pk, "sk": sk, "k": "RT", "acct": assignment.account_id, "cycle": assignment.cycle,
                  **assignment_fields(assignment)}
    return {name: value for name, value in item.items() if value is not None}


def assignment_fields(assignment: Assignment) -> Item:
    """The attributes an SLA re-route replaces (everything but the keys). `own` / `own_at` key
    the sparse OwnerIndex (the SDR who holds the cycle now, newest first): a re-route moves
    the assignment to the new SDR's inbox."""
    return {"sdr": assignment.sdr, "pool": assignment.pool, "terr": assignment.territory, "mode": assignment.mode,
            "at": assignment.routed_at, "sla": assignment.sla_due_at, "att": assignment.attempt,
            "tried": list(assignment.tried), "own": assignment.sdr, "own_at": assignment.routed_at}


def assignment_from_item(item: Mapping[str, Any]) -> Assignment:
    return Assignment(account_id=item.get("acct") or account_id_of(item["pk"]), cycle=int(item["cycle"]),
                      sdr=item["sdr"], pool=item["pool"], territory=item.get("terr"), mode=item.get("mode") or "",
                      routed_at=item["at"], sla_due_at=item["sla"], attempt=int(item.get("att") or 1),
                      tried=list(item.get("tried") or []))


def counter_value(item: Mapping[str, Any] | None) -> int:
    """A pool counter's value (0 when it was never written)."""
    return int(item.get("n") or 0) if item else 0




def pool_day_attribute(sdr_id: str, day: date) -> str:
    """The pool record's count of an SDR's assignments on one of their local days. Every
    routing transaction adds 1 to it in the record of each pool the SDR is in (beside the
    SDR's own day count, which is the guard), so a router learns who is full from the one
    pool read it does. Never above the SDR's day count: a record that missed assignments
    (made before the record counted them, or while the SDR was in no such pool) only costs
    one refused transaction, after which the record says full."""
    return f"{POOL_DAY_PREFIX}{sdr_id}#{day.isoformat()}"


def pool_day_counts(item: Mapping[str, Any] | None) -> dict[tuple[str, date], int]:
    """Every (SDR, local day) count a pool record holds."""
    counts: dict[tuple[str, date], int] = {}
    for name, value in (item or {}).items():
        if name.startswith(POOL_DAY_PREFIX):
            sdr_id, _, day = name[len(POOL_DAY_PREFIX):].rpartition("#")
            try:
                counts[(sdr_id, date.fromisoformat(day))] = int(value)
            except (TypeError, ValueError):
                continue  # not one of ours: ignored
    return counts


def sdr_day_count(item: Mapping[str, Any] | None) -> int:
    return int(item.get("n") or 0) if item else 0


def sdr_day_expiry(day: date) -> int:
    """The TTL of an SDR's daily count: some days after that day ends."""
    end = datetime.combine(day + timedelta(days=SDR_DAY_KEEP_DAYS), time(0), tzinfo=UTC)
    return int(end.timestamp())


# --------------------------------------------------------------------------- feedback


def last_feedback_doc(feedback: Feedback) -> dict[str, Any]:
    """What an account keeps of its last feedback (`fb`, a map): enough to recognise a replay
    of the same body and to say on the bus who gave it; the note stays in the feedback item."""
    return {"o": feedback.outcome, "s": feedback.sdr, "at": feedback.at, "c": feedback.cycle,
            "h": feedback.note_digest, "n": feedback.seq}


def last_feedback_from_doc(account_id: str, doc: Mapping[str, Any]) -> Feedback:
    return Feedback(account_id=account_id, cycle=int(doc.get("c") or 0), outcome=str(doc.get("o") or ""),
                    sdr=str(doc.get("s") or ""), at=str(doc.get("at") or ""), note_digest=str(doc.get("h") or ""),
                    seq=int(doc.get("n") or 0))


def feedback_item(feedback: Feedback) -> Item:
    pk, sk = feedback_key(feedback.account_id, feedback.seq)
    item: Item = {"pk": pk, "sk": sk, "k": "FB", "acct": feedback.account_id, "cycle": feedback.cycle,
                  "out": feedback.outcome, "sdr": feedback.sdr, "note": feedback.note, "by": feedback.caller,
                  "at": feedback.at, "state": feedback.state}
    return {name: value for name, value in item.items() if value is not None}


def feedback_from_item(item: Mapping[str, Any]) -> Feedback:
    return Feedback(account_id=item.get("acct") or account_id_of(item["pk"]), cycle=int(item.get("cycle") or 0),
                    outcome=item["out"], sdr=item.get("sdr") or "", at=item.get("at") or "", note=item.get("note"),
                    caller=item.get("by"), state=item.get("state"),
                    seq=int(str(item["sk"])[len(FEEDBACK_PREFIX):] or 0))


# --------------------------------------------------------------------------- team


def sdr_record_key(sdr_id: str) -> tuple[str, str]:
    """An SDR's record: their runtime pause and the accounts they hold open."""
    return f"{SDR_PREFIX}{sdr_id}", SDR_RECORD


def sdr_activity_key(sdr_id: str, kind: str, at: str, key: str) -> tuple[str, str]:
    """An acceptance (`accepted`) or an SLA breach (`breach`) of an SDR, keyed by its time and
    account (so writing it again is the same item)."""
    prefix = ACCEPTED_PREFIX if kind == "accepted" else BREACH_PREFIX
    return f"{SDR_PREFIX}{sdr_id}", f"{prefix}{at}#{key}"


def sdr_activity_item(sdr_id: str, kind: str, at: str, key: str) -> Item:
    pk, sk = sdr_activity_key(sdr_id, kind, at, key)
    return {"pk": pk, "sk": sk, "k": "SA", "at": at, "ttl": _expiry_after(at, SDR_ACTIVITY_KEEP_DAYS)}


def _expiry_after(at: str, days: int) -> int:
    moment = datetime.fromisoformat(at.replace("Z", "+00:00"))
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return int(moment.timestamp()) + days * 86400


def sdr_activity_since(since: str) -> str:
    """The sort key from which one Query of an SDR's partition reads, in this order: their
    acceptances since `since`, their SLA breaches (all kept: the reader keeps those since),
    their day counts and their record."""
    return f"{ACCEPTED_PREFIX}{since}"


def sdr_pause_fields(pause: SdrPause | None) -> tuple[dict[str, Any], list[str]]:
    """(SET, REMOVE) of the record's pause attributes: a pause, or none (the SDR returned)."""
    names = ["pz", "pu", "pr", "pa", "pb"]
    if pause is None:
        return {}, names
    sets = {"pz": True, "pu": pause.until, "pr": pause.reason, "pa": pause.at, "pb": pause.by}
    return {k: v for k, v in sets.items() if v is not None}, [k for k, v in sets.items() if v is None]


def sdr_record_from_item(sdr_id: str, item: Mapping[str, Any] | None) -> SdrRecord:
    if not item:
        return SdrRecord(sdr_id)
    pause = (SdrPause(until=item.get("pu"), reason=item.get("pr"), at=str(item.get("pa") or ""), by=item.get("pb"))
             if item.get("pz") else None)
    opened = item.get("open")
    return SdrRecord(sdr_id, pause=pause, version=int(item.get("ver") or 0), changed_at=item.get("upd"),
                     open={str(v) for v in opened} if isinstance(opened, set | list) else set())


INDEFINITE = "-"


def pool_pause_attribute(sdr_id: str) -> str:
    """The pool record's copy of an SDR's pause: its end (`-`: until returned). The router
    reads the pool record anyway, so a pause costs it no read."""
    return f"{POOL_PAUSE_PREFIX}{sdr_id}"


def pool_pause_value(pause: SdrPause) -> str:
    return pause.until or INDEFINITE


def pool_pauses(item: Mapping[str, Any] | None) -> dict[str, str | None]:
    """SDR id -> the end of their pause (None: until returned), as a pool record holds them."""
    return {name[len(POOL_PAUSE_PREFIX):]: (None if value == INDEFINITE else str(value))
            for name, value in (item or {}).items()
            if name.startswith(POOL_PAUSE_PREFIX) and isinstance(value, str)}


def sdr_day_of(item: Mapping[str, Any]) -> date | None:
    """The local day of an SDR's day count item (None: not one)."""
    sk = str(item.get("sk") or "")
    try:
        return date.fromisoformat(sk[len(DAY_PREFIX):]) if sk.startswith(DAY_PREFIX) else None
    except ValueError:
        return None


def sdr_activity(sdr_id: str, found: Iterable[Mapping[str, Any]]) -> SdrActivity:
    """An SDR's activity from the items of their partition (record, day counts, acceptances
    and SLA breaches, in any order); items of other kinds are left out."""
    activity = SdrActivity(SdrRecord(sdr_id))
    for item in found:
        kind = item.get(KIND)
        if kind == SDR_RECORD_KIND:
            activity.record = sdr_record_from_item(sdr_id, item)
        elif kind == SDR_DAY_KIND:
            day = sdr_day_of(item)
            if day is not None:
                activity.days[day] = sdr_day_count(item)
        elif kind == SDR_ACTIVITY_KIND and isinstance(item.get("at"), str):
            sk = str(item[SK])
            target = activity.accepted if sk.startswith(ACCEPTED_PREFIX) else activity.breaches
            target.append((item["at"], sk.split("#", 2)[-1]))
    return activity


def book_cursor(key: Mapping[str, Any]) -> str:
    """The OwnerIndex key a book page ended at (`LastEvaluatedKey`), as an opaque URL-safe token."""
    import base64

    text = json.dumps({"a": key.get("own_at"), "p": key.get("pk"), "s": key.get("sk")}, separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def book_start(token: str, sdr_id: str) -> Item:
    """The OwnerIndex key to go on from in `sdr_id`'s book (`ExclusiveStartKey`); ValueError
    for anything `book_cursor` did not make."""
    import base64
    import binascii

    if len(token) > 2048:
        raise ValueError("too long")
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode())
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise ValueError("not a cursor") from None
    if not isinstance(data, dict) or set(data) != {"a", "p", "s"} or not all(
            isinstance(v, str) and 0 < len(v) <= 1100 and v.isprintable() for v in data.values()):
        raise ValueError("not a cursor")
    if not (data["p"].startswith(ACCOUNT_PREFIX) and data["s"].startswith(ROUTE_PREFIX)):
        raise ValueError("not a book's key")
    try:
        datetime.fromisoformat(data["a"].replace("Z", "+00:00"))
    except ValueError:
        raise ValueError("not a book's key") from None
    return {"own": sdr_id, "own_at": data["a"], "pk": data["p"], "sk": data["s"]}


# --------------------------------------------------------------------------- erasure (DELETE /v1/contacts/{id})

#: A suppression record: one per id of an erased contact (`u:<userId>`, `e:<email>`,
#: `a:<anonymousId>`), keyed by the HMAC-SHA256 of the contact key under the deployment's
#: secret (adapters/keyed.py), so the table never holds the id and nobody without the secret
#: can test an address against it. Collection drops later events for any id it holds.
SUPPRESSION_KIND = "X"
SUPPRESSION_ATTRIBUTES = ("pk", "sk", "k", "at")
ITEM_KINDS["suppression"] = ("X#<HMAC-SHA256 hex of a contact key>", "P",
                             "no: a keyed digest of one id (not reversible without the deployment's secret), "
                             "the time")
#: An account's erasure marker (kept with its other attributes in `Account.extra`, so every
#: later write carries it): how many erasures took a contact out of it (`erN`) and when the
#: last did (`erAt`). No personal data: the account's history names "erasure" as the cause of
#: the write that moved `erN`.
ERASED_COUNT = "erN"
ERASED_AT = "erAt"
ERASURE_MARK_ATTRIBUTES = (ERASED_COUNT, ERASED_AT)

#: How erasure handles each item kind of ITEM_KINDS (tests/unit/test_erase.py fails when a kind
#: is added without an entry here): the store method that does it, or why nothing is to do.
ERASURE_OF_KIND: dict[str, str] = {
    "event": "delete_contact_events: every event of the contact's partition and of the partitions merged into it",
    "contact": "delete_contact: the contact and the anonymous / email contacts merged into it",
    "account": "save_account: its entry taken out of `top`, the account rescored; a lead's note (rt.hand.nt) "
               "redacted",
    "rejected": "erase_rejected: the records of the retention window whose raw input holds one of its ids",
    "feedback": "redact_feedback: the notes of its accounts' feedback that name it, redacted",
    "assignment": "nothing: no contact data",
    "pool counter": "nothing: no contact data",
    "SDR day": "nothing: no contact data",
    "SDR record": "nothing: a pause's reason and caller are the SDR's and the lead's, not a contact's",
    "SDR acceptance": "nothing: no contact data",
    "SDR breach": "nothing: no contact data",
    "suppression": "save_suppressions: written, never erased (it is what keeps the contact erased)",
}


def suppression_key(digest: str) -> tuple[str, str]:
    """Where the suppression record of one id's keyed digest (hex) is kept."""
    return f"{SUPPRESSION_PREFIX}{digest}", PROFILE


def suppression_item(digest: str, at: str) -> Item:
    pk, sk = suppression_key(digest)
    return {"pk": pk, "sk": sk, "k": SUPPRESSION_KIND, "at": at}


def erasure_marked(account: Account, at: str) -> None:
    """Mark an account's next write as an erasure's (mutates `account.extra`)."""
    account.extra[ERASED_COUNT] = int(account.extra.get(ERASED_COUNT) or 0) + 1
    account.extra[ERASED_AT] = at


def erasures_of(account: Account) -> int:
    """How many erasures took a contact out of the account (its marker's count)."""
    return int(account.extra.get(ERASED_COUNT) or 0)


def contact_events_query(contact_key: str) -> dict[str, Any]:
    """The Query of a contact's events (its partition's `E#` items), oldest key first."""
    return {"KeyConditionExpression": f"{PK} = :pk AND begins_with({SK}, :prefix)",
            "ExpressionAttributeValues": {":pk": contact_pk(contact_key), ":prefix": EVENT_PREFIX}}


def feedback_query(account_id: str) -> dict[str, Any]:
    """The Query of an account's feedback items (`FB#`)."""
    return {"KeyConditionExpression": f"{PK} = :pk AND begins_with({SK}, :prefix)",
            "ExpressionAttributeValues": {":pk": account_pk(account_id), ":prefix": FEEDBACK_PREFIX}}


def rejected_partitions(day: date) -> list[str]:
    """The ten partitions of one day's rejected records (`rejected_key`)."""
    return [f"{REJECTED_PREFIX}{day.isoformat()}#{n}" for n in range(10)]


def rejected_query(pk: str) -> dict[str, Any]:
    return {"KeyConditionExpression": f"{PK} = :pk", "ExpressionAttributeValues": {":pk": pk}}


def rejected_raw(item: Mapping[str, Any]) -> str:
    """What a rejected record kept of the input (its reason and field too: they may quote it)."""
    return " ".join(str(item.get(name) or "") for name in ("raw", "reason", "field"))


FEEDBACK_NOTE = "note"


def feedback_note(item: Mapping[str, Any]) -> str | None:
    note = item.get(FEEDBACK_NOTE)
    return note if isinstance(note, str) else None



# --------------------------------------------------------------------------- account history

#: An account's history: one item per stream batch that wrote the account, holding each write
#: as a step (the account item as written, without its index attributes, and the causes).
HISTORY_PREFIX = "H#"
HISTORY_KIND = "H"
HISTORY_STEPS = "hs"  # the steps, compressed JSON (steps_blob)
HISTORY_ATTRIBUTES = ("pk", "sk", "k", HISTORY_STEPS, "ttl")
#: Keys of one step in `hs` (a JSON list): the account as written, why it moved.
HISTORY_STEP_KEYS = ("a", "cz")
#: Attributes of the account item a step leaves out: the indexes' keys (a history item must not
#: show up in the DueIndex or the OwnerIndex) and what the item's key says.
_NOT_IN_STEP = ("pk", "sk", "k", DUE_PK, DUE_AT, OWNER)
ITEM_KINDS["history"] = ("A#<accountId>", "H#<iso time of its first step>#<version, 10 digits>",
                         "yes, inside `hs`: each step's account as written (its `top` entries: contact keys, "
                         "emails, titles, names), and the contact ids its causes name; TTL ttl")
KEY_PREFIXES = (*KEY_PREFIXES, HISTORY_PREFIX)
#: A history item stays well under DynamoDB's 400 KB: a batch's steps past this go to another item.
HISTORY_ITEM_BYTES = 300_000


def steps_blob(text: str) -> bytes:
    """A history item's steps as stored: their JSON, zlib-compressed (a Binary attribute). An
    account image repeats its keys in every entry and every step, so this keeps a history item
    about a third of its JSON's size: a write unit or two per account per stream batch."""
    return zlib.compress(text.encode("utf-8", "surrogatepass"), 6)


def steps_of(item: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A history item's steps (their JSON; compressed or, as first written, plain text)."""
    stored = item.get(HISTORY_STEPS)
    if isinstance(stored, bytes | bytearray):
        stored = zlib.decompress(bytes(stored)).decode("utf-8", "surrogatepass")
    steps = json.loads(stored or "[]")
    return steps if isinstance(steps, list) else []


def history_sk(updated_at: str, version: int) -> str:
    return f"{HISTORY_PREFIX}{instant_text(updated_at)}#{version:010d}"


def history_items(account_id: str, steps: Sequence[tuple[Account, list[dict[str, Any]]]],
                  retention_days: int, now: datetime) -> list[Item]:
    """The history items of one account's steps in a stream batch (one unless they are large),
    each keyed by its first step, so a batch delivered again writes the same items again."""
    found: list[Item] = []
    docs: list[str] = []
    size = 0
    first: tuple[str, int] | None = None

    def close() -> None:
        if first is not None and docs:
            found.append({"pk": account_pk(account_id), "sk": history_sk(*first), "k": HISTORY_KIND,
                          HISTORY_STEPS: steps_blob("[" + ",".join(docs) + "]"),
                          "ttl": int(now.timestamp()) + retention_days * 86400})

    for account, causes in steps:
        # entries and traits kept as JSON (`top`, `tr`), not compressed inside compressed JSON
        image = {name: value for name, value in account_item(account, body=[]).items() if name not in _NOT_IN_STEP}
        image.update(account_body_doc(account))
        doc = json.dumps({"a": image, "cz": causes}, separators=(",", ":"), default=str)
        if docs and size + len(doc) > HISTORY_ITEM_BYTES:
            close()
            docs, size, first = [], 0, None
        if first is None:
            first = (account.updated_at or now.isoformat(), int(account.version or 0))
        docs.append(doc)
        size += len(doc)
    close()
    return found


def history_steps(item: Mapping[str, Any]) -> list[tuple[Account, list[dict[str, Any]]]]:
    """The steps of a history item: each account as it was written, and why it moved."""
    account_id = account_id_of(item["pk"])
    steps = []
    for doc in steps_of(item):
        image = {**doc.get("a", {}), "pk": account_pk(account_id), "sk": PROFILE}
        steps.append((account_from_item(image), list(doc.get("cz") or [])))
    return steps


def history_query(account_id: str, *, start: str | None, end: str | None, forward: bool = True,
                  limit: int | None = None, after_sk: str | None = None) -> dict[str, Any]:
    """The Query of an account's history items whose first step is within [start, end] (ISO
    times; open ends: the whole history), or from the item `after_sk` on; values not yet
    marshalled."""
    low = after_sk or HISTORY_PREFIX + (instant_text(start) if start else "")
    high = HISTORY_PREFIX + (instant_text(end) if end else "") + "~"  # "~" sorts after a time and a version
    low = min(low, high)  # a cursor past the window's end: DynamoDB refuses BETWEEN a high and a low
    request: dict[str, Any] = {
        "KeyConditionExpression": f"{PK} = :pk AND {SK} BETWEEN :low AND :high",
        "ExpressionAttributeValues": {":pk": account_pk(account_id), ":low": low, ":high": high},
        "ScanIndexForward": forward, "ConsistentRead": True}
    if limit is not None:
        request["Limit"] = limit
    return request


def is_history_key(keys: tuple[str, str]) -> bool:
    return keys[0].startswith(ACCOUNT_PREFIX) and keys[1].startswith(HISTORY_PREFIX)


# --------------------------------------------------------------------------- erasure of an account's history

#: The attribute of a history item holding its steps (JSON).
ERASURE_OF_KIND["history"] = ("erase_history: each step's account without its entry, every text naming it "
                              "(a cause's contactId, a note) redacted; the scores as they were")


def _redacted_json(value: Any, redact: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, list):
        return [_redacted_json(inner, redact) for inner in value]
    if isinstance(value, dict):
        return {key: _redacted_json(inner, redact) for key, inner in value.items()}
    return value


def history_without(item: Mapping[str, Any], keys: set[str], redact: Callable[[str], str]) -> bytes | None:
    """A history item's steps with the entries of the contacts `keys` taken out of each step's
    account (`top`) and every text that names them redacted (a cause's contact id, a lead's
    note); None when nothing names them. The scores stay as they were (no personal data)."""
    steps = steps_of(item)
    cleaned = []
    for doc in steps:
        image = dict(doc.get("a") or {})
        top = image.get("top")
        if isinstance(top, str):  # a step written before steps kept it as JSON
            image["top"] = json.dumps([e for e in json.loads(top) if e.get("c") not in keys], separators=(",", ":"))
        elif isinstance(top, list):
            image["top"] = [e for e in top if not (isinstance(e, dict) and e.get("c") in keys)]
        cleaned.append(_redacted_json({**doc, "a": image}, redact))
    if cleaned == steps:
        return None
    return steps_blob(json.dumps(cleaned, separators=(",", ":"), default=str))
