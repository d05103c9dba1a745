"""The calibration and preview reports as self-contained HTML pages with charts.

Pure: a report dict (services/calibrate.py `calibrate()`, services/preview.py
`Preview.report()`) in, an HTML string out. The charts are drawn by matplotlib (a dev
dependency, never the layer's) as SVG and inlined: no script, no stylesheet, font or image
from the network, so a page opens anywhere (a browser offline, a CI artifact). Text stays
text in the SVG (svg.fonttype none): a rule or account id on a chart can be searched for.

A section this module does not know (a later report may add one), or a known one of an
unexpected shape, is rendered generically as tables rather than breaking the page.

`calibration_section` / `preview_section` are the page bodies without the page, for a page
that embeds both (the demo's report); their `prefix` keeps the SVG ids of each apart.
"""

from __future__ import annotations

import html
import io
import math
import re
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.figure import Figure

#: matplotlib settings for every chart: text kept as <text>, no mathtext ($ in an account id
#: is a dollar), deterministic ids (the same report gives the same page).
#: (typed Any: matplotlib's stubs want each key as a literal)
RC: Any = {"svg.fonttype": "none", "text.parse_math": False, "font.family": "sans-serif", "font.size": 9,
           "axes.spines.top": False, "axes.spines.right": False, "svg.hashsalt": "leadscore"}
