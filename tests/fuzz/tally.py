"""How many inputs the fuzz suite tried, per route and per tool, and its hypothesis settings."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis.database import DirectoryBasedExampleDatabase

ROOT = Path(__file__).resolve().parents[2]
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


class Tally:
    """Inputs tried, keyed by (tool, route)."""

    def __init__(self) -> None:
        self.counts: Counter[tuple[str, str]] = Counter()

    def __bool__(self) -> bool:
        return bool(self.counts)

    def add(self, route: str, tool: str = "hypothesis") -> None:
        self.counts[(tool, route)] += 1

    def to_rows(self) -> list[list[object]]:
        """As plain rows, for an xdist worker to hand its counts to the controller."""
        return [[tool, route, n] for (tool, route), n in self.counts.items()]

    def add_rows(self, rows: list[list[object]]) -> None:
        for tool, route, n in rows:
            self.counts[(str(tool), str(route))] += int(n)  # type: ignore[call-overload]

    def summary_lines(self) -> list[str]:
        lines = []
        for tool in sorted({tool for tool, _ in self.counts}):
            per_route = {route: n for (t, route), n in self.counts.items() if t == tool}
            total = sum(per_route.values())
            parts = ", ".join(f"{route} {n:,}" for route, n in sorted(per_route.items(), key=lambda kv: -kv[1]))
            lines.append(f"fuzz ({tool}): {total:,} inputs tried ({parts})")
        return lines


TALLY = Tally()


def fuzz_settings(max_examples: int) -> settings:
    """deadline off (a 500 KB body or a gzip bomb takes its time); derandomized in CI so a run
    is reproducible there; locally random, failures kept in .pytest_cache to be replayed first."""
    return settings(
        max_examples=max_examples,
        deadline=None,
        derandomize=IN_CI,
        database=None if IN_CI else DirectoryBasedExampleDatabase(str(ROOT / ".pytest_cache" / "hypothesis")),
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much,
                               HealthCheck.large_base_example],
        print_blob=True,
    )
