"""local.plant, the planted-lift generator: the same seed draws the same data, each planted rule
fires at its rate independently of the others, outcomes follow the planted lifts and close after
the events that count, what it writes is what `make calibrate` and local.demo read, and a plan it
cannot make is refused naming the rule."""

from __future__ import annotations

import json
import math
from collections import defaultdict
from pathlib import Path

import pytest
from leadscore.adapters.snapshot import TableSnapshot
from leadscore.rulesfiles.loading import Config, load_config
from leadscore.services.calibrate import calibrate, parse_outcomes

from local import plant
from local.demo import load_journeys
from local.plant import PlanError, Plant, generate, table_items


@pytest.fixture(scope="module")
def config() -> Config:
    return load_config()


@pytest.fixture(scope="module")
def big(config: Config) -> plant.Planted:
    return generate(config, accounts=4000, seed=11)


def _within(observed: float, expected: float, n: int) -> bool:
    """Within 3 standard errors of a proportion drawn n times (a fixed seed: no flakiness)."""
    return abs(observed - expected) <= 3 * math.sqrt(expected * (1 - expected) / n)


def test_the_same_seed_draws_the_same_data_and_another_seed_other_data(config: Config) -> None:
    first, again = generate(config, accounts=200, seed=5), generate(config, accounts=200, seed=5)
    assert first.journey() == again.journey() and first.outcomes_csv() == again.outcomes_csv()
    assert first.manifest() == again.manifest()
    other = generate(config, accounts=200, seed=6)
    assert other.outcomes_csv() != first.outcomes_csv()


def test_each_planted_rule_fires_at_its_rate_independently_of_the_others(big: plant.Planted) -> None:
    n = len(big.accounts)
    rates = {p.rule: p.rate for p in big.plan}
    for rule, rate in rates.items():
        assert _within(sum(rule in a.fired for a in big.accounts) / n, rate, n), rule
    for first in rates:
        for second in rates:
            if first < second:  # fired together as often as chance says
                both = sum({first, second} <= a.fired for a in big.accounts) / n
                assert _within(both, rates[first] * rates[second], n), (first, second)
    assert _within(sum(a.outcome == "open" for a in big.accounts) / n, 0.1, n)


def test_outcomes_follow_the_planted_lifts(big: plant.Planted) -> None:
    closed = [a for a in big.accounts if a.outcome != "open"]
    lifts = {p.rule: p.lift for p in big.plan}
    for account in closed:
        assert account.probability == pytest.approx(0.03 + sum(lifts[r] for r in account.fired) / 100)
    # by the number of rules fired: won as often as the probability says
    by_kind: dict[frozenset[str], list[bool]] = defaultdict(list)
    for account in closed:
        by_kind[frozenset(account.fired)].append(account.outcome == "won")
    for fired, wins in by_kind.items():
        expected = 0.03 + sum(lifts[r] for r in fired) / 100
        assert _within(sum(wins) / len(wins), expected, len(wins)), sorted(fired)


def test_closed_accounts_close_after_the_events_that_count_and_late_ones_come_after(big: plant.Planted) -> None:
    for account in big.accounts:
        tracked = sorted((at, m) for at, m in account.messages if m["type"] == "track" or m["type"] == "page")
        if account.outcome == "open":
            assert account.closed_at is None and account.late is None
            assert len(tracked) == len(account.fired)
            continue
        assert account.closed_at is not None
        before = [m for at, m in tracked if at <= account.closed_at]
        after = [m for at, m in tracked if at > account.closed_at]
        assert len(before) == len(account.fired)
        assert len(after) == (account.late is not None)
        if account.late is not None and len(account.fired) < len(big.plan):
            assert account.late not in account.fired  # counting it would show
    late = sum(a.late is not None for a in big.accounts)
    closed = sum(a.outcome != "open" for a in big.accounts)
    assert _within(late / closed, 0.1, closed) and big.manifest()["lateMessages"] == late


