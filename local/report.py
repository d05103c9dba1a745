"""The demo's HTML report: each account's score over time against its threshold, with the
moments that changed it (decay, routing, SLA, feedback) marked, and the routed messages.

Self-contained: inline SVG and CSS, no script, no fonts or images from the network, so it
opens anywhere (a browser offline, a CI artifact). Built from what the demo read back: the
state changes the stack put on its bus (`Account Score Changed` carries every score move,
decay's included) and the routed queue's messages.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

WIDTH, HEIGHT, MARGIN = 760, 220, 40
#: bus events marked on the chart, and their colour
MOMENTS = {
    "Account SDR Ready": "#d97706",
    "Account Routed": "#059669",
    "Routing SLA Breached": "#dc2626",
    "Account Reassigned": "#2563eb",
    "Account Recycled": "#7c3aed",
    "Account Disqualified": "#6b7280",
    "SDR Availability Changed": "#be185d",
}
#: sales feedback marked on the chart (from the read API's `feedback`: `accepted` has no bus event)
FEEDBACK_COLOUR = "#0891b2"


@dataclass(frozen=True)
class Point:
    at: datetime
    score: float


def _moment(text: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None


def series(bus_events: Sequence[Mapping[str, Any]], account_id: str) -> list[Point]:
    """The account's score after each change, in time order."""
    points = []
    for event in bus_events:
        detail = event.get("detail") or {}
        if detail.get("accountId") != account_id or detail.get("score") is None:
            continue
        moment = _moment(detail.get("time"))
        if moment is not None:
            points.append(Point(moment, float(detail["score"])))
    return sorted(points, key=lambda p: p.at)


def moments(bus_events: Sequence[Mapping[str, Any]], account_id: str,
            feedback: Sequence[Mapping[str, Any]] = ()) -> list[tuple[datetime, str]]:
    """The account's routing moments from the bus (SDR-ready, routed, SLA breached, recycled,
    disqualified, the SDR in a routed one's title) and its sales feedback ("Feedback: accepted
    by lucas") from the read API."""
    found = []
    paused: set[str] = set()  # SDRs a route of this account passed over as paused
    for event in bus_events:
        detail = event.get("detail") or {}
        moment = _moment(detail.get("time"))
        if detail.get("accountId") == account_id and event.get("detail-type") in MOMENTS and moment:
            kind = str(event["detail-type"])
            sdr = (detail.get("sdr") or {}).get("id")
            skipped = [str(s.get("sdr")) for s in (detail.get("decision") or {}).get("skipped") or []
                       if s.get("reason") == "paused"]
            paused.update(skipped)
            if kind == "Account Routed" and sdr:
                kind = f"{kind} to {sdr}" + (f" (passed over {', '.join(skipped)}: paused)" if skipped else "")
            elif kind == "Routing SLA Breached" and (detail.get("previousSdr") or sdr):
                kind = f"{kind} by {detail.get('previousSdr') or sdr}"  # (no previousSdr: nobody else took it)
            elif kind == "Account Reassigned":  # a lead's hand: to whom, by whom
                kind = f"{kind} to {sdr} by {detail.get('assignedBy')}"
            found.append((moment, kind))
    for event in bus_events:  # a lead's pause or return of an SDR this account's routing passed over
        detail = event.get("detail") or {}
        sdr = (detail.get("sdr") or {}).get("id")
        moment = _moment(detail.get("changedAt") or event.get("time"))
        if event.get("detail-type") == "SDR Availability Changed" and sdr in paused and moment:
            found.append((moment, f"SDR Availability Changed: {sdr} "
                                  f"{'available again' if detail.get('available') else 'paused by a lead'}"))
    for item in feedback:
        moment = _moment(item.get("at"))
        if moment is not None:
            found.append((moment, f"Feedback: {item.get('outcome')} by {item.get('sdr')}"))
    order = ["Account SDR Ready", "Routing SLA Breached", "Account Routed", "Feedback: "]
    return sorted(found, key=lambda mark: (mark[0], next((i for i, name in enumerate(order)
                                                          if mark[1].startswith(name)), len(order))))


