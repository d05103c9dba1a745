"""The calibration and preview pages (local/evidence_html.py): a page parses, opens offline (no
network address but the SVG namespaces, no script, stylesheet, font or image to fetch), has a
chart per figure drawn by matplotlib with the report's data in it (each rule or account id,
each threshold), its SVG works without a browser (well-formed, every internal reference
resolves, ids unique across the page), ids a user chose are escaped, and a section the page
does not know, or one of an unexpected shape, is rendered generically instead of breaking it.

The reports are real: outcome data with planted lifts (local.plant) calibrated by
services/calibrate.py, and the preview of the candidate scoring.yaml that calibration
suggests (local/candidate.py) by services/preview.py."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections import defaultdict
from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import Any

import pytest
from leadscore.adapters.snapshot import TableSnapshot
from leadscore.rulesfiles.loading import Config, load_config, load_routing
from leadscore.services.calibrate import calibrate, parse_outcomes
from leadscore.services.preview import preview

from local import candidate, evidence_html
from local.plant import Plant, generate, table_items

SVG_NS = "http://www.w3.org/2000/svg"
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


class Page(HTMLParser):
    """The page's structure: every element properly closed and nested, the h2 headings in order,
    the attributes that could fetch something."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.open: list[str] = []
        self.headings: list[str] = []
        self.fetching: list[tuple[str, str, str]] = []
        self.tags: list[str] = []
        self._heading: list[str] | None = None
        self.feed(text)
        self.close()
        assert self.open == [], f"unclosed: {self.open}"

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        for name, value in attrs:
            if name in ("src", "srcset", "action", "background") or (name == "href" and tag != "use"
                                                                        and not (value or "").startswith("#")):
                self.fetching.append((tag, name, value or ""))
        if tag == "h2":
            self._heading = []
        if tag not in VOID:
            self.open.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        for name, value in attrs:
            if name in ("src", "srcset") or (name == "href" and not (value or "").startswith("#")):
                self.fetching.append((tag, name, value or ""))

    def handle_endtag(self, tag: str) -> None:
        assert self.open and self.open[-1] == tag, f"</{tag}> closes {self.open[-1:] or 'nothing'}"
        self.open.pop()
        if tag == "h2" and self._heading is not None:
            self.headings.append("".join(self._heading))
            self._heading = None

    def handle_data(self, data: str) -> None:
        if self._heading is not None:
            self._heading.append(data)


def charts(text: str) -> list[ET.Element]:
    """Each inline SVG, parsed as XML (what a browser renders inline)."""
    return [ET.fromstring(block) for block in re.findall(r"<svg\b.*?</svg>", text, re.S)]


def texts(chart: ET.Element) -> str:
    """The text a chart shows (its labels, ticks, legend), and its hover titles."""
    return "\n".join("".join(node.itertext()) for node in chart.iter()
                     if node.tag in (f"{{{SVG_NS}}}text", f"{{{SVG_NS}}}title"))


@pytest.fixture(scope="module")
def config() -> Config:
    return load_config()


@pytest.fixture(scope="module")
def planted_items(config: Config) -> tuple[Any, list[dict[str, Any]]]:
    plan = [Plant("demo_requested", 0.4, 30), Plant("webinar_attended", 0.4, -5), Plant("title_executive", 0.3, 10)]
    planted = generate(config, accounts=400, seed=2, plan=plan, base_rate=0.1)
    return planted, table_items(planted, config)


@pytest.fixture(scope="module")
def calibration(config: Config, planted_items: tuple[Any, list[dict[str, Any]]]) -> dict[str, Any]:
    planted, items = planted_items
    snapshot = TableSnapshot(items)
    by_account: dict[str, list[Any]] = defaultdict(list)
    for person in snapshot.persons():
        by_account[snapshot.contacts[person.root].account].append(person)
    return calibrate(by_account, snapshot.accounts, parse_outcomes(planted.outcomes_csv(), "o.csv"), config,
                     (0.3, 0.4))


