"""The read API: explain an account or a contact, valued as of now ("test a contact")."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from leadscore.adapters.http import HttpError, Request, json_response
from leadscore.domain.records import Contact, Feedback

if TYPE_CHECKING:
    from leadscore.rulesfiles.config import Config
    from leadscore.services.ports import ReadStore

MAX_FOLLOW = 4
# `?at=` moments the read API values: event times are epoch milliseconds, so nothing
# happened before 1970; the last year datetime can hold is left out, so no offset or
# window arithmetic near its end can overflow.
EARLIEST_MOMENT = datetime(1970, 1, 1, tzinfo=UTC)
LATEST_MOMENT = datetime(9999, 1, 1, tzinfo=UTC)
MAX_MOMENT_LENGTH = 64
#: Sales feedback shown on an account, newest first.
FEEDBACK_SHOWN = 20
#: The longest id collection stores (messages.MAX_ID_LENGTH, not imported: it needs pydantic).
MAX_PATH_ID = 256


def storable_id(text: str) -> bool:
    """Whether a path's id can name a stored item: a longer one, or one with a lone surrogate
    (not Unicode text), names nothing and is no valid DynamoDB key: a 404 without a read."""
    return len(text) <= MAX_PATH_ID and not any("\ud800" <= char <= "\udfff" for char in text)


def _invalid_at(message: str) -> HttpError:
    return HttpError(400, "invalid_at", f"at: {message}", field="at")


def parse_moment(text: str) -> datetime:
    """An ISO-8601 moment with a zone (`Z` or an offset), as aware UTC; HttpError 400 naming
    `at` for anything else: garbage, a date alone, no zone, an offset that takes it out of
    datetime's range, a moment before 1970 or after `LATEST_MOMENT`."""
    example = "e.g. 2026-11-25T10:00:00Z"
    shown = repr(text[:MAX_MOMENT_LENGTH]) + ("..." if len(text) > MAX_MOMENT_LENGTH else "")
    if len(text) > MAX_MOMENT_LENGTH or not text.isprintable():
        raise _invalid_at(f"{shown} is not an ISO-8601 time, {example}")
    text = text.strip()
    if "T" not in text.upper() and " " not in text:
        try:
            date.fromisoformat(text)
        except ValueError:
            raise _invalid_at(f"{shown} is not an ISO-8601 time, {example}") from None
        raise _invalid_at(f"{shown} is a date alone; give a time and a zone, {example}")
    try:
        moment = datetime.fromisoformat(text[:-1] + "+00:00" if text[-1:] in "Zz" else text)
    except ValueError:
        raise _invalid_at(f"{shown} is not an ISO-8601 time, {example}") from None
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise _invalid_at(f"{shown} has no time zone; give one, {example}")
    try:
        moment = moment.astimezone(UTC)
    except (OverflowError, ValueError):
        raise _invalid_at(f"{shown} is out of range once its offset is applied") from None
    if not EARLIEST_MOMENT <= moment < LATEST_MOMENT:
        raise _invalid_at(f"{shown} is out of range; give a time from {EARLIEST_MOMENT.isoformat()} "
                          f"to before {LATEST_MOMENT.isoformat()}")
    return moment


def feedback_view(feedback: Feedback) -> dict[str, Any]:
    """One sales feedback as the API shows it: the outcome, who (`sdr` as sent, `by` the IAM
    caller of a signed request), when, the note, the cycle and the state it left."""
    return {"outcome": feedback.outcome, "sdr": feedback.sdr, "note": feedback.note, "by": feedback.caller,
            "at": feedback.at, "cycle": feedback.cycle, "state": feedback.state}


