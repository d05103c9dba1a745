"""The terminal lines of a calibration report's later sections (local/calibrate.py `render`):
where the outcomes came from, bad fit among the SDR-ready, the threshold against the team.
Each section is shown when the report has it."""

from __future__ import annotations

from typing import Any

SOURCE_NAMES = {"file": "the file", "crm": "CRM events and traits", "feedback": "sales feedback"}


def render_sections(report: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    sources = report.get("outcomes")
    if sources:
        kept = sources["accounts"]
        notes = []
        if sources.get("setAside"):
            notes.append(f"{sources['setAside']} set aside for a higher source's or a later close")
        if sources.get("closeDateFallback"):
            notes.append(f"{sources['closeDateFallback']} CRM close date(s) unreadable: the event's time used")
        if sources.get("noAccount"):
            notes.append(f"{sources['noAccount']} CRM outcome(s) naming no account")
        lines += ["", "outcomes: " + ", ".join(f"{kept[name]} accounts from {SOURCE_NAMES[name]}" for name in kept)
                  + (f" ({'; '.join(notes)})" if notes else "")]
    bad_fit = report.get("badFit")
    if bad_fit:
        first = bad_fit["current"]
        lines += ["", f"bad fit (account fit under {first['fitUnder']:g}) and low engagement (under half the"
                  " threshold) among the SDR-ready; over 5% means re-tune:"]
        for name in ("current", "suggested"):
            share = bad_fit.get(name)
            if share is not None:
                lines.append(f"  {name} {share['threshold']}: {share['badFitLowEngagement']} of {share['sdrReady']}"
                             f" ({share['share']:.1%})" + ("  re-tune" if share["retune"] else ""))
    team = report.get("team")
    if team:
        capacity = team["team"]
        stretch = max(1, -(-capacity["slaDays"] // 1))
        lines += ["", "the threshold against the team: " + (
            f"{capacity['perDay']} accounts a day ({capacity['withinSla']:g} within the {capacity['slaHours']:g}-hour"
            f" SLA), {len(capacity['sdrs'])} SDRs" if capacity["perDay"] is not None
            else f"{len(capacity['sdrs'])} SDRs, capacity not known")]
        if team["candidates"]:
            lines.append(f"  {'threshold':>9} {'new a day':>10} {'busiest ' + format(stretch, 'g') + ' day(s)':>17}"
                         f"  fits  (over {team['days']} days)")
            for row in team["candidates"]:
                mark = " (current)" if row["current"] else " (suggested)" if row["suggested"] else ""
                fits = "-" if row["fits"] is None else "yes" if row["fits"] else "no"
                lines.append(f"  {row['threshold']:>9} {row['perDay']:>10.2f} {row['busiestSla']:>17} {fits:>5}{mark}")
        verdict = team["verdict"]
        if verdict is None:
            lines.append(f"  no verdict: {team['reason']}")
        else:
            to = f" to {team['to']}" if verdict in ("raise", "lower") and team.get("to") else ""
            lines.append(f"  {verdict}{to}: {team['reason']}")
    return lines
