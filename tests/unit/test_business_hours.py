"""The SLA in working hours (`sla_business_hours` in routing.yaml, `leadscore.domain.business_hours`):
worked cases in the SDR's own time zone (weekends, DST, fractional SLAs), properties against an
independent count of working quarter-hours, the config key's validation, and the router and
routing pass honouring it."""

from __future__ import annotations

import shutil
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from leadscore.domain.business_hours import Week, sla_due, worked
from leadscore.rulesfiles import loading
from leadscore.rulesfiles.errors import ConfigError
from leadscore.rulesfiles.loading import load_routing
from leadscore.rulesfiles.routing import RoutingConfig
from leadscore.rulesfiles.scoring import ScoringConfig
from leadscore.rulesfiles.sources import SourcesConfig
from leadscore.services.routing_pass import run_routing_pass

from tests.support.fakes import MemoryQueue, MemoryStore
from tests.unit.test_router import ready, router, routing, sdr

WEEKDAYS = Week.of(range(5), 9 * 60, 18 * 60)  # Monday to Friday, 09:00-18:00
MADRID, NEW_YORK, TOKYO = ZoneInfo("Europe/Madrid"), ZoneInfo("America/New_York"), ZoneInfo("Asia/Tokyo")


def local(zone: ZoneInfo, *fields: int) -> datetime:
    return datetime(*fields, tzinfo=zone)  # type: ignore[misc]


def due_local(routed: datetime, hours: float, week: Week | None, zone: ZoneInfo) -> str:
    return sla_due(routed, hours, week, zone).astimezone(zone).strftime("%a %Y-%m-%d %H:%M")


# ------------------------------------------------------------------- worked cases


@pytest.mark.parametrize("zone", [MADRID, NEW_YORK, TOKYO, ZoneInfo("UTC")], ids=str)
def test_the_issue_case_wednesday_evening_with_10_hours_is_due_friday_noon_in_the_sdrs_zone(zone: ZoneInfo) -> None:
    # Given hours 10:00-18:00 Monday to Friday and a 10-hour SLA, When routed on Wednesday at
    # 20:00 in the SDR's time zone, Then 8 hours on Thursday and 2 on Friday: due Friday 12:00 there
    week = Week.of(range(5), 10 * 60, 18 * 60)
    assert due_local(local(zone, 2026, 12, 2, 20, 0), 10, week, zone) == "Fri 2026-12-04 12:00"


@pytest.mark.parametrize(
    ("routed", "hours", "due"),
    [
        # routed inside hours: 7 hours left on Tuesday, 3 on Wednesday
        ((2026, 12, 1, 11, 0), 10, "Wed 2026-12-02 12:00"),
        # an SLA ending exactly at the end of a day is due then, not the next morning
        ((2026, 11, 30, 9, 0), 9, "Mon 2026-11-30 18:00"),
        # routed before the day starts: the clock starts at 09:00
        ((2026, 11, 30, 6, 30), 2, "Mon 2026-11-30 11:00"),
        # routed on a weekend: nothing counts until Monday 09:00
        ((2026, 12, 5, 14, 0), 4, "Mon 2026-12-07 13:00"),
        ((2026, 12, 6, 23, 59), 1, "Mon 2026-12-07 10:00"),
        # Friday evening: not breached on Sunday (wall clock would say Saturday 05:00)
        ((2026, 12, 4, 19, 0), 10, "Tue 2026-12-08 10:00"),
        ((2026, 12, 4, 17, 0), 10, "Mon 2026-12-07 18:00"),
        # fractional SLAs
        ((2026, 11, 30, 17, 0), 1.5, "Tue 2026-12-01 09:30"),
        ((2026, 11, 30, 17, 50), 0.25, "Tue 2026-12-01 09:05"),
        # a working day and a half (docs/CONFIG.md)
        ((2026, 11, 30, 9, 0), 13.5, "Tue 2026-12-01 13:30"),
        # 48 working hours are more than five working days
        ((2026, 12, 4, 19, 0), 48, "Mon 2026-12-14 12:00"),
    ],
)
def test_worked_cases_monday_to_friday_nine_to_six(routed: tuple[int, ...], hours: float, due: str) -> None:
    assert due_local(local(MADRID, *routed), hours, WEEKDAYS, MADRID) == due