def _short(kind: str) -> str:
    """A mark's label on the chart (its list item keeps the whole name)."""
    return kind.removeprefix("Account ").removeprefix("Feedback: ").removeprefix("SDR Availability Changed: ")


def _colour(kind: str) -> str:
    if kind.startswith("Feedback: "):
        return FEEDBACK_COLOUR
    return next((colour for name, colour in MOMENTS.items() if kind.startswith(name)), "#444")


def chart(points: Sequence[Point], marks: Sequence[tuple[datetime, str]], threshold: float,
          start: datetime, end: datetime) -> str:
    """An inline SVG: the score as a step line, the threshold dashed, each moment a labelled rule."""
    span = max((end - start).total_seconds(), 1.0)
    top = max([threshold * 1.2, *(p.score * 1.1 for p in points)])

    def x(moment: datetime) -> float:
        return MARGIN + (WIDTH - 2 * MARGIN) * (moment - start).total_seconds() / span

    def y(score: float) -> float:
        return HEIGHT - MARGIN - (HEIGHT - 2 * MARGIN) * max(score, 0.0) / top

    path, previous = [], 0.0
    path.append(f"M{x(start):.1f},{y(0):.1f}")
    for point in points:
        path.append(f"L{x(point.at):.1f},{y(previous):.1f} L{x(point.at):.1f},{y(point.score):.1f}")
        previous = point.score
    path.append(f"L{x(end):.1f},{y(previous):.1f}")
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" role="img">',
        f'<line class="axis" x1="{MARGIN}" y1="{y(0):.1f}" x2="{WIDTH - MARGIN}" y2="{y(0):.1f}"/>',
        f'<line class="threshold" x1="{MARGIN}" y1="{y(threshold):.1f}" x2="{WIDTH - MARGIN}" '
        f'y2="{y(threshold):.1f}"/>',
        f'<text x="{WIDTH - MARGIN}" y="{y(threshold) - 4:.1f}" text-anchor="end">threshold {threshold:g}</text>',
        f'<path class="score" d="{" ".join(path)}"/>',
        f'<text x="{MARGIN}" y="{HEIGHT - 8}">{start:%Y-%m-%d}</text>',
        f'<text x="{WIDTH - MARGIN}" y="{HEIGHT - 8}" text-anchor="end">{end:%Y-%m-%d}</text>',
    ]
    for index, (moment, kind) in enumerate(marks):
        colour = _colour(kind)
        parts.append(f'<line x1="{x(moment):.1f}" y1="{MARGIN - 10}" x2="{x(moment):.1f}" y2="{y(0):.1f}" '
                     f'stroke="{colour}" stroke-width="1.5"><title>{html.escape(kind)} {moment:%Y-%m-%d %H:%M}'
                     f'</title></line>')
        # a label right of the middle reads leftwards, so it stays inside the chart
        left = x(moment) > WIDTH / 2
        anchor = ' text-anchor="end"' if left else ""
        parts.append(f'<text x="{x(moment) + (-3 if left else 3):.1f}" y="{MARGIN - 12 + 11 * (index % 5)}" '
                     f'fill="{colour}"{anchor}>'
                     f'{html.escape(_short(kind))}</text>')
    parts.append("</svg>")
    return "\n".join(parts)


STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 2em auto; max-width: 820px; color: #111; }
h1 { font-size: 1.4em; } h2 { font-size: 1.1em; margin-top: 2em; }
svg text { font-size: 11px; fill: #444; } .axis { stroke: #999; }
.threshold { stroke: #d97706; stroke-dasharray: 5 4; } .score { fill: none; stroke: #2563eb; stroke-width: 2; }
table { border-collapse: collapse; } td, th { padding: 2px 8px; text-align: left; border-bottom: 1px solid #eee; }
pre { background: #f6f6f6; padding: 1em; overflow-x: auto; font-size: 12px; }
.warnings { background: #fef3c7; border: 1px solid #f59e0b; padding: .5em 1em; border-radius: 4px; }
.note, figcaption { color: #475569; font-size: .9em; } td.n { text-align: right; }
figure { margin: 1em 0; } figure svg { max-width: 100%; height: auto; }
.up { color: #047857; } .down { color: #b91c1c; }
"""


def evidence(result: Any) -> list[str]:
    """The demo's calibration of its journeys' outcomes and its preview of one rules change, as
    `make calibrate HTML=` and `make preview HTML=` draw them (matplotlib's SVG, inline)."""
    calibration, preview = getattr(result, "calibration", None), getattr(result, "preview", None)
    if calibration is None or preview is None:
        return []
    from local.demo import PREVIEW_CHANGE
    from local.evidence_html import calibration_section, number, preview_section

    rule, points = PREVIEW_CHANGE
    now = result.current_points.get(rule)
    return ["<h2>Calibration of the journeys' outcomes</h2>",
            "<p>What <code>make calibrate</code> says of these accounts, from the outcomes the table holds "
            "(the CRM's <code>Opportunity Won</code> / <code>Opportunity Lost</code> events, sales feedback), "
            "each account valued as it stood at its close. A handful of accounts: read it for its shape, "
            "not its numbers.</p>",
            calibration_section(calibration, result.current_points, prefix="demo-calibration"),
            f"<h2>Preview: {html.escape(rule)} from {number(now)} to {number(points)} points</h2>",
            "<p>What <code>make preview</code> says this change would do, replaying the same events under "
            "the changed rules, writing nothing.</p>",
            preview_section(preview, prefix="demo-preview")]


def render(result: Any) -> str:
    """The report of a `local.demo.DemoResult`, as one HTML document."""
    start, end = result.start, result.end
    body = [f"<h1>leadscore demo: {len(result.accounts)} accounts from {start:%Y-%m-%d} to {end:%Y-%m-%d}</h1>",
            "<p>Each chart is the account's score (fit + persona-weighted engagement + committee bonus, decay "
            "applied) after every change, against its SDR-ready threshold. Vertical rules mark SDR-ready, "
            "routing, SLA and feedback moments, and a team lead's pause (and return) of an SDR its routing "
            "passed over (bus events; sales feedback from the read API, since "
            "<code>accepted</code> has no bus event).</p>"]
    for account in sorted(result.accounts.values(), key=lambda a: -float(a.get("score") or 0)):
        account_id = str(account["accountId"])
        sdr = account.get("sdr") or {}
        body.append(f"<h2>{html.escape(account_id)} {html.escape(str(account.get('name') or ''))}: "
                    f"{html.escape(str(account.get('state')))}"
                    f"{' to ' + html.escape(str(sdr.get('name'))) if sdr.get('name') else ''}, score "
                    f"{account.get('score')}</h2>")
        decision = (account.get("routing") or {}).get("decision") or {}
        if decision.get("text"):
            body.append(f"<p class=\"decision\">Routing decision: {html.escape(str(decision['text']))}</p>")
        marks = moments(result.bus_events, account_id, account.get("feedback") or [])
        body.append(chart(series(result.bus_events, account_id), marks,
                          float(account.get("threshold") or 100), start, end))
        if marks:
            items = "".join(f"<li>{moment:%Y-%m-%d %H:%M} {html.escape(kind)}</li>" for moment, kind in marks)
            body.append(f"<ul class=\"moments\">{items}</ul>")
        rows = "".join(f"<tr><td>{html.escape(str(line.get('rule')))}</td><td>{line.get('points')}</td>"
                       f"<td>{html.escape(str(line.get('contactId') or ''))}</td></tr>"
                       for line in account.get("breakdown", []))
        body.append(f"<table><tr><th>rule</th><th>points</th><th>contact</th></tr>{rows}</table>")
    body.extend(evidence(result))
    from local.webhook import render as slack_text

    slack = getattr(result, "slack", [])
    body.append(f"<h2>Slack messages ({len(slack)}, as the local webhook receiver got them)</h2>")
    if not slack:
        body.append("<p>(none)</p>")
    for message in slack:
        body.append(f"<pre class=\"slack\">{html.escape(slack_text(message))}</pre>")
    body.append("<h2>Routed messages (the SQS FIFO queue)</h2>")
    if not result.routed:
        body.append("<p>(none)</p>")
    for message in result.routed:
        body.append(f"<pre>{html.escape(json.dumps(message, indent=2))}</pre>")
    return ("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>leadscore demo</title>"
            f"<style>{STYLE}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")