def test_what_it_writes_is_read_by_make_calibrate_and_the_demo(config: Config, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    assert plant.main(["--accounts", "40", "--seed", "3", "--out", str(tmp_path)]) == 0
    assert "40 accounts" in capsys.readouterr().out
    outcomes = parse_outcomes((tmp_path / "outcomes.csv").read_text(), "outcomes.csv")
    assert len(outcomes) == 40 and {o.outcome for o in outcomes} <= {"won", "lost", "open"}
    assert all((o.closed_at is None) == (o.outcome == "open") for o in outcomes)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert [r["plantedLiftPoints"] for r in manifest["rules"]] == [20, 10, 5, 0]
    assert manifest["closed"] == sum(o.outcome != "open" for o in outcomes)
    (journey,) = load_journeys(tmp_path / "journeys")
    planted = generate(config, accounts=40, seed=3)
    assert sum(len(step.body["batch"]) for step in journey.steps) == sum(1 for _ in planted.messages())
    first_at, first = next(planted.messages())
    assert journey.steps[0].at == first_at and journey.steps[0].body["batch"][0] == first


def test_the_table_items_fire_exactly_the_planted_rules_fit_ones_included(config: Config) -> None:
    plan = [Plant("demo_requested", 0.4, 20), Plant("title_executive", 0.3, 10),
            Plant("account_industry_technology", 0.3, 0)]
    planted = generate(config, accounts=300, seed=2, plan=plan, late_share=0)  # late ones: test_planted_lift
    found = table_items(planted, config)
    snapshot = TableSnapshot(found)
    assert set(snapshot.accounts) == {a.domain for a in planted.accounts}
    by_account = defaultdict(list)
    for person in snapshot.persons():
        by_account[snapshot.contacts[person.root].account].append(person)
    report = calibrate(by_account, snapshot.accounts, parse_outcomes(planted.outcomes_csv(), "o.csv"), config)
    fired = {row["rule"]: (row["fired"], row["wins"]) for row in report["rules"]}
    assert fired == {r["rule"]: (r["firedOnClosed"], r["winsWith"]) for r in planted.manifest()["rules"]}
    assert (report["closed"], report["wins"]) == (planted.manifest()["closed"], planted.manifest()["wins"])
    assert planted.manifest()["fitOnly"] == sum(
        bool(a.fired) and "demo_requested" not in a.fired for a in planted.accounts if a.outcome != "open")


@pytest.mark.parametrize(("plan", "message"), [
    ([Plant("no_such_rule", 0.3, 5)], "no_such_rule: not a rule of scoring.yaml"),
    ([Plant("site_visits", 0.3, 5)], "site_visits: a counter rule cannot be planted"),
    ([Plant("demo_requested", 1.5, 5)], "demo_requested: rate 1.5 is not a share"),
    ([Plant("demo_requested", 0.3, 60), Plant("webinar_attended", 0.3, 50)], "must stay between 0 and 1"),
    ([Plant("demo_requested", 0.3, 5), Plant("demo_requested", 0.2, 5)], "demo_requested: planted twice"),
])
def test_a_plan_it_cannot_make_is_refused_naming_the_rule(config: Config, plan: list[Plant], message: str) -> None:
    with pytest.raises(PlanError, match=message):
        generate(config, accounts=10, plan=plan)


def test_the_command_refuses_a_bad_rule_with_a_clear_message(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    assert plant.main(["--out", str(tmp_path), "--rule", "demo_requested:often:20"]) == 2
    assert "demo_requested:often:20" in capsys.readouterr().err
    assert plant.main(["--out", str(tmp_path), "--rule", "careers_page:0.2"]) == 2
    assert "expected rule:rate:lift" in capsys.readouterr().err
    assert plant.main(["--out", str(tmp_path), "--rule", "no_such_rule:0.2:5"]) == 2
    assert "plan: no_such_rule: not a rule of scoring.yaml" in capsys.readouterr().err
    assert plant.main(["--out", str(tmp_path), "--rule", "demo_requested:0.2:99"]) == 2
    assert "must stay between 0 and 1" in capsys.readouterr().err
    assert not (tmp_path / "outcomes.csv").exists()


def test_a_message_made_for_a_rule_matches_that_rule_alone(config: Config) -> None:
    engagement = [r.id for r in config.scoring.engagement if r.counter is None]
    made = plant.triggers(config.scoring, [Plant(rule, 0.5, 0) for rule in engagement])
    assert set(made) == set(engagement)  # every event rule of the shipped file can be planted
    assert made["pricing_page"].message["type"] == "page"
    assert made["form_bottom_of_funnel"].message["properties"]["stage"] == "bottom"
