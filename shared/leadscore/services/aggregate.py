"""Aggregation on the table's stream: events fold into contacts, contacts into accounts.

Exactly once in effect, whatever the stream redelivers:
- Events fold into their contact in fold order (contact_fold.py): one above the contact's
  watermark is new; one at or below it (a batch delivered again, or given up on and
  replayed from the failure queue after newer events) rebuilds the contact from its stored
  events (rebuild.py), so no replay is skipped on a guess and none counts twice.
- Every contact and account write is conditional on the version read (`ver`), so two
  Lambdas on different shards never lose each other's update: the loser re-reads.

A poison record (an image the collector never writes: missing or garbage attributes,
traits that are not a JSON object, a time out of range) fails alone, never its contact:
every record is decoded first, the poison ones are set aside and reported, the good ones
are applied. Lambda redelivers from the lowest reported sequence number, and the good
records after the poison are then at or below the watermark: their contact is rebuilt to
the same state. When the poison heads a redelivered batch, the handler fails the invocation so
that Lambda bisects the batch (`BisectBatchOnFunctionError`) until the poison is alone:
only its own sequence number reaches the on-failure destination (`stream_response`).
An exception while applying well-formed records is a bug, not poison: the contact's
records are reported, to be retried and, failing that, kept at the destination to replay.
Logs name a contact by `key_digest` (its kind and a short keyed hash), never by its key.

Cost per stream batch: one BatchGetItem for the distinct contacts, one write per distinct
contact whose stored state changed (a two-item transaction only when an identity merge
happens), one BatchGetItem and one write per distinct account (`AccountAggregator`; the
arithmetic is in accounts.py), and one PutEvents call for the batch's state changes.

This module keeps the account fold, the batch and the failure reporting (the contact fold is
contact_fold.py); the rules (identity
links, merges, unsubscribes, name and title, account precedence, rescoring, bus payloads)
are in contacts.py and accounts.py. The folds take typed changes (an event inserted, a
contact or an account changed: `adapters.streams` reads them off the stream), never an item.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING, Any

from leadscore.domain.records import Account, BookChange
from leadscore.engine.account_events import state_change_events
from leadscore.engine.accounts import (
    account_changed,
    apply_memberships,
    membership_changes,
    new_account,
    rescore_account,
)
from leadscore.engine.identity import key_digest
from leadscore.services.changes import AccountChanged, Change, ContactChanged, EventInserted, position
from leadscore.services.contact_fold import (
    ContactAggregator,
    back_off,
    log_failure,
    with_retries,
)
from leadscore.services.history import account_steps, without_erased
from leadscore.services.outbox import deliver_routed, routed_sends
from leadscore.services.rebuild import Rebuilder
from leadscore.services.team import book_changes

if TYPE_CHECKING:
    from leadscore.engine.accounts import Membership
    from leadscore.rulesfiles.loading import Config
    from leadscore.rulesfiles.scoring import ScoringConfig
    from leadscore.services.outbox import RoutedSend
    from leadscore.services.ports import AggregateStore, BookStore, HistoryStore, MessageQueue, Publisher

logger = logging.getLogger(__name__)
MAX_ATTEMPTS = 12
MAX_FORWARD_HOPS = 4
__all__ = ["AccountChanged", "BatchOutcome", "ContactAggregator", "ContactChanged", "EventInserted",
           "aggregate_batch", "position", "state_changes"]


class AccountAggregator:
    """Rolls contact changes of a stream batch into their accounts: one write per account."""

    def __init__(self, store: AggregateStore, config: Config, now: datetime, *,
                 erasures: Callable[[Account], int] | None = None) -> None:
        self.store = store
        self.config = config
        self.now = now
        #: how many erasures an account has had: a contact change of such an account is checked
        #: against the suppression records, so a change still in the stream does not bring an
        #: erased contact back into it
        self.erasures = erasures
        self.poison: list[str] = []  # sequence numbers of contact records that cannot be summarised

    def apply(self, records: Iterable[Change]) -> dict[str, list[str]]:
        """Returns {account id: [sequence numbers]} for accounts that could not be written.

        A contact record that cannot be summarised (a corrupt image) is left out, so its
        accounts take the batch's other contacts, and listed in `self.poison`."""

        changes: dict[str, list[Membership]] = defaultdict(list)
        sequences: dict[str, list[str]] = defaultdict(list)
        for record in records:
            if not isinstance(record, ContactChanged):
                continue
            try:
                record_changes = membership_changes(self.config.scoring, record.new(), record.old(), self.now)
            except Exception as error:  # noqa: BLE001 - the image is what it is: retrying cannot help
                self.poison.append(record.sequence)
                log_failure("contact record %s cannot be summarised for its account: %s",
                             key_digest(record.contact_key), error)
                continue
            for account, change in record_changes:
                changes[account].append(change)
                sequences[account].append(record.sequence)
        if not changes:
            return {}
        prefetched = self.store.load_accounts(changes)
        self._drop_erased(changes, prefetched)
        failed: dict[str, list[str]] = {}
        for account_id, account_changes in changes.items():
            applied = with_retries(account_id, prefetched.get(account_id),
                                    partial(self.store.load_account, account_id),
                                    partial(self._apply_account, account_id, changes=account_changes))
            if not applied:
                failed[account_id] = sequences[account_id]
        return failed

    def _drop_erased(self, changes: dict[str, list[Membership]], accounts: dict[str, Account]) -> None:
        """Leave out the entries of erased contacts in accounts that had an erasure (one read of
        their suppression records; none for an account that never had one: the usual case)."""
        if self.erasures is None:
            return
        erasures = self.erasures
        touched = [a for a in changes if a in accounts and erasures(accounts[a]) > 0]
        keys = {m.contact_key for a in touched for m in changes[a] if m.entry is not None}
        gone = self.store.load_suppressed(keys) if keys else set()
        for account_id in touched:
            changes[account_id] = [m for m in changes[account_id] if m.entry is None or m.contact_key not in gone]

    def _apply_account(self, account_id: str, account: Account | None, changes: list[Membership]) -> None:

        version = account.version if account is not None else None
        current = (replace(account, entries=list(account.entries), traits=dict(account.traits),
                           extra=dict(account.extra))
                   if account is not None else new_account(account_id, self.now))
        apply_memberships(self.config.scoring, current, changes, self.now)
        rescore_account(self.config.scoring, current, self.now)
        if account is not None and not account_changed(account, current):
            return  # nothing moved (a replay): no write, no event
        current.version = (version or 0) + 1
        current.updated_at = self.now.isoformat()
        self.store.save_account(current, version)


