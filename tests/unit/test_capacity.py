"""The threshold against the team and bad fit among the SDR-ready (services/capacity.py): what the
SDRs of routing.yaml can take within the SLA, how many accounts a day each candidate threshold
makes SDR-ready from the accounts' score history, the verdict (raise, lower, keep), and the
share of SDR-ready accounts of bad fit and low engagement."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from leadscore.rulesfiles.loading import load_config, load_routing
from leadscore.rulesfiles.routing import RoutingConfig
from leadscore.services.capacity import (
    BAD_FIT_SHARE,
    bad_fit_share,
    candidates,
    first_crossings,
    most_account_fit,
    record_highs,
    sla_days,
    team_capacity,
    threshold_against_team,
)

DAY = date(2026, 11, 2)


def routing(tmp_path: Path, text: str) -> RoutingConfig:
    path = tmp_path / "routing.yaml"
    path.write_text("version: 1\n" + text)
    return load_routing(path)


TEAM = """
sdrs:
  - {id: maya, name: Maya, email: maya@example.com, daily_capacity: 3}
  - {id: lucas, name: Lucas, email: lucas@example.com, daily_capacity: 2}
  - {id: ana, name: Ana, email: ana@example.com, daily_capacity: 4, active: false}
  - {id: boss, name: Boss, email: boss@example.com, daily_capacity: 9}
pools:
  - {id: na, sdrs: [maya, lucas, ana]}
