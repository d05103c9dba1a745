"""What the engine remembers, as plain values: a contact's per-rule ledgers and the compact
entries an account keeps of its highest contacts. Their stored form is the storage adapter's
(adapters/items.py); their arithmetic is the engine's (engine/rules.py, engine/accounts.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class RuleLedger:
    """Engagement credited by one rule to one contact."""

    base: float = 0.0
    touches: list[list[float]] = field(default_factory=list)  # [epoch seconds, points], sorted
    count: int = 0
    recent: list[float] = field(default_factory=list)  # epochs of scored hits in the limit window

    def total(self) -> float:
        """Points credited, before decay."""
        if not self.touches:  # most ledgers a cap check reads: no generator to build
            return self.base
        return self.base + sum(p for _, p in self.touches)


@dataclass
class ContactState:
    """What the engine remembers about one contact (stored as JSON on the contact item)."""

    traits: dict[str, Any] = field(default_factory=dict)
    rules: dict[str, RuleLedger] = field(default_factory=dict)
    visits: int = 0
    last_page_at: float | None = None
    first_page_at: float | None = None  # lets merge_states see one visit split across two ids


@dataclass
class CounterPoints:
    """A counter bucket's points (site visits) as the account remembers them: a fixed number
    until the contact changes."""

    category: str
    points: float
    detail: str | None = None


@dataclass
class ContactEntry:
    """What an account remembers of one contact."""

    key: str
    version: int
    email: str | None = None
    title: str | None = None
    name: str | None = None
    persona: str = "user"
    fit: float = 0.0
    # rule -> the engine's ledger, or a counter bucket's points
    rules: dict[str, RuleLedger | CounterPoints] = field(default_factory=dict)
    recent: list[list[float]] = field(default_factory=list)  # [[epoch, points]] inside the velocity window
    last_engaged: float | None = None
    excluded: str | None = None  # e.g. "unsubscribed": scored, never counted towards routing

    @property
    def public_id(self) -> str:
        """The id the read API takes: the userId, the email, or the anonymous id."""
        return self.key.split(":", 1)[1]
