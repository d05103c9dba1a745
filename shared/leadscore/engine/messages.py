"""Segment Tracking API messages in, `TrackingEvent` out.

Follows the Segment Spec (common fields, track, page, screen, identify, group, alias) and
the HTTP Tracking API's limits, so the stock SDKs work by pointing them at this API.
Pure: the receive time and the request's user agent are parameters.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urlparse

from leadscore.domain.events import InvalidMessage, MessageType, TrackingEvent
from leadscore.engine.identity import account_id_for, bot_match, is_bot, normalize_email

if TYPE_CHECKING:
    from leadscore.rulesfiles.scoring import ScoringConfig

MAX_EVENT_BYTES = 32 * 1024
MAX_BATCH_BYTES = 500 * 1024
MAX_ID_LENGTH = 256
MAX_EVENT_NAME_LENGTH = 200
MAX_BATCH_ITEMS = 1000  # Segment's 500 KB holds about this many minimal messages
MAX_DEPTH = 32  # nesting levels of a message; SDKs send 3 or 4
MAX_FIELD_NAME = 200  # characters of a key path quoted in an error
_MAX_NUMBER = 1e38  # compared exactly, ints too: what openapi.yaml's exclusive bounds say
TYPES: tuple[MessageType, ...] = ("track", "page", "screen", "identify", "group", "alias")

# Fields a client changes when it retries the same message; leaving them out of the
# derived messageId lets the retry hit the stored event's conditional write.
_VOLATILE_FIELDS = ("writeKey", "sentAt")
_BATCH_DEFAULTS = ("context", "integrations")


def parse_message(
    raw: Any,
    *,
    source_id: str,
    received_at: datetime,
    expected_type: str | None = None,
    user_agent: str | None = None,
) -> TrackingEvent:
    """Validate one Segment message and normalise it; `InvalidMessage` names the bad field.

    `expected_type` is the route's type (`/v1/track` -> `"track"`): it fills a missing
    `type` and rejects a different one. `user_agent` is the HTTP request's header, used
    when the message carries no `context.userAgent`.
    """
    if not isinstance(raw, dict):
        raise InvalidMessage("", "a message must be a JSON object")
    check_tree(raw)
    size = len(_canonical_json(raw, sort_keys=False).encode())
    if size > MAX_EVENT_BYTES:
        raise InvalidMessage("", f"event is {size} bytes; the limit is 32 KB")

    received = _as_utc(received_at)
    msg_type = _message_type(raw.get("type"), expected_type)

    context = _object(raw.get("context"), "context")
    context_traits = _object(context.get("traits"), "context.traits")
    context_page = _object(context.get("page"), "context.page")
    own_traits = _object(raw.get("traits"), "traits")
    properties = _object(raw.get("properties"), "properties")

    user_id = _identifier(raw.get("userId"), "userId")
    anonymous_id = _identifier(raw.get("anonymousId"), "anonymousId")
    email = _email(msg_type, own_traits, context_traits, properties)

    previous_id: str | None = None
    if msg_type == "alias":
        previous_id = _identifier(raw.get("previousId"), "previousId")
        if not user_id:
            raise InvalidMessage("userId", "an alias call needs the userId being aliased to")
        if not previous_id:
            raise InvalidMessage("previousId", "an alias call needs a previousId")
    if not (user_id or anonymous_id or email):
        raise InvalidMessage(
            "userId",
            "a message needs a userId, an anonymousId or an email "
            "(traits.email, context.traits.email or properties.email)",
        )

    if msg_type == "group":
        group_id = _identifier(raw.get("groupId"), "groupId")
        if not group_id:
            raise InvalidMessage("groupId", "a group call needs a groupId")
    else:
        # Segment's way to attribute a non-group call to a company (B2B sources).
        group_id = _identifier(context.get("groupId"), "context.groupId")

    event = _event_name(msg_type, raw, properties)
    if msg_type == "identify":
        # RudderStack's SDKs send an identify's traits only as context.traits: both count,
        # the message's own traits winning key by key.
        traits = _merge(context_traits, own_traits)
    else:
        traits = own_traits if msg_type == "group" else context_traits
    url, path, referrer = _page_location(msg_type, properties, context_page)

    context_user_agent = _text(context.get("userAgent"))
    header_user_agent = _text(user_agent)
    # A Segment server library sends no context.userAgent and its HTTP client's own UA
    # (analytics-ruby, Java, Go): that names the sender, not a visitor, and crawlerdetect
    # flags it, which would silently stop every back-end event from scoring.
    header_names_visitor = not isinstance(context.get("library"), Mapping)
    bot = is_bot(context_user_agent) if context_user_agent else header_names_visitor and is_bot(header_user_agent)

    if user_id:
        contact_key = f"u:{user_id}"
    elif email:
        contact_key = f"e:{email}"
    else:
        contact_key = f"a:{anonymous_id}"

    return TrackingEvent(
        type=msg_type,
        message_id=_identifier(raw.get("messageId"), "messageId") or _derived_message_id(raw),
        source_id=source_id,
        contact_key=contact_key,
        timestamp=_event_time(raw, received),
        received_at=received,
        event=event,
        user_id=user_id,
        anonymous_id=anonymous_id,
        group_id=group_id,
        previous_id=previous_id,
        email=email,
        traits=dict(traits),
        properties=dict(properties),
        url=url,
        path=path,
        referrer=referrer,
        user_agent=context_user_agent or header_user_agent,
        account_hint=account_id_for(
            traits=traits, email=email, group_id=group_id, is_group_call=msg_type == "group"
        ),
        bot=bot,
    )


def bot_reason(raw: Mapping[str, Any], event: TrackingEvent, user_agent: str | None = None) -> tuple[str, str, str]:
    """(field, reason, match) for a message judged a bot (`event.bot`): which user agent was
    judged (the message's own `context.userAgent`, else the request's `user-agent` header,
    which a pixel hit or a form post copies into its messages), and what in it crawlerdetect
    matched, so the sender can tell why it was not scored."""
    context = raw.get("context")
    own = _text(context.get("userAgent")) if isinstance(context, Mapping) else None
    own = own if own != _text(user_agent) else None
    agent = event.user_agent or ""
    match = bot_match(agent) or agent[:60]
    shown = agent if len(agent) <= 160 else agent[:160] + "..."
    return ("context.userAgent" if own is not None else "user-agent",
            f'bot user agent: crawlerdetect matched "{match}" in "{shown}"', match)


def batch_messages(body: Any) -> list[Any]:
    """The messages of a `/v1/batch` body, each with the batch's shared fields applied.

    As in Segment, the batch's `context` and `integrations` are merged under each
    message's own (the message wins), and the batch's `sentAt` stands in for a missing one
    so clock-skew correction still works. Items are returned unvalidated: one bad message
    must not fail the others, so `parse_message` judges each.
    """
    if not isinstance(body, dict):
        raise InvalidMessage("batch", "the body must be a JSON object with a `batch` list")
    items = body.get("batch")
    if not isinstance(items, list) or not items:
        raise InvalidMessage("batch", "must be a non-empty list of messages")
    if len(items) > MAX_BATCH_ITEMS:
        raise InvalidMessage("batch", f"has {len(items)} messages; the limit is {MAX_BATCH_ITEMS} per request")
    defaults: dict[str, dict[str, Any]] = {}
    for key in _BATCH_DEFAULTS:
        if body.get(key) is not None:
            shared = _object(body[key], key)
            # checked once here: merged into every message, a bad one would fail them all
            check_tree(shared, key, depth=1)
            defaults[key] = shared
    sent_at = _batch_sent_at(body.get("sentAt"))

    messages: list[Any] = []
    for item in items:
        if not isinstance(item, dict):
            messages.append(item)
            continue
        message = dict(item)
        for key, shared in defaults.items():
            own = item.get(key)
            if own is None:
                message[key] = _merge(shared, {})
            elif isinstance(own, dict):
                message[key] = _merge(shared, own)
            # Anything else is left for parse_message to reject with its field name.
        if sent_at is not None and item.get("sentAt") is None:
            message["sentAt"] = sent_at
        messages.append(message)
    return messages


def check_tree(value: Any, field: str = "", *, depth: int = 0) -> None:
    """Reject what JSON allows but storage and Python cannot take: nesting deeper than
    `MAX_DEPTH`, and strings or keys with lone surrogates (valid `\\ud800` escapes, not
    UTF-8). Iterative, so a deep message cannot exhaust the interpreter's stack."""
    stack: list[tuple[Any, str, int]] = [(value, field, depth)]
    while stack:
        node, path, level = stack.pop()
        if isinstance(node, str):
            if not node.isascii() and not _is_utf8(node):
                raise InvalidMessage(_path_text(path), "contains a lone surrogate (\\ud800-\\udfff); "
                                     "send text as UTF-8")
            continue
        if isinstance(node, dict):
            if level >= MAX_DEPTH:
                raise InvalidMessage(_path_text(path), f"is nested more than {MAX_DEPTH} levels deep")
            for key, child in node.items():
                key_text = str(key)
                if not key_text.isascii() and not _is_utf8(key_text):
                    raise InvalidMessage(_path_text(path), "has a key with a lone surrogate; send text as UTF-8")
                stack.append((child, f"{path}.{key_text}" if path else key_text, level + 1))
        elif isinstance(node, list):
            if level >= MAX_DEPTH:
                raise InvalidMessage(_path_text(path), f"is nested more than {MAX_DEPTH} levels deep")
            stack.extend((child, f"{path}[{index}]", level + 1) for index, child in enumerate(node))
        elif isinstance(node, int | float) and not isinstance(node, bool) and not -_MAX_NUMBER < node < _MAX_NUMBER:
            raise InvalidMessage(_path_text(path), "is a number beyond the 38 digits DynamoDB stores")


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _path_text(path: str) -> str:
    """A key path fit to quote in an error and to store: escaped, and cut when absurdly long."""
    text = path if path.isascii() else path.encode("utf-8", "backslashreplace").decode("utf-8")
    return text if len(text) <= MAX_FIELD_NAME else text[:MAX_FIELD_NAME] + "..."


