"""Loading and validating config/routing.yaml: every error names the file, the key path and the reason."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from leadscore.domain.places import country_code
from leadscore.rulesfiles.cli import main
from leadscore.rulesfiles.errors import ConfigError
from leadscore.rulesfiles.loading import load_routing
from leadscore.rulesfiles.routing import RoutingConfig

SHIPPED = Path(__file__).resolve().parents[2] / "config"

BASE = """
version: 1
sdrs:
  - {id: ana, name: Ana Ruiz, email: ana@example.com, time_zone: Europe/Madrid}
  - {id: ben, name: Ben Fischer, email: ben@example.com}
pools:
  - {id: emea, sdrs: [ana, ben]}
territories:
  - {id: emea, pool: emea, when: {region: [EMEA]}}
fallback_pool: emea
"""


def errors(tmp_path: Path, text: str) -> list[tuple[str, str]]:
    path = tmp_path / "routing.yaml"
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_routing(path)
    assert caught.value.file == str(path)
    assert str(caught.value).startswith(f"{path}: ")
    return caught.value.errors


def edited(old: str, new: str) -> str:
    assert old in BASE, old
    return BASE.replace(old, new, 1)


def test_the_shipped_routing_yaml_validates() -> None:
    # Given the repo's routing.yaml, When loaded, Then it is valid with PRODUCT's defaults
    cfg = load_routing(SHIPPED / "routing.yaml")
    assert isinstance(cfg, RoutingConfig)
    assert (cfg.mode, cfg.sla_hours, cfg.cooldown_days) == ("territory", 48, 30)
    assert cfg.fallback_pool == "catch-all"


def test_defaults_when_keys_are_left_out(tmp_path: Path) -> None:
    path = tmp_path / "routing.yaml"
    path.write_text(textwrap.dedent(BASE), encoding="utf-8")
    cfg = load_routing(path)
    ben = cfg.sdr_by_id["ben"]
    assert (ben.weight, ben.daily_capacity, ben.time_zone, ben.active, ben.out_of_office) == (1, None, "UTC", True, [])
    assert (cfg.mode, cfg.sla_hours, cfg.cooldown_days) == ("territory", 48, 30)


@pytest.mark.parametrize(
    ("old", "new", "path", "reason"),
    [
        ("sdrs: [ana, ben]}", "sdrs: [ana, bob]}", "pools[0].sdrs[1]", "unknown SDR 'bob' (SDRs: ana, ben)"),
        ("sdrs: [ana, ben]}", "sdrs: []}", "pools[0].sdrs", "pool 'emea' is empty"),
        ("pool: emea, when", "pool: apac, when", "territories[0].pool", "unknown pool 'apac' (pools: emea)"),
        ("fallback_pool: emea", "fallback_pool: rest", "fallback_pool", "unknown pool 'rest'"),
        ("fallback_pool: emea", "", "fallback_pool", "required key missing: the pool for accounts no territory"),
        ("id: ben,", "id: ana,", "sdrs[1].id", "duplicate id 'ana' (first at sdrs[0])"),
        (
            "time_zone: Europe/Madrid",
            "time_zone: Europe/Madird",
            "sdrs[0].time_zone",
            "unknown time zone 'Europe/Madird'; did you mean 'Europe/Madrid'?",
        ),
        (
            "email: ben@example.com}",
            "email: ben@example.com, weight: 0}",
            "sdrs[1].weight",
            "must be greater than 0, got 0",
        ),
        ("email: ben@example.com}", "email: ben@example.com, weight: -1}", "sdrs[1].weight", "must be greater than 0"),
        (
            "email: ben@example.com}",
            "email: ben@example.com, weight: '2'}",
            "sdrs[1].weight",
            "expected a whole number, got '2'",
        ),
        (
            "email: ben@example.com}",
            "email: ben@example.com, daily_capacity: 0}",
            "sdrs[1].daily_capacity",
            "must be greater than 0",
        ),
        ("email: ben@example.com}", "email: ben@example.com, active: yes}", "sdrs[1].active", "expected true or false"),
        (
            "email: ben@example.com}",
            "email: ben@example.com, out_of_office: [{from: 2026-12-24, to: 2026-12-20}]}",
            "sdrs[1].out_of_office[0].from",
            "from (2026-12-24) is after to (2026-12-20)",
        ),
        (
            "email: ben@example.com}",
            "email: ben@example.com, out_of_office: "
            "[{from: 2026-12-20, to: 2026-12-24}, {from: 2026-12-24, to: 2027-01-02}]}",
            "sdrs[1].out_of_office[1]",
            "2026-12-24..2027-01-02 overlaps out_of_office[0] (2026-12-20..2026-12-24)",
        ),
        (
            "email: ben@example.com}",
            "email: ben@example.com, out_of_office: [{from: 2026-12-20, until: 2026-12-24}]}",
            "sdrs[1].out_of_office[0].until",
            "unknown key",
        ),
        (
            "email: ben@example.com}",
            "email: ben@example.com, out_of_office: [{from: 'next week', to: 2026-12-24}]}",
            "sdrs[1].out_of_office[0].from",
            "expected a date like 2026-12-21, got 'next week'",
        ),
        (
            "email: ben@example.com}",
            "email: ben@example.com, wieght: 2}",
            "sdrs[1].wieght",
            "unknown key; did you mean 'weight'?",
        ),
        ("email: ben@example.com}", "email: ben-at-example.com}", "sdrs[1].email", "is not an email address"),
        ("when: {region: [EMEA]}", "when: {continent: [EU]}", "territories[0].when.continent", "unknown key"),
        (
            "when: {region: [EMEA]}",
            "when: {region: [EU]}",
            "territories[0].when.region[0]",
            "unknown region 'EU' (regions: NA, LATAM, EMEA, APAC)",
        ),
        (
            "when: {region: [EMEA]}",
            "when: {country: [DE, Germny]}",
            "territories[0].when.country[1]",
            "'Germny' is not an ISO 3166 country",
        ),
        (
            "when: {region: [EMEA]}",
            "when: {country: US, state: [Narnia]}",
            "territories[0].when.state[0]",
            "'Narnia' is not an ISO 3166-2 subdivision of US",
        ),
        (
            "when: {region: [EMEA]}",
            "when: {employees: {min: 500, max: 50}}",
            "territories[0].when.employees.min",
            "min (500) is above max (50)",
        ),
        (
            "when: {region: [EMEA]}",
            "when: {employees: {min: '50'}}",
            "territories[0].when.employees.min",
            "expected a number, got '50'",
        ),
        ("version: 1", "version: 1\nmode: regional", "mode", "expected 'territory' or 'round_robin', got 'regional'"),
        ("version: 1", "version: 1\nsla_hours: 0", "sla_hours", "must be at least 1, got 0"),
    ],
)
def test_each_mistake_names_its_key_path_and_reason(tmp_path: Path, old: str, new: str, path: str, reason: str) -> None:
    # Given a routing.yaml with one mistake, When loaded, Then that error names the key path and reason (and line)
    found = errors(tmp_path, edited(old, new))
    matching = [r for p, r in found if p == path and reason in r]
    assert matching, found
    assert "(line " in matching[0]


def test_a_territory_after_a_catch_all_is_never_reached(tmp_path: Path) -> None:
    text = edited(
        "  - {id: emea, pool: emea, when: {region: [EMEA]}}",
        "  - {id: all, pool: emea}\n  - {id: emea, pool: emea, when: {region: [EMEA]}}",
    )
    assert (
        "territories[1]",
        "never reached: territories[0] ('all') has no conditions and matches every account (line 9)",
    ) in errors(tmp_path, text)


def test_countries_accept_common_spellings() -> None:
    for spelling, code in [
        ("UK", "GB"),
        ("United States", "US"),
        ("usa", "US"),
        ("U.S.", "US"),
        ("Deutschland", "DE"),
        ("de", "DE"),
        ("Russia", "RU"),
        ("Great Britain", "GB"),
    ]:
        assert country_code(spelling) == code, spelling
    assert country_code("Narnia") is None
    assert country_code("") is None


def test_state_names_and_bare_codes_resolve_within_the_country(tmp_path: Path) -> None:
    path = tmp_path / "routing.yaml"
    path.write_text(
        textwrap.dedent(edited("when: {region: [EMEA]}", "when: {country: [US], state: [CA, Washington, US-NY]}")),
        encoding="utf-8",
    )
    cfg = load_routing(path)
    assert cfg.territories[0].when.states == frozenset({"US-CA", "US-WA", "US-NY"})


def test_a_missing_file_and_a_wrong_version_are_reported(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_routing(tmp_path / "routing.yaml")
    assert errors(tmp_path, BASE.replace("version: 1", "version: 2")) == [
        ("version", "unsupported version 2; this release reads version 1")
    ]


def test_the_validate_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Given the shipped directory, When validated, Then ok and status 0
    assert main(["validate", "--only", "routing.yaml", str(SHIPPED)]) == 0
    assert capsys.readouterr().out.startswith(f"ok: {SHIPPED / 'routing.yaml'} (territory, 8 active SDRs")
    # Given a broken file, Then its errors on stderr and status 1
    (tmp_path / "routing.yaml").write_text(textwrap.dedent(edited("sdrs: [ana, ben]}", "sdrs: [ana, bob]}")).lstrip())
    assert main(["validate", "--only", "routing.yaml", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "routing.yaml: pools[0].sdrs[1]: unknown SDR 'bob' (SDRs: ana, ben) (line 6)" in err


# ---------------------------------------------------------------- item 12: configurations that never route


def loads(tmp_path: Path, text: str) -> RoutingConfig:
    path = tmp_path / "routing.yaml"
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return load_routing(path)


@pytest.mark.parametrize(
    ("old", "new", "path", "reason"),
    [
        # every SDR of a territory's pool inactive: its accounts would wait for ever
        (
            "  - {id: emea, sdrs: [ana, ben]}",
            "  - {id: emea, sdrs: [ana, ben]}\n  - {id: dach, sdrs: [cleo]}",
            "pools[1].sdrs",
            "every SDR of pool 'dach' is inactive (cleo): accounts of territories[0] ('dach') would never be routed",
        ),
        # the fallback pool's
        (
            "fallback_pool: emea",
            "fallback_pool: dach",
            "fallback_pool",
            "every SDR of pool 'dach' is inactive (cleo): accounts no territory matches would never be routed",
        ),
    ],
)
def test_item12_a_pool_whose_sdrs_are_all_inactive_is_an_error(
        tmp_path: Path, old: str, new: str, path: str, reason: str) -> None:
    text = (BASE.replace("sdrs:\n", "sdrs:\n  - {id: cleo, name: Cleo, email: cleo@example.com, active: false}\n", 1)
            .replace("  - {id: emea, sdrs: [ana, ben]}",
                     "  - {id: emea, sdrs: [ana, ben]}\n  - {id: dach, sdrs: [cleo]}")
            .replace("territories:\n", "territories:\n  - {id: dach, pool: dach, when: {country: [DE]}}\n"))
    if old == "fallback_pool: emea":
        text = text.replace("  - {id: dach, pool: dach, when: {country: [DE]}}\n", "").replace(old, new)
    found = errors(tmp_path, text)
    matching = [r for p, r in found if p == path and r.startswith(reason)]
    assert matching, found
    assert "(line " in matching[0]


def test_item12_round_robin_with_no_active_sdr_is_an_error(tmp_path: Path) -> None:
    text = (BASE.replace("version: 1", "version: 1\nmode: round_robin")
            .replace("time_zone: Europe/Madrid}", "time_zone: Europe/Madrid, active: false}")
            .replace("email: ben@example.com}", "email: ben@example.com, active: false}"))
    assert [(p, r.split(" (line")[0]) for p, r in errors(tmp_path, text)] == [
        ("sdrs", "no active SDR: with `mode: round_robin` every account would wait for ever")]


TERRITORY = "  - {id: emea, pool: emea, when: {region: [EMEA]}}"


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("{region: [EMEA]}", "{region: [EMEA], employees: {min: 1000}}"),
        ("{region: [EMEA, NA]}", "{region: [EMEA]}"),
        ("{region: [EMEA]}", "{country: [DE, France]}"),  # a country's region is known
        ("{country: [US]}", "{country: [US], state: [CA]}"),
        ("{state: [US-CA, US-WA]}", "{country: US, state: [California]}"),
        ("{industry: [Software, SaaS]}", "{industry: [' software'], employees: {max: 50}}"),
        ("{employees: {min: 100}}", "{employees: {min: 500, max: 1000}}"),
        ("{employees: {min: 100, max: 5000}}", "{employees: {min: 100, max: 5000}}"),
        ("{domain: [acme.com, globex.com]}", "{domain: [ACME.com], country: [US]}"),
        ("{}", "{region: [NA]}"),
    ],
)
def test_item12_a_territory_shadowed_by_an_earlier_broader_one_is_an_error(
        tmp_path: Path, first: str, second: str) -> None:
    text = edited(TERRITORY,
                  f"  - {{id: wide, pool: emea, when: {first}}}\n  - {{id: narrow, pool: emea, when: {second}}}")
    found = errors(tmp_path, text)
    assert [p for p, _ in found] == ["territories[1]"], found
    assert found[0][1].startswith("never reached: territories[0] ('wide')"), found
    assert found[0][1].endswith("(line 9)")


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("{region: [EMEA], employees: {min: 1000}}", "{region: [EMEA]}"),  # narrower first: fine
        ("{region: [EMEA]}", "{region: [EMEA, NA]}"),
        ("{region: [NA]}", "{country: [DE]}"),
        ("{country: [US]}", "{region: [NA]}"),  # a region is more than one country
        ("{country: [US]}", "{state: [US-CA]}"),  # a state does not say the country trait is set
        ("{state: [US-CA]}", "{country: [US]}"),
        ("{employees: {min: 100}}", "{employees: {max: 1000}}"),
        ("{employees: {min: 100, max: 500}}", "{employees: {min: 100}}"),
        ("{industry: [software]}", "{region: [EMEA]}"),
        ("{domain: [acme.com]}", "{domain: [acme.com, globex.com]}"),
        ("{region: [EMEA], industry: [software]}", "{region: [EMEA]}"),
    ],
)
def test_item12_a_territory_an_earlier_one_does_not_cover_is_valid(tmp_path: Path, first: str, second: str) -> None:
    cfg = loads(tmp_path, edited(
        TERRITORY, f"  - {{id: a, pool: emea, when: {first}}}\n  - {{id: b, pool: emea, when: {second}}}"))
    assert [t.id for t in cfg.territories] == ["a", "b"]


def test_item12_sla_hours_under_one_is_an_error(tmp_path: Path) -> None:
    assert errors(tmp_path, edited("version: 1", "version: 1\nsla_hours: 0.5")) == [
        ("sla_hours", "must be at least 1, got 0.5 (line 2)")]
    assert loads(tmp_path, edited("version: 1", "version: 1\nsla_hours: 1")).sla_hours == 1


def test_item12_an_active_sdr_in_no_pool_who_is_not_a_lead_is_an_error(tmp_path: Path) -> None:
    text = edited("  - {id: ben, name: Ben Fischer, email: ben@example.com}",
                  "  - {id: ben, name: Ben Fischer, email: ben@example.com}\n"
                  "  - {id: dana, name: Dana Lee, email: dana@example.com}")
    assert errors(tmp_path, text) == [(
        "sdrs[2]",
        "SDR 'dana' is active but in no pool and not in `leads`: no account is ever routed to them; add them to a "
        "pool, to `leads`, or set `active: false` (line 5)")]
    # a lead, an inactive SDR, or round_robin mode (every active SDR is in its one pool): valid
    assert loads(tmp_path, text + "leads: [dana]\n").leads == ["dana"]
    assert loads(tmp_path, text.replace("dana@example.com}", "dana@example.com, active: false}"))
    assert loads(tmp_path, text.replace("version: 1", "version: 1\nmode: round_robin")).mode == "round_robin"


def test_item12_territories_with_mode_round_robin_are_a_warning_make_config_prints(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from leadscore.rulesfiles.cli import main as config_main

    for name in ("scoring.yaml", "sources.yaml"):
        (tmp_path / name).write_text((SHIPPED / name).read_text(encoding="utf-8"), encoding="utf-8")
    (tmp_path / "routing.yaml").write_text(
        textwrap.dedent(edited("version: 1", "version: 1\nmode: round_robin")).lstrip(), encoding="utf-8")
    assert config_main(["validate", str(tmp_path), "--write"]) == 0
    err = capsys.readouterr().err
    assert (f"warning: {tmp_path / 'routing.yaml'}: territories: ignored with `mode: round_robin` (one round-robin "
            "over every active SDR); remove them or set `mode: territory` (line 8)") in err
    # the routing file's own command prints it too
    assert main(["validate", str(tmp_path)]) == 0
    assert "territories: ignored with `mode: round_robin`" in capsys.readouterr().err


def test_item12_the_shipped_routing_yaml_has_no_warnings(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(SHIPPED)]) == 0
    assert capsys.readouterr().err == ""
