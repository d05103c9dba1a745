"""Erasure (`DELETE /v1/contacts/{contactId}`): a contact leaves no personal data in the table,
its points leave its account's score, and later events for its ids are dropped at collection.

What is erased, kind by kind (`items.ERASURE_OF_KIND` says it for every kind of the table):
- its contact and the anonymous / email contacts merged into it (found from the identify and
  alias events of its partitions: `ids_of` and `contacts.linked_keys`), with every event of
  each partition;
- its entry in its account (`top`), the account rescored by the stream's own code
  (`accounts.rescore_account`: the state re-evaluates as any change would), and marked as
  erased (a count and a time, no personal data: the account's history names the cause);
- the notes that name it (its accounts' feedback, a lead's reassignment note), redacted;
- its accounts' stored history: its entry out of each step, the causes naming it redacted;
- the rejected records of the retention window whose kept input names one of its ids.

A suppression record per id (keyed digests, never the id) is written first, so collection
drops what comes in meanwhile; the contact item is deleted last, so an erasure interrupted
anywhere is found and finished by the same request again or by its continuation. Each step
is idempotent: a second erasure of the same contact finds nothing left to erase.

Knows nothing of Lambda or HTTP: the handler hands in a store (ports.ErasureStore), the
configuration, a clock and how much time is left.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from leadscore.domain.records import Account, Contact, VersionConflict
from leadscore.engine.accounts import rescore_account
from leadscore.engine.contacts import follow_merges, linked_keys
from leadscore.engine.erasure import finder, id_value, ids_of, name_terms, redactor
from leadscore.engine.identity import key_digest
from leadscore.services.collect import REJECTED_RETENTION_DAYS
from leadscore.services.errors import Busy, Invalid, NotFound

if TYPE_CHECKING:
    from leadscore.rulesfiles.loading import Config
    from leadscore.services.ports import ErasureStore

logger = logging.getLogger(__name__)

#: The longest id collection stores (messages.MAX_ID_LENGTH; an email is shorter).
MAX_CONTACT_ID = 256
#: Merge pointers followed from the id asked to the contact it joined.
MAX_FOLLOW = 4
#: Partitions an erasure walks (a person's anonymous devices and addresses merged into it).
MAX_FAMILY = 200
MAX_ATTEMPTS = 12
#: The phases an erasure goes through; a continuation names the one to resume at.
PHASES = ("start", "partitions")


@dataclass
class Erasure:
    """What one run of an erasure did. `status` is `done` (nothing of the contact is left) or
    `in_progress` (its continuation goes on from `phase`); the counts are this run's."""

    status: str = "done"
    contact_key: str | None = None  # the contact erased (for the continuation; never answered)
    phase: str = "start"
    erased: dict[str, int] = field(default_factory=lambda: {"contact": 0, "event": 0, "rejected": 0})
    redacted: dict[str, int] = field(default_factory=lambda: {"feedback": 0, "account": 0, "history": 0})
    accounts: list[dict[str, Any]] = field(default_factory=list)
    suppression_records: int = 0

    def as_json(self) -> dict[str, Any]:
        return {"status": self.status, "erased": self.erased, "redacted": self.redacted,
                "accountsRescored": self.accounts, "suppressionRecords": self.suppression_records}


@dataclass
class Family:
    """A contact and the contacts merged into it: their keys (the root last), every id they
    are known by (to suppress), and what names them in text (to redact)."""

    root: str
    members: dict[str, Contact | None]  # in the order they are deleted: the deepest merges first, the root last
    ids: list[str]
    terms: list[str]
    accounts: list[str]


def check_contact_id(contact_id: str) -> str:
    """The path's id as an erasure takes it; Invalid (400) naming `contactId` otherwise."""
    def refuse(reason: str) -> Invalid:
        return Invalid("invalid_contact_id", f"contactId: {reason}", field="contactId")

    if not contact_id or not contact_id.strip():
        raise refuse("required: the contact's userId or email address")
    if len(contact_id) > MAX_CONTACT_ID:
        raise refuse(f"must be at most {MAX_CONTACT_ID} characters")
    if any("\ud800" <= char <= "\udfff" for char in contact_id):
        raise refuse("must be Unicode text: a lone surrogate (such as \\ud800) is not")
    if not contact_id.isprintable():
        raise refuse("must not hold control characters")
    return contact_id