def _batch_sent_at(value: Any) -> str | None:
    """The batch's `sentAt`, if it is a plausible date: it is copied into every message and
    only corrects clock skew, so a malformed one is dropped rather than failing them all."""
    if not isinstance(value, str) or len(value) > 64:
        return None
    try:
        _parse_time(value, "sentAt")
    except InvalidMessage:
        return None
    return value


def write_key_of(body: Any) -> str | None:
    """The `writeKey` a body carries (Segment's alternative to HTTP Basic auth), if any."""
    if not isinstance(body, dict):
        return None
    key = body.get("writeKey")
    if isinstance(key, str) and key.strip():
        return key.strip()
    return None


def _canonical_json(value: Any, *, sort_keys: bool) -> str:
    # ensure_ascii=False measures UTF-8 bytes as sent, not six-byte \u escapes.
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, sort_keys=sort_keys, default=str)


def _derived_message_id(raw: Mapping[str, Any]) -> str:
    stable = {key: value for key, value in raw.items() if key not in _VOLATILE_FIELDS}
    digest = hashlib.sha256(_canonical_json(stable, sort_keys=True).encode()).hexdigest()
    return f"auto-{digest[:32]}"


def _message_type(value: Any, expected: str | None) -> MessageType:
    if expected is not None and expected not in TYPES:
        raise ValueError(f"expected_type must be one of {TYPES}, not {expected!r}")
    if value is None or value == "":
        if expected is None:
            raise InvalidMessage("type", f"is required (one of {', '.join(TYPES)})")
        return cast(MessageType, expected)
    if not isinstance(value, str) or value not in TYPES:
        raise InvalidMessage("type", f"{value!r} is not one of {', '.join(TYPES)}")
    if expected is not None and value != expected:
        raise InvalidMessage("type", f"is {value!r} but this route takes {expected!r} messages")
    return cast(MessageType, value)


