"""ISO-8601 durations as the local tools take them: the clock's `advance` (`local.server`) and a
journey step's time (`local.demo`).

pydantic parses them; this only refuses what it would read loosely: years and months (their length
varies), a `T` with no time after it, and forms that are no ISO-8601 duration ("30 days", "1:00:00").
"""

from __future__ import annotations

from datetime import timedelta
from functools import cache

from pydantic import TypeAdapter, ValidationError


@cache
def _timedelta() -> TypeAdapter[timedelta]:
    return TypeAdapter(timedelta)


def parse_iso_duration(text: str) -> timedelta | None:
    """`[+-]P[nW][nD][T[nH][nM][nS]]` (numbers may have a fraction; any case) as a timedelta, or
    None when `text` is not such a duration. "P30D", "PT1H30M", "P1DT12H", "P2W", "-PT5M"."""
    value = text.strip().upper()
    unsigned = value[1:] if value[:1] in "+-" else value
    if not unsigned.startswith("P") or unsigned.endswith("T"):
        return None
    date_part = unsigned[1:].partition("T")[0]
    if "Y" in date_part or "M" in date_part:
        return None
    try:
        return _timedelta().validate_python(value)
    except ValidationError:
        return None