def state_changes(records: Iterable[Change], now: datetime,
                  scoring: ScoringConfig | None = None) -> list[tuple[str, dict[str, Any]]]:
    """The bus events an account batch causes: transitions as they happened, and one
    coalesced `Account Score Changed` per account per batch (accounts.state_change_events).
    With `scoring`, a routed account is read in full (its Slack notification's reasons)."""

    changes = [(record.account_id, record.old(), _new_account(record, full=scoring is not None and record.routed))
               for record in records if isinstance(record, AccountChanged)]
    return state_change_events(changes, now, scoring)


def _new_account(record: AccountChanged, *, full: bool) -> Account:
    if full:
        try:
            return record.new(True)
        except Exception:  # noqa: BLE001 - its routed message reports it; its events go out without reasons
            pass
    return record.new(False)


def routed_sends_of(records: Iterable[Change], config: Config) -> tuple[list[RoutedSend], list[str]]:
    """The routed messages an account batch owes (outbox.routed_sends: the routing
    transaction is the outbox, the stream delivers it), and the sequence numbers of the
    records whose message could not even be built (reported alone). Only a record whose new
    image is routed is decoded in full."""

    sends: list[RoutedSend] = []
    failed: list[str] = []
    for record in records:
        if not (isinstance(record, AccountChanged) and record.routed):
            continue
        try:
            sends += routed_sends(config.scoring, [(record.old(), record.new(True))])
        except Exception as error:  # noqa: BLE001 - one account's message, not its neighbours'
            log_failure("the routed message of %s could not be built: %s", record.account_id, error)
            failed.append(record.sequence)
    return sends, failed


class NoRoutedQueue(RuntimeError):
    """An account was routed but this aggregator has no routed queue to send its message to."""


@dataclass
class BatchOutcome:
    """What one stream batch left undone."""

    failed: list[str]  # sequence numbers to report, lowest first (poison included)
    poison: list[str]  # of which: records that can never be applied
    #: accounts whose routed message could not be sent and was parked (make replay sends it)
    parked: list[str] = field(default_factory=list)


