"""Plain domain types shared by the modules of the layer (no AWS, no Lambda)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

MessageType = Literal["track", "page", "screen", "identify", "group", "alias"]
#: who someone is, not what they did: these messages never earn engagement points
NON_ENGAGEMENT_TYPES: frozenset[MessageType] = frozenset(("identify", "group", "alias"))


@dataclass(frozen=True, slots=True)
class TrackingEvent:
    """One Segment Spec message, validated and normalised at the edge.

    `contact_key` is `u:<userId>`, else `e:<lowercased email>`, else `a:<anonymousId>`.
    `account_hint` is the account id the message itself names (a registrable domain, or a
    `group` call's `groupId` when it names no domain); `None` when the message says nothing.
    """

    type: MessageType
    message_id: str
    source_id: str
    contact_key: str
    timestamp: datetime  # aware UTC; client time clamped to received_at
    received_at: datetime  # aware UTC
    event: str | None = None  # track: event name; page/screen: the page name if any
    user_id: str | None = None
    anonymous_id: str | None = None
    group_id: str | None = None
    previous_id: str | None = None  # alias
    email: str | None = None  # lowercased
    traits: dict[str, Any] = field(default_factory=dict)  # identify or group traits, nested as sent
    properties: dict[str, Any] = field(default_factory=dict)
    url: str | None = None  # page URL (properties.url or context.page.url)
    path: str | None = None  # URL path (properties.path or parsed from url)
    referrer: str | None = None
    user_agent: str | None = None
    account_hint: str | None = None
    bot: bool = False


class InvalidMessage(ValueError):
    """A message that cannot be accepted; `field` names the offending key path."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}" if field else reason)
        self.field = field
        self.reason = reason
