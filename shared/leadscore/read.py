"""The read API: explain an account or a contact, valued as of now ("test a contact")."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import unquote

from leadscore.http import HttpError, Request, json_response
from leadscore.storage import PROFILE, Store, account_pk, contact_pk

MAX_FOLLOW = 4


class ReadApi:
    def __init__(self, store: Store, config: Any, clock: Callable[[], datetime]) -> None:
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
        if not at:
            return self.clock()
        try:
            moment = datetime.fromisoformat(at.replace("Z", "+00:00"))
        except ValueError:
            raise HttpError(400, "invalid_at", f"at: {at!r} is not an ISO-8601 time") from None
        if moment.tzinfo is None:
            raise HttpError(400, "invalid_at", "at: give a time zone, e.g. 2026-11-25T10:00:00Z")
        return moment

    # -- contacts ----------------------------------------------------------------------------

    def find_contact(self, contact_id: str) -> dict[str, Any] | None:
        """A contact by userId, or by email for a contact known only by its address;
        a merged anonymous / email-only contact answers as the contact it joined."""
        candidates = [f"u:{contact_id}"]
        if "@" in contact_id:
            candidates.append(f"e:{contact_id.strip().lower()}")
        candidates.append(f"a:{contact_id}")
        found = self.store.get_many((contact_pk(key), PROFILE) for key in candidates)
        item = next((found[(contact_pk(k), PROFILE)] for k in candidates if (contact_pk(k), PROFILE) in found), None)
        hops = 0
        while item is not None and item.get("into") and hops < MAX_FOLLOW:
            item = self.store.get(contact_pk(item["into"]))
            hops += 1
        if item is not None and item.get("into"):
            return None
        return item

    def contact(self, contact_id: str, now: datetime) -> dict[str, Any]:
        from leadscore.accounts import persona_of
        from leadscore.rules import ContactState, derive_traits, score

        item = self.find_contact(contact_id)
        if item is None:
            raise HttpError(404, "unknown_contact", f"no contact {contact_id!r}")
        scoring = self.config.scoring
        state = ContactState.from_json(item.get("lg"))
        card = score(scoring, state, now)
        traits = derive_traits(scoring, state.traits)
        key = item["ck"]
        public_id = item.get("uid") or key.split(":", 1)[1]
        return {
            "contactId": public_id,
            "contactKey": key,
            "accountId": item.get("acct"),
            "email": item.get("em"),
            "name": item.get("name"),
            "title": item.get("title"),
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
            "updatedAt": item.get("upd"),
        }

    # -- accounts ----------------------------------------------------------------------------

    def account(self, account_id: str, now: datetime) -> dict[str, Any]:
        from leadscore.accounts import ContactEntry, account_card, effective_traits

        lookup = account_id.strip().lower() if "." in account_id else account_id
        item = self.store.get(account_pk(lookup)) or self.store.get(account_pk(account_id))
        if item is None:
            raise HttpError(404, "unknown_account", f"no account {account_id!r}")
        scoring = self.config.scoring
        entries = [ContactEntry.from_json(e) for e in json.loads(item.get("top") or "[]")]
        traits = effective_traits(json.loads(item.get("tr") or "{}"))
        card = account_card(scoring, traits, entries, now)
        answer: dict[str, Any] = {
            "accountId": item["id"],
            "name": item.get("name"),
            "domain": item.get("domain"),
            "score": card.score,
            "fit": card.fit,
            "engagement": card.engagement,
            "committeeBonus": card.bonus,
            "velocity": card.velocity,
            "threshold": scoring.account.thresholds.sdr_ready,
            "requalifyBelow": scoring.account.thresholds.requalify_below,
            "state": item.get("state", "below_threshold"),
            "stateSince": item.get("stateAt") or item.get("first"),
            "cycle": item.get("cycle", 0),
            "excluded": item.get("excl"),
            "traits": traits,
            "breakdown": card.breakdown,
            "contacts": card.contacts,
            "asOf": now.isoformat(),
            "updatedAt": item.get("upd"),
        }
        if item.get("sdr"):
            answer["sdr"] = item["sdr"]
        return answer
