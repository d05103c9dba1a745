"""The read API's use case: explain an account or a contact, valued as of a moment (now by
default: "test a contact"), and their history. Its HTTP side is `leadscore.adapters.api.read`.

As of a moment (`at`): the account as it was last written by then (its history), and a contact
rebuilt from the events it had received by then (rebuild.py), each valued at that moment:
what the read API answered then, and nothing that happened after it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from leadscore.domain.ledgers import ContactState
from leadscore.domain.records import Contact, instant_text
from leadscore.engine.account_views import routing_view
from leadscore.engine.accounts import account_card, effective_traits, persona_of
from leadscore.engine.contacts import follow_merges
from leadscore.engine.rules import derive_traits, score
from leadscore.services import history
from leadscore.services.errors import Invalid, NotFound
from leadscore.services.lookup import feedback_view, load_account_named, storable_id
from leadscore.services.rebuild import gather, replay

if TYPE_CHECKING:
    from leadscore.rulesfiles.loading import Config
    from leadscore.services.ports import ReadStore

MAX_FOLLOW = 4
#: Sales feedback shown on an account, newest first.
FEEDBACK_SHOWN = 20
__all__ = ["ReadService", "feedback_view", "load_account_named", "storable_id"]


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

    def contact(self, contact_id: str, now: datetime | None = None, *, at: datetime | None = None
                ) -> dict[str, Any]:
        """The contact as valued at `now` (the clock's now when None): score, its parts, each rule's
        points; NotFound `unknown_contact`. With `at`: as it stood then, rebuilt from the events
        it had received by then and valued at that moment (NotFound when it had none)."""
        now = at or now or self.clock()
        contact = self.find_contact(contact_id) if storable_id(contact_id) else None
        if contact is None:
            raise NotFound("unknown_contact", f"no contact {contact_id!r}")
        if at is not None:
            person = gather(self.store, contact.key, known=contact)
            then = replay(self.config, person, until=at).load_contact(person.root)
            if then is None:
                raise NotFound("unknown_contact", f"no event of contact {contact_id!r} had arrived by {at.isoformat()}")
            then.updated_at = max((e.event.received_at for _, e in person.events if e.event.received_at <= at),
                                  default=at).isoformat()
            contact = then
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

    def contact_history(self, contact_id: str, asked: history.Window) -> dict[str, Any]:
        """The contact's steps: after each event it received (what it met) and each decay step
        between, as of the moment of each, within the window asked; paginated."""
        contact = self.find_contact(contact_id) if storable_id(contact_id) else None
        if contact is None:
            raise NotFound("unknown_contact", f"no contact {contact_id!r}")
        start = int(history.decode_cursor(asked.cursor).get("index", 0)) if asked.cursor else 0
        person = gather(self.store, contact.key, known=contact)
        until = datetime.fromisoformat(asked.end) if asked.end else self.clock()
        steps = [step for step in history.contact_steps(
            self.config, lambda after: replay(self.config, person, after_each=after), person.root, until)
            if history.in_window(step.at, asked)]
        page = steps[start:start + asked.limit]
        more = start + asked.limit < len(steps)
        return {"contactId": contact.user_id or contact.key.split(":", 1)[1],
                "steps": [{"at": step.at, **step.values, "cause": step.cause} for step in page],
                "next": history.encode_cursor({"index": start + asked.limit}) if more else None}

    # -- accounts ----------------------------------------------------------------------------

    def account(self, account_id: str, now: datetime | None = None, *, at: datetime | None = None
                ) -> dict[str, Any]:
        """The account as valued at `now` (the clock's now when None), every number explained, with
        its latest sales feedback; NotFound `unknown_account`. With `at`: as it was last written by
        then (its history), valued at that moment (NotFound when there is no record of it by then)."""
        now = at or now or self.clock()
        if at is not None:
            when = at.isoformat()
            account = load_account_named(lambda name: self.store.load_account_at(name, when), account_id)
        else:
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
        answer["feedback"] = ([feedback_view(f) for f in self.store.load_feedback(account.id, limit=FEEDBACK_SHOWN)
                               if at is None or instant_text(f.at) <= instant_text(at)]
                              if account.last_feedback is not None else [])
        return answer

    def account_history(self, account_id: str, asked: history.Window) -> dict[str, Any]:
        """The account's steps within the window asked, oldest first: each write of it, as the read
        API answered right after it (score parts, state, the SDR), with its causes; paginated."""
        after = None
        if asked.cursor:
            position = history.decode_cursor(asked.cursor)
            if not isinstance(position.get("item"), str) or not isinstance(position.get("step"), int):
                raise Invalid("invalid_cursor", "cursor: not one a history page handed out", field="cursor")
            after = (position["item"], position["step"])
        account = load_account_named(self.store.load_account, account_id)
        steps, more = self.store.load_history(account.id, start=asked.start, end=asked.end, after=after,
                                              limit=asked.limit)
        return {"accountId": account.id,
                "steps": [history.account_step_view(step, causes) for step, causes in steps],
                "next": history.encode_cursor({"item": more[0], "step": more[1]}) if more else None}