def _object(value: Any, field: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidMessage(field, "must be a JSON object")
    return value


def _identifier(value: Any, field: str) -> str | None:
    if value is None:
        return None
    # bool is an int in Python; `true` is never a meaningful id.
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise InvalidMessage(field, "must be a string or a number")
    if not isinstance(value, str) and not -_MAX_NUMBER < value < _MAX_NUMBER:  # NaN fails this too
        raise InvalidMessage(field, "is a number beyond the 38 digits DynamoDB stores")
    text = value.strip() if isinstance(value, str) else str(value)
    if len(text) > MAX_ID_LENGTH:
        raise InvalidMessage(field, f"is longer than {MAX_ID_LENGTH} characters")
    return text or None


def _text(value: Any) -> str | None:
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


def _email(
    msg_type: str,
    own_traits: Mapping[str, Any],
    context_traits: Mapping[str, Any],
    properties: Mapping[str, Any],
) -> str | None:
    # A group call's own traits describe the company: its `email` is not the contact's.
    places: list[tuple[str, Mapping[str, Any]]] = []
    if msg_type == "identify":
        places.append(("traits.email", own_traits))
    places += [("context.traits.email", context_traits), ("properties.email", properties)]
    for field, source in places:
        try:
            email = normalize_email(source.get("email"))
        except InvalidMessage as exc:
            raise InvalidMessage(field, exc.reason) from None
        if email:
            return email
    return None


def _event_name(msg_type: str, raw: Mapping[str, Any], properties: Mapping[str, Any]) -> str | None:
    if msg_type == "track":
        name = raw.get("event")
        if not isinstance(name, str) or not name.strip():
            raise InvalidMessage("event", "a track call needs a non-empty event name")
        name = name.strip()
        if len(name) > MAX_EVENT_NAME_LENGTH:
            raise InvalidMessage("event", f"is longer than {MAX_EVENT_NAME_LENGTH} characters")
        return name
    if msg_type in ("page", "screen"):
        return _text(raw.get("name")) or _text(properties.get("name"))
    return None


def _page_location(
    msg_type: str, properties: Mapping[str, Any], context_page: Mapping[str, Any]
) -> tuple[str | None, str | None, str | None]:
    # Only page and screen properties describe the page; a track event's `url` property
    # is whatever the event is about (a clicked link, a downloaded file).
    own = properties if msg_type in ("page", "screen") else {}
    url = _text(own.get("url")) or _text(context_page.get("url"))
    referrer = _text(own.get("referrer")) or _text(context_page.get("referrer"))
    path = _text(own.get("path")) or _text(context_page.get("path"))
    if path is None and url is not None:
        try:
            parsed = urlparse(url)
        except ValueError:
            parsed = None
        if parsed is not None:
            path = parsed.path or ("/" if parsed.netloc else None)
    return url, path, referrer


def _as_utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _parse_time(value: Any, field: str) -> datetime:
    if not isinstance(value, str):
        raise InvalidMessage(field, "must be an ISO-8601 date string")
    text = value.strip()
    # Python 3.11 reads a trailing Z; the lowercase one some clients send it does not.
    if text.endswith("z"):
        text = text[:-1] + "Z"
    if len(text) > 64:
        raise InvalidMessage(field, "is not an ISO-8601 date (over 64 characters)")
    try:
        return _as_utc(datetime.fromisoformat(text))
    except ValueError:
        raise InvalidMessage(field, f"{text!r} is not an ISO-8601 date") from None
    except OverflowError:  # year 1 with a positive offset, year 9999 with a negative one
        raise InvalidMessage(field, f"{text!r} is outside the years 1 to 9999 in UTC") from None


def _event_time(raw: Mapping[str, Any], received: datetime) -> datetime:
    field = next(
        (name for name in ("timestamp", "originalTimestamp") if raw.get(name) not in (None, "")), None
    )
    if field is None:
        return received
    moment = _parse_time(raw[field], field)
    sent_at = raw.get("sentAt")
    if sent_at not in (None, ""):
        # Segment's skew correction: sentAt and receivedAt are the same instant on two
        # clocks, so their difference is the device's clock error. sentAt only corrects,
        # so a malformed one is ignored rather than costing the event.
        with contextlib.suppress(InvalidMessage, OverflowError):
            moment = received - (_parse_time(sent_at, "sentAt") - moment)
    # A device clock ahead of ours must not date an event in the future.
    return min(moment, received)


def _merge(base: Mapping[str, Any], own: Mapping[str, Any]) -> dict[str, Any]:
    merged: dict[str, Any] = {
        key: _merge(value, {}) if isinstance(value, dict) else value for key, value in base.items()
    }
    for key, value in own.items():
        current = merged.get(key)
        if isinstance(value, dict) and isinstance(current, dict):
            merged[key] = _merge(current, value)
        else:
            merged[key] = value
    return merged


# --------------------------------------------------------------------------- known traits

#: Traits the Segment Spec reserves, identify's and group's (dotted for nested ones).
SPEC_TRAITS = frozenset({
    "address", "address.city", "address.country", "address.postalCode", "address.state", "address.street",
    "age", "avatar", "birthday", "company", "company.name", "company.id", "company.industry",
    "company.employee_count", "company.plan", "createdAt", "description", "email", "employees", "firstName",
    "gender", "id", "industry", "lastName", "name", "phone", "plan", "title", "username", "website",
})
#: Traits the code reads whatever the rules say: seniority and the derived traits (rules.py),
#: the account a contact names (identity.py), its name and title (contacts.py), the company
#: traits an account takes from its contacts and its exclusion (accounts.py), what
#: territories match on (routing.py), and the CRM `owner` PRODUCT.md has routing read first.
READ_TRAITS = frozenset({
    "title", "seniority", "email", "name", "firstName", "lastName", "country", "address.country", "owner",
    "address.state", "state", "industry", "employees", "employee_count", "lifecycle", "website", "domain",
    "company.name", "company.industry", "company.employee_count", "company.employees", "company.domain",
    "company.website", "company.country",
})


def trait_rank(scoring: ScoringConfig) -> Callable[[str], int]:
    """How long a trait (dotted path) holds when a stored event's traits must be cut to their
    bound (items.compact_json): 2 for what the fit rules (contact and account) and the code
    read, 1 for the Spec's other reserved traits, 0 for custom keys, which go first."""
    read = READ_TRAITS | {rule.trait for rule in (*scoring.fit, *scoring.account.fit)}

    def rank(path: str) -> int:
        return 2 if path in read else 1 if path in SPEC_TRAITS else 0

    return rank


#: Properties read after collection (from the stored event): an unsubscribe's scope
#: (contacts.py), a form's id and stage, a page's location.
READ_PROPERTIES = frozenset({"all", "scope", "list", "form_id", "formId", "stage", "url", "path", "referrer",
                             "name", "email"})


def property_rank(scoring: ScoringConfig) -> Callable[[str], int]:
    """As `trait_rank`, for properties: 1 for those read above or by an engagement rule's
    `when.properties`, 0 for the rest."""
    read = READ_PROPERTIES | {key for rule in scoring.engagement if rule.when is not None
                              for key in (rule.when.properties or {})}

    def rank(path: str) -> int:
        return 1 if path in read else 0

    return rank