@pytest.fixture(scope="module")
def previewed(config: Config, planted_items: tuple[Any, list[dict[str, Any]]], calibration: dict[str, Any],
              tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The preview of the candidate the calibration suggests."""
    _, items = planted_items
    out = tmp_path_factory.mktemp("candidate")
    candidate.write(calibration, config.dir / "scoring.yaml", out)
    from leadscore.rulesfiles.loading import load_scoring

    proposed = Config(scoring=load_scoring(out / candidate.CANDIDATE_FILE), sources=config.sources, dir=config.dir)
    routing = load_routing(config.dir / "routing.yaml")
    snapshot = TableSnapshot(items)
    return preview(snapshot.persons(), snapshot.accounts, config, proposed, datetime(2027, 1, 1, tzinfo=UTC),
                   (routing, routing)).report()


def test_the_calibration_page_shows_the_warnings_first_then_a_chart_per_figure_with_its_data(
        calibration: dict[str, Any], config: Config) -> None:
    current = candidate.current_points(config.scoring)
    text = evidence_html.calibration_page(calibration, current)
    page = Page(text)
    assert page.headings[0] == "Warnings"
    assert page.headings[:6] == ["Warnings", "Closed accounts", "Rules: lift and suggested points", "Lift chart",
                                 "Threshold", "Backtest on held-out accounts"]
    assert calibration["warnings"][0] in text.split("<h2>Closed accounts</h2>")[0]
    lift, points, bands = charts(text)
    measured = [row["rule"] for row in calibration["rules"] if row["liftPoints"] is not None]
    assert measured  # the planted rules
    for rule in measured:
        assert rule in texts(lift) and rule in texts(points)
        row = next(r for r in calibration["rules"] if r["rule"] == rule)
        low, high = row["liftInterval"]
        # the hover title of each point carries its lift and interval; the points chart its suggestion
        assert f"{evidence_html.signed(row['liftPoints'])} pp [{evidence_html.signed(low)}, " \
               f"{evidence_html.signed(high)}]" in texts(lift)
        assert f"suggested points {evidence_html.number(row['suggestedPoints'])}" in texts(points)
        assert f"current points {evidence_html.number(current[rule])}" in texts(points)
    threshold = calibration["threshold"]
    assert f"current threshold {evidence_html.number(threshold['current'])}" in texts(bands)
    assert f"suggested threshold {evidence_html.number(threshold['suggested']['threshold'])}" in texts(bands)
    for band in calibration["liftChart"]:
        assert f"{band['accounts']} accounts, closing at {evidence_html.percent(band['closeRate'])}" in texts(bands)
    # the backtest table: precision and recall of each threshold on the held-out accounts
    backtest = text.split("<h2>Backtest on held-out accounts</h2>")[1]
    for side in ("current", "suggested"):
        assert evidence_html.percent(calibration["backtest"][side]["recall"]) in backtest
    assert f"On {calibration['backtest']['heldOut']} held-out accounts" in backtest


def test_the_preview_page_shows_the_counts_the_crossings_the_movers_the_rule_totals_and_the_load(
        previewed: dict[str, Any]) -> None:
    text = evidence_html.preview_page(previewed)
    page = Page(text)
    assert page.headings[:6] == ["SDR-ready: current against candidate", "Threshold crossings",
                                 "Accounts moving most", "Contacts moving most", "Rule totals",
                                 "SDR load per territory and pool"]
    assert previewed["newlySdrReady"] and previewed["accountsMovingMost"] and previewed["sdrLoad"]  # data to show
    crossings = text.split("<h2>Threshold crossings</h2>")[1].split("<h2>")[0]
    for account in previewed["newlySdrReady"]:
        assert f"<li>{account}</li>" in crossings
    counts = text.split("</section>")[0]
    assert f'<td class="n">{previewed["sdrReady"]["current"]}</td><td class="n">' \
           f'{previewed["sdrReady"]["candidate"]}</td>' in counts
    accounts, contacts, rules, load = charts(text)
    for row in previewed["accountsMovingMost"]:
        assert row["id"] in texts(accounts)
        assert f"({evidence_html.signed(row['change'])})" in texts(accounts)
    for row in previewed["contactsMovingMost"]:
        assert row["id"] in texts(contacts)
    for row in previewed["rules"]:
        if row["current"] or row["candidate"]:
            assert f"{row['rule']}: current {evidence_html.number(row['current'])}" in texts(rules)
            assert f"{row['rule']}: candidate {evidence_html.number(row['candidate'])}" in texts(rules)
    for row in previewed["sdrLoad"]:
        assert f"{row['territory']} / {row['pool']}: candidate {row['candidate']}" in texts(load)


def test_a_page_opens_offline_nothing_to_fetch_but_the_svg_namespaces(calibration: dict[str, Any],
                                                                     previewed: dict[str, Any]) -> None:
    for text in (evidence_html.calibration_page(calibration), evidence_html.preview_page(previewed)):
        page = Page(text)
        assert page.fetching == []
        assert not {"script", "link", "img", "iframe", "object"} & set(page.tags)
        addresses = re.findall(r"""[^\s"'<>]*https?://[^\s"'<>)]*""", text)
        assert addresses and set(addresses) <= {"http://www.w3.org/2000/svg", "http://www.w3.org/1999/xlink"}
        namespaces = re.findall(r'xmlns(?::xlink)?="(https?://[^"]*)"', text)
        assert len(namespaces) == len(addresses)  # each one an xmlns attribute, never fetched
        assert "@import" not in text and "url(http" not in text


def test_matplotlib_s_svg_works_in_the_page_without_a_browser(calibration: dict[str, Any],
                                                              previewed: dict[str, Any]) -> None:
    """What a browser needs of inline SVG: well-formed XML in the SVG namespace, with a size;
    every clip path, marker or gradient it references is in the page, and each id once only
    (two charts of one page must not take each other's clip paths)."""
    both = evidence_html.page("both", "", evidence_html.calibration_section(calibration)
                              + evidence_html.preview_section(previewed))
    ids = re.findall(r'\bid="([^"]+)"', both)
    assert len(ids) == len(set(ids))
    drawn = charts(both)
    assert len(drawn) == 7
    for chart in drawn:
        assert chart.tag == f"{{{SVG_NS}}}svg" and chart.get("viewBox")
        inside = {node.get("id") for node in chart.iter() if node.get("id")}
        references = re.findall(r"url\(#([^)]+)\)", ET.tostring(chart, encoding="unicode"))
        references += [node.get("{http://www.w3.org/1999/xlink}href", node.get("href", ""))[1:]
                       for node in chart.iter(f"{{{SVG_NS}}}use")]
        assert references and set(references) <= inside
        assert list(chart.iter(f"{{{SVG_NS}}}title"))  # hover titles on the data
        assert list(chart.iter(f"{{{SVG_NS}}}path"))  # drawn, not empty


def test_an_id_a_user_chose_is_escaped_in_tables_and_charts(previewed: dict[str, Any]) -> None:
    hostile = "<script>alert(1)</script>$x$&co"
    report = {**previewed, "newlySdrReady": [hostile],
              "accountsMovingMost": [{"id": hostile, "current": 90.0, "candidate": 105.0, "change": 15.0}]}
    text = evidence_html.preview_page(report)
    assert "<script>" not in text and "&lt;script&gt;alert(1)&lt;/script&gt;$x$&amp;co" in text
    Page(text)
    accounts = charts(text)[0]
    assert hostile in texts(accounts)  # shown as written: no mathtext for the dollars


def test_an_unknown_section_or_one_of_an_unexpected_shape_is_shown_generically(calibration: dict[str, Any],
                                                                                previewed: dict[str, Any]) -> None:
    report = {**calibration, "liftChart": "not bands",
              "outcomes": {"file": 12, "crm": 3, "sources": ["file", "crm"]},
              "capacity": [{"threshold": 70, "perDay": 4.5, "sdrsCanTake": 3, "withinSla": False}]}
    del report["backtest"]
    text = evidence_html.calibration_page(report)
    page = Page(text)
    assert "Backtest on held-out accounts" not in page.headings
    assert page.headings[-2:] == ["Outcomes", "Capacity"] and "Lift chart" in page.headings
    assert "not bands" in text.split("<h2>Lift chart</h2>")[1]
    capacity = text.split("<h2>Capacity</h2>")[1]
    assert "<th>sdrsCanTake</th>" in capacity and "4.50" not in capacity and "4.5" in capacity
    assert "<td>no</td>" in capacity  # a yes/no read as such
    assert "file, crm" in text
    # a preview with a section added, and one missing
    report = {key: value for key, value in previewed.items() if key != "sdrLoad"}
    text = evidence_html.preview_page({**report, "badFit": {"current": {"share": 0.02}}})
    assert Page(text).headings[-1] == "Bad fit" and "SDR load per territory and pool" not in text


def test_the_same_report_draws_the_same_page(calibration: dict[str, Any]) -> None:
    assert evidence_html.calibration_page(calibration) == evidence_html.calibration_page(calibration)