CURRENT, CANDIDATE, SUGGESTED = "#64748b", "#2563eb", "#d97706"
UP, DOWN = "#059669", "#dc2626"
STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;margin:2rem auto;
max-width:1000px;padding:0 1rem;color:#0f172a;line-height:1.45}
h1{font-size:1.5rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #e2e8f0}
h3{font-size:1rem}
table{border-collapse:collapse;margin:.5rem 0;font-size:.9rem}
th,td{border:1px solid #e2e8f0;padding:.25rem .5rem;text-align:left;vertical-align:top}
td.n{text-align:right;font-variant-numeric:tabular-nums}th{background:#f8fafc}
.warnings{background:#fef3c7;border:1px solid #f59e0b;padding:.5rem 1rem;border-radius:4px}
.note{color:#475569;font-size:.9rem}
figure{margin:1rem 0}figure svg{max-width:100%;height:auto}figcaption{color:#475569;font-size:.9rem}
.up{color:#047857}.down{color:#b91c1c}
"""


# ----------------------------------------------------------------------------- formatting


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def number(value: Any) -> str:
    """A number as a person reads it: 45 not 45.0, 12.35 not 12.3456; '-' for none."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if not isinstance(value, int | float):
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return str(int(value)) if float(value).is_integer() else f"{value:.2f}".rstrip("0")


def percent(value: Any) -> str:
    return "-" if value is None else f"{float(value):.1%}"


def signed(value: Any) -> str:
    return "-" if value is None else ("+" if value > 0 else "") + number(value)


def _title(key: str) -> str:
    """`sdrLoad` -> `Sdr load`: a heading for a section known by its key only."""
    words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", key).replace("_", " ").strip()
    return words[:1].upper() + words[1:].lower()


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]], numeric: Sequence[bool] | None = None) -> str:
    numeric = numeric or [False] * len(headers)
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f'<td class="n">{_e(c)}</td>' if n else f"<td>{_e(c)}</td>"
                                    for c, n in zip(row, numeric, strict=False)) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def generic(value: Any, depth: int = 0) -> str:
    """Any JSON value as HTML: a mapping as a key/value table, a list of mappings as a table
    with a column per key, other lists as a list, a scalar as text."""
    if depth > 6:
        return _e(value)
    if isinstance(value, Mapping):
        if not value:
            return "-"
        rows = "".join(f"<tr><th>{_e(k)}</th><td>{generic(v, depth + 1)}</td></tr>" for k, v in value.items())
        return f"<table><tbody>{rows}</tbody></table>"
    if isinstance(value, list | tuple):
        if not value:
            return "-"
        if all(isinstance(item, Mapping) for item in value):
            keys = list(dict.fromkeys(k for item in value for k in item))
            head = "".join(f"<th>{_e(k)}</th>" for k in keys)
            body = "".join("<tr>" + "".join(f"<td>{generic(item.get(k), depth + 1)}</td>" for k in keys) + "</tr>"
                           for item in value)
            return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
        if all(not isinstance(item, Mapping | list | tuple) for item in value):
            return _e(", ".join(number(item) for item in value))
        return "<ul>" + "".join(f"<li>{generic(item, depth + 1)}</li>" for item in value) + "</ul>"
    return _e(number(value))


# ----------------------------------------------------------------------------- charts


def svg(figure: Figure, prefix: str, tips: Mapping[str, str] | None = None) -> str:
    """`figure` as inline SVG: no XML prolog or DTD (a network address), every id prefixed
    with `prefix` (several charts share one page), and a hover title on each artist whose gid
    `tips` names."""
    out = io.StringIO()
    figure.savefig(out, format="svg", bbox_inches="tight",
                   metadata={"Creator": None, "Date": None, "Format": None, "Type": None})
    text = out.getvalue()
    text = text[text.index("<svg"):]
    for gid, tip in (tips or {}).items():
        text = text.replace(f'<g id="{gid}">', f'<g id="{gid}"><title>{_e(tip)}</title>', 1)
    text = re.sub(r'\bid="([^"]+)"', lambda m: f'id="{prefix}-{m.group(1)}"', text)
    text = re.sub(r'url\(#([^)]+)\)', lambda m: f"url(#{prefix}-{m.group(1)})", text)
    return re.sub(r'href="#([^"]+)"', lambda m: f'href="#{prefix}-{m.group(1)}"', text)


def _figure(rows: int, width: float = 8.0) -> Figure:
    from matplotlib.figure import Figure  # only when a page is drawn: the CLIs' other outputs need no matplotlib

    return Figure(figsize=(width, max(1.8, 0.6 + 0.28 * rows)))


def _chart(prefix: str, caption: str, draw: Callable[[], tuple[Figure, dict[str, str]]]) -> str:
    import matplotlib  # cold start of the CLI: only a page with charts needs it

    with matplotlib.rc_context(RC):
        figure, tips = draw()
        drawn = svg(figure, prefix, tips)
    return f'<figure>{drawn}<figcaption>{_e(caption)}</figcaption></figure>'


def _hbars(prefix: str, labels: Sequence[str], series: Sequence[tuple[str, Sequence[float | None], str]],
           xlabel: str, caption: str, tip: Callable[[int, int], str],
           colour: Callable[[int, int], str] | None = None, counts: bool = False) -> str:
    """Horizontal bars, one row per label (first at the top), one bar per series in a row;
    `colour(series, row)` overrides a series' colour bar by bar; `counts`: whole-number ticks."""
    def draw() -> tuple[Figure, dict[str, str]]:
        figure = _figure(round(len(labels) * (1 + 0.6 * (len(series) - 1))))
        axes = figure.add_subplot()
        height = 0.8 / len(series)
        tips: dict[str, str] = {}
        for s, (name, values, fill) in enumerate(series):
            for i, value in enumerate(values):
                if value is None:
                    continue
                y = i - 0.4 + height * (s + 0.5)
                first = not any(key.startswith(f"bar-{s}-") for key in tips)
                (bar,) = axes.barh([y], [value], height=height, color=colour(s, i) if colour else fill,
                                   label=name if first else None)
                bar.set_gid(f"bar-{s}-{i}")
                tips[f"bar-{s}-{i}"] = tip(s, i)
        axes.set_yticks(range(len(labels)), labels=list(labels))
        axes.set_ylim(len(labels) - 0.5, -0.5)
        axes.axvline(0, color="#0f172a", linewidth=0.8)
        axes.set_xlabel(xlabel)
        if counts:
            from matplotlib.ticker import MaxNLocator  # with matplotlib, already loaded

            axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        if len(series) > 1:
            axes.legend(loc="best", frameon=False)
        return figure, tips

    return _chart(prefix, caption, draw)


# ----------------------------------------------------------------------------- calibration


def _warnings(report: Mapping[str, Any]) -> str:
    warnings = report.get("warnings") or []
    if not warnings:
        return '<p class="note">No warnings.</p>'
    return '<div class="warnings"><ul>' + "".join(f"<li>{_e(w)}</li>" for w in warnings) + "</ul></div>"


def _rules(report: Mapping[str, Any], prefix: str, current: Mapping[str, float | None]) -> str:
    rules = report["rules"]
    parts = []
    measured = [row for row in rules if row.get("liftPoints") is not None]
    if measured:
        def draw() -> tuple[Figure, dict[str, str]]:
            figure = _figure(len(measured))
            axes = figure.add_subplot()
            tips = {}
            for i, row in enumerate(measured):
                low, high = row["liftInterval"]
                enough = str(row.get("support", "")).startswith("enough")
                drawn = axes.errorbar(
                    [row["liftPoints"]], [i], xerr=[[row["liftPoints"] - low], [high - row["liftPoints"]]],
                    fmt="o", color=CANDIDATE if enough else CURRENT, capsize=3)
                drawn[0].set_gid(f"lift-{i}")
                tips[f"lift-{i}"] = (f"{row['rule']}: {signed(row['liftPoints'])} pp "
                                     f"[{signed(low)}, {signed(high)}], {row['support']}")
            axes.set_yticks(range(len(measured)), labels=[row["rule"] for row in measured])
            axes.set_ylim(len(measured) - 0.5, -0.5)
            axes.axvline(0, color="#0f172a", linewidth=0.8)
            axes.set_xlabel("lift on the close rate (percentage points), 95% interval")
            return figure, tips

        parts.append(_chart(f"{prefix}-lift", "Each rule's lift: the close rate with it minus without it, with its "
                            "95% interval (blue: enough support to read; grey: too little to tell).", draw))
    pointed = [row for row in rules if row.get("suggestedPoints") is not None or current.get(row["rule"]) is not None]
    if pointed and (current or any(row.get("suggestedPoints") is not None for row in rules)):
        series: list[tuple[str, Sequence[float | None], str]] = []
        if current:
            series.append(("current points", [current.get(row["rule"]) for row in pointed], CURRENT))
        series.append(("suggested points", [row.get("suggestedPoints") for row in pointed], SUGGESTED))
        parts.append(_hbars(
            f"{prefix}-points", [row["rule"] for row in pointed], series, "points",
            "Suggested points against the current ones (a rule without a suggested bar has too little support "
            "for one).",
            lambda s, i: f"{pointed[i]['rule']}: {series[s][0]} {number(series[s][1][i])}"))
    else:
        parts.append('<p class="note">No rule has enough support for suggested points.</p>')
    rows = []
    for row in rules:
        interval = row.get("liftInterval")
        rows.append([row["rule"], row.get("fired"), row.get("wins"), percent(row.get("closeRateWith")),
                     percent(row.get("closeRateWithout")), signed(row.get("liftPoints")),
                     f"[{signed(interval[0])}, {signed(interval[1])}]" if interval else "-",
                     number(current.get(row["rule"])), signed(row.get("suggestedPoints")), row.get("support", "")])
    parts.append(_table(["rule", "fired", "wins", "close rate with", "without", "lift (pp)", "95% interval",
                         "current points", "suggested points", "support"], rows,
                        [False, True, True, True, True, True, True, True, True, False]))
    return "".join(parts)


def _lift_chart(report: Mapping[str, Any], prefix: str) -> str:
    bands = report["liftChart"]
    if not bands:
        return '<p class="note">No closed account to chart.</p>'
    threshold = report.get("threshold") or {}
    suggested = (threshold.get("suggested") or {}).get("threshold")
    target = threshold.get("target")

    def draw() -> tuple[Figure, dict[str, str]]:
        figure = _figure(8)
        axes = figure.add_subplot()
        low = min(b["scoreFrom"] for b in bands)
        high = max([b["scoreTo"] for b in bands] + [threshold.get("current") or 0, suggested or 0])
        least = max(1.0, (high - low) * 0.05)  # a band of one score still shows
        tips = {}
        for i, band in enumerate(bands):
            # a band spans its scores; one narrower than `least` is widened around its middle
            width = max(band["scoreTo"] - band["scoreFrom"], least)
            middle = (band["scoreFrom"] + band["scoreTo"]) / 2
            (bar,) = axes.bar([middle], [band["closeRate"]], width=width, color=CANDIDATE, alpha=0.8,
                              edgecolor="white")
            bar.set_gid(f"band-{i}")
            tips[f"band-{i}"] = (f"score {number(band['scoreFrom'])}-{number(band['scoreTo'])}: "
                                 f"{band['accounts']} accounts, closing at {percent(band['closeRate'])}")
            axes.annotate(f"{percent(band['closeRate'])}\n{band['accounts']} acc.",
                          (middle, band["closeRate"]), ha="center", va="bottom", fontsize=8)
        if target:
            axes.axhspan(target[0], target[1], color=SUGGESTED, alpha=0.12, label="target close rate")
        if report.get("baseRate") is not None:
            axes.axhline(report["baseRate"], color="#0f172a", linewidth=0.8, linestyle=":", label="base rate")
        if threshold.get("current") is not None:
            axes.axvline(threshold["current"], color=CURRENT, linestyle="--",
                         label=f"current threshold {number(threshold['current'])}")
        if suggested is not None:
            axes.axvline(suggested, color=SUGGESTED, linestyle="-",
                         label=f"suggested threshold {number(suggested)}")
        axes.set_xlabel("account score at the close")
        axes.set_ylabel("close rate")
        axes.set_ylim(0, min(1.0, max(b["closeRate"] for b in bands) * 1.3 + 0.05))
        axes.yaxis.set_major_formatter(lambda value, _: f"{value:.0%}")
        axes.set_xlim(low - least, high + least)
        axes.legend(loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=4, frameon=False, fontsize=8)
        return figure, tips

    return _chart(f"{prefix}-liftchart", "The lift chart: the close rate of each score band (ties in one band), "
                  "with the current and the suggested SDR-ready threshold.", draw)


def _backtest(report: Mapping[str, Any], prefix: str) -> str:
    test = report["backtest"]
    rows = []
    for name in ("current", "suggested"):
        side = test.get(name)
        if side:
            rows.append([name, number(side["threshold"]), side["atOrAbove"], percent(side["closeRateAtOrAbove"]),
                         percent(side["closeRateBelow"]), percent(side["precision"]), percent(side["recall"])])
    extra = {k: v for k, v in test.items() if k not in ("heldOut", "current", "suggested")}
    return (f"<p>On {_e(test.get('heldOut', '-'))} held-out accounts (the threshold fitted without them):</p>"
            + _table(["threshold", "score", "at or above", "close rate at or above", "below", "precision",
                      "recall"], rows, [False, True, True, True, True, True, True])
            + (generic(extra) if extra else ""))


def _threshold(report: Mapping[str, Any], prefix: str) -> str:
    threshold = report["threshold"]
    items = [f"SDR-ready threshold now: <b>{_e(number(threshold['current']))}</b>, "
             f"{_e(threshold.get('accountsAtOrAbove', '-'))} closed accounts at or above it"
             + (f", closing at {_e(percent(threshold['closeRateAtOrAbove']))}"
                if threshold.get("closeRateAtOrAbove") is not None else "")]
    if "sdrReadyOnFitAlone" in threshold:
        items.append(f"SDR-ready on fit alone: {_e(threshold['sdrReadyOnFitAlone'])} "
                     f"({_e(percent(threshold.get('sdrReadyOnFitAloneShare')))}; the guides want about 5% or less)")
    target = threshold.get("target")
    shown = f"{target[0]:.0%}-{target[1]:.0%}" if target else "the target"
    suggested = threshold.get("suggested")
    if suggested is None:
        items.append(f"Suggested threshold: none reaches a {_e(shown)} close rate")
    else:
        items.append(f"Suggested threshold for a {_e(shown)} close rate: <b>{_e(number(suggested['threshold']))}</b>"
                     f" ({_e(suggested['accountsAtOrAbove'])} accounts at or above, closing at "
                     f"{_e(percent(suggested['closeRateAtOrAbove']))}"
                     + (f"; below it {_e(percent(suggested['closeRateBelow']))}"
                        if suggested.get("closeRateBelow") is not None else "")
                     + ("" if suggested.get("withinTarget", True)
                        else "; above the target's range: no score gives less")
                     + ")")
    known = {"current", "accountsAtOrAbove", "closeRateAtOrAbove", "target", "suggested", "sdrReadyOnFitAlone",
             "sdrReadyOnFitAloneShare"}
    extra = {k: v for k, v in threshold.items() if k not in known}
    return "<ul>" + "".join(f"<li>{item}</li>" for item in items) + "</ul>" + (generic(extra) if extra else "")


def _summary(report: Mapping[str, Any], prefix: str) -> str:
    return (f"<p>{_e(report['closed'])} closed accounts, {_e(report['wins'])} won "
            f"(base close rate {_e(percent(report.get('baseRate')))}).</p>")


# ----------------------------------------------------------------------------- preview


def _counts(report: Mapping[str, Any], prefix: str) -> str:
    rows = []
    if "sdrReady" in report:
        rows.append(["SDR-ready accounts", report["sdrReady"]["current"], report["sdrReady"]["candidate"]])
    if "threshold" in report:
        rows.append(["SDR-ready threshold", number(report["threshold"]["current"]),
                     number(report["threshold"]["candidate"])])
    replayed = (f"<p>{_e(report['persons'])} contacts, {_e(report['events'])} events replayed under both rules "
                "sets; nothing written.</p>" if "persons" in report and "events" in report else "")
    return replayed + _table(["", "current", "candidate"], rows, [False, True, True])


def _crossings(report: Mapping[str, Any], prefix: str) -> str:
    parts = []
    for key, what, css in (("newlySdrReady", "Newly SDR-ready", "up"), ("noLongerSdrReady", "No longer SDR-ready",
                                                                         "down")):
        if key in report:
            ids = report[key]
            parts.append(f"<h3>{what} ({len(ids)})</h3>"
                         + (f'<ul class="{css}">' + "".join(f"<li>{_e(i)}</li>" for i in ids) + "</ul>"
                            if ids else '<p class="note">none</p>'))
    return "".join(parts)


def _movers(rows: Sequence[Mapping[str, Any]], prefix: str, what: str) -> str:
    if not rows:
        return f'<p class="note">No {what} score moves.</p>'
    chart = _hbars(prefix, [row["id"] for row in rows],
                   [("change", [row["change"] for row in rows], CANDIDATE)], "score change (candidate - current)",
                   f"The {what}s whose score moves most under the candidate rules.",
                   lambda _, i: f"{rows[i]['id']}: {number(rows[i]['current'])} -> {number(rows[i]['candidate'])}"
                                f" ({signed(rows[i]['change'])})",
                   lambda _, i: UP if rows[i]["change"] > 0 else DOWN)
    table = _table([what, "current", "candidate", "change"],
                   [[row["id"], number(row["current"]), number(row["candidate"]), signed(row["change"])]
                    for row in rows], [False, True, True, True])
    return chart + table


def _accounts_moving(report: Mapping[str, Any], prefix: str) -> str:
    return _movers(report["accountsMovingMost"], f"{prefix}-accounts", "account")


def _contacts_moving(report: Mapping[str, Any], prefix: str) -> str:
    return _movers(report["contactsMovingMost"], f"{prefix}-contacts", "contact")


def _rule_totals(report: Mapping[str, Any], prefix: str) -> str:
    rules = [row for row in report["rules"] if row["current"] or row["candidate"]]
    if not rules:
        return '<p class="note">No rule gave any points.</p>'
    changed = [row for row in rules if row["current"] != row["candidate"]]
    series: list[tuple[str, Sequence[float | None], str]] = [
        ("current", [row["current"] for row in rules], CURRENT),
        ("candidate", [row["candidate"] for row in rules], CANDIDATE)]
    chart = _hbars(f"{prefix}-rules", [row["rule"] for row in rules], series, "points over every contact",
                   "Each rule's points over every contact, under the current rules and the candidate.",
                   lambda s, i: f"{rules[i]['rule']}: {series[s][0]} {number(series[s][1][i])}")
    table = _table(["rule", "current", "candidate", "change"],
                   [[row["rule"], number(row["current"]), number(row["candidate"]),
                     signed(round(row["candidate"] - row["current"], 2))] for row in changed],
                   [False, True, True, True]) if changed else '<p class="note">No rule\'s total changes.</p>'
    return chart + table


def _sdr_load(report: Mapping[str, Any], prefix: str) -> str:
    load = report["sdrLoad"]
    if not load:
        return '<p class="note">No SDR-ready account under either rules set (or no routing given).</p>'
    labels = [f"{row['territory']} / {row['pool']}" for row in load]
    series: list[tuple[str, Sequence[float | None], str]] = [
        ("current", [row["current"] for row in load], CURRENT),
        ("candidate", [row["candidate"] for row in load], CANDIDATE)]
    chart = _hbars(f"{prefix}-load", labels, series, "SDR-ready accounts",
                   "The SDR load: SDR-ready accounts per territory and pool they would route to.",
                   lambda s, i: f"{labels[i]}: {series[s][0]} {number(series[s][1][i])}", counts=True)
    table = _table(["territory / pool", "current", "candidate"],
                   [[label, row["current"], row["candidate"]] for label, row in zip(labels, load, strict=True)],
                   [False, True, True])
    return chart + table


# ----------------------------------------------------------------------------- pages

#: A section: its heading, the report keys it renders, and how.
Section = tuple[str, tuple[str, ...], Callable[[Mapping[str, Any], str], str]]

CALIBRATION: tuple[Section, ...] = (
    ("Warnings", ("warnings",), lambda r, p: _warnings(r)),
    ("Closed accounts", ("closed", "wins", "baseRate"), _summary),
    ("Rules: lift and suggested points", ("rules",), lambda r, p: _rules(r, p, {})),
    ("Lift chart", ("liftChart",), _lift_chart),
    ("Threshold", ("threshold",), _threshold),
    ("Backtest on held-out accounts", ("backtest",), _backtest),
)

PREVIEW: tuple[Section, ...] = (
    ("SDR-ready: current against candidate", ("persons", "events", "threshold", "sdrReady"), _counts),
    ("Threshold crossings", ("newlySdrReady", "noLongerSdrReady"), _crossings),
    ("Accounts moving most", ("accountsMovingMost",), _accounts_moving),
    ("Contacts moving most", ("contactsMovingMost",), _contacts_moving),
    ("Rule totals", ("rules",), _rule_totals),
    ("SDR load per territory and pool", ("sdrLoad",), _sdr_load),
)


def sections(report: Mapping[str, Any], known: Sequence[Section], prefix: str) -> str:
    """Each known section whose keys the report has (warnings first), then every other key
    generically; a known section that fails on an unexpected shape falls back to generic."""
    parts = []
    used: set[str] = set()
    for heading, keys, render in known:
        present = [k for k in keys if k in report]
        if not present:
            continue
        used |= set(present)
        try:
            body = render(report, prefix)
        except (KeyError, TypeError, ValueError, IndexError, AttributeError):
            body = "".join(generic(report[k]) for k in present)
        parts.append(f"<section><h2>{_e(heading)}</h2>{body}</section>")
    for key, value in report.items():
        if key not in used:
            parts.append(f"<section><h2>{_e(_title(key))}</h2>{generic(value)}</section>")
    return "".join(parts)


def calibration_section(report: Mapping[str, Any], current_points: Mapping[str, float | None] | None = None,
                        prefix: str = "calibration") -> str:
    """The calibration's sections (no page around them). `current_points`: each rule's points
    in the current scoring.yaml, charted against the suggested ones."""
    known = tuple((h, k, (lambda r, p: _rules(r, p, current_points or {})) if k == ("rules",) else f)
                  for h, k, f in CALIBRATION)
    return sections(report, known, prefix)


def preview_section(report: Mapping[str, Any], prefix: str = "preview") -> str:
    """The preview's sections (no page around them)."""
    return sections(report, PREVIEW, prefix)


def page(title: str, intro: str, body: str) -> str:
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{_e(title)}</title><style>{STYLE}</style></head>"
            f'<body><h1>{_e(title)}</h1><p class="note">{_e(intro)}</p>{body}</body></html>\n')


def calibration_page(report: Mapping[str, Any], current_points: Mapping[str, float | None] | None = None) -> str:
    """The calibration report as a self-contained HTML page."""
    return page("Calibration from outcomes",
                "Which rules raise the chance of closing, measured on the accounts as they stood before their "
                "outcome; the threshold for the target close rate, backtested on held-out accounts. Nothing is "
                "applied.", calibration_section(report, current_points))


def preview_page(report: Mapping[str, Any]) -> str:
    """The preview report as a self-contained HTML page."""
    return page("Preview of a rules change",
                "The retained events replayed under the current rules and the candidate, with the code that "
                "scores live; nothing was written.", preview_section(report))
