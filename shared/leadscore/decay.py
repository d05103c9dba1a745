"""The scheduled decay job: re-value the contacts whose email touches went stale.

It finds them through the sparse due-time index (never a scan), so its reads grow with
the contacts due, not with the table. Re-valuing a contact as of `now` is a pure function
of its ledger, so running the job twice for the same instant writes nothing the second
time: the first run moved every contact's due time past `now`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from leadscore.storage import PROFILE, Store, VersionConflict

MAX_ATTEMPTS = 5


@dataclass
class DecayResult:
    due: int = 0
    written: int = 0
    unchanged: int = 0
    conflicts: int = 0


def contact_values(scoring: Any, ledger_json: str | None, now: datetime) -> dict[str, Any]:
    """The stored score fields of a contact, valued as of `now`."""
    from leadscore.rules import ContactState, next_decay_at, score

    state = ContactState.from_json(ledger_json)
    card = score(scoring, state, now)
    due = next_decay_at(scoring, state, now)
    return {"fit": card.fit, "eng": card.engagement, "score": card.score, "vel": card.velocity,
            "life": card.lifecycle, "due_at": due.isoformat() if due else None}


def run_decay(store: Store, config: Any, now: datetime) -> DecayResult:
    result = DecayResult()
    for due in store.query_due(now.isoformat()):
        result.due += 1
        item: dict[str, Any] | None = due
        for _ in range(MAX_ATTEMPTS):
            if item is None or not item.get("due_at") or item["due_at"] > now.isoformat():
                result.unchanged += 1  # someone re-valued it meanwhile
                break
            values = contact_values(config.scoring, item.get("lg"), now)
            changed = {k: v for k, v in values.items() if k != "due_at" and item.get(k) != v}
            remove = [] if values["due_at"] else ["due_pk", "due_at"]
            sets = {**changed, "upd": now.isoformat()}
            if values["due_at"]:
                sets["due_at"] = values["due_at"]
            try:
                store.update_versioned(item["pk"], PROFILE, int(item["ver"]), sets, remove)
                result.written += 1
                break
            except VersionConflict:
                result.conflicts += 1
                item = store.get(item["pk"])
    return result
