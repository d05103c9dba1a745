"""Contact rules (pure): identity links, what an event says about who the contact is,
merges of anonymous and email-only contacts, and the stored score fields.

Works on `records.Contact`; the stream aggregation (aggregate.py) and the decay job call it,
and only they read and write the store.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from leadscore.domain.events import TrackingEvent
from leadscore.domain.ledgers import ContactState
from leadscore.domain.records import Contact, ContactScores
from leadscore.engine.rules import compact, merge_states, next_decay_at, score

if TYPE_CHECKING:
    from leadscore.rulesfiles.scoring import ScoringConfig

_TEXT_LIMIT = 200


def new_contact(key: str, now: datetime) -> Contact:
    """A contact seen for the first time."""
    return Contact(key=key, state=ContactState(), first_seen=now.isoformat())


def linked_keys(event: TrackingEvent) -> list[str]:
    """Contacts an identify/alias says are the same person as the event's own contact."""
    own = event.contact_key
    linked: list[str] = []
    if event.type == "identify" and event.user_id:
        if event.anonymous_id:
            linked.append(f"a:{event.anonymous_id}")
        if event.email:
            linked.append(f"e:{event.email}")
    elif event.type == "identify" and event.email and event.anonymous_id:
        # an identify by email alone (a form): the visitor's anonymous history joins the
        # email; an anonymous id already part of a known contact stays there (merge_linked)
        linked.append(f"a:{event.anonymous_id}")
    elif event.type == "alias" and event.previous_id:
        linked += [f"a:{event.previous_id}", f"u:{event.previous_id}"]
    return [key for key in dict.fromkeys(linked) if key != own]


def unsubscribed_from_everything(event: TrackingEvent) -> bool:
    """`Unsubscribed` with `all: true` (or scope/list "all"): excluded from routing for good."""
    if event.type != "track" or (event.event or "").strip().lower() != "unsubscribed":
        return False
    props = event.properties
    return props.get("all") is True or str(props.get("scope") or props.get("list") or "").lower() == "all"


def identity(contact: Contact) -> tuple[Any, ...]:
    """What a contact says about who it is, besides its engine state: when neither changes,
    an event changed nothing worth a write."""
    return (contact.user_id, contact.email, contact.title, contact.name, contact.account,
            contact.account_source, contact.group_traits, contact.unsubscribed)


def remember_identity(contact: Contact, event: TrackingEvent) -> None:
    """Keep who the contact is and which account it belongs to (group > company > email)."""
    if event.user_id:
        contact.user_id = event.user_id
    if unsubscribed_from_everything(event):
        contact.unsubscribed = True
    if event.email:
        contact.email = event.email
    if event.type == "identify":
        title = event.traits.get("title")
        if isinstance(title, str):
            contact.title = title[:_TEXT_LIMIT]
        name = event.traits.get("name") or " ".join(
            str(event.traits[k]) for k in ("firstName", "lastName") if event.traits.get(k))
        if name:
            contact.name = str(name)[:_TEXT_LIMIT]
    if not event.account_hint:
        return
    if event.type == "group":
        contact.account, contact.account_source = event.account_hint, "group"
        contact.group_traits = dict(event.traits) if event.traits else None
    elif contact.account_source != "group":
        contact.account, contact.account_source = event.account_hint, "profile"


def merge_linked(scoring: ScoringConfig, target: Contact, links: list[str], found: dict[str, Contact],
                 now: datetime) -> list[tuple[Contact, int | None]]:
    """Fold the anonymous / email-only contacts `links` (those stored are in `found`) into
    `target`, once, and return the stubs pointing at it, each with the version it was read at.

    A linked id with no contact yet gets a stub too, so its later events (a pixel hit with
    only the anonymous id, a form with only the email) are forwarded. A contact already part
    of someone stays there: first link wins.
    """

    stubs: list[tuple[Contact, int | None]] = []
    for key in dict.fromkeys(links):
        other = found.get(key)
        if other is not None and other.merged_into:
            continue
        if other is None:
            stubs.append((Contact(key=key, merged_into=target.key, version=1, updated_at=now.isoformat()), None))
            continue
        merge_states(scoring, target.engine_state, other.state if other.state is not None else ContactState())
        target.account = target.account or other.account
        target.account_source = target.account_source or other.account_source
        target.group_traits = target.group_traits or other.group_traits
        target.email = target.email or other.email
        # its points now live in the target: the stub no longer counts anywhere
        stub = replace(other, merged_into=target.key, version=(other.version or 0) + 1,
                       updated_at=now.isoformat(), account=None,
                       scores=ContactScores(lifecycle=other.scores.lifecycle))
        stubs.append((stub, other.version))
    return stubs


def follow_merges(contact: Contact, load: Callable[[str], Contact | None], max_hops: int
                  ) -> tuple[str, Contact | None]:
    """Follow `merged_into` pointers from `contact`, loading at most `max_hops` contacts:
    (key, contact) of the last one reached (None when that key holds no contact yet)."""
    key, hops = contact.key, 0
    current: Contact | None = contact
    while current is not None and current.merged_into and hops < max_hops:
        key = current.merged_into
        current = load(key)
        hops += 1
    return key, current


def moved_stub(stub: Contact, watermark: str, now: datetime) -> Contact:
    """A merged contact whose events were forwarded: its watermark moves past them."""
    return replace(stub, watermark=watermark, version=(stub.version or 0) + 1, updated_at=now.isoformat())


def contact_scores(scoring: ScoringConfig, state: ContactState, now: datetime) -> ContactScores:
    """The score fields a contact stores, valued as of `now` (`due_at` None when no
    decaying touch needs re-valuing). The aggregation and the decay job both write these."""
    card = score(scoring, state, now)
    due = next_decay_at(scoring, state, now)
    return ContactScores(fit=card.fit, engagement=card.engagement, score=card.score, velocity=card.velocity,
                         lifecycle=card.lifecycle, due_at=due.isoformat() if due else None)


def rescored(scoring: ScoringConfig, contact: Contact, now: datetime) -> Contact:
    """The contact ready to store: its state compacted, valued as of `now`, next version."""
    state = contact.engine_state
    compact(scoring, state, now)
    contact.scores = contact_scores(scoring, state, now)
    contact.version = (contact.version or 0) + 1
    contact.updated_at = now.isoformat()
    return contact