def test_without_business_hours_the_sla_is_wall_clock() -> None:
    routed = datetime(2026, 12, 4, 18, 0, tzinfo=UTC)  # a Friday evening
    assert sla_due(routed, 10, None, MADRID) == routed + timedelta(hours=10)
    assert worked(routed, routed + timedelta(hours=10), None, MADRID) == timedelta(hours=10)


def test_a_weekend_across_the_spring_dst_change_counts_real_hours() -> None:
    # Given Madrid, whose clocks go forward on Sunday 2027-03-28 (CET +01:00 -> CEST +02:00),
    # When routed on Friday 17:00 CET with a 2-hour SLA, Then due Monday 10:00 CEST (08:00 UTC):
    # the local hour is the same as any week, the UTC one an hour earlier
    due = sla_due(local(MADRID, 2027, 3, 26, 17, 0), 2, WEEKDAYS, MADRID)
    assert due == datetime(2027, 3, 29, 8, 0, tzinfo=UTC)
    assert due.astimezone(MADRID).strftime("%H:%M %z") == "10:00 +0200"


def test_every_hour_of_every_day_is_the_wall_clock_across_dst() -> None:
    # 00:00-24:00 every day in New York across 2027-03-14 (a 23-hour day): 24 hours are 24 real hours
    week = Week.of(range(7), 0, 24 * 60)
    routed = local(NEW_YORK, 2027, 3, 13, 12, 0).astimezone(UTC)  # (UTC: Python adds wall-clock hours in a zone)
    assert sla_due(routed, 24, week, NEW_YORK) == routed + timedelta(hours=24)
    assert sla_due(routed, 24, week, NEW_YORK).astimezone(NEW_YORK).hour == 13  # an hour later on the wall


def test_hours_starting_in_the_hour_the_clocks_skip_start_at_the_jump() -> None:
    # 02:30-05:00 every day; on 2027-03-14 New York's clocks jump from 02:00 to 03:00 EDT,
    # so that day's work starts at 03:00 EDT (07:00 UTC) and an hour's SLA is due at 04:00
    week = Week.of(range(7), 2 * 60 + 30, 5 * 60)
    due = sla_due(local(NEW_YORK, 2027, 3, 14, 0, 0), 1, week, NEW_YORK)
    assert due == datetime(2027, 3, 14, 8, 0, tzinfo=UTC)
    assert worked(local(NEW_YORK, 2027, 3, 14, 0, 0), local(NEW_YORK, 2027, 3, 15, 0, 0), week, NEW_YORK) \
        == timedelta(hours=2)


def test_hours_across_the_hour_the_clocks_repeat_last_one_more_hour() -> None:
    # 01:00-03:00 on 2027-11-07, when New York falls back from 02:00 EDT to 01:00 EST: from
    # 01:00 EDT (05:00 UTC) to 03:00 EST (08:00 UTC), three real hours
    week = Week.of({6}, 60, 3 * 60)
    day = (local(NEW_YORK, 2027, 11, 7, 0, 0), local(NEW_YORK, 2027, 11, 8, 0, 0))
    assert worked(*day, week, NEW_YORK) == timedelta(hours=3)
    assert sla_due(day[0], 3, week, NEW_YORK) == datetime(2027, 11, 7, 8, 0, tzinfo=UTC)


def test_a_moment_without_a_time_zone_is_refused() -> None:
    with pytest.raises(ValueError, match="routed_at must carry a time zone"):
        sla_due(datetime(2026, 12, 4, 18, 0), 10, WEEKDAYS, MADRID)


def test_a_week_with_no_days_or_reversed_hours_cannot_be_built() -> None:
    with pytest.raises(ValueError, match="at least one"):
        Week.of((), 0, 60)
    with pytest.raises(ValueError, match="start < end"):
        Week.of({0}, 18 * 60, 9 * 60)


# ------------------------------------------------------------------------- properties

ZONES = ["UTC", "Europe/Madrid", "America/New_York", "America/Santiago", "Australia/Lord_Howe", "Asia/Kolkata",
         "Asia/Kathmandu", "Europe/Dublin", "Pacific/Apia"]
QUARTER = timedelta(minutes=15)


