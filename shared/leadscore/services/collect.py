"""Collection: validate messages, score them against the rules, store each exactly once.

Knows nothing of Lambda or HTTP: the handlers hand in decoded messages and an
`EventStore` (ports.py: the DynamoDB `Store`, or an in-memory fake in unit tests).
Cost per accepted event: one conditional PutItem (see storage.py). A batch of N
messages costs N such writes, never more per event than N single calls. Bad messages and
bots (judged by their user agent) are kept as rejected records with the reason instead:
at most 11 PutItems per request, whatever its size.

Erased contacts: one eventually consistent BatchGetItem per request (per 100 ids) asks which of
the ids its messages name (userId, email, anonymousId, an alias's previousId) an erasure
suppressed (`load_suppressed`); a message naming one is dropped, nothing of it stored (no
rejected record either: its raw input is the erased person's), and the answer says why.
So a single event costs 2 requests (the budget's most) and a batch of N about N + N/33.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any

from leadscore.domain.events import InvalidMessage, TrackingEvent
from leadscore.domain.json_bounds import bounded_json_object
from leadscore.engine.erasure import ids_of
from leadscore.engine.messages import bot_reason, parse_message, property_rank, trait_rank
from leadscore.engine.rules import matching_rules
from leadscore.services.ports import CollectStore

if TYPE_CHECKING:
    from leadscore.rulesfiles.loading import Config

# Rejections a request stores one by one; the rest share one summary record, so a batch of
# 1,000 bad messages costs 11 writes, not 1,000.
MAX_REJECTION_RECORDS = 10
#: The group trait naming the account's owner in the CRM (routing.py reads it): kept only from
#: a source marked `trusted: true` in sources.yaml.
CRM_OWNER_TRAIT = "owner"
_MAX_RAW_CHARS = 2000
#: Days a rejected input is kept (its record's TTL); an erasure searches that many days back.
REJECTED_RETENTION_DAYS = 30


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


#: Why a message naming an erased contact was dropped (the answer's `reason`).
ERASED_REASON = "the contact asked to be erased: this message names one of its ids and was dropped, nothing stored"


@dataclass
class Dropped:
    """A message dropped because it names an erased contact (nothing of it is stored)."""

    index: int | None
    message_id: str | None = None

    def as_json(self) -> dict[str, Any]:
        answer: dict[str, Any] = {"reason": "erased", "message": ERASED_REASON}
        if self.index is not None:
            answer["index"] = self.index
        if self.message_id:
            answer["messageId"] = self.message_id
        return answer


@dataclass
class CollectResult:
    accepted: int = 0
    duplicates: int = 0
    bots: int = 0  # judged bots: recorded as rejected with the reason, never scored nor listed
    rejected: list[Rejection] = field(default_factory=list)
    bot_matches: list[str] = field(default_factory=list)  # what crawlerdetect matched, per bot
    dropped: list[Dropped] = field(default_factory=list)  # naming an erased contact: nothing stored


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

    def __init__(self, store: CollectStore, config: Config, *, retention_days: int = 400,
                 rejected_retention_days: int = REJECTED_RETENTION_DAYS, max_workers: int = 8) -> None:
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
        result = CollectResult()
        accepted: list[tuple[TrackingEvent, list[str]]] = []
        bad: list[tuple[InvalidMessage, Any]] = []
        bots: list[tuple[InvalidMessage, Any]] = []
        parsed: list[tuple[int, Any, TrackingEvent]] = []
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
            parsed.append((index, raw, event))
        erased = self._erased([event for _, _, event in parsed])
        for index, raw, event in parsed:
            if erased and not erased.isdisjoint(ids_of(event)):
                result.dropped.append(Dropped(index if indexed else None, _short_id(event.message_id)))
                continue
            if event.bot:
                # A bot is kept as a rejected record that says why, never as an event: it
                # scores nothing, and its messageId stays free for the visitor's own hit (a
                # mail scanner opens the pixel of an email before its reader does).
                field_name, reason, match = bot_reason(raw, event, user_agent)
                result.bots += 1
                result.bot_matches.append(match)
                bots.append((InvalidMessage(field_name, reason), raw))
                continue
            hits = matching_rules(self.config.scoring, event)
            accepted.append((self._bounded(event), hits))

        self._record_rejections(bad + bots, source_id, received_at)
        if bad and all_or_nothing:
            return result
        for stored in self._put_all(accepted):
            if stored:
                result.accepted += 1
            else:
                result.duplicates += 1
        return result

    def _erased(self, events: Sequence[TrackingEvent]) -> set[str]:
        """The ids of `events` an erasure suppressed: one read for the request (none for no
        event), eventually consistent (half the read units). An erasure writes its suppression
        records first and deletes the partitions last, seconds later, so an event that a stale
        read lets through in between is deleted with the rest; the aggregation's own check is
        strongly consistent."""
        keys = [key for event in events for key in ids_of(event)]
        return self.store.load_suppressed(keys, consistent=False) if keys else set()

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
        """Add what the configuration knows: a form's funnel stage from sources.yaml. Drop
        what the source may not say: a group call's `owner` (the CRM owner routing honours)
        unless its source is `trusted`, so an account's group traits only ever hold an owner a
        trusted source sent (a browser's write key is public: anyone could name themselves)."""
        if event.type == "group" and CRM_OWNER_TRAIT in event.traits \
                and not self.config.sources.trusted(event.source_id):
            return replace(event, traits={k: v for k, v in event.traits.items() if k != CRM_OWNER_TRAIT})
        if event.type != "track" or (event.event or "").lower() != "form submitted":
            return event
        form_id = event.properties.get("form_id") or event.properties.get("formId")
        form = self.config.sources.form(str(form_id)) if form_id else None
        if form is None or "stage" in event.properties:
            return event
        return replace(event, properties={**event.properties, "form_id": form.id, "stage": form.stage})

    @cached_property
    def _ranks(self) -> tuple[Callable[[str], int], Callable[[str], int]]:
        return trait_rank(self.config.scoring), property_rank(self.config.scoring)

    def _bounded(self, event: TrackingEvent) -> TrackingEvent:
        """The event with its traits and properties as they are stored: within the stored
        event's bound, what the rules, the code and the Spec read kept before custom keys
        (the storage layer alone cannot know which keys the rules read)."""
        traits, properties = self._ranks
        return replace(event, traits=bounded_json_object(event.traits, rank=traits) or {},
                       properties=bounded_json_object(event.properties, rank=properties) or {})

    def _put_all(self, events: list[tuple[TrackingEvent, list[str]]]) -> list[bool]:
        def put(accepted: tuple[TrackingEvent, list[str]]) -> bool:
            return self.store.put_event(accepted[0], accepted[1], self.retention_days)

        if len(events) <= 1:
            return [put(accepted) for accepted in events]
        # Conditional writes cannot be batched; run them side by side to keep latency flat.
        with ThreadPoolExecutor(max_workers=min(self.max_workers, len(events))) as pool:
            return list(pool.map(put, events))
