"""The typed changes the table's stream carries (`adapters.streams` reads them off the stream):
an event inserted, a contact or an account written. The folds of aggregate.py and the
rebuild (rebuild.py) take these, never an item."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from leadscore.domain.events import TrackingEvent
from leadscore.domain.records import Account, Contact

__all__ = ["AccountChanged", "Change", "ContactChanged", "EventInserted", "position"]


def position(sequence: str) -> str:
    """A stream sequence number (up to 40 digits) padded so that positions compare as text:
    a contact's watermark is the position of the last event it took."""
    return sequence.zfill(40)


@dataclass(eq=False)
class EventInserted:
    """An event collection stored. `event()` decodes it: the event and the rule ids collection
    matched; PoisonRecord for an image the collector never writes."""

    sequence: str  # as delivered (the batch item identifier)
    contact_key: str
    event: Callable[[], tuple[TrackingEvent, list[str]]]

    @property
    def position(self) -> str:
        return position(self.sequence)


@dataclass(eq=False)
class ContactChanged:
    """A contact written (inserted or modified): `new()` in full, `old()` in summary (no
    engine state: what its accounts need of it), None when it is new."""

    sequence: str
    contact_key: str
    new: Callable[[], Contact]
    old: Callable[[], Contact | None]


@dataclass(eq=False)
class AccountChanged:
    """An account written: `new(full)` (in full, or in summary: scores, state, routing),
    `old()` in summary (`old_in_full()` in full: its history step's causes), None when it is
    new; `routed` says whether it is routed now without decoding it."""

    sequence: str
    account_id: str
    routed: bool
    new: Callable[[bool], Account]
    old: Callable[[], Account | None]
    old_in_full: Callable[[], Account | None] | None = None


Change = EventInserted | ContactChanged | AccountChanged