@st.composite
def weeks(draw: st.DrawFn, *, quarters: bool = False) -> Week:
    days = draw(st.frozensets(st.integers(0, 6), min_size=1))
    step = 15 if quarters else 1
    start = draw(st.integers(0, 24 * 60 // step - 1)) * step
    end = draw(st.integers(start // step + 1, 24 * 60 // step)) * step
    return Week(days, start, max(end, min(start + 30, 24 * 60)))  # half an hour at least: spans stay short


# anywhere, or in the months the clocks change in (March-April, September-November)
moments = st.datetimes(datetime(2000, 1, 1), datetime(2040, 1, 1), timezones=st.just(UTC)) | st.builds(
    lambda year, month, day, minute: datetime(year, month, day, tzinfo=UTC) + timedelta(minutes=minute),
    st.integers(2000, 2039), st.sampled_from([3, 4, 9, 10, 11]), st.integers(1, 28), st.integers(0, 24 * 60 - 1))
sla_hours = st.floats(0.001, 120, allow_nan=False)


@settings(max_examples=200, deadline=None)
@given(moments, sla_hours, weeks(), st.sampled_from(ZONES))
def test_the_due_moment_is_never_before_the_wall_clock_sla_and_the_worked_time_is_the_sla(
        routed: datetime, hours: float, week: Week, zone_name: str) -> None:
    zone = ZoneInfo(zone_name)
    due = sla_due(routed, hours, week, zone)
    assert due >= routed + timedelta(hours=hours)
    assert worked(routed, due, week, zone) == timedelta(hours=hours)
    # and not a moment later than needed: just before it, the SLA had not run out
    assert worked(routed, due - timedelta(microseconds=1), week, zone) < timedelta(hours=hours)


@settings(max_examples=200, deadline=None)
@given(moments, sla_hours, st.sampled_from(ZONES))
def test_every_hour_of_every_day_is_the_wall_clock(routed: datetime, hours: float, zone_name: str) -> None:
    week = Week.of(range(7), 0, 24 * 60)
    assert sla_due(routed, hours, week, ZoneInfo(zone_name)) == routed + timedelta(hours=hours)


def counted_by_quarter_hours(routed: datetime, quarters: int, week: Week, zone: ZoneInfo) -> datetime:
    """An independent count: step through the quarter-hours from a day before `routed` and
    count those from `routed` on that a working day's wall clock in `zone` shows once it read
    `from` and before it read `to` (so an hour the clocks show twice is counted as lived)."""
    started: set[Any] = set()
    ended: set[Any] = set()
    moment, left = routed - timedelta(days=1), quarters
    while left:
        wall = moment.astimezone(zone)
        day, minute = wall.date(), wall.hour * 60 + wall.minute
        if minute >= week.start:
            started.add(day)
        if minute >= week.end:
            ended.add(day)
        if moment >= routed and wall.weekday() in week.days and day in started and day not in ended:
            left -= 1
        moment += QUARTER
    return moment


@settings(max_examples=150, deadline=None)
@given(moments.map(lambda d: d.replace(minute=d.minute // 15 * 15, second=0, microsecond=0)),
       st.integers(1, 4 * 60), weeks(quarters=True), st.sampled_from(ZONES))
@example(datetime(2011, 12, 28, 12, 0, tzinfo=UTC), 4 * 20, Week.of(range(7), 9 * 60, 18 * 60), "Pacific/Apia")
@example(datetime(2027, 3, 13, 4, 0, tzinfo=UTC), 4 * 30, Week.of(range(7), 0, 3 * 60), "America/New_York")
@example(datetime(2027, 4, 3, 4, 0, tzinfo=UTC), 4 * 30, Week.of(range(7), 0, 24 * 60 - 60), "America/Santiago")
@example(datetime(2027, 10, 2, 4, 0, tzinfo=UTC), 4 * 30, Week.of(range(7), 60, 3 * 60), "Australia/Lord_Howe")
@example(datetime(2027, 3, 13, 4, 0, tzinfo=UTC), 4 * 30, Week.of(range(7), 150, 3 * 60), "America/New_York")
@example(datetime(2027, 11, 6, 4, 0, tzinfo=UTC), 4 * 30, Week.of(range(7), 90, 105), "America/New_York")
def test_the_due_moment_agrees_with_counting_working_quarter_hours(
        routed: datetime, quarters: int, week: Week, zone_name: str) -> None:
    # quarter-hour working hours and moments: every change (a day's start or end, a DST jump)
    # falls on a quarter hour of UTC in these zones, so the count is exact
    zone = ZoneInfo(zone_name)
    assert sla_due(routed, quarters / 4, week, zone) == counted_by_quarter_hours(routed, quarters, week, zone)


# ----------------------------------------------------------------------- the config key

BASE = """
version: 1
sla_hours: 10
sla_business_hours: {days: [Mon, Tue, Wed, Thu, Fri], from: "10:00", to: "18:00"}
sdrs:
  - {id: ana, name: Ana Ruiz, email: ana@example.com, time_zone: Europe/Madrid}
  - {id: kenji, name: Kenji Sato, email: kenji@example.com, time_zone: Asia/Tokyo}
pools:
  - {id: team, sdrs: [ana, kenji]}
fallback_pool: team
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "routing.yaml"
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


def errors(tmp_path: Path, text: str) -> list[tuple[str, str]]:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_routing(path)
    assert str(caught.value).startswith(f"{path}: ")
    return caught.value.errors


def edited(old: str, new: str) -> str:
    assert old in BASE, old
    return BASE.replace(old, new, 1)


def test_the_key_is_read_and_each_sdr_is_due_in_their_own_time_zone(tmp_path: Path) -> None:
    cfg = load_routing(write(tmp_path, BASE))
    hours = cfg.sla_business_hours
    assert hours is not None and (hours.days, hours.from_, hours.to) == (["Mon", "Tue", "Wed", "Thu", "Fri"],
                                                                         "10:00", "18:00")
    for sdr_id in ("ana", "kenji"):
        sdr = cfg.sdr_by_id[sdr_id]
        routed = local(sdr.zone, 2026, 12, 2, 20, 0)  # Wednesday 20:00 where they are
        assert cfg.sla_due(sdr, routed).astimezone(sdr.zone) == local(sdr.zone, 2026, 12, 4, 12, 0)


def test_without_the_key_the_sla_is_wall_clock_hours(tmp_path: Path) -> None:
    cfg = load_routing(write(tmp_path, BASE.replace('sla_business_hours: {days: [Mon, Tue, Wed, Thu, Fri], '
                                                    'from: "10:00", to: "18:00"}\n', "")))
    assert cfg.sla_business_hours is None
    routed = datetime(2026, 12, 4, 18, 0, tzinfo=UTC)
    assert cfg.sla_due(cfg.sdr_by_id["ana"], routed) == routed + timedelta(hours=10)


def test_days_default_to_monday_to_friday_and_are_read_in_any_case_or_in_full(tmp_path: Path) -> None:
    cfg = load_routing(write(tmp_path, edited("days: [Mon, Tue, Wed, Thu, Fri], ", "")))
    assert cfg.sla_business_hours is not None and cfg.sla_business_hours.days == ["Mon", "Tue", "Wed", "Thu", "Fri"]
    cfg = load_routing(write(tmp_path, edited("[Mon, Tue, Wed, Thu, Fri]", "[monday, TUE, Saturday]")))
    assert cfg.sla_business_hours is not None and cfg.sla_business_hours.days == ["Mon", "Tue", "Sat"]
    cfg = load_routing(write(tmp_path, edited('"10:00", to: "18:00"', '"0:00", to: "24:00"')))
    assert cfg.sla_business_hours is not None and (cfg.sla_business_hours.from_, cfg.sla_business_hours.to) \
        == ("00:00", "24:00")


def test_an_sdr_may_have_their_own_hours(tmp_path: Path) -> None:
    cfg = load_routing(write(tmp_path, edited(
        "time_zone: Asia/Tokyo}", 'time_zone: Asia/Tokyo, sla_business_hours: {days: [Sun], from: "08:00", '
                                  'to: "12:00"}}')))
    kenji, ana = cfg.sdr_by_id["kenji"], cfg.sdr_by_id["ana"]
    routed = local(kenji.zone, 2026, 12, 2, 20, 0)  # a Wednesday: Kenji works Sundays 08:00-12:00
    assert cfg.sla_due(kenji, routed).astimezone(kenji.zone) == local(kenji.zone, 2026, 12, 20, 10, 0)
    # Ana keeps the team's hours (10:00-18:00 Monday to Friday): due on Thursday
    assert cfg.sla_due(ana, routed.astimezone(ana.zone)).astimezone(ana.zone).weekday() == 3


@pytest.mark.parametrize(
    ("old", "new", "path", "reason"),
    [
        ('to: "18:00"', 'to: "09:00"', "sla_business_hours.to",
         'to (09:00) is not after from (10:00): hours past midnight are not supported; end at "24:00" and start '
         'the next day at "00:00" (line 3)'),
        ('to: "18:00"', 'to: "10:00"', "sla_business_hours.to", "to (10:00) is not after from (10:00)"),
        ("Tue, Wed", "Tue, Wen", "sla_business_hours.days[2]",
         "unknown day 'Wen' (days: Mon, Tue, Wed, Thu, Fri, Sat, Sun) (line 3)"),
        ("Thu, Fri]", "Thu, Fri, mon]", "sla_business_hours.days[5]", "Mon is listed twice (line 3)"),
        ("[Mon, Tue, Wed, Thu, Fri]", "[]", "sla_business_hours.days",
         "list at least one day (Mon, Tue, Wed, Thu, Fri, Sat, Sun) (line 3)"),
        ('to: "18:00"', "to: 18:00", "sla_business_hours.to",
         'write the time in quotes, like "18:00" (unquoted, YAML reads 18:00 as the number 1080) (line 3)'),
        ('from: "10:00"', "from: 9", "sla_business_hours.from",
         'write the time in quotes, like "09:00", got the number 9'),
        ('to: "18:00"', 'to: "6pm"', "sla_business_hours.to",
         'expected a time like "09:00" (24-hour; "24:00" is the end of the day), got \'6pm\''),
        ('to: "18:00"', 'to: "24:30"', "sla_business_hours.to", "expected a time like \"09:00\""),
        ('to: "18:00"', 'to: "18:60"', "sla_business_hours.to", "expected a time like \"09:00\""),
        ('from: "10:00"', 'from: "24:00"', "sla_business_hours.from",
         'a day starts before "24:00" (its end); use "00:00"'),
        ('to: "18:00"}', 'to: "18:00", tz: Europe/Madrid}', "sla_business_hours.tz", "unknown key"),
        ('to: "18:00"}', "}", "sla_business_hours.to", "required key missing"),
        ("time_zone: Asia/Tokyo}", 'time_zone: Asia/Tokyo, sla_business_hours: {days: [Sunday, Fun], from: "08:00", '
         'to: "07:00"}}', "sdrs[1].sla_business_hours.days[1]", "unknown day 'Fun'"),
    ],
)
def test_mistakes_name_the_file_the_key_path_and_the_line(tmp_path: Path, old: str, new: str, path: str,
                                                          reason: str) -> None:
    found = errors(tmp_path, edited(old, new))
    matching = [r for p, r in found if p == path]
    assert matching and matching[0].startswith(reason), found
    assert matching[0].endswith(")") and "(line " in matching[0]


def test_every_mistake_of_the_block_is_reported_at_once(tmp_path: Path) -> None:
    found = errors(tmp_path, edited('[Mon, Tue, Wed, Thu, Fri], from: "10:00", to: "18:00"',
                                    '[Mon, Mun, Mon], from: "19:00", to: "18:00"'))
    assert [p for p, _ in found] == ["sla_business_hours.days[1]", "sla_business_hours.days[2]",
                                     "sla_business_hours.to"]


def test_the_prevalidated_form_keeps_the_hours(tmp_path: Path) -> None:
    # compiled.json (what a function loads instead of the YAML) rebuilds the same hours
    shipped = Path(__file__).resolve().parents[2] / "config"
    for name in (loading.SCORING_FILE, loading.SOURCES_FILE):
        shutil.copy(shipped / name, tmp_path / name)
    path = write(tmp_path, edited("time_zone: Asia/Tokyo}", 'time_zone: Asia/Tokyo, sla_business_hours: '
                                  '{days: [Sat, Sun], from: "08:00", to: "12:00"}}'))
    files: list[tuple[Path, Any]] = [
        (tmp_path / name, loading.load_rules(model, tmp_path / name, prevalidated=False))
        for name, model in ((loading.SCORING_FILE, ScoringConfig), (loading.SOURCES_FILE, SourcesConfig),
                            (loading.ROUTING_FILE, RoutingConfig))]
    (tmp_path / loading.COMPILED_FILE).write_text(loading.compiled_text(files), encoding="utf-8")
    fast = loading.prevalidated_rules(RoutingConfig, path)
    slow = load_routing(path)
    assert fast is not None and fast == slow
    routed = datetime(2026, 12, 2, 19, 0, tzinfo=UTC)
    for sdr_id in ("ana", "kenji"):
        assert fast.sla_due(fast.sdr_by_id[sdr_id], routed) == slow.sla_due(slow.sdr_by_id[sdr_id], routed)
    assert fast.sla_due(fast.sdr_by_id["kenji"], routed) == datetime(2026, 12, 12, 1, 0, tzinfo=UTC)  # Sat 10:00 JST


# ------------------------------------------------------------ the router and the pass

FRIDAY_EVENING = datetime(2026, 12, 4, 19, 0, tzinfo=UTC)  # 20:00 in Madrid


def business_team(**extra: Any) -> RoutingConfig:
    return routing(sdr("ana", time_zone="Europe/Madrid"), sdr("ben", time_zone="Europe/Madrid"), sla_hours=10,
                   sla_business_hours={"days": ["Mon", "Tue", "Wed", "Thu", "Fri"], "from": "09:00", "to": "18:00"},
                   **extra)


def test_the_routed_message_and_the_account_carry_the_working_hours_due_moment() -> None:
    store, queue = MemoryStore(), MemoryQueue()
    ready(store)
    outcome = router(store, queue, business_team(), FRIDAY_EVENING).route_ready("acme.com", 1)
    assert (outcome.status, outcome.sdr) == ("routed", "ana")
    (message,) = queue.messages
    # 9 hours on Monday (08:00-17:00 UTC in December), 1 on Tuesday: Tuesday 10:00 in Madrid
    assert message.body["routedAt"] == "2026-12-04T19:00:00Z"
    assert message.body["slaDueAt"] == "2026-12-08T09:00:00Z"
    account = store.accounts["acme.com"]
    assert account.routing is not None and account.routing.sla_due_at == account.routing.due_at \
        == "2026-12-08T09:00:00Z"


def test_an_account_routed_on_friday_evening_is_not_breached_over_the_weekend() -> None:
    store, queue = MemoryStore(), MemoryQueue()
    ready(store)
    cfg = business_team()
    router(store, queue, cfg, FRIDAY_EVENING).route_ready("acme.com", 1)
    sunday = FRIDAY_EVENING + timedelta(days=2)  # the wall-clock SLA ran out on Saturday morning
    for now in (FRIDAY_EVENING + timedelta(hours=11), sunday, datetime(2026, 12, 8, 8, 59, tzinfo=UTC)):
        assert run_routing_pass(router(store, queue, cfg, now)).rerouted == 0
    result = run_routing_pass(router(store, queue, cfg, datetime(2026, 12, 8, 9, 0, tzinfo=UTC)))
    assert result.rerouted == 1
    first, second = queue.messages
    assert (first.group_id, second.group_id) == ("ana", "ben")
    # re-routed on Tuesday 10:00 Madrid: 8 hours that day, 2 on Wednesday
    assert second.body["slaDueAt"] == "2026-12-09T10:00:00Z"


def test_a_leads_reassignment_gives_the_new_owner_a_working_hours_sla_in_her_zone() -> None:
    from tests.unit.test_assign import ASSIGN, Desk, owned
    from tests.unit.test_assign import routing as assign_routing
    from tests.unit.test_assign import sdr as assign_sdr

    cfg = assign_routing(assign_sdr("ana"), assign_sdr("cy", time_zone="Asia/Tokyo"), sla_hours=10,
                         sla_business_hours={"from": "09:00", "to": "18:00"})
    desk = Desk(cfg, now=FRIDAY_EVENING)  # Saturday 04:00 in Tokyo
    owned(desk.store, "acme.com", "ana")
    status, answer = desk.post(ASSIGN, {"sdr": "cy", "by": "lea"})
    assert status == 200, answer
    # 9 hours on Monday in Tokyo (00:00-09:00 UTC), 1 on Tuesday: Tuesday 10:00 JST
    assert answer["slaDueAt"] == "2026-12-08T01:00:00Z"
    (message,) = desk.queue.messages
    assert message.group_id == "cy" and message.body["slaDueAt"] == "2026-12-08T01:00:00Z"