def aggregate_batch(records: Sequence[Change], *, store: AggregateStore, config: Config, publisher: Publisher,
                    now: datetime, unparsed: Sequence[str] = (), routed_queue: MessageQueue | None = None,
                    parked_queue: MessageQueue | None = None, book_store: BookStore | None = None,
                    history_store: HistoryStore | None = None, retention_days: int = 400) -> BatchOutcome:
    """Run the three folds over one stream batch, then send the routed messages the account
    changes owe and publish their state changes; what failed, and which of it is poison.

    Each fold is idempotent, so a record reported failed (and everything after it, which
    Lambda redelivers) is safe to apply again; a routed message sent again carries the same
    FIFO deduplication id, and SQS drops it. Each routed message is sent on its own: one that
    cannot be sent is parked on `parked_queue` and holds back neither the batch's other
    messages nor its bus events. With `book_store`, the SDRs' books (open accounts,
    acceptances, SLA breaches: `team.book_changes`) follow the batch's account changes.
    `unparsed` are the sequence numbers of the batch's records that did not even parse: poison.
    A contact record at or below its watermark rebuilds that contact from its stored events
    (rebuild.Rebuilder; `retention_days` says how long events are kept). With `history_store`,
    each account written keeps its steps in its history (history.account_steps: one item per
    account per batch).
    """
    poison: list[str] = list(unparsed)
    failed: list[str] = list(poison)
    rebuilder = Rebuilder(store, config, now, retention_days=retention_days)
    folds: tuple[ContactAggregator, AccountAggregator] = (
        ContactAggregator(store, config, now, on_replay=rebuilder.on_replay, suppressed=store.load_suppressed),
        AccountAggregator(store, config, now,
                          erasures=history_store.erasures_of if history_store is not None else None))
    for fold in folds:
        for sequences in fold.apply(records).values():
            failed.extend(sequences)
        poison.extend(fold.poison)
        failed.extend(fold.poison)
    parked = _send_routed(records, config, routed_queue, parked_queue, failed)
    try:
        changes = state_changes(records, now, config.scoring)
        if changes:
            publisher.publish(changes, time=now)
    except Exception as error:  # noqa: BLE001 - report the account records; the retry publishes again
        logger.error("bus events of the batch failed: %s", type(error).__name__)
        failed.extend(r.sequence for r in records if isinstance(r, AccountChanged))
    if history_store is not None:
        try:
            steps = account_steps(config.scoring, records, history_store.erasures_of)
            history_store.save_history(without_erased(steps, store.load_suppressed, history_store.erasures_of),
                                       retention_days, now)
        except Exception as error:  # noqa: BLE001 - report the account records; writing them again is harmless
            logger.error("the accounts' history of the batch failed: %s", type(error).__name__)
            failed.extend(r.sequence for r in records if isinstance(r, AccountChanged))
    if book_store is not None:
        try:
            book_store.apply_book_changes(book_changes_of(records))
        except Exception as error:  # noqa: BLE001 - report the account records; applying them again is harmless
            logger.error("the SDRs' books of the batch failed: %s", type(error).__name__)
            failed.extend(r.sequence for r in records if isinstance(r, AccountChanged))
    return BatchOutcome(failed=sorted(set(failed), key=position), poison=sorted(set(poison), key=position),
                        parked=parked)


def book_changes_of(records: Iterable[Change]) -> list[BookChange]:
    """What the batch's account changes mean for the SDRs' books (team.book_changes), in order;
    an image that cannot be read is left out (its account's other records still count)."""

    changes: list[BookChange] = []
    for record in records:
        if not isinstance(record, AccountChanged):
            continue
        try:
            changes += book_changes(record.old(), record.new(False))
        except Exception as error:  # noqa: BLE001 - a corrupt image: its routed message and events report it
            log_failure("the book change of %s could not be read: %s", record.account_id, error)
    return changes


def _send_routed(records: Sequence[Change], config: Config, routed_queue: MessageQueue | None,
                 parked_queue: MessageQueue | None, failed: list[str]) -> list[str]:
    """Send the routed messages the batch owes, each on its own (outbox.deliver_routed): one
    that cannot be sent is parked, alone; only one that could not even be parked has its
    account's records reported (the stream retries them; SQS drops what was sent already).
    Returns the accounts parked."""

    sends, unbuilt = routed_sends_of(records, config)
    failed.extend(unbuilt)
    if not sends:
        return []
    if routed_queue is None:
        logger.error("%s", NoRoutedQueue(f"{len(sends)} routed message(s) and no ROUTED_QUEUE_URL"))
        undelivered = sends
        parked = []
    else:
        delivery = deliver_routed(routed_queue, sends, parking=parked_queue, pause=back_off)
        undelivered, parked = delivery.failed, [send.account_id for send in delivery.parked]
    accounts = {send.account_id for send in undelivered}
    failed.extend(r.sequence for r in records if isinstance(r, AccountChanged) and r.account_id in accounts)
    return parked
