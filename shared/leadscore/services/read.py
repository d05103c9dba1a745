"""The read API's use case: explain an account or a contact, valued as of a moment (now by
default: "test a contact"). Its HTTP side is `leadscore.adapters.api.read`."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from leadscore.domain.ledgers import ContactState
from leadscore.domain.records import Account, Contact, Feedback
from leadscore.engine.account_views import routing_view
from leadscore.engine.accounts import account_card, effective_traits, persona_of
from leadscore.engine.contacts import follow_merges
from leadscore.engine.rules import derive_traits, score
from leadscore.services.errors import NotFound

if TYPE_CHECKING:
    from leadscore.rulesfiles.loading import Config
    from leadscore.services.ports import ReadStore

MAX_FOLLOW = 4
#: Sales feedback shown on an account, newest first.
FEEDBACK_SHOWN = 20
#: The longest id collection stores (messages.MAX_ID_LENGTH, not imported: it needs pydantic).
MAX_PATH_ID = 256


def storable_id(text: str) -> bool:
    """Whether an id can name a stored item: a longer one, or one with a lone surrogate (not
    Unicode text), names nothing and is no valid DynamoDB key: unknown without a read. Checked
    by the use cases, not at the HTTP edge, so that it answers where a missing item would:
    after the checks of the body (who, which SDR)."""
    return len(text) <= MAX_PATH_ID and not any("\ud800" <= char <= "\udfff" for char in text)


def load_account_named(load: Callable[[str], Account | None], account_id: str, **details: Any) -> Account:
    """The account a path names, read by `load` (a store's `load_account`): a domain as sent or
    lowercased (`Acme.com`), read once per spelling; NotFound `unknown_account` (with
    `details`) for none, or an id that names nothing."""
    if not storable_id(account_id):
        raise NotFound("unknown_account", f"no account {account_id[:MAX_PATH_ID]!r}", **details)
    lookup = account_id.strip().lower() if "." in account_id else account_id
    account = load(lookup) or (load(account_id) if lookup != account_id else None)
    if account is None:
        raise NotFound("unknown_account", f"no account {account_id!r}", **details)
    return account


def feedback_view(feedback: Feedback) -> dict[str, Any]:
    """One sales feedback as the API shows it: the outcome, who (`sdr` as sent, `by` the IAM
    caller of a signed request), when, the note, the cycle and the state it left."""
    return {"outcome": feedback.outcome, "sdr": feedback.sdr, "note": feedback.note, "by": feedback.caller,
            "at": feedback.at, "cycle": feedback.cycle, "state": feedback.state}


class ReadService:
    def __init__(self, store: ReadStore, config: Config, clock: Callable[[], datetime]) -> None:
        self.store = store
        self.config = config
        self.clock = clock

    # -- contacts ----------------------------------------------------------------------------

    def find_contact(self, contact_id: str) -> Contact | None:
        """A contact by userId, or by email for a contact known only by its address;
        a merged anonymous / email-only contact answers as the contact it joined."""
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

    def contact(self, contact_id: str, now: datetime | None = None) -> dict[str, Any]:
        """The contact as valued at `now` (the clock's now when None): score, its parts, each rule's
        points; NotFound `unknown_contact`."""
        now = now or self.clock()
        contact = self.find_contact(contact_id) if storable_id(contact_id) else None
        if contact is None:
            raise NotFound("unknown_contact", f"no contact {contact_id!r}")
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

    def account(self, account_id: str, now: datetime | None = None) -> dict[str, Any]:
        """The account as valued at `now` (the clock's now when None), every number explained, with
        its latest sales feedback; NotFound `unknown_account`."""
        now = now or self.clock()
        account = load_account_named(self.store.load_account, account_id)
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
