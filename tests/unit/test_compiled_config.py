"""The pre-validated rules (`config/compiled.json`): what a function's first invocation loads
instead of validating the YAML, so its cold start imports neither pydantic nor yaml."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest
from leadscore.rulesfiles import loading
from leadscore.rulesfiles.errors import ConfigError
from leadscore.rulesfiles.loading import COMPILED_FILE
from leadscore.rulesfiles.model import RulesObject
from leadscore.rulesfiles.routing import RoutingConfig
from leadscore.rulesfiles.scoring import ScoringConfig
from leadscore.rulesfiles.sources import SourcesConfig

REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "config"
FILES = ((loading.SCORING_FILE, ScoringConfig), (loading.SOURCES_FILE, SourcesConfig),
         (loading.ROUTING_FILE, RoutingConfig))


def validated(directory: Path) -> list[tuple[Path, RulesObject]]:
    return [(directory / name, loading.load_rules(model, directory / name, prevalidated=False))
            for name, model in FILES]


def copy_of_shipped(tmp_path: Path) -> Path:
    for name in (*(name for name, _ in FILES), COMPILED_FILE):
        shutil.copy(SHIPPED / name, tmp_path / name)
    return tmp_path


def test_the_shipped_compiled_json_is_up_to_date() -> None:
    assert (SHIPPED / COMPILED_FILE).read_text(encoding="utf-8") == loading.compiled_text(validated(SHIPPED)), (
        "config/compiled.json is stale: run `make config`")


@pytest.mark.parametrize(("name", "model"), FILES)
def test_the_prevalidated_rules_are_the_validated_rules(name: str, model: type[RulesObject]) -> None:
    fast = loading.prevalidated_rules(model, SHIPPED / name)
    assert fast is not None, "not taken from compiled.json"
    slow = loading.load_rules(model, SHIPPED / name, prevalidated=False)
    assert type(fast) is type(slow) is model
    assert fast == slow
    assert repr(fast) == repr(slow)


def test_derived_values_are_the_same_from_either_path() -> None:
    fast = loading.prevalidated_rules(ScoringConfig, SHIPPED / loading.SCORING_FILE)
    slow = loading.load_rules(ScoringConfig, SHIPPED / loading.SCORING_FILE, prevalidated=False)
    assert fast is not None
    assert fast.candidate_rules("track", "Demo Requested") == slow.candidate_rules("track", "Demo Requested")
    assert fast.seniority_patterns == slow.seniority_patterns
    routing = loading.prevalidated_rules(RoutingConfig, SHIPPED / loading.ROUTING_FILE)
    assert routing is not None
    days = [o.from_ for s in routing.sdrs for o in s.out_of_office]
    assert days and all(type(d) is date for d in days)  # dates come back as dates


def test_an_edited_rules_file_is_validated_again(tmp_path: Path) -> None:
    # Given a copy of the shipped rules, compiled.json included, with one value changed
    directory = copy_of_shipped(tmp_path)
    text = (directory / "scoring.yaml").read_text(encoding="utf-8")
    assert "velocity_days: 7" in text
    (directory / "scoring.yaml").write_text(text.replace("velocity_days: 7", "velocity_days: 9"), encoding="utf-8")

    # When loaded, then the edit counts (the stale pre-validated form is not used) ...
    assert loading.prevalidated_rules(ScoringConfig, directory / "scoring.yaml") is None
    assert loading.load_scoring(directory / "scoring.yaml").velocity_days == 9
    # ... while the untouched file still comes from compiled.json
    assert loading.prevalidated_rules(SourcesConfig, directory / "sources.yaml") is not None

    # And a bad edit is reported as ever
    (directory / "scoring.yaml").write_text(text.replace("velocity_days: 7", "velocity_days: soon"), encoding="utf-8")
    with pytest.raises(ConfigError, match="velocity_days: expected a number, got 'soon'"):
        loading.load_scoring(directory / "scoring.yaml")


def test_compiled_json_of_other_code_is_not_used(tmp_path: Path) -> None:
    directory = copy_of_shipped(tmp_path)
    document = json.loads((directory / COMPILED_FILE).read_text(encoding="utf-8"))
    document["code"] = "0" * 64
    (directory / COMPILED_FILE).write_text(json.dumps(document), encoding="utf-8")
    assert loading.prevalidated_rules(ScoringConfig, directory / "scoring.yaml") is None
    assert loading.load_scoring(directory / "scoring.yaml") == loading.load_scoring(SHIPPED / "scoring.yaml")


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "leadscore.rulesfiles", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=60, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": "shared"})


def test_validate_fails_on_a_stale_compiled_json_and_write_refreshes_it(tmp_path: Path) -> None:
    directory = copy_of_shipped(tmp_path)
    text = (directory / "sources.yaml").read_text(encoding="utf-8")
    (directory / "sources.yaml").write_text(text + "\n# a comment\n", encoding="utf-8")

    stale = run_cli("validate", str(directory))
    assert stale.returncode == 1
    assert f"{directory}/{COMPILED_FILE}: out of date" in stale.stderr
    assert "validate --write" in stale.stderr

    written = run_cli("validate", "--write", str(directory))
    assert written.returncode == 0, written.stderr
    assert f"wrote {directory}/{COMPILED_FILE}" in written.stdout
    assert loading.prevalidated_rules(SourcesConfig, directory / "sources.yaml") is not None

    again = run_cli("validate", str(directory))
    assert again.returncode == 0 and f"up to date: {directory}/{COMPILED_FILE}" in again.stdout


def test_loading_the_prevalidated_rules_imports_neither_pydantic_nor_yaml() -> None:
    script = ("import sys; from leadscore.rulesfiles.loading import load_config, "
              "load_routing; load_config('config'); load_routing('config/routing.yaml'); "
              "print(sorted(m for m in ('pydantic', 'pydantic_core', 'yaml') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=60,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": "shared"})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_rules_objects_are_frozen_and_compare_by_value() -> None:
    rules = loading.load_scoring(SHIPPED / "scoring.yaml")
    with pytest.raises(AttributeError):
        rules.velocity_days = 3  # type: ignore[misc]
    assert {"velocity_days", "engagement"} <= set(rules.model_dump())
    assert rules.lifecycle == rules.lifecycle.model_validate({"mql": rules.lifecycle.mql, "sql": rules.lifecycle.sql})
    assert hash(rules.lifecycle) == hash(type(rules.lifecycle)(mql=rules.lifecycle.mql, sql=rules.lifecycle.sql))


def test_the_yaml_is_parsed_by_libyaml_when_pyyaml_has_it() -> None:
    yaml = pytest.importorskip("yaml")
    kit = loading.yaml_readers()
    if getattr(yaml, "__with_libyaml__", False):
        assert kit.fast is not kit.pure
    data, node = loading.compose(kit.fast, "a: 1\nb:\n  - NO\n")
    assert data == {"a": 1, "b": ["NO"]}  # YAML 1.2 booleans with libyaml too
    assert node.value[1][0].start_mark.line == 1  # marks (lines of errors) with libyaml too