fallback_pool: na
leads: [boss]
"""


class TestTeam:
    def test_the_sdrs_the_router_can_pick_and_their_capacity_within_the_sla(self, tmp_path: Path) -> None:
        team = team_capacity(routing(tmp_path, TEAM))
        # ana is inactive, boss (a lead in no pool) is never routed to
        assert team["sdrs"] == ["maya", "lucas"] and team["perDay"] == 5
        assert (team["slaHours"], team["slaDays"], team["withinSla"]) == (48, 2, 10)

    def test_round_robin_takes_every_active_sdr(self, tmp_path: Path) -> None:
        team = team_capacity(routing(tmp_path, TEAM.replace("sdrs:\n", "mode: round_robin\nsdrs:\n", 1)))
        assert team["sdrs"] == ["maya", "lucas", "boss"] and team["perDay"] == 14

    def test_an_sdr_without_a_cap_leaves_the_capacity_unknown(self, tmp_path: Path) -> None:
        team = team_capacity(routing(tmp_path, TEAM.replace(", daily_capacity: 2", "")))
        assert team["perDay"] is None and team["uncapped"] == ["lucas"] and team["withinSla"] is None

    def test_an_sla_in_working_hours_is_spread_over_the_week(self, tmp_path: Path) -> None:
        config = routing(tmp_path, TEAM + 'sla_hours: 18\nsla_business_hours: {days: [Mon, Tue, Wed, Thu, Fri],'
                                          ' from: "09:00", to: "18:00"}\n')
        assert sla_days(config) == pytest.approx(2 * 7 / 5)  # two working days of nine hours
        assert team_capacity(config)["withinSla"] == 14.0

    def test_the_shipped_team(self) -> None:
        team = team_capacity(load_routing(Path(__file__).resolve().parents[2] / "config" / "routing.yaml"))
        assert team["perDay"] == 25 + 20 * 5 + 15 * 2 and team["slaDays"] == 2


class TestHighs:
    def test_only_the_days_a_score_first_rose_that_high_are_kept(self) -> None:
        at = datetime(2026, 11, 2, 9, tzinfo=UTC)
        points: list[tuple[Any, float | None]] = [
            (at, 20), (at + timedelta(hours=5), 45), (at + timedelta(days=1), 30),  # decayed: not a high
            ("2026-11-05T10:00:00Z", 90), ("2026-11-05T11:00:00Z", 110), (at + timedelta(days=9), 100),
            (at + timedelta(days=10), None)]
        assert record_highs(points) == [["2026-11-02", 45], ["2026-11-05", 110]]
        assert record_highs([]) == []

    def test_an_account_first_crosses_a_threshold_once(self) -> None:
        highs = {"a": [["2026-11-02", 45], ["2026-11-05", 110]], "b": [["2026-11-03", 100]], "c": [["2026-11-03", 60]]}
        assert first_crossings(highs, 100) == {date(2026, 11, 5): 1, date(2026, 11, 3): 1}
        assert first_crossings(highs, 40) == {date(2026, 11, 2): 1, date(2026, 11, 3): 2}
        assert first_crossings(highs, 200) == {}


def crossing(per_day: list[int], score: float = 100) -> dict[str, list[list[Any]]]:
    """Accounts reaching `score` (and no more): per_day[i] of them on day i."""
    highs: dict[str, list[list[Any]]] = {}
    for i, n in enumerate(per_day):
        for j in range(n):
            highs[f"d{i}-{j}.io"] = [[(DAY + timedelta(days=i)).isoformat(), score]]
    return highs


class TestAgainstTheTeam:
    def test_the_candidates_are_the_current_the_suggested_and_a_few_around(self) -> None:
        assert candidates(100, 60) == [54, 60, 66, 80, 90, 100, 110, 120]
        assert candidates(100, None) == [80, 90, 100, 110, 120]

    def test_more_than_the_team_can_follow_up_within_the_sla_raise(self, tmp_path: Path) -> None:
        # 5 a day can be taken; 10 days of 7 accounts at 100, 2 of them a day also at 110
        highs = crossing([5] * 10, 100) | {k.replace("d", "h"): [[v[0][0], 110]] for k, v in crossing([2] * 10).items()}
        answer = threshold_against_team(highs, routing(tmp_path, TEAM), current=100)
        assert answer["days"] == 10 and answer["window"] == ["2026-11-02", "2026-11-11"]
        rows = {row["threshold"]: row for row in answer["candidates"]}
        now = rows[100]
        assert (now["accounts"], now["perDay"], now["busiestSla"], now["fits"]) == (70, 7, 14, False)
        assert (rows[110]["perDay"], rows[110]["fits"]) == (2, True)
        assert answer["verdict"] == "raise" and answer["to"] == 110
        assert "cannot follow up within 48 hours" in answer["reason"]

    def test_a_burst_past_what_the_sla_allows_raise_even_when_the_average_fits(self, tmp_path: Path) -> None:
        # 20 accounts in one day then none: 2 a day over 10 days, but 20 in one 48-hour stretch against 10
        answer = threshold_against_team(crossing([20] + [0] * 9), routing(tmp_path, TEAM), current=100,
                                        window=(DAY, DAY + timedelta(days=9)))
        now = next(row for row in answer["candidates"] if row["current"])
        assert (now["perDay"], now["busiestSla"], now["fits"]) == (2, 20, False)
        assert answer["verdict"] == "raise" and answer["to"] == 110  # where none of them would be SDR-ready
        # accounts scoring past every candidate: no candidate fits
        answer = threshold_against_team(crossing([20] + [0] * 9, 200), routing(tmp_path, TEAM), current=100)
        assert answer["verdict"] == "raise" and answer["to"] is None and "add SDRs" in answer["reason"]

    def test_room_for_more_lower(self, tmp_path: Path) -> None:
        highs = crossing([1] * 10, 100) | {k.replace("d", "l"): [[v[0][0], 85]] for k, v in crossing([2] * 10).items()}
        answer = threshold_against_team(highs, routing(tmp_path, TEAM), current=100)
        rows = {row["threshold"]: row for row in answer["candidates"]}
        assert rows[100]["perDay"] == 1 and rows[80]["perDay"] == 3 and rows[80]["fits"]
        assert answer["verdict"] == "lower" and answer["to"] == 80 and answer["reason"].startswith("room")

    def test_keep_when_a_lower_threshold_would_not_fit(self, tmp_path: Path) -> None:
        highs = crossing([4] * 10, 100) | {k.replace("d", "l"): [[v[0][0], 95]] for k, v in crossing([2] * 10).items()}
        answer = threshold_against_team(highs, routing(tmp_path, TEAM), current=100, suggested=95)
        rows = {row["threshold"]: row for row in answer["candidates"]}
        assert rows[95]["suggested"] and rows[95]["perDay"] == 6 and rows[95]["fits"] is False
        assert answer["verdict"] == "keep" and answer["to"] == 100

    def test_crossings_before_the_window_are_not_counted(self, tmp_path: Path) -> None:
        highs = crossing([3, 3, 3])
        answer = threshold_against_team(highs, routing(tmp_path, TEAM), current=100,
                                        window=(DAY + timedelta(days=1), DAY + timedelta(days=2)))
        assert next(row for row in answer["candidates"] if row["current"])["accounts"] == 6

    def test_no_verdict_without_a_known_capacity_or_without_history(self, tmp_path: Path) -> None:
        answer = threshold_against_team(crossing([3]), routing(tmp_path, TEAM.replace(", daily_capacity: 2", "")),
                                        current=100)
        assert answer["verdict"] is None and "lucas" in answer["reason"]
        assert answer["candidates"]  # the counts are still shown
        empty = threshold_against_team({}, routing(tmp_path, TEAM), current=100)
        assert empty["verdict"] is None and empty["reason"] == "no account's score history to count from"


class TestBadFit:
    def test_the_most_account_fit_the_shipped_rules_give(self) -> None:
        assert most_account_fit(load_config().scoring) == 15 + 10 + 5

    def test_the_share_of_sdr_ready_accounts_of_bad_fit_and_low_engagement(self) -> None:
        # (score, fit, engagement) at close; threshold 40, most fit 30: bad fit under 15, low engagement under 20
        rows = [(45, 10, 19), (45, 10, 35), (45, 25, 19), (39, 0, 10)] + [(60, 30, 30)] * 16
        share = bad_fit_share(rows, 40, 30)
        assert (share["sdrReady"], share["badFitLowEngagement"], share["share"]) == (19, 1, round(1 / 19, 4))
        assert BAD_FIT_SHARE == 0.05 and share["retune"] is True  # 5.3%: over 5%
        assert bad_fit_share(rows[:3] + [(60, 30, 30)] * 17, 40, 30)["retune"] is False  # 1 in 20: 5%, not over
        assert bad_fit_share([], 40, 30)["retune"] is False


class TestInTheReport:
    def test_the_report_carries_bad_fit_the_sources_and_the_team(self, tmp_path: Path) -> None:
        from leadscore.services.calibrate import CalibrationRow, calibration_report

        config = load_config()
        at = datetime(2026, 11, 20, tzinfo=UTC)
        # ten SDR-ready at 100, one of them of bad fit (10 < 15) and low engagement (45 < 50): 10%
        rows = [CalibrationRow(f"a{i}.io", 120, 25, 95, frozenset(), i < 3, at) for i in range(9)]
        rows.append(CalibrationRow("weak.io", 100, 10, 45, frozenset(), False, at))
        rows += [CalibrationRow(f"b{i}.io", 40, 10, 30, frozenset(), False, at) for i in range(10)]
        sources = {"accounts": {"file": 0, "crm": 15, "feedback": 5}}
        report = calibration_report(rows, config, sources=sources, routing=routing(tmp_path, TEAM),
                                    highs=crossing([7] * 3))
        assert report["badFit"]["current"] == {
            "threshold": 100, "sdrReady": 10, "badFitLowEngagement": 1, "share": 0.1, "fitUnder": 15.0,
            "engagementUnder": 50.0, "retune": True}
        assert any(w.startswith("10.0% of the accounts SDR-ready at the current threshold (100) were bad fit")
                   for w in report["warnings"])
        assert report["outcomes"] == sources
        assert report["team"]["verdict"] == "raise" and report["team"]["team"]["perDay"] == 5
        # without them: no team, no sources; bad fit always
        bare = calibration_report(rows, config)
        assert "team" not in bare and "outcomes" not in bare and bare["badFit"]["current"]["sdrReady"] == 10


class TestHighsFromTheTable:
    def test_history_items_and_the_account_item_give_each_account_its_record_highs(self) -> None:
        from leadscore.adapters import items
        from leadscore.adapters.score_highs import account_highs
        from leadscore.domain.records import Account

        now = datetime(2026, 11, 20, tzinfo=UTC)

        def written(score: float, at: str, version: int) -> Account:
            return Account("acme.com", version=version, score=score, updated_at=at)

        steps = [(written(40, "2026-11-02T10:00:00Z", 1), []), (written(95, "2026-11-03T10:00:00Z", 2), []),
                 (written(60, "2026-11-04T10:00:00Z", 3), [])]
        found = items.history_items("acme.com", steps, 400, now)
        found += items.history_items("acme.com", [(written(105, "2026-11-06T09:00:00Z", 4), [])], 400, now)
        found.append(items.account_item(written(80, "2026-11-09T09:00:00Z", 5)))
        found.append(items.account_item(Account("globex.com", version=1, score=30, updated_at="2026-11-05T09:00:00Z")))
        found.append(items.key_item(items.account_pk("bad.io"), items.HISTORY_PREFIX + "2026"))  # no steps: nothing
        assert account_highs(reversed(found)) == {
            "acme.com": [["2026-11-02", 40], ["2026-11-03", 95], ["2026-11-06", 105]],
            "globex.com": [["2026-11-05", 30]]}


class TestNotUnderTheTargetsThreshold:
    def test_room_lowers_no_further_than_the_threshold_for_the_target_close_rate(self, tmp_path: Path) -> None:
        # everything fits: one account a day at 100, one at 85, one at 70
        highs = crossing([1] * 10, 100) | {k.replace("d", "m"): [[v[0][0], 85]] for k, v in crossing([1] * 10).items()}
        highs |= {k.replace("d", "l"): [[v[0][0], 70]] for k, v in crossing([1] * 10).items()}
        team = routing(tmp_path, TEAM)
        assert threshold_against_team(highs, team, current=100)["to"] == 80  # the lowest candidate
        answer = threshold_against_team(highs, team, current=100, suggested=90)
        assert answer["verdict"] == "lower" and answer["to"] == 90  # not 81 or 80: they close under the target
        answer = threshold_against_team(highs, team, current=100, suggested=110)
        assert answer["verdict"] == "keep" and "the threshold for the target close rate (110) is not lower" in (
            answer["reason"])
