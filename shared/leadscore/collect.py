"""Collection: validate messages, score them against the rules, store each exactly once.

Knows nothing of Lambda or HTTP: the handlers hand in decoded messages and a `Store`.
Cost per accepted event: one conditional PutItem (see storage.py). A batch of N
messages costs N such writes, never more per event than N single calls.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from leadscore.model import InvalidMessage, TrackingEvent

# A stored event must stay under 1 KB (one write unit): free-form JSON is trimmed to this.
_MAX_JSON_BYTES = 600
_MAX_STRING = 200
# Rejections a request stores one by one; the rest share one summary record, so a batch of
# 1,000 bad messages costs 11 writes, not 1,000.
MAX_REJECTION_RECORDS = 10
_MAX_RAW_CHARS = 2000


class EventStore(Protocol):
    def put_event(self, item: dict[str, Any]) -> bool: ...

    def put_rejected(self, *, reason: str, field: str | None, source_id: str | None, raw: str,
                     received_at: datetime, retention_days: int) -> None: ...


@dataclass
class Rejection:
    index: int | None
    field: str
    reason: str
    message_id: str | None = None

    def as_json(self) -> dict[str, Any]:
        answer: dict[str, Any] = {"field": self.field, "reason": self.reason}
        if self.index is not None:
            answer["index"] = self.index
        if self.message_id:
            answer["messageId"] = self.message_id
        return answer


@dataclass
class CollectResult:
    accepted: int = 0
    duplicates: int = 0
    bots: int = 0
    rejected: list[Rejection] = field(default_factory=list)


def _compact(value: Any, budget: int = _MAX_JSON_BYTES) -> str | None:
    """JSON of a traits/properties object, trimmed so the stored event stays one write unit.

    Long strings are cut and nested lists dropped first; if it is still too big, keys are
    dropped from the end. What the rules can match (scalars near the top) survives.
    """
    if not value:
        return None

    def trim(node: Any, depth: int = 0) -> Any:
        if isinstance(node, str):
            return node[:_MAX_STRING]
        if isinstance(node, dict):
            return {str(k)[:64]: trim(v, depth + 1) for k, v in node.items()
                    if depth < 2 and not isinstance(v, list)}
        return node

    trimmed = trim(value)
    text = json.dumps(trimmed, separators=(",", ":"), ensure_ascii=False, default=str)
    while len(text.encode()) > budget and isinstance(trimmed, dict) and trimmed:
        trimmed.pop(next(reversed(trimmed)))
        text = json.dumps(trimmed, separators=(",", ":"), ensure_ascii=False, default=str)
    return text if trimmed else None


def event_item(event: TrackingEvent, hits: Sequence[str], retention_days: int) -> dict[str, Any]:
    """The stored form of an accepted event: compact, short attribute names, with a TTL."""
    from leadscore.storage import contact_pk, event_sk

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
        "tr": _compact(event.traits),
        "pr": _compact(event.properties),
        "hits": list(hits) or None,
        "bot": True if event.bot else None,
        "ttl": int(event.received_at.timestamp()) + retention_days * 86400,
    }


def event_from_item(item: dict[str, Any]) -> TrackingEvent:
    """Rebuild the domain event from its stored form (stream images and replays)."""
    from datetime import UTC

    def when(millis: Any) -> datetime:
        return datetime.fromtimestamp(int(millis) / 1000, tz=UTC)

    return TrackingEvent(
        type=item["ty"],
        message_id=item["mid"],
        source_id=item["src"],
        contact_key=item["pk"][2:],
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


def _raw_text(raw: Any) -> str:
    """What a rejection record keeps of the input: JSON text, cut to a size a record holds."""
    if isinstance(raw, str):
        return raw[:_MAX_RAW_CHARS]
    try:
        return json.dumps(raw, default=str, separators=(",", ":"))[:_MAX_RAW_CHARS]
    except (RecursionError, ValueError):  # nested past json's own limit
        return f"<{type(raw).__name__} nested too deeply to keep>"


def _short_id(message_id: Any) -> str | None:
    """A rejected message's id as the answer echoes it: text, and never a huge one."""
    if message_id is None or isinstance(message_id, dict | list):
        return None
    text = message_id if isinstance(message_id, str) else str(message_id)[:256]
    return text[:256].encode("utf-8", "backslashreplace").decode("utf-8")