class ReadApi:
    def __init__(self, store: ReadStore, config: Config, clock: Callable[[], datetime]) -> None:
        self.store = store
        self.config = config
        self.clock = clock

    def handle(self, request: Request) -> dict[str, Any]:
        try:
            now = self._moment(request)
            if request.route == "GET /v1/accounts/{accountId}":
                return json_response(200, self.account(unquote(request.path_parameters.get("accountId", "")), now))
            if request.route == "GET /v1/contacts/{contactId}":
                return json_response(200, self.contact(unquote(request.path_parameters.get("contactId", "")), now))
            raise HttpError(404, "not_found", f"no route {request.route}")
        except HttpError as problem:
            return problem.response()

    def _moment(self, request: Request) -> datetime:
        """`?at=<ISO-8601>` values the item as of that moment (decay arithmetic included)."""
        at = request.query.get("at")
        if not at or not at.strip():
            return self.clock()
        return parse_moment(at)

    # -- contacts ----------------------------------------------------------------------------

    def find_contact(self, contact_id: str) -> Contact | None:
        """A contact by userId, or by email for a contact known only by its address;
        a merged anonymous / email-only contact answers as the contact it joined."""
        from leadscore.engine.contacts import follow_merges

        candidates = [f"u:{contact_id}"]
        if "@" in contact_id:
            candidates.append(f"e:{contact_id.strip().lower()}")
        candidates.append(f"a:{contact_id}")
        found = self.store.load_contacts(candidates)
        contact = next((found[key] for key in candidates if key in found), None)
        if contact is None:
            return None
        _, contact = follow_merges(contact, self.store.load_contact, MAX_FOLLOW)
        if contact is not None and contact.merged_into:
            return None
        return contact

    def contact(self, contact_id: str, now: datetime) -> dict[str, Any]:
        from leadscore.domain.ledgers import ContactState
        from leadscore.engine.accounts import persona_of
        from leadscore.engine.rules import derive_traits, score

        contact = self.find_contact(contact_id) if storable_id(contact_id) else None
        if contact is None:
            raise HttpError(404, "unknown_contact", f"no contact {contact_id!r}")
        scoring = self.config.scoring
        state = contact.state if contact.state is not None else ContactState()
        card = score(scoring, state, now)
        traits = derive_traits(scoring, state.traits)
        key = contact.key
        public_id = contact.user_id or key.split(":", 1)[1]
        return {
            "contactId": public_id,
            "contactKey": key,
            "accountId": contact.account,
            "email": contact.email,
            "name": contact.name,
            "title": contact.title,
            "seniority": traits.get("seniority"),
            "persona": persona_of(scoring, traits.get("seniority")),
            "score": card.score,
            "fit": card.fit,
            "engagement": card.engagement,
            "velocity": card.velocity,
            "lifecycle": card.lifecycle,
            "breakdown": [
                {"rule": hit.rule, "category": hit.category, "points": hit.points, "contactId": public_id,
                 **({"detail": hit.detail} if hit.detail else {})}
                for hit in card.breakdown
            ],
            "asOf": now.isoformat(),
            "updatedAt": contact.updated_at,
        }

    # -- accounts ----------------------------------------------------------------------------

    def account(self, account_id: str, now: datetime) -> dict[str, Any]:
        from leadscore.engine.accounts import account_card, effective_traits, routing_view

        if not storable_id(account_id):
            raise HttpError(404, "unknown_account", f"no account {account_id[:MAX_PATH_ID]!r}")
        lookup = account_id.strip().lower() if "." in account_id else account_id
        account = self.store.load_account(lookup) or self.store.load_account(account_id)
        if account is None:
            raise HttpError(404, "unknown_account", f"no account {account_id!r}")
        scoring = self.config.scoring
        traits = effective_traits(account.traits)
        card = account_card(scoring, traits, account.entries, now)
        answer: dict[str, Any] = {
            "accountId": account.id,
            "name": account.name,
            "domain": account.domain,
            "score": card.score,
            "fit": card.fit,
            "engagement": card.engagement,
            "committeeBonus": card.bonus,
            "velocity": card.velocity,
            "threshold": scoring.account.thresholds.sdr_ready,
            "requalifyBelow": scoring.account.thresholds.requalify_below,
            "state": account.state if account.state is not None else "below_threshold",
            "stateSince": account.state_at or account.first_seen,
            "cycle": account.cycle if account.cycle is not None else 0,
            "excluded": account.excluded,
            "traits": traits,
            "breakdown": card.breakdown,
            "contacts": card.contacts,
            "asOf": now.isoformat(),
            "updatedAt": account.updated_at,
        }
        if account.sdr and answer["state"] in ("routed", "accepted"):
            answer["sdr"] = account.sdr
        routing = routing_view(account)
        if routing is not None:
            answer["routing"] = routing
        if account.cooldown_until:
            answer["cooldownUntil"] = account.cooldown_until
        if account.engagement_baseline is not None:
            answer["engagementBaseline"] = account.engagement_baseline
        answer["feedback"] = ([feedback_view(f) for f in self.store.load_feedback(account.id, limit=FEEDBACK_SHOWN)]
                              if account.last_feedback is not None else [])
        return answer
