"""Each account's record highs from the table's items, for the threshold against the team.

An account's history items keep every write of it (services/history.py), each with the
score it was valued at; the account item itself is the latest. `ScoreHighs` reads them as
a Scan (or a shard of one) hands them over, in any order, and reduces each account's scores
to the days its highest score so far rose (services/capacity.py `record_highs`): a few
pairs per account, whatever the length of its history. All of an account's items are in its
partition, so one shard of a table grouped by partition key gives an account's whole answer.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from leadscore.adapters import items
from leadscore.services.capacity import record_highs


class ScoreHighs:
    """Collects (when, score) of every account write seen; `result()` the record highs."""

    def __init__(self) -> None:
        self.points: dict[str, list[tuple[str, float | None]]] = defaultdict(list)
        self.unreadable = 0

    def add(self, item: Mapping[str, Any]) -> None:
        key = items.table_key(item)
        try:
            if items.is_history_key(key):
                written = [account for account, _ in items.history_steps(item)]
            elif items.is_account_key(key):
                written = [items.account_from_item(item)]
            else:
                return
        except Exception:  # noqa: BLE001 - a damaged item leaves its account's other writes
            self.unreadable += 1
            return
        for account in written:
            if account.updated_at:
                self.points[account.id].append((account.updated_at, account.score))

    def result(self) -> dict[str, list[list[Any]]]:
        return {account: highs for account, points in self.points.items() if (highs := record_highs(points))}


def account_highs(found: Iterable[Mapping[str, Any]]) -> dict[str, list[list[Any]]]:
    """account id -> [[day, score], ...] on the days its highest score so far rose."""
    highs = ScoreHighs()
    for item in found:
        highs.add(item)
    return highs.result()
