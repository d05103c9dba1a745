"""A team lead's reassignments (IAM-authorized): one account by hand, or an SDR's whole open book.

`POST /v1/accounts/{accountId}/assign` `{"sdr": "<new owner>", "by": "<a lead>", "note": "..."}`
and `POST /v1/sdrs/{sdrId}/reassign` `{"to": "pool" | "<sdrId>", "by": "<a lead>", "note": "..."}`
(PRODUCT "Team lead"):

- `by` names one of routing.yaml's `leads:` (by id or email); anyone else is refused
  (NotAllowed `not_a_lead`, naming `by`).
  The request's IAM caller is kept with the reassignment (`RoutingStatus.assigned`, shown by
  `GET /v1/accounts/{id}` under `routing.assigned`), with the lead, the note and the SDR
  who had the account.
- The new owner is an SDR of routing.yaml (by id or email): an unknown one is Invalid naming
  the field (`sdr`, `to`); one who cannot work it now a Conflict naming it: `active: false`, out of
  office today in their time zone, or paused by a lead (`_paused`). A lead's choice counts
  toward the SDR's daily capacity (the router then gives them less that day) but is not
  refused by it: capacity is the round-robin's limit, and the lead chose.
- What moves: a `routed` account (in its current cycle) goes to the next attempt of its
  cycle, as an SLA re-route does, in the router's one transaction (`Router.route_by_hand`:
  the assignment conditioned on the attempt read, the account's routing fields and `sdr`
  conditioned on the version read, the new SDR's day counts). An `sdr_ready` account (waiting
  for an SDR, or not yet routed) is routed to that SDR: its cycle's first routing, by hand.
  Any other state is a Conflict naming it (`accepted` and `recycled` are the SDR's to give
  feedback on; `disqualified` needs a reset; below the threshold there is nothing to route).
- Nothing is sent from here: the table's stream is the outbox. The account's attempt rises,
  so the aggregate function sends the new SDR a routed message with a new `slaDueAt`
  (outbox.routed_sends) and puts `Account Reassigned` on the bus with the previous and the new
  SDR and the lead (accounts.state_change_events), in place of the SLA re-route's events. An
  `sdr_ready` account assigned by hand gives `Account Routed` (with `assignedBy`).
- Exactly once: assigning an account to the SDR who owns it already changes nothing and
  answers `changed: false`, so a replayed request (or two at once: one wins the transaction,
  the other reads again and finds it done) moves nothing twice and sends no second message.

The book (`/v1/sdrs/{sdrId}/reassign`): every `routed` account `sdrId` holds in its current
cycle, found on the OwnerIndex (`Store.query_assigned`, never a scan; an assignment the index
still shows but whose account moved on is skipped: the account read is strongly consistent).
With `"to": "pool"` each account goes to its pool's next SDR by the weighted round-robin
(never `sdrId`), so the book spreads fairly (within 1 of each SDR's weighted share); an
account nobody of its pool can take now stays (`kept`, with why). With an SDR id, all go to
that SDR. Each account moves once, on its own (its own transaction, message and event), one
after the other within a time budget: the answer says what moved and whether `more` remain;
repeating the request moves the rest, never an account twice (a moved account is no longer
in the SDR's book), also after a call that was cut short.

The HTTP side (paths and bodies) is `leadscore.adapters.api.assign`.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

from leadscore.domain.records import Account, Assignment, HandAssignment, VersionConflict, utc_text
from leadscore.services.errors import Busy, Conflict, Invalid, NotAllowed, NotFound
from leadscore.services.lookup import load_account_named
from leadscore.services.router import RouteOutcome, Router

if TYPE_CHECKING:
    from leadscore.rulesfiles.routing import RoutingConfig, Sdr
    from leadscore.rulesfiles.scoring import ScoringConfig
    from leadscore.services.ports import AssignStore, RoutingStore

MAX_NAME = 256
MAX_NOTE = 2000
#: tries of one account's move when its transaction races another writer
MAX_ATTEMPTS = 5
#: the book: how long one request moves accounts before it answers `more: true` (the
#: function's timeout is 30 s, template.yaml), and the most assignments it reads
BOOK_SECONDS = 20.0
BOOK_LIMIT = 5000
POOL = "pool"
#: the states a lead may assign an account in
ASSIGNABLE = ("routed", "sdr_ready")


@dataclass(frozen=True)
class AssignOrder:
    """A lead's `sdr` (the new owner, id or email), `by` (the lead, id or email), `note`
    (optional). Names of at most MAX_NAME characters, a note of at most MAX_NOTE."""

    sdr: str
    by: str
    note: str | None = None


@dataclass(frozen=True)
class ReassignOrder:
    """`to` ("pool", or the SDR who gets the whole book), `by` (a lead), `note` (optional)."""

    to: str
    by: str
    note: str | None = None


def sdr_of(routing: RoutingConfig, name: str) -> Sdr | None:
    """The routing.yaml SDR `name` names: their id, or their email in any case."""
    if name in routing.sdr_by_id:
        return routing.sdr_by_id[name]
    folded = name.casefold()
    return next((sdr for sdr in routing.sdrs if sdr.email and str(sdr.email).casefold() == folded), None)


def _shown(name: str) -> str:
    return repr(name[:64]) + ("..." if len(name) > 64 else "")


def lead_of(routing: RoutingConfig, name: str) -> str:
    """The id of the lead `name` names, or NotAllowed `not_a_lead` naming `by`."""
    sdr = sdr_of(routing, name)
    if sdr is not None and sdr.id in routing.leads:
        return sdr.id
    leads = ", ".join(routing.leads) or "none configured"
    raise NotAllowed("not_a_lead", f"by: {_shown(name)} is not a lead of routing.yaml (leads: {leads}): only "
                     "a lead may reassign accounts", field="by")


def unavailable(sdr: Sdr, now: datetime, paused: str | None = None) -> str | None:
    """Why `sdr` cannot take an account by hand now (None: they can): inactive in routing.yaml,
    out of office today in their time zone, or `paused` (their runtime availability)."""
    if not sdr.active:
        return f"{sdr.id} is inactive (routing.yaml active: false)"
    absence = sdr.out_on(sdr.local_day(now))
    if absence is not None:
        return f"{sdr.id} is out of office until {absence.to}"
    return paused


class _HandWrites:
    """The routing store as a lead's reassignment writes through the router: the routing the
    router writes (`save_assignment`) is marked as the lead's (`RoutingStatus.assigned`, the
    state's why), and with `named` (an SDR the lead chose) the SDR's day is counted but their
    capacity does not refuse it. Everything else goes to the store as is."""

    def __init__(self, store: RoutingStore, hand: HandAssignment, *, named: bool) -> None:
        self._store = store
        self.hand = hand
        self.named = named
        self.written: Account | None = None  # the account as the last routing left it

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def save_assignment(self, assignment: Assignment, account: Account, **kwargs: Any) -> None:
        hand = replace(self.hand, at=assignment.routed_at)
        how = (f"reassigned to {assignment.sdr} by {hand.by} (from {hand.previous})" if hand.previous
               else f"assigned to {assignment.sdr} by {hand.by}")
        status = account.routing
        assert status is not None
        marked = replace(account, state_why=how, routing=replace(status, assigned=hand))
        if self.named:
            kwargs["capacity"] = None
        self.written = None
        self._store.save_assignment(assignment, marked, **kwargs)
        self.written = replace(marked, version=int(account.version or 0) + 1)


@dataclass
class Moved:
    """One account a lead's request moved (or found already there: `changed` False)."""

    account: Account
    previous: str | None
    changed: bool = True

    def view(self) -> dict[str, Any]:
        status = self.account.routing
        return {"accountId": self.account.id, "state": self.account.state, "cycle": self.account.cycle,
                "sdr": self.account.sdr, "previousSdr": self.previous, "changed": self.changed,
                "attempt": status.attempt if status else None, "slaDueAt": status.sla_due_at if status else None}


