"""`?at=` on the read API: any text that is not a usable ISO-8601 moment is a 400 naming `at`."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from leadscore.adapters.api import parse_moment
from leadscore.adapters.http import HttpError

USABLE = {
    "2026-11-25T10:00:00Z": datetime(2026, 11, 25, 10, tzinfo=UTC),
    "2026-11-25T10:00:00z": datetime(2026, 11, 25, 10, tzinfo=UTC),
    "2026-11-25T10:00:00.250+00:00": datetime(2026, 11, 25, 10, 0, 0, 250_000, tzinfo=UTC),
    "2026-11-25T12:00:00+02:00": datetime(2026, 11, 25, 10, tzinfo=UTC),
    "2026-11-25T00:30:00-14:00": datetime(2026, 11, 25, 14, 30, tzinfo=UTC),
    " 2026-11-25T10:00:00Z ": datetime(2026, 11, 25, 10, tzinfo=UTC),
    "1970-01-01T00:00:00Z": datetime(1970, 1, 1, tzinfo=UTC),
    "9998-12-31T23:59:59Z": datetime(9998, 12, 31, 23, 59, 59, tzinfo=UTC),
}

UNUSABLE = [
    "0001-01-01T00:00:00Z",
    "0001-01-01T00:00:00+01:00",
    "0001-01-01T00:30:00+01:00",
    "9999-12-31T23:59:59-05:00",
    "9999-12-31T23:59:59.999999Z",
    "9999-06-01T00:00:00Z",
    "1969-12-31T23:59:59Z",
    "1970-01-01T00:00:00+00:01",
    "2026-11-25",
    "2026-11-25T10:00:00",
    "2026-11-25T10:00:00+24:00",
    "2026-11-25T10:00:00+99:99",
    "2026-13-01T00:00:00Z",
    "2026-02-30T00:00:00Z",
    "2026-11-25T25:00:00Z",
    "soon",
    "now",
    "1764064800",
    "T",
    "Z",
    "2026-11-25T10:00:00Z\x00",
    "2026-11-25T10:00:00Z\n",
    "\u0662\u0660\u0662\u0666-11-25T10:00:00Z",
    "9" * 5000,
]


@pytest.mark.parametrize("text", list(USABLE), ids=repr)
def test_a_usable_moment_is_taken_in_utc(text: str) -> None:
    moment = parse_moment(text)
    assert moment == USABLE[text] and moment.utcoffset() is not None and moment.utcoffset().total_seconds() == 0


@pytest.mark.parametrize("text", UNUSABLE, ids=lambda t: repr(t[:40]))
def test_anything_else_is_a_400_naming_at(text: str) -> None:
    with pytest.raises(HttpError) as problem:
        parse_moment(text)
    assert problem.value.status == 400 and problem.value.error == "invalid_at"
    assert problem.value.message.startswith("at: ") and problem.value.extra == {"field": "at"}
    assert len(problem.value.message) < 300  # a huge value is not echoed back whole


def test_every_moment_it_accepts_can_be_valued() -> None:
    """The read API's arithmetic (velocity and committee windows, decay) at both ends."""
    from leadscore.engine.accounts import _window_start

    for moment in (parse_moment("1970-01-01T00:00:00Z"), parse_moment("9998-12-31T23:59:59.999999Z")):
        assert _window_start(moment, 10_000) < moment.timestamp()
        assert moment.isoformat()
