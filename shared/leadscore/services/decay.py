"""The scheduled decay job: re-value the contacts whose email touches went stale.

It finds them through the sparse due-time index (never a scan), so its reads grow with
the contacts due, not with the table. Re-valuing a contact as of `now` is a pure function
of its ledger, so running the job twice for the same instant writes nothing the second
time: the first run moved every contact's due time past `now`.

Bounded work: at most `workers` contacts are being written at any moment, and the deadline
(`out_of_time`) is asked before each one is started. So a run that is told to stop has at
most `workers` writes left to finish (one write each, plus its own conflict retries),
however large the backlog; the rest stays due for the next run.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from leadscore.domain.ledgers import ContactState
from leadscore.domain.records import Contact, VersionConflict
from leadscore.engine.contacts import contact_scores

if TYPE_CHECKING:
    from leadscore.rulesfiles.loading import Config
    from leadscore.services.ports import DecayStore

MAX_ATTEMPTS = 5
WORKERS = 8  # writes in flight at most


@dataclass
class DecayResult:
    due: int = 0
    written: int = 0
    unchanged: int = 0
    conflicts: int = 0
    stopped_early: bool = False


def run_decay(store: DecayStore, config: Config, now: datetime, *, out_of_time: Callable[[], bool] | None = None,
              workers: int = WORKERS) -> DecayResult:
    """Re-value every contact due by `now`, at most `workers` at a time.

    Stops early when `out_of_time()` says so (asked before each contact is started): what is
    left stays due for the next run.
    """
    result = DecayResult()

    def count(done: set[Future[str]]) -> None:
        for future in done:
            outcome = future.result()
            result.due += 1
            setattr(result, outcome, getattr(result, outcome) + 1)

    in_flight: set[Future[str]] = set()
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for contact in store.query_due_contacts(now):
            while len(in_flight) >= max(1, workers):
                done, in_flight = wait(in_flight, return_when=FIRST_COMPLETED)
                count(done)
            if out_of_time is not None and out_of_time():
                result.stopped_early = True
                break
            in_flight.add(pool.submit(_revalue, store, config, contact, now))
        done, _ = wait(in_flight)
        count(done)
    return result


def _revalue(store: DecayStore, config: Config, due: Contact, now: datetime) -> str:
    """One contact: 'written', or 'unchanged' when someone re-valued it meanwhile."""

    contact: Contact | None = due
    for _ in range(MAX_ATTEMPTS):
        if contact is None or not contact.scores.due_at or contact.scores.due_at > now.isoformat():
            return "unchanged"
        state = contact.state if contact.state is not None else ContactState()
        try:
            store.save_scores(contact, contact_scores(config.scoring, state, now), now)
            return "written"
        except VersionConflict:
            # the index lags the table, or a stream batch wrote the contact: read it fresh
            contact = store.load_contact(contact.key)
    return "conflicts"