class Collector:
    """Validates and stores tracking messages for one configuration and one store."""

    def __init__(self, store: EventStore, config: Any, *, retention_days: int = 400,
                 rejected_retention_days: int = 30, max_workers: int = 8) -> None:
        self.store = store
        self.config = config
        self.retention_days = retention_days
        self.rejected_retention_days = rejected_retention_days
        self.max_workers = max_workers

    def reject(self, *, reason: str, field: str | None, source_id: str | None, raw: Any,
               received_at: datetime) -> None:
        """Record input we could not accept, so nothing is dropped silently."""
        self.store.put_rejected(reason=reason, field=field, source_id=source_id, raw=_raw_text(raw),
                                received_at=received_at, retention_days=self.rejected_retention_days)

    def collect(self, messages: Sequence[Any], *, source_id: str, received_at: datetime,
                expected_type: str | None = None, user_agent: str | None = None,
                indexed: bool = False, all_or_nothing: bool = False) -> CollectResult:
        """Parse, score and store each message. A bad message never fails the others, unless
        `all_or_nothing` (a form's identify and submission): then one bad one stores none."""
        from leadscore.messages import parse_message
        from leadscore.rules import matching_rules

        result = CollectResult()
        items: list[tuple[int, dict[str, Any]]] = []
        bad: list[tuple[InvalidMessage, Any]] = []
        for index, raw in enumerate(messages):
            try:
                event = parse_message(raw, source_id=source_id, received_at=received_at,
                                      expected_type=expected_type, user_agent=user_agent)
                event = self._enrich(event)
            except InvalidMessage as problem:
                message_id = raw.get("messageId") if isinstance(raw, dict) else None
                result.rejected.append(Rejection(index if indexed else None, problem.field, problem.reason,
                                                 _short_id(message_id)))
                bad.append((problem, raw))
                continue
            # Bots are stored (so they can be audited and deduplicated) but never scored.
            hits = [] if event.bot else matching_rules(self.config.scoring, event)
            if event.bot:
                result.bots += 1
            items.append((index, event_item(event, hits, self.retention_days)))

        self._record_rejections(bad, source_id, received_at)
        if bad and all_or_nothing:
            return result
        for stored in self._put_all([item for _, item in items]):
            if stored:
                result.accepted += 1
            else:
                result.duplicates += 1
        return result

    def _record_rejections(self, bad: list[tuple[InvalidMessage, Any]], source_id: str,
                           received_at: datetime) -> None:
        for problem, raw in bad[:MAX_REJECTION_RECORDS]:
            self.reject(reason=problem.reason, field=problem.field, source_id=source_id, raw=raw,
                        received_at=received_at)
        rest = bad[MAX_REJECTION_RECORDS:]
        if rest:
            fields = sorted({problem.field for problem, _ in rest})
            self.reject(reason=f"{len(rest)} more messages of this request were rejected",
                        field=", ".join(fields)[:200], source_id=source_id,
                        raw=[{"field": p.field, "reason": p.reason} for p, _ in rest[:20]],
                        received_at=received_at)

    def _enrich(self, event: TrackingEvent) -> TrackingEvent:
        """Add what the configuration knows: a form's funnel stage from sources.yaml."""
        if event.type != "track" or (event.event or "").lower() != "form submitted":
            return event
        form_id = event.properties.get("form_id") or event.properties.get("formId")
        form = self.config.sources.form(str(form_id)) if form_id else None
        if form is None or "stage" in event.properties:
            return event
        from dataclasses import replace

        return replace(event, properties={**event.properties, "form_id": form.id, "stage": form.stage})

    def _put_all(self, items: list[dict[str, Any]]) -> list[bool]:
        put: Callable[[dict[str, Any]], bool] = self.store.put_event
        if len(items) <= 1:
            return [put(item) for item in items]
        # Conditional writes cannot be batched; run them side by side to keep latency flat.
        with ThreadPoolExecutor(max_workers=min(self.max_workers, len(items))) as pool:
            return list(pool.map(put, items))
