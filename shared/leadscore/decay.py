"""The scheduled decay job: re-value the contacts whose email touches went stale.

It finds them through the sparse due-time index (never a scan), so its reads grow with
the contacts due, not with the table. Re-valuing a contact as of `now` is a pure function
of its ledger, so running the job twice for the same instant writes nothing the second
time: the first run moved every contact's due time past `now`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from leadscore.aggregate import contact_values
from leadscore.storage import PROFILE, Store, VersionConflict

MAX_ATTEMPTS = 5


@dataclass
class DecayResult:
    due: int = 0
    written: int = 0
    unchanged: int = 0
    conflicts: int = 0
    stopped_early: bool = False


def run_decay(store: Store, config: Any, now: datetime, *, out_of_time: Callable[[], bool] | None = None,
              workers: int = 8) -> DecayResult:
    """Re-value every contact due by `now`, several at a time.

    Stops early when `out_of_time()` says so: what is left stays due for the next run.
    """
    result = DecayResult()
    lock = threading.Lock()

    def revalue(due: dict[str, Any]) -> None:
        outcome = _revalue(store, config, due, now)
        with lock:
            result.due += 1
            setattr(result, outcome, getattr(result, outcome) + 1)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        pending = []
        for due in store.query_due(now.isoformat()):
            if out_of_time is not None and out_of_time():
                result.stopped_early = True
                break
            pending.append(pool.submit(revalue, due))
        for future in pending:
            future.result()
    return result


def _revalue(store: Store, config: Any, due: dict[str, Any], now: datetime) -> str:
    """One contact: 'written', or 'unchanged' when someone re-valued it meanwhile."""
    from leadscore.rules import ContactState

    item: dict[str, Any] | None = due
    for _ in range(MAX_ATTEMPTS):
        if item is None or not item.get("due_at") or item["due_at"] > now.isoformat():
            return "unchanged"
        values = contact_values(config.scoring, ContactState.from_json(item.get("lg")), now)
        changed = {k: v for k, v in values.items() if k != "due_at" and item.get(k) != v}
        remove = [] if values["due_at"] else ["due_pk", "due_at"]
        sets = {**changed, "upd": now.isoformat()}
        if values["due_at"]:
            sets["due_at"] = values["due_at"]
        try:
            store.update_versioned(item["pk"], PROFILE, int(item["ver"]), sets, remove)
            return "written"
        except VersionConflict:
            # the index lags the table, or a stream batch wrote the contact: read it fresh
            item = store.get(item["pk"])
    return "conflicts"
