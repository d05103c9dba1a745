"""Loading and validating config/scoring.yaml and config/sources.yaml."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from leadscore.rulesfiles import loading
from leadscore.rulesfiles.errors import ConfigError
from leadscore.rulesfiles.loading import load_config, load_scoring, load_sources
from leadscore.rulesfiles.scoring import ScoringConfig
from leadscore.rulesfiles.sources import SourcesConfig

REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "config"


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


def scoring_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str) -> ConfigError:
    # Loaded by a relative path from the directory above, as `make validate` does.
    write(tmp_path / "config", "scoring.yaml", text)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as caught:
        load_scoring("config/scoring.yaml")
    return caught.value


def shipped_with(tmp_path: Path, old: str, new: str, name: str = "scoring.yaml") -> Path:
    text = (SHIPPED / name).read_text(encoding="utf-8")
    assert old in text, old
    for other in ("scoring.yaml", "sources.yaml"):
        shutil.copy(SHIPPED / other, tmp_path / other)
    (tmp_path / name).write_text(text.replace(old, new, 1), encoding="utf-8")
    return tmp_path / name


# ----------------------------------------------------------------- shipped files


def test_the_shipped_config_validates() -> None:
    # Given the repo's config directory, When loaded, Then both files are valid
    cfg = load_config(SHIPPED)
    assert isinstance(cfg.scoring, ScoringConfig)
    assert isinstance(cfg.sources, SourcesConfig)
    assert cfg.dir == SHIPPED.resolve()


def test_the_shipped_scoring_carries_the_guides_example_values() -> None:
    cfg = load_scoring(SHIPPED / "scoring.yaml")
    engagement = {r.id: r for r in cfg.engagement}
    assert (cfg.lifecycle.mql, cfg.lifecycle.sql) == (35, 65)
    assert {r.id: r.points for r in cfg.fit} == {
        "title_executive": 20,
        "title_manager": 10,
        "industry_technology": 15,
        "company_size": 10,
        "country_focus": 5,
        "disposable_email": -10,
    }
    assert engagement["pricing_page"].points == 15
    assert engagement["pricing_page"].cap == 45
    assert engagement["email_opened"].category == "email"
    assert engagement["email_opened"].cap == 25
    assert engagement["demo_requested"].points == 50
    assert [b.points for b in engagement["site_visits"].buckets or []] == [3, 6]
    assert cfg.decay["email"].stale_after_days == 30
    assert cfg.decay["email"].half_life_days == 30
    assert (cfg.velocity_days, cfg.visit_gap_minutes) == (7, 30)
    account = cfg.account
    assert (account.top_contacts, account.contact_cap) == (5, 80)
    assert account.thresholds.sdr_ready == 100
    assert account.thresholds.requalify_below == 80
    assert account.persona("vp") == "decision_maker"
    assert account.persona("manager") == "influencer"
    assert account.persona("senior") == account.persona(None) == "user"
    assert account.persona_weights == {"decision_maker": 1.0, "influencer": 0.8, "user": 0.5}
    assert account.exclusions.own_domain_set == frozenset({"example.com"})
    assert account.not_ready_cooldown_days == 14


def test_sources_lookups() -> None:
    # Given the shipped sources
    sources = load_sources(SHIPPED / "sources.yaml")

    # Then write keys, forms and bus sources resolve
    website = sources.by_write_key("wk_demo_website")
    assert website is not None and website.id == "website"
    assert "http://localhost:8000" in website.cors_origins
    assert sources.by_write_key("nope") is None
    assert sources.by_write_key(None) is None
    assert sources.source("email") is not None
    assert sources.source("crm") is None
    # only the server-side CRM sync may name an account's owner
    assert [s.id for s in sources.sources if s.trusted] == ["crm-sync"]
    assert sources.trusted("crm-sync") and not sources.trusted("website") and not sources.trusted("bus:crm-sync")
    form = sources.form("demo-request")
    assert form is not None and form.stage == "bottom" and form.redirect
    assert sources.form("webinar-registration").stage == "middle"  # type: ignore[union-attr]
    assert sources.form("checklist-download").stage == "top"  # type: ignore[union-attr]
    assert sources.form("nope") is None
    assert sources.bus_source("com.example.product.billing") == "product"
    assert sources.bus_source("com.other") == "bus:com.other"


def test_load_config_is_cached_per_directory(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # Given the config directory named through the environment
    shutil.copytree(SHIPPED, tmp_path / "cfg")
    monkeypatch.setenv("LEADSCORE_CONFIG_DIR", str(tmp_path / "cfg"))
    load_config.cache_clear()

    # When loaded twice, by default and by path
    first = load_config()
    second = load_config(tmp_path / "cfg" / ".." / "cfg")

    # Then it is read once; clearing the cache reads it again
    assert loading.default_config_dir() == tmp_path / "cfg"
    assert first is second
    load_config.cache_clear()
    assert load_config() is not first
    load_config.cache_clear()


def test_default_config_dir_falls_back_to_the_repo(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LEADSCORE_CONFIG_DIR", raising=False)
    if not Path("/opt/scoring.yaml").exists() and not Path("/opt/config/scoring.yaml").exists():
        assert loading.default_config_dir() == SHIPPED


# ------------------------------------------------------------------- errors


def test_a_bad_points_type_names_file_rule_and_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a rule whose points are not a number
    error = scoring_error(
        tmp_path,
        monkeypatch,
        """
        version: 1
        engagement:
          - id: a
            category: web
            points: 5
            when: {event: A}
          - id: b
            category: web
            points: ten
            when: {event: B}
        """,
    )

    # Then the message names the file, the key path and the line
    assert str(error) == "config/scoring.yaml: engagement[1].points: expected a number, got 'ten' (line 9)"
    assert (error.file, error.path) == ("config/scoring.yaml", "engagement[1].points")
    assert error.errors == [("engagement[1].points", "expected a number, got 'ten' (line 9)")]


@pytest.mark.parametrize("value", ['"10"', "yes", "true", "[10]"])
def test_numbers_are_strict(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    # Given points written as a string, a YAML 1.1 boolean, a boolean or a list
    error = scoring_error(
        tmp_path,
        monkeypatch,
        f"version: 1\nengagement:\n  - {{id: a, category: web, points: {value}, when: {{}}}}\n",
    )

    # Then it is an error, not a silent coercion
    assert error.path == "engagement[0].points"
    assert error.reason.startswith("expected a number")


def test_an_unknown_key_is_named_with_a_suggestion(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a typo in a rule key and an unknown top-level section
    error = scoring_error(
        tmp_path,
        monkeypatch,
        """
        version: 1
        fit:
          - id: a
            trait: title
            equals: CEO
            pionts: 5
        routing: {}
        """,
    )

    # Then each is reported where it is, the typo with the likely key
    assert error.errors == [
        ("fit[0].pionts", "unknown key; did you mean 'points'? (line 6)"),
        (
            "routing",
            "unknown key (allowed: version, seniority, lifecycle, fit, engagement, decay, velocity_days, "
            "visit_gap_minutes, account) (line 7)",
        ),
    ]
    assert len(str(error).splitlines()) == 2


def test_overlapping_buckets_are_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given buckets where 500 would fall in two
    error = scoring_error(
        tmp_path,
        monkeypatch,
        """
        version: 1
        fit:
          - id: size
            trait: company.employee_count
            buckets:
              - {min: 50, max: 500, points: 10}
              - {min: 500, points: 5}
        """,
    )

    # Then the second bucket is named
    assert error.path == "fit[0].buckets[1]"
    assert error.reason == "overlaps buckets[0] (50-500): exactly one bucket must apply (line 7)"


def test_a_bad_regex_is_caught_at_load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    error = scoring_error(
        tmp_path,
        monkeypatch,
        """
        version: 1
        seniority:
          vp: ['\\bvp\\b', '(unclosed']
        fit:
          - {id: gov, trait: email_domain, pattern: '[a-', points: 1}
        """,
    )
    assert [p for p, _ in error.errors] == ["seniority.vp[1]", "fit[0].pattern"]
    assert error.reason.startswith("bad regex '(unclosed': missing ), unterminated subpattern")


def test_a_yaml_syntax_error_names_the_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    error = scoring_error(
        tmp_path,
        monkeypatch,
        """
        version: 1
        fit:
          - id: a
            trait: title
           points: 3
        """,
    )
    assert error.path == "line 5"
    assert str(error).startswith("config/scoring.yaml: line 5: YAML syntax error: ")


def test_a_duplicate_yaml_key_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    error = scoring_error(tmp_path, monkeypatch, "version: 1\nvelocity_days: 7\nvelocity_days: 14\n")
    assert str(error) == "config/scoring.yaml: line 3: duplicate key 'velocity_days' (column 1)"


def test_norway_stays_a_country_code(tmp_path: Path) -> None:
    # Given YAML 1.1 booleans look-alikes (NO, yes, on) as values
    path = write(
        tmp_path,
        "scoring.yaml",
        "version: 1\nfit:\n  - {id: nordics, trait: country_code, in: [NO, SE], points: 1}\n",
    )

    # Then they stay strings
    assert load_scoring(path).fit[0].in_ == ["NO", "SE"]


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("version: 2\nfoo: 1\n", "unsupported version 2; this release reads version 1"),
        ("version: '1'\n", "unsupported version '1'; this release reads version 1"),
        ("fit: []\n", "required key missing (this format: `version: 1`)"),
    ],
)
def test_an_unknown_version_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, reason: str
) -> None:
    error = scoring_error(tmp_path, monkeypatch, text)
    assert (error.path, error.reason) == ("version", reason)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "the file is empty; it starts with `version: 1`"),
        ("- 1\n", "expected a mapping of keys, got a list"),
    ],
)
def test_a_file_that_is_not_a_mapping(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, reason: str
) -> None:
    error = scoring_error(tmp_path, monkeypatch, text)
    assert (error.path, error.reason) == ("(root)", reason)


def test_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_sources(tmp_path / "sources.yaml")
    assert caught.value.reason == "file not found"


@pytest.mark.parametrize(
    ("old", "new", "path", "reason"),
    [
        (
            "  - id: careers_page",
            "  - id: pricing_page",
            "engagement[1].id",
            "duplicate rule id 'pricing_page' (first at engagement[0])",
        ),
        (
            "  email:\n    stale_after_days: 30",
            "  mail:\n    stale_after_days: 30",
            "decay.mail",
            "no engagement rule",
        ),
        (
            "    requalify_below: 80",
            "    requalify_below: 100",
            "account.thresholds.requalify_below",
            "must be below",
        ),
        ("  mql: 35", "  mql: 65", "lifecycle.mql", "mql (65) must be below sql (65)"),
        (
            "    influencer: [director, manager]",
            "    influencer: [director, manager, boss]",
            "account.personas.influencer[2]",
            "unknown seniority level 'boss'",
        ),
        (
            "    influencer: [director, manager]",
            "    influencer: [director, manager, vp]",
            "account.personas.influencer[2]",
            "level 'vp' is already in persona 'decision_maker'",
        ),
        ("    user: 0.5\n", "", "account.persona_weights", "no weight for persona 'user'"),
        (
            "    in: [director, manager]\n",
            "    in: [director, manager]\n    min: 3\n",
            "fit[1]",
            "give exactly one of",
        ),
        ("    cap: 45\n", "    cap: 0\n", "engagement[0].cap", "must be greater than 0, got 0"),
        (
            "    limit: {max: 1, per_days: 1}",
            "    limit: {max: 0, per_days: 1}",
            "engagement[0].limit.max",
            "must be at least 1, got 0",
        ),
        (
            "when: {type: page, url_contains: /pricing}",
            "when: {type: identify}",
            "engagement[0].when.type[0]",
            "never earn",
        ),
        ("    when: {event: Webinar Attended}\n", "", "engagement[3].when", "required key missing"),
        ("    counter: visits\n", "", "engagement[13].buckets", "only counter rules have buckets"),
        (
            "{min: 6, points: 6",
            "{min: 5, points: 6",
            "engagement[13].buckets[1]",
            "overlaps buckets[0] (2-5)",
        ),
        (
            "{min: 2, max: 5, points: 3",
            "{min: 5, max: 2, points: 3",
            "engagement[13].buckets[0].min",
            "above max",
        ),
        ("  - id: pricing_page", "  - id: pricing page", "engagement[0].id", "'pricing page': use"),
        ("velocity_days: 7", "velocity_days: 0", "velocity_days", "must be greater than 0"),
    ],
)
def test_semantic_errors(tmp_path: Path, old: str, new: str, path: str, reason: str) -> None:
    # Given the shipped scoring.yaml with one mistake
    bad = shipped_with(tmp_path, old, new)

    # When loaded
    with pytest.raises(ConfigError) as caught:
        load_scoring(bad)

    # Then the mistake is named where it is
    assert caught.value.path == path, str(caught.value)
    assert reason in caught.value.reason


def test_several_errors_are_reported_together(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "scoring.yaml",
        """
        version: 1
        fit:
          - {id: a, trait: x, equals: 1, points: one}
          - {id: b, trait: x, contains: '', points: 1}
        engagement:
          - {id: c, category: web, points: 1, when: {url_contains: /x}, limit: {max: 1}}
        """,
    )
    with pytest.raises(ConfigError) as caught:
        load_scoring(path)
    assert [p for p, _ in caught.value.errors] == [
        "fit[0].points",
        "fit[1].contains",
        "engagement[0].limit.per_days",
    ]
    assert str(caught.value).count(f"{path}: ") == 3


@pytest.mark.parametrize(
    ("old", "new", "path", "reason"),
    [
        (
            "write_key: wk_demo_email",
            "write_key: wk_demo_website",
            "sources[1].write_key",
            "already used by sources[0]",
        ),
        ("  - id: email", "  - id: website", "sources[1].id", "duplicate source id"),
        (
            "    stage: middle",
            "    stage: mid",
            "forms[1].stage",
            "expected 'top', 'middle' or 'bottom', got 'mid'",
        ),
        ("    source: product", "    source: crm", "bus_sources[0].source", "unknown source 'crm'"),
        (
            '"http://localhost:8000", ',
            '"http://localhost:8000/app", ',
            "sources[0].cors_origins[0]",
            "no path",
        ),
        ("write_key: wk_demo_email", "write_key: 'wk:1'", "sources[1].write_key", "must not contain ':'"),
        ("  - id: checklist-download", "  - id: demo-request", "forms[2].id", "duplicate form id"),
        (
            'redirect: "http://localhost:8000/thanks.html"',
            "redirect: thanks",
            "forms[0].redirect",
            "not an http(s)",
        ),
        (
            "    name: Product back end\n",
            "    name: Product back end\n    secret: x\n",
            "sources[2].secret",
            "unknown key",
        ),
        (
            '"http://127.0.0.1:8000"]\n',
            '"http://127.0.0.1:8000"]\n    trusted: true\n',
            "sources[0].trusted",
            "a browser source (cors_origins) cannot be trusted",
        ),
        ("    source: website\n    redirect", "    source: crm-sync\n    redirect", "forms[0].source",
         "a form posts from browsers"),
        ("    trusted: true", "    trusted: maybe", "sources[3].trusted", "expected true or false"),
    ],
)
def test_sources_errors(tmp_path: Path, old: str, new: str, path: str, reason: str) -> None:
    bad = shipped_with(tmp_path, old, new, name="sources.yaml")
    with pytest.raises(ConfigError) as caught:
        load_sources(bad)
    assert caught.value.path == path, str(caught.value)
    assert reason in caught.value.reason


def test_properties_conditions_have_a_shorthand() -> None:
    cfg = ScoringConfig.model_validate(
        {
            "version": 1,
            "engagement": [
                {
                    "id": "p",
                    "category": "c",
                    "points": 1,
                    "when": {"event": "E", "properties": {"a": "x", "b": ["y", "z"], "c": {"min": 3}}},
                }
            ],
        }
    )
    props = cfg.engagement[0].when.properties  # type: ignore[union-attr]
    assert props is not None
    assert (props["a"].equals, props["b"].in_, props["c"].min) == ("x", ["y", "z"], 3)


def test_config_error_formats_one_line_per_problem() -> None:
    error = ConfigError("f.yaml", errors=[("a", "bad"), ("b[1]", "worse")])
    assert str(error) == "f.yaml: a: bad\nf.yaml: b[1]: worse"
    assert (error.file, error.path, error.reason) == ("f.yaml", "a", "bad")
    assert str(ConfigError("f.yaml", "x.y", "nope")) == "f.yaml: x.y: nope"


# ------------------------------------------------------------------------- CLI


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": "shared"}
    env.pop("LEADSCORE_CONFIG_DIR", None)
    return subprocess.run(
        [sys.executable, "-m", "leadscore.rulesfiles", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_cli_validate_succeeds_on_the_shipped_config() -> None:
    result = run_cli("validate", "config")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("ok: config/scoring.yaml (") and lines[0].endswith(" rules)")
    assert lines[1] == "ok: config/sources.yaml (4 sources, 3 forms)"
    assert lines[2].startswith("ok: config/routing.yaml (") and "SDRs" in lines[2]


def test_cli_validate_without_a_directory_uses_the_default() -> None:
    result = run_cli("validate")
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("ok: ") == 3  # scoring, sources, routing


def test_cli_validate_fails_with_the_errors(tmp_path: Path) -> None:
    # Given a config directory whose scoring.yaml has a bad value
    shipped_with(tmp_path, "    cap: 45\n", "    cap: lots\n")

    # When validated
    result = run_cli("validate", str(tmp_path))

    # Then exit status 1, the error on stderr, and the valid file still reported ok
    assert result.returncode == 1
    assert f"{tmp_path}/scoring.yaml: engagement[0].cap: expected a number, got 'lots'" in result.stderr
    assert f"ok: {tmp_path}/sources.yaml" in result.stdout


def test_cli_usage_error() -> None:
    result = run_cli()
    assert result.returncode == 2
