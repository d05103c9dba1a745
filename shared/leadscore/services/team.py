"""The team lead's controls: who owns what (`GET /v1/sdrs`, `GET /v1/sdrs/{sdrId}/accounts`)
and a pause without a redeploy (`PUT /v1/sdrs/{sdrId}/availability`). IAM-authorized.

What is stored and what is derived, by what it costs to read (docs/DESIGN.md, "The team lead"):
- an SDR's book is the OwnerIndex (the assignments they hold, newest first): one Query per
  page, then one BatchGetItem of the page's accounts for their state, name and score;
- their counts are kept in their own partition (`SDR#<id>`), so listing them is ONE Query per
  SDR whatever the table's size or their history: the accounts they hold open (a set on their
  record), each acceptance and each SLA they let run out (an item each, kept 31 days), and the
  day counts the routing transaction keeps for capacity. The open set, the acceptances and the
  breaches are kept from the table's stream (`book_changes`, applied by the aggregate function):
  every writer of an account (routing, SLA re-routes, feedback, a lead's reassignment) is seen
  there, none has to know; a set member or a keyed item written twice is written once;
- a pause is the SDR's record (its version orders the changes) plus a copy of its end in the
  record of each pool whose routing can choose them, which the router reads anyway: a pause
  costs routing no read, and is honoured by every route and routing pass that starts after
  the answer. `SDR Availability Changed` goes on the bus from here, after the write.

The HTTP side (paths, query, body) is `leadscore.adapters.api.team`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from leadscore.domain.records import Account, BookChange, SdrActivity, SdrPause, TransactionConflict, utc_text
from leadscore.engine.routing import GLOBAL_POOL, sdr_pools
from leadscore.services.errors import Busy, Invalid, NotFound

if TYPE_CHECKING:
    from leadscore.rulesfiles.routing import RoutingConfig, Sdr
    from leadscore.services.ports import Publisher, TeamStore

AVAILABILITY_CHANGED = "SDR Availability Changed"
MAX_REASON = 500
#: The furthest a pause may end (a longer absence belongs in routing.yaml's out_of_office).
MAX_PAUSE = timedelta(days=366)
MAX_ATTEMPTS = 5
#: TransactWriteItems takes 100 items: the SDR's record and at most 99 pool records.
MAX_PAUSE_POOLS = 100
PAGE_DEFAULT = 25
PAGE_MAX = 100
#: Index pages one book request reads at most to fill a page when `state` filters.
MAX_BOOK_QUERIES = 5
#: The states an account of a book can be in; `closed`: a cycle the account has since left.
BOOK_STATES = ("routed", "accepted", "recycled", "disqualified", "below_threshold", "sdr_ready", "excluded",
               "closed")
WINDOW_DAYS = 30


# ------------------------------------------------------------------ the books, from the stream


def _holder(account: Account | None) -> str | None:
    """The SDR holding the account open (routed, not accepted yet), if any."""
    if account is None or account.state != "routed" or not account.sdr or not account.sdr.get("id"):
        return None
    return str(account.sdr["id"])


def _moment_text(text: str | None) -> str | None:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return utc_text(moment) if moment.tzinfo else None


def book_changes(old: Account | None, new: Account) -> list[BookChange]:
    """What one account change (the stream's before and after) means for the SDRs' books:
    - `close` for the SDR who held it open (routed to them) when it leaves them: accepted,
      recycled, disqualified, re-routed or reassigned to another SDR, a new cycle;
    - `open` for the SDR who holds it open now, when that is new;
    - `accepted` for the SDR who held it when it became `accepted` (at the feedback's time);
    - `breach` for the SDR who let its SLA run out: when it was re-routed or reassigned after
      its SLA's end, or when the SLA ran out with nobody else to take it (it waits, theirs);
      both name the same breach (the attempt, at its SLA's end), so it counts once."""
    changes: list[BookChange] = []
    was, holder = _holder(old), _holder(new)
    new_key = f"{new.id}#{int(new.cycle or 0)}"
    old_key = f"{old.id}#{int(old.cycle or 0)}" if old is not None else None
    at = _moment_text(new.updated_at) or ""
    if was is not None and old_key is not None and (was != holder or old_key != new_key):
        changes.append(BookChange(was, "close", old_key, at))
    if holder is not None and (holder != was or old_key != new_key):
        changes.append(BookChange(holder, "open", new_key, at))
    if was is not None and new.state == "accepted" and old_key == new_key:
        accepted_at = _moment_text(new.state_at) or at
        if accepted_at:
            changes.append(BookChange(was, "accepted", new_key, accepted_at))
    if old is not None and was is not None and old_key == new_key and new.state == "routed" \
            and old.routing is not None and new.routing is not None:
        due = _moment_text(old.routing.sla_due_at)
        moved = new.routing.attempt > old.routing.attempt and due is not None \
            and (_moment_text(new.routing.routed_at) or "") >= due
        waits = (new.routing.attempt == old.routing.attempt and bool(new.routing.waiting)
                 and not old.routing.waiting and due is not None)
        if moved or waits:
            assert due is not None
            changes.append(BookChange(was, "breach", f"{old_key}#{old.routing.attempt or 1}", due))
    return changes


# ------------------------------------------------------------------ input


@dataclass(frozen=True)
class Availability:
    """A lead's change: paused (`available` False) until a moment (or until returned, None),
    with why; or back (`available` True, no `until`, no `reason`)."""

    available: bool
    until: datetime | None = None
    reason: str | None = None


CURSOR_PROBLEM = ("cursor: not a cursor of this SDR's book (give back nextCursor as it came, or leave it out "
                  "for the first page)")


def pause_pools(routing: RoutingConfig, sdr_id: str) -> list[str]:
    """The pool records a pause is copied into: every pool of routing.yaml and the global pool
    of `round_robin` mode, so one she joins with a later deploy (or a change of mode) knows it
    already; only the pools whose routing can choose her if there are too many for one
    transaction."""
    every = [pool.id for pool in routing.pools] + [GLOBAL_POOL]
    return every if len(every) < MAX_PAUSE_POOLS else list(sdr_pools(routing, sdr_id))


# ------------------------------------------------------------------ views


def pause_view(pause: SdrPause | None) -> dict[str, Any] | None:
    if pause is None:
        return None
    return {"until": pause.until, "reason": pause.reason, "at": pause.at, "by": pause.by}


def _paused_now(pause: SdrPause | None, now: datetime) -> bool:
    return pause is not None and (pause.until is None or pause.until > utc_text(now))


def sdr_view(routing: RoutingConfig, sdr: Sdr, activity: SdrActivity, now: datetime) -> dict[str, Any]:
    """One SDR as GET /v1/sdrs shows them."""
    day = sdr.local_day(now)
    absence = sdr.out_on(day)
    pause = activity.record.pause if _paused_now(activity.record.pause, now) else None
    status = ("inactive" if not sdr.active else "out_of_office" if absence is not None
              else "paused" if pause is not None else "available")
    routed_today = activity.days.get(day, 0)
    week, month = utc_text(now - timedelta(days=7)), utc_text(now - timedelta(days=WINDOW_DAYS))
    present = utc_text(now)
    return {
        "id": sdr.id, "name": sdr.name, "email": sdr.email, "timeZone": sdr.time_zone, "weight": sdr.weight,
        "pools": list(sdr_pools(routing, sdr.id)), "lead": sdr.id in routing.leads,
        "availability": {
            "available": status == "available", "status": status, "active": sdr.active,
            "outOfOffice": {"from": absence.from_.isoformat(), "to": absence.to.isoformat()} if absence else None,
            "paused": pause_view(pause)},
        "today": {"day": day.isoformat(), "routed": routed_today, "capacity": sdr.daily_capacity,
                  "full": sdr.daily_capacity is not None and routed_today >= sdr.daily_capacity},
        "open": len(activity.record.open),
        "accepted": {"last7Days": sum(1 for at, _ in activity.accepted if week <= at <= present),
                     "last30Days": sum(1 for at, _ in activity.accepted if month <= at <= present)},
        "slaBreaches": {"last30Days": sum(1 for at, _ in activity.breaches if month <= at <= present)},
    }


def _book_entry(assignment: Any, account: Account | None) -> dict[str, Any]:
    current = account is not None and int(account.cycle or 0) == assignment.cycle
    return {"accountId": assignment.account_id, "name": account.name if account else None,
            "domain": account.domain if account else None, "cycle": assignment.cycle,
            "state": (account.state if current and account is not None else "closed"),
            "score": account.score if account else None, "routedAt": assignment.routed_at,
            "slaDueAt": assignment.sla_due_at, "attempt": assignment.attempt, "pool": assignment.pool,
            "territory": assignment.territory}


# ------------------------------------------------------------------ the API


class TeamService:
    """The team lead's three routes' use cases: read the books and counts, pause or return an SDR."""

    def __init__(self, store: TeamStore, routing: RoutingConfig, clock: Callable[[], datetime],
                 publisher: Publisher | None = None) -> None:
        self.store = store
        self.routing = routing
        self.clock = clock
        self.publisher = publisher

    def sdr(self, sdr_id: str) -> Sdr:
        """The routing.yaml SDR of a path's `sdrId`; NotFound `unknown_sdr`."""
        sdr = self.routing.sdr_by_id.get(sdr_id)
        if sdr is None:
            shown = repr(sdr_id[:64]) + ("..." if len(sdr_id) > 64 else "")
            raise NotFound("unknown_sdr", f"sdrId: {shown} is not an SDR of routing.yaml", field="sdrId")
        return sdr

    # -- reads ---------------------------------------------------------------------------------

    def list_sdrs(self) -> dict[str, Any]:
        """Every SDR of routing.yaml, in its order: one Query of each one's partition."""
        now = self.clock()
        since = utc_text(now - timedelta(days=WINDOW_DAYS))
        views = [sdr_view(self.routing, sdr, self.store.load_sdr_activity(sdr.id, since), now)
                 for sdr in self.routing.sdrs]
        return {"asOf": utc_text(now), "sdrs": views}

    def book(self, sdr: Sdr, *, state: str | None = None, limit: int = PAGE_DEFAULT,
             cursor: str | None = None) -> dict[str, Any]:
        """One page of the SDR's book, newest first: at most `limit` accounts, in `state` (one of
        BOOK_STATES) when given, from `cursor` (a page's `nextCursor`; Invalid when it is not one
        of this SDR's book)."""
        entries: list[dict[str, Any]] = []
        for _ in range(MAX_BOOK_QUERIES):
            try:
                page, cursor = self.store.query_book(sdr.id, limit=limit - len(entries), cursor=cursor)
            except ValueError:
                raise Invalid("invalid_cursor", CURSOR_PROBLEM, field="cursor") from None
            accounts = self.store.load_accounts({a.account_id for a in page}) if page else {}
            for assignment in page:
                entry = _book_entry(assignment, accounts.get(assignment.account_id))
                if state is None or entry["state"] == state:
                    entries.append(entry)
            if cursor is None or len(entries) >= limit or state is None:
                break
        return {"sdr": sdr.id, "state": state, "accounts": entries, "nextCursor": cursor}

    # -- the pause -----------------------------------------------------------------------------

    def set_availability(self, sdr: Sdr, body: Availability, *, caller: str | None,
                         now: datetime) -> dict[str, Any]:
        """Pause or return the SDR: their record and the pool records' copies in one
        transaction (read again and written again when a route raced it), then
        `SDR Availability Changed` on the bus. The same body again changes nothing and
        announces the same version again (a consumer keeps one per SDR and version)."""
        for _ in range(MAX_ATTEMPTS):
            record = self.store.load_sdr_record(sdr.id)
            before = record.pause if _paused_now(record.pause, now) else None
            wanted = None if body.available else SdrPause(
                until=utc_text(body.until) if body.until else None, reason=body.reason, at=utc_text(now), by=caller)
            same = (wanted is None and before is None) or (
                wanted is not None and before is not None and (wanted.until, wanted.reason) == (before.until,
                                                                                                before.reason))
            if same:
                pause, version, changed = before, record.version, False
            else:
                try:
                    version = self.store.save_pause(sdr.id, wanted, pools=pause_pools(self.routing, sdr.id),
                                                    expected_version=record.version, at=utc_text(now))
                except TransactionConflict:
                    continue
                pause, changed = wanted, True
            answer = {"sdr": sdr.id, "available": pause is None, "paused": pause_view(pause), "version": version,
                      "changed": changed}
            self._announce(sdr, pause, version, before, now)
            return answer
        raise Busy("busy", f"SDR {sdr.id!r}'s record kept changing; try again", field="sdrId")

    def _announce(self, sdr: Sdr, pause: SdrPause | None, version: int, before: SdrPause | None,
                  now: datetime) -> None:
        if self.publisher is None:
            return
        from leadscore.services.router import sdr_card  # local for cold start: only a pause announces

        detail = {"sdr": sdr_card(sdr), "available": pause is None, "until": pause.until if pause else None,
                  "reason": pause.reason if pause else None, "by": pause.by if pause else None,
                  "version": version, "changedAt": pause.at if pause else utc_text(now),
                  "previous": {"available": before is None, "until": before.until if before else None}}
        try:
            self.publisher.publish([(AVAILABILITY_CHANGED, detail)], time=now)
        except Exception as error:  # noqa: BLE001 - saved; the same PUT again announces it again
            raise Busy("not_announced", f"saved (version {version}) but not announced on the bus "
                                        f"({type(error).__name__}); send the same request again",
                       field="sdrId", version=version) from None