@dataclass
class BookResult:
    """What a book reassignment did: accounts moved, those kept (nobody could take them now,
    with why), and whether the time budget left some unvisited (`more`)."""

    moved: list[Moved] = field(default_factory=list)
    kept: list[dict[str, Any]] = field(default_factory=list)
    more: bool = False


def _owner(account: Account) -> str | None:
    return (account.sdr or {}).get("id") if account.state == "routed" else None


class AssignService:
    """The two reassignments: checked against routing.yaml and the SDRs' availability, moved
    through the router."""

    def __init__(self, store: AssignStore, scoring: ScoringConfig, routing: RoutingConfig,
                 clock: Callable[[], datetime], timer: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep, book_seconds: float = BOOK_SECONDS) -> None:
        self.store = store
        self.scoring = scoring
        self.routing = routing
        self.clock = clock
        self.timer = timer
        self.sleep = sleep
        self.book_seconds = book_seconds

    # ------------------------------------------------------------------ checks

    def _paused(self, sdr: Sdr, now: datetime) -> str | None:
        """Why `sdr` is paused at `now` by a lead (`PUT /v1/sdrs/{sdrId}/availability`, kept
        in their record: one GetItem), None when they are not."""
        pause = self.store.load_sdr_record(sdr.id).pause
        if pause is None or (pause.until is not None and pause.until <= utc_text(now)):
            return None
        return (f"{sdr.id} is paused " + (f"until {pause.until}" if pause.until else "until a lead returns them")
                + (f" ({pause.reason})" if pause.reason else ""))

    def _known(self, name: str, field_name: str) -> Sdr:
        sdr = sdr_of(self.routing, name)
        if sdr is None:
            raise Invalid("unknown_sdr", f"{field_name}: {_shown(name)} is not an SDR of routing.yaml (give "
                          "their id or email)", field=field_name)
        return sdr

    def _available(self, sdr: Sdr, field_name: str, now: datetime) -> Sdr:
        why = unavailable(sdr, now, self._paused(sdr, now))
        if why is not None:
            raise Conflict("sdr_unavailable", f"{field_name}: {why}: choose another SDR", field=field_name,
                           sdr=sdr.id)
        return sdr

    def _load(self, account_id: str) -> Account:
        return load_account_named(self.store.load_account, account_id, field="accountId")

    # ------------------------------------------------------------------ one account

    def assign(self, account_id: str, body: AssignOrder, *, caller: str | None) -> Moved:
        """Move one account to `body.sdr` (see the module's docstring): one read, one
        transaction (read again and decided again when the account moved on meanwhile).
        `caller`: the IAM principal who sent it."""
        now = self.clock()
        lead = lead_of(self.routing, body.by)
        target = self._known(body.sdr, "sdr")
        for attempt in range(MAX_ATTEMPTS):
            account = self._load(account_id)
            owner = _owner(account)
            if owner == target.id:
                return Moved(account, owner, changed=False)  # there already: a replay changes nothing
            if account.state not in ASSIGNABLE:
                raise Conflict("not_assignable", f"accountId: {account.id!r} is {account.state or 'not valued'}:"
                               f" only a routed or SDR-ready account can be assigned", field="accountId",
                               state=account.state)
            self._available(target, "sdr", now)
            hand = HandAssignment(by=lead, at=utc_text(now), previous=owner, caller=caller, note=body.note)
            writes = _HandWrites(self.store, hand, named=True)
            router = Router(cast("RoutingStore", writes), self.scoring, self.routing, now)
            try:
                router.route_by_hand(account, target)
            except VersionConflict:  # a route, a feedback, a score or another lead wrote it: read again
                self.sleep(random.random() * 0.05 * 2 ** attempt)
                continue
            assert writes.written is not None
            return Moved(writes.written, owner)
        raise Busy("busy", f"account {account_id!r} kept changing; try again", field="accountId")

    # ------------------------------------------------------------------ a book

    def reassign_book(self, sdr_id: str, body: ReassignOrder, *, caller: str | None) -> BookResult:
        """Move `sdr_id`'s open book (see the module's docstring), within the time budget."""
        now = self.clock()
        if sdr_id not in self.routing.sdr_by_id:
            raise NotFound("unknown_sdr", f"sdrId: {_shown(sdr_id)} is not an SDR of routing.yaml", field="sdrId")
        lead = lead_of(self.routing, body.by)
        target: Sdr | None = None
        if body.to != POOL:
            named = self._known(body.to, "to")
            if named.id == sdr_id:
                raise Invalid("invalid_assignment", f"to: {sdr_id!r} is the SDR whose book is reassigned: "
                              "name another SDR or \"pool\"", field="to")
            target = self._available(named, "to", now)
        deadline = self.timer() + self.book_seconds
        result = BookResult()
        hand = HandAssignment(by=lead, at=utc_text(now), previous=sdr_id, caller=caller, note=body.note)
        writes = _HandWrites(self.store, hand, named=target is not None)
        router = Router(cast("RoutingStore", writes), self.scoring, self.routing, now)
        for account in self._book(sdr_id):
            if self.timer() >= deadline:
                result.more = True
                break
            moved = self._move(router, writes, account, sdr_id, target)
            if isinstance(moved, Moved):
                result.moved.append(moved)
            elif moved is not None:
                result.kept.append({"accountId": account.id, "reason": moved})
        return result

    def _book(self, sdr_id: str) -> Iterable[Account]:
        """The accounts `sdr_id` holds open (routed to them in their current cycle), oldest
        first, as read now (one Query of the OwnerIndex, then the accounts by 100)."""
        assignments = self.store.query_assigned(sdr_id, limit=BOOK_LIMIT)
        current = {(a.account_id, a.cycle) for a in assignments}
        ids = list(dict.fromkeys(a.account_id for a in reversed(assignments)))
        for start in range(0, len(ids), 100):
            chunk = self.store.load_accounts(ids[start:start + 100])
            for account_id in ids[start:start + 100]:
                account = chunk.get(account_id)
                if (account is not None and _owner(account) == sdr_id
                        and (account.id, int(account.cycle or 0)) in current):
                    yield account

    def _move(self, router: Router, writes: _HandWrites, account: Account, sdr_id: str,
              target: Sdr | None) -> Moved | str | None:
        """One account of the book: Moved, why it stays (nobody can take it now), or None when
        it is no longer `sdr_id`'s (moved on since the book was read)."""
        for attempt in range(MAX_ATTEMPTS):
            try:
                outcome: RouteOutcome = router.route_by_hand(account, target)
            except VersionConflict:
                self.sleep(random.random() * 0.05 * 2 ** attempt)
                fresh = self.store.load_account(account.id)
                if fresh is None or _owner(fresh) != sdr_id or fresh.cycle != account.cycle:
                    return None
                account = fresh
                continue
            if outcome.status == "waiting":
                return outcome.detail or "no SDR available"
            assert writes.written is not None
            return Moved(writes.written, sdr_id)
        return f"{account.id} kept changing; try again"
