"""The SLA clock in working hours: when an account routed at a moment is due.

`routing.yaml`'s optional `sla_business_hours: {days: [Mon, ..., Fri], from: "09:00",
to: "18:00"}` counts the SLA only while the owning SDR works, in their own time zone: an
account routed on Friday evening with a 10-hour SLA is due on Monday, not on Sunday. Without
it the SLA counts wall-clock hours (`routed_at + sla_hours`).

A working day is the span from the first instant the SDR's wall clock reads `from` on that
date to the first instant it reads `to` (`24:00`: the next midnight). Durations are real
elapsed time: on the night clocks go forward a 00:00-24:00 day lasts 23 hours, so hours
00:00-24:00 every day are the wall clock exactly. A `from` or `to` the clocks skip (02:30 on
the night they jump from 02:00 to 03:00) is the moment of the jump, the first the wall
clock reads that time or later; one they show twice (falling back) is the first of the two.

Pure: no AWS, no configuration; time zones through `zoneinfo`. All arithmetic is on
`timedelta` (whole microseconds), so the worked time between `routed_at` and the due moment
is the SLA exactly.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo

DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
MINUTES_A_DAY = 24 * 60
_SECOND = timedelta(seconds=1)


@dataclass(frozen=True)
class Week:
    """Working hours: the weekdays worked (0 = Monday, as `date.weekday()`), and the
    minutes after local midnight work starts and ends (`end` up to 1440: `24:00`)."""

    days: frozenset[int]
    start: int
    end: int

    def __post_init__(self) -> None:
        if not self.days or not self.days <= set(range(7)):
            raise ValueError(f"days must be weekday numbers 0-6, at least one: {sorted(self.days)}")
        if not 0 <= self.start < self.end <= MINUTES_A_DAY:
            raise ValueError(f"need 0 <= start < end <= {MINUTES_A_DAY} minutes, got {self.start}..{self.end}")

    @classmethod
    def of(cls, days: Collection[int], start: int, end: int) -> Week:
        return cls(frozenset(days), start, end)


def _first_at(day: date, minute: int, zone: tzinfo) -> datetime:
    """The first instant (UTC) the wall clock in `zone` reads `minute` on `day` or later."""
    if minute >= MINUTES_A_DAY:
        day, minute = day + timedelta(days=1), minute - MINUTES_A_DAY
    wall = datetime.combine(day, time(minute // 60, minute % 60))
    first = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    if first.astimezone(zone).replace(tzinfo=None) == wall:
        return first  # the time exists (fold=0: the first of two when the clocks fall back)
    # Skipped by the clocks: the moment of the jump lies between the two readings of the
    # offsets before and after it. Found to the second (tz transitions are whole seconds).
    other = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)
    low, high = min(first, other), max(first, other)
    after = high.astimezone(zone).utcoffset()
    while high - low > _SECOND:
        middle = low + (high - low) // 2
        if middle.astimezone(zone).utcoffset() == after:
            high = middle
        else:
            low = middle
    return high


def _spans(week: Week, zone: tzinfo, since: datetime) -> Iterator[tuple[datetime, datetime]]:
    """The working spans (UTC) in time order, from the local day before `since` onwards."""
    day = since.astimezone(zone).date() - timedelta(days=1)
    while True:
        if day.weekday() in week.days:
            yield _first_at(day, week.start, zone), _first_at(day, week.end, zone)
        day += timedelta(days=1)


def _aware(moment: datetime, name: str) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must carry a time zone (UTC), got {moment.isoformat()}")
    return moment.astimezone(UTC)


def sla_due(routed_at: datetime, sla_hours: float, week: Week | None, zone: tzinfo) -> datetime:
    """When an account routed at `routed_at` with an SLA of `sla_hours` is due (UTC):
    `sla_hours` of the SDR's working hours (`week`, in their time `zone`) later; with no
    `week`, `sla_hours` of wall clock. Routed outside working hours, the clock starts with
    the next working span; an SLA ending exactly at a span's end is due then."""
    start = _aware(routed_at, "routed_at")
    remaining = timedelta(hours=sla_hours)
    if week is None or remaining <= timedelta(0):
        return start + remaining
    for begin, end in _spans(week, zone, start):
        begin = max(begin, start)
        if end <= begin:
            continue
        if end - begin >= remaining:
            return begin + remaining
        remaining -= end - begin
    raise AssertionError("unreachable: the spans never end")  # pragma: no cover


def worked(since: datetime, until: datetime, week: Week | None, zone: tzinfo) -> timedelta:
    """The working time (`week` in `zone`; all of it with no `week`) between two moments."""
    start, stop = _aware(since, "since"), _aware(until, "until")
    if stop <= start:
        return timedelta(0)
    if week is None:
        return stop - start
    total = timedelta(0)
    for begin, end in _spans(week, zone, start):
        if begin >= stop:
            return total
        begin, end = max(begin, start), min(end, stop)
        if end > begin:
            total += end - begin
    raise AssertionError("unreachable: the spans never end")  # pragma: no cover


__all__ = ["DAY_NAMES", "MINUTES_A_DAY", "Week", "sla_due", "worked"]