def candidate_keys(contact_id: str) -> list[str]:
    """The contact keys an id may name, as GET /v1/contacts reads them: a userId, an email
    address (lowercased), an anonymous id."""
    candidates = [f"u:{contact_id}"]
    if "@" in contact_id:
        candidates.append(f"e:{contact_id.strip().lower()}")
    candidates.append(f"a:{contact_id}")
    return candidates


class EraseService:
    def __init__(self, store: ErasureStore, config: Config, clock: Callable[[], datetime]) -> None:
        self.store = store
        self.config = config
        self.clock = clock

    # -- the request -------------------------------------------------------------------------

    def erase(self, contact_id: str, *, out_of_time: Callable[[], bool] = lambda: False) -> Erasure:
        """Erase the contact an id names (its userId, email or anonymous id; a merged one
        erases the contact it joined, the person). NotFound when no contact has the id and no
        erasure suppressed it; an id already erased answers `done` with nothing left."""
        contact_id = check_contact_id(contact_id)
        candidates = candidate_keys(contact_id)
        found = self.store.load_contacts(candidates)
        contact = next((found[key] for key in candidates if key in found), None)
        if contact is None:
            if self.store.load_suppressed(candidates):
                return Erasure()  # erased before: nothing left (idempotent)
            raise NotFound("unknown_contact", "no contact with this id", field="contactId")
        root, _ = follow_merges(contact, self.store.load_contact, MAX_FOLLOW)
        return self.resume(root, "start", out_of_time=out_of_time, seed=[contact.key])

    def resume(self, contact_key: str, phase: str, *, out_of_time: Callable[[], bool] = lambda: False,
               seed: list[str] | None = None) -> Erasure:
        """Run (or go on with) the erasure of `contact_key` from `phase` (PHASES) until done or
        `out_of_time()`: then `in_progress`, to be resumed at the phase it names."""
        if phase not in PHASES:
            raise Invalid("invalid_phase", f"phase: one of {', '.join(PHASES)}")
        now = self.clock()
        result = Erasure(contact_key=contact_key, phase=phase)
        family = self._family(contact_key, seed or [])
        logger.info("erasing contact %s (%d merged, from %s)", key_digest(contact_key), len(family.members) - 1,
                    phase)
        if phase == "start":
            result.suppression_records = self.store.save_suppressions(family.ids, now.isoformat())
            redact = redactor(family.terms)
            for account_id in family.accounts:
                self._rescore(account_id, family, redact, now, result)
                result.redacted["feedback"] += self.store.redact_feedback(account_id, redact)
                result.redacted["history"] += self.store.erase_history(account_id, family.members, redact)
            # rejected records are searched for its ids alone: a first name would match strangers
            holds = finder([id_value(key) for key in family.ids])
            result.erased["rejected"] += self.store.erase_rejected(rejected_days(now), holds)
            result.phase = "partitions"
        for key in family.members:  # the merged ones first, the contact itself last
            deleted, done = self.store.delete_contact_events(key, stop=out_of_time)
            result.erased["event"] += deleted
            if not done:
                result.status = "in_progress"
                return result
            if family.members[key] is not None:
                self.store.delete_contact(key)
                result.erased["contact"] += 1
        return result

    # -- who ---------------------------------------------------------------------------------

    def _family(self, root: str, seed: list[str]) -> Family:
        """The contact `root` and every contact merged into it (directly or down a chain of
        merges), found from the ids their events name (identify / alias links, and each
        event's own ids). An id no contact has is this person's alone: suppressed too. One
        that is a contact of its own, or merged into someone else, is left alone."""
        members: dict[str, Contact | None] = {root: self.store.load_contact(root)}
        loaded: dict[str, Contact | None] = dict(self.store.load_contacts([k for k in seed if k != root]))
        todo = [root]
        while todo and len(members) < MAX_FAMILY:
            key = todo.pop()
            named: dict[str, None] = {}
            for stored in self.store.load_events(key):
                event = stored.event
                named.update(dict.fromkeys(ids_of(event) + linked_keys(event)))
            contact = members[key]
            if contact is not None:
                named.update(dict.fromkeys(_own_ids(contact)))
            fresh = [k for k in named if k not in loaded and k not in members]
            found = self.store.load_contacts(fresh) if fresh else {}
            loaded.update({k: found.get(k) for k in fresh})
            joined = True
            while joined:  # a chain (a:x merged into e:y, merged into root) joins link by link
                joined = False
                for other, known in loaded.items():
                    if other not in members and known is not None and _joins(known, members):
                        members[other] = known
                        todo.append(other)
                        joined = True
        ids: dict[str, None] = dict.fromkeys(members)
        ids.update(dict.fromkeys(k for k, known in loaded.items() if known is None))
        for contact in members.values():
            if contact is not None:
                ids.update(dict.fromkeys(_own_ids(contact)))
        terms: dict[str, None] = dict.fromkeys(id_value(key) for key in ids)
        for contact in members.values():
            if contact is not None:
                terms.update(dict.fromkeys(name_terms(contact.name)))
        accounts = list(dict.fromkeys(c.account for c in members.values() if c is not None and c.account))
        # deleted in reverse order of discovery, the contact itself last: a contact merged into
        # a merged one goes before it, so an interrupted erasure still finds what is left
        ordered = {key: members[key] for key in reversed(members)}
        return Family(root=root, members=ordered, ids=list(ids), terms=list(terms), accounts=accounts)

    # -- its accounts ------------------------------------------------------------------------

    def _rescore(self, account_id: str, family: Family, redact: Callable[[str], str], now: datetime,
                 result: Erasure) -> None:
        """Take the family's entries out of the account, redact a lead's note naming it, and
        rescore it as the stream would; one versioned write, re-read on a conflict. Nothing
        to take out (erased before): no write."""
        for attempt in range(MAX_ATTEMPTS):
            account = self.store.load_account(account_id)
            if account is None:
                return
            entries = [entry for entry in account.entries if entry.key not in family.members]
            noted = _redact_hand(account, redact)
            if len(entries) == len(account.entries) and not noted:
                return
            version = account.version
            current = replace(account, entries=entries, traits=dict(account.traits), extra=dict(account.extra))
            rescore_account(self.config.scoring, current, now)
            current.version = (version or 0) + 1
            current.updated_at = now.isoformat()
            try:
                self.store.save_erased_account(current, version, now.isoformat())
            except VersionConflict:
                time.sleep(random.uniform(0, min(0.01 * 2**attempt, 1.0)))
                continue
            result.redacted["account"] += int(noted)
            result.accounts.append({"accountId": account.id, "scoreBefore": account.score, "score": current.score,
                                    "stateBefore": account.state, "state": current.state})
            return
        raise Busy("busy", f"account {account_id} kept changing; the same request again goes on")


def _own_ids(contact: Contact) -> list[str]:
    keys = [contact.key]
    if contact.user_id:
        keys.append(f"u:{contact.user_id}")
    if contact.email:
        keys.append(f"e:{contact.email}")
    return keys


def _joins(contact: Contact, members: dict[str, Contact | None]) -> bool:
    """Whether a contact was merged into one of `members` (first link wins: one merged into
    someone else, or a contact of its own, is not this person's to erase)."""
    return bool(contact.merged_into) and contact.merged_into in members


def _redact_hand(account: Account, redact: Callable[[str], str]) -> bool:
    """Redact a lead's reassignment note on the account (mutated); whether it named the contact."""
    hand = account.routing.assigned if account.routing is not None else None
    if hand is None or not hand.note:
        return False
    note = redact(hand.note)
    if note == hand.note:
        return False
    hand.note = note
    return True


def rejected_days(now: datetime) -> list[date]:
    """The days whose rejected records may still be kept (collection's retention, and today)."""
    return [now.date() - timedelta(days=n) for n in range(REJECTED_RETENTION_DAYS + 1)]
