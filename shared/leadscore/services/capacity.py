"""The SDR-ready threshold against the team, and bad fit among the SDR-ready: for calibration.

The team (`team_capacity`): what the SDRs of routing.yaml can take, in accounts a day: the
`daily_capacity` of every SDR the router can pick (active, and in a pool in `territory` mode,
any active SDR in `round_robin` mode; an SDR in no pool, such as a lead who is a manager, is
never routed to), at full strength (out-of-office days lower it). Within the SLA: in any
stretch of `sla_hours` (in working hours when `sla_business_hours` is set: calendar days are
then sla_hours / working hours a day x 7 / working days a week) the team follows up at most
capacity x that many days; more, and some routed account waits past its SLA.
An SDR with no `daily_capacity` has no cap: the team's capacity is then not known, and no
verdict is given.

The accounts (`record_highs`): each account's score over time, as its history keeps it,
reduced to the days its highest score so far rose (day, that score): an account first
becomes SDR-ready under a threshold on the first such day at or above it. So one list of a
few pairs per account answers for any threshold. (Each account is counted once, on its first
crossing; a re-qualification after a fall below `requalify_below` is not: a lower bound.)

`threshold_against_team`: for each candidate threshold (the current one, the suggested one,
and a few around them) the accounts a day that would become SDR-ready over the observed days
and the most in any SLA-long stretch, against the team's; and a verdict for the current
threshold: `raise` (more than the SDRs can follow up within the SLA: the lowest higher
candidate that fits), `lower` (room: a lower candidate still fits; the lowest such, never under
the threshold suggested for the target close rate, whose lower neighbours close under it), or
`keep`.

`bad_fit_share`: of the closed accounts at or above a threshold at their close, the share of
bad fit (account fit under half the most its account fit rules can give) and low engagement
(engagement under half the threshold): over 5% means the rules let weak accounts through
(re-tune).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from leadscore.rulesfiles.routing import RoutingConfig
    from leadscore.rulesfiles.scoring import FitRule, ScoringConfig

#: over this share of SDR-ready accounts of bad fit and low engagement, re-tune
BAD_FIT_SHARE = 0.05
#: candidates around the current and the suggested threshold (factors of them)
AROUND_CURRENT = (0.8, 0.9, 1.1, 1.2)
AROUND_SUGGESTED = (0.9, 1.1)


# ---------------------------------------------------------------------------- the team


def sla_days(routing: RoutingConfig) -> float:
    """The SLA in calendar days (working hours spread over the week when the SLA counts them)."""
    hours = float(routing.sla_hours)
    business = routing.sla_business_hours
    if business is None:
        return hours / 24
    start, end = (int(t[:2]) * 60 + int(t[3:]) for t in (business.from_, business.to))
    return hours / ((end - start) / 60) * 7 / len(business.days)


def team_capacity(routing: RoutingConfig) -> dict[str, Any]:
    """What the team can take: accounts a day (None: an SDR the router can pick has no cap) and
    within one SLA, with who counts."""
    pooled = {sdr for pool in routing.pools for sdr in pool.sdrs}
    routable = [s for s in routing.sdrs if s.active and (routing.mode == "round_robin" or s.id in pooled)]
    uncapped = [s.id for s in routable if s.daily_capacity is None]
    per_day = None if uncapped or not routable else sum(int(s.daily_capacity or 0) for s in routable)
    days = sla_days(routing)
    return {"sdrs": [s.id for s in routable], "uncapped": uncapped, "perDay": per_day,
            "slaHours": routing.sla_hours, "businessHours": routing.sla_business_hours is not None,
            "slaDays": round(days, 2), "withinSla": None if per_day is None else round(per_day * days, 1)}


# ---------------------------------------------------------------------------- the accounts


def _day(moment: datetime | date | str) -> date:
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment.replace("Z", "+00:00") if moment.endswith("Z") else moment)
    if isinstance(moment, datetime):
        return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC).date()
    return moment


def record_highs(points: Iterable[tuple[datetime | str, float | None]]) -> list[list[Any]]:
    """An account's scores over time [(when, score)] reduced to [[day ISO, score]] on each
    day its highest score so far rose (the highest that day): what a row carries for the
    threshold against the team."""
    highs: list[list[Any]] = []
    best = -math.inf
    for when, value in sorted(((_day(w), v) for w, v in points if v is not None), key=lambda p: p[0]):
        if value > best:
            best = value
            day = when.isoformat()
            if highs and highs[-1][0] == day:
                highs[-1][1] = value
            else:
                highs.append([day, value])
    return highs


def first_crossings(highs: Mapping[str, Sequence[Sequence[Any]]], threshold: float) -> Counter[date]:
    """Accounts per day that first reach `threshold` (each account once)."""
    days: Counter[date] = Counter()
    for steps in highs.values():
        for day, value in steps:
            if value >= threshold:
                days[_day(day)] += 1
                break
    return days


def candidates(current: float, suggested: float | None) -> list[float]:
    """The thresholds to weigh: the current, the suggested, and a few around them (whole points)."""
    found = {float(current)} | {float(round(current * f)) for f in AROUND_CURRENT}
    if suggested is not None:
        found |= {float(suggested)} | {float(round(suggested * f)) for f in AROUND_SUGGESTED}
    return sorted(t for t in found if t > 0)


def threshold_against_team(highs: Mapping[str, Sequence[Sequence[Any]]], routing: RoutingConfig,
                           current: float, suggested: float | None = None,
                           window: tuple[date, date] | None = None) -> dict[str, Any]:
    """For each candidate threshold: accounts a day newly SDR-ready over the observed days
    (`window`, default from the first day any score was kept to the last) and the most in
    one SLA-long stretch, against the team; the verdict on the current threshold."""
    team = team_capacity(routing)
    kept = [_day(day) for steps in highs.values() for day, _ in steps]
    if window is None and kept:
        window = (min(kept), max(kept))
    answer: dict[str, Any] = {"team": team, "days": 0, "candidates": [], "verdict": None, "reason": None}
    if window is None or window[1] < window[0]:
        answer["reason"] = "no account's score history to count from"
        return answer
    start, end = window
    days = (end - start).days + 1
    stretch = max(1, math.ceil(team["slaDays"]))
    rows: list[dict[str, Any]] = []
    for threshold in candidates(current, suggested):
        crossing = first_crossings(highs, threshold)
        inside = {day: n for day, n in crossing.items() if start <= day <= end}
        per_day = sum(inside.values()) / days
        busiest = max((sum(inside.get(first + timedelta(days=i), 0) for i in range(stretch))
                       for first in inside), default=0)
        fits = None if team["perDay"] is None else per_day <= team["perDay"] and busiest <= team["withinSla"]
        rows.append({"threshold": threshold, "current": threshold == current, "suggested": threshold == suggested,
                     "accounts": sum(inside.values()), "perDay": round(per_day, 2), "busiestSla": busiest,
                     "fits": fits})
    answer.update(days=days, window=[start.isoformat(), end.isoformat()], candidates=rows)
    if team["perDay"] is None:
        answer["reason"] = (f"SDRs without a daily_capacity ({', '.join(team['uncapped'])}): the team's capacity"
                            " is not known" if team["uncapped"] else "no SDR the router can pick")
        return answer
    now = next(row for row in rows if row["current"])
    fitting = [row for row in rows if row["fits"]]
    if not now["fits"]:
        higher = [row for row in fitting if row["threshold"] > current]
        answer["verdict"] = "raise"
        answer["to"] = higher[0]["threshold"] if higher else None
        answer["reason"] = (f"{now['perDay']:g} accounts a day (at most {now['busiestSla']} in {stretch} day(s)) "
                            f"against {team['perDay']} a day ({team['withinSla']:g} within the SLA): the SDRs "
                            f"cannot follow up within {team['slaHours']:g} hours"
                            + ("" if higher else "; no candidate fits: raise it further or add SDRs"))
    else:
        # never under the threshold suggested for the target close rate: lower ones close under it
        floor = suggested if suggested is not None else -math.inf
        lower = [row for row in fitting if floor <= row["threshold"] < current]
        if lower:
            answer["verdict"], answer["to"] = "lower", lower[0]["threshold"]
            answer["reason"] = (f"room: {now['perDay']:g} accounts a day against {team['perDay']}; at "
                                f"{lower[0]['threshold']:g}, {lower[0]['perDay']:g} a day still fits")
        else:
            answer["verdict"], answer["to"] = "keep", current
            answer["reason"] = (f"{now['perDay']:g} accounts a day against {team['perDay']}: " + (
                "a lower candidate would not fit" if fitting[0]["threshold"] >= current
                else f"room, but the threshold for the target close rate ({suggested:g}) is not lower"))
    return answer


# ---------------------------------------------------------------------------- bad fit


def _rule_most(rule: FitRule) -> float:
    values = [b.points for b in rule.buckets] if rule.buckets else [rule.points or 0.0]
    return max(0.0, *values)


def most_account_fit(scoring: ScoringConfig) -> float:
    """The most account fit the rules can give together (each rule's highest points; none
    for a rule of negative points)."""
    return sum(_rule_most(rule) for rule in scoring.account.fit)


def bad_fit_share(rows: Iterable[tuple[float, float, float]], threshold: float, most_fit: float
                  ) -> dict[str, Any]:
    """Of (score, fit, engagement) at close, those at or above `threshold`: how many were bad
    fit (fit under half of `most_fit`) and low engagement (under half the threshold); over
    BAD_FIT_SHARE of them, re-tune."""
    ready = [(fit, engagement) for score, fit, engagement in rows if score >= threshold]
    fit_level, engagement_level = most_fit / 2, threshold / 2
    bad = sum(1 for fit, engagement in ready if fit < fit_level and engagement < engagement_level)
    share = bad / len(ready) if ready else 0.0
    return {"threshold": threshold, "sdrReady": len(ready), "badFitLowEngagement": bad, "share": round(share, 4),
            "fitUnder": fit_level, "engagementUnder": engagement_level, "retune": share > BAD_FIT_SHARE}
