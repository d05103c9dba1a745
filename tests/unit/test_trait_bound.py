"""The bound on a stored event's traits (issue 21, item 16): what the rules, routing and the
Segment Spec know is never dropped for keys nobody reads.

Collection on the in-memory store, the event's stored form as the storage layer writes it,
then the stream aggregation on the fakes and the contact's fit."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from itertools import count
from pathlib import Path
from typing import Any

import pytest
from leadscore.adapters import items
from leadscore.adapters.streams import change_of
from leadscore.engine.routing import AccountTraits
from leadscore.engine.rules import derive_traits
from leadscore.rulesfiles.loading import Config, load_config, load_scoring
from leadscore.services.aggregate import ContactAggregator
from leadscore.services.collect import Collector

from tests.support.fakes import MemoryStore

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
BOUND = 600  # bytes of a stored event's traits JSON (items._JSON_BYTES)
EXTRAS: dict[str, Any] = {**{f"x{i:02d}": f"val-{i:02d}" for i in range(16)}, "meta": {"owner": "pat"}}
KNOWN = {"email": "dee@acmetech.io", "title": "Director of Sales",
         "company": {"name": "Acme Tech", "industry": "Software", "employee_count": 200}}
_sequence = count(10**20)


@pytest.fixture(scope="module")
def config() -> Config:
    return load_config()


def collect_and_fold(config: Config, message: dict[str, Any]) -> tuple[dict[str, Any], Any]:
    """(the stored event's traits, the contact after the stream folded it)."""
    store = MemoryStore()
    result = Collector(store, config).collect([message], source_id="website", received_at=NOW)
    assert result.accepted == 1, result
    (stored,) = store.events.values()
    image = items.event_item(stored.event, stored.hits, 400)
    record = change_of(str(next(_sequence)), "INSERT", items.table_key(image), image, None)
    assert ContactAggregator(store, config, NOW).apply([record]) == {}
    return json.loads(image["tr"]), store.contacts[stored.event.contact_key]


def test_item16_known_traits_survive_unknown_keys_in_both_placements(config: Config) -> None:
    # Given 17 custom keys (strings, a nested object) in traits.company and in context.traits
    message = {"type": "identify", "userId": "u-dee", "traits": {**KNOWN, "company": {**KNOWN["company"], **EXTRAS}},
               "context": {"traits": dict(EXTRAS)}}
    traits, contact = collect_and_fold(config, message)
    # Then the stored traits keep every known one, within the bound, custom keys dropped
    assert traits["company"]["industry"] == "Software" and traits["company"]["employee_count"] == 200
    assert traits["company"]["name"] == "Acme Tech" and traits["title"] == KNOWN["title"]
    assert len(json.dumps(traits, separators=(",", ":"), ensure_ascii=False).encode()) <= BOUND
    custom = [*(set(traits) - set(KNOWN)), *(set(traits["company"]) - set(KNOWN["company"]))]
    assert 0 < len(custom) < 2 * len(EXTRAS)  # what went is custom keys, the last ones sent first
    # and the contact's fit is director 10 + software 15 + 50-500 employees 10
    assert contact.scores.fit == 35


@pytest.mark.parametrize("placement", ["own", "context"])
def test_one_placement_alone_keeps_everything_it_fits(config: Config, placement: str) -> None:
    own = {**KNOWN, "company": {**KNOWN["company"], **EXTRAS}} if placement == "own" else KNOWN
    message = {"type": "identify", "userId": "u-one", "traits": own,
               "context": {"traits": dict(EXTRAS) if placement == "context" else {}}}
    traits, contact = collect_and_fold(config, message)
    assert contact.scores.fit == 35
    assert set(EXTRAS) <= set(traits if placement == "context" else traits["company"])


def trait_rank(scoring: Any) -> Any:
    from leadscore.engine.messages import trait_rank

    return trait_rank(scoring)


def _rank(config: Config) -> Any:
    return trait_rank(config.scoring)


def _bounded(value: dict[str, Any], rank: Any, budget: int = BOUND) -> dict[str, Any]:
    text = items.compact_json(value, budget, rank)
    assert text is not None and len(text.encode()) <= budget, text
    loaded = json.loads(text)
    assert isinstance(loaded, dict)
    return loaded


def test_the_bound_drops_custom_keys_last_first_then_spec_ones_then_what_the_rules_read(config: Config) -> None:
    rank = _rank(config)
    custom = {f"custom_{i:02d}": "c" * 40 for i in range(20)}
    spec = {"avatar": "https://cdn.example/" + "a" * 150, "description": "d" * 190, "phone": "+1 555 0100"}
    read = {"title": "VP Sales", "email": "jo@acme.com", "address": {"country": "US", "state": "CA"},
            "company": {"industry": "Software", "employee_count": 200, "tier": "gold"}}
    kept = _bounded({**read, **custom, **spec}, rank)
    assert {k: v for k, v in kept.items() if k in read} == {**read, "company": {**read["company"], "tier": "gold"}}
    assert spec.items() <= kept.items()
    # custom keys go from the end: the first ones stay while they fit
    dropped = [k for k in custom if k not in kept]
    assert dropped and dropped == list(custom)[-len(dropped):]
    # with less room, the Spec's unread traits go before what the rules read
    tight = _bounded({**read, **custom, **spec}, rank, budget=200)
    assert "custom_00" not in tight and "avatar" not in tight and "description" not in tight
    assert tight["company"]["industry"] == "Software" and tight["title"] == "VP Sales"
    assert tight["address"]["country"] == "US" and "tier" not in tight["company"]


def test_a_flattened_known_trait_counts_as_known(config: Config) -> None:
    kept = _bounded({**{f"k{i:02d}": "v" * 30 for i in range(30)}, "company.industry": "Software"}, _rank(config))
    assert kept["company.industry"] == "Software" and len(kept) < 31


def test_a_fit_rule_on_a_custom_trait_protects_it(config: Config, tmp_path: Path) -> None:
    text = (Path(config.dir) / "scoring.yaml").read_text()
    text = text.replace("fit:\n  - id: title_executive",
                        "fit:\n  - id: crm_tier_gold\n    trait: crm.tier\n    equals: gold\n    points: 5\n"
                        "  - id: title_executive", 1)
    (tmp_path / "scoring.yaml").write_text(text)
    scoring = load_scoring(tmp_path / "scoring.yaml")
    assert any(rule.trait == "crm.tier" for rule in scoring.fit)
    traits = {**{f"k{i:02d}": "v" * 30 for i in range(30)}, "crm": {"tier": "gold", "note": "n" * 100}}
    assert _bounded(traits, trait_rank(scoring))["crm"] == {"tier": "gold"}
    assert "crm" not in _bounded(traits, _rank(config))  # unread under the shipped rules


def test_routing_and_the_derived_traits_read_the_same_after_the_bound(config: Config) -> None:
    read = {"address": {"country": "United States", "state": "CA"}, "country": "US", "state": "CA",
            "industry": "Software", "employees": 120, "employee_count": 120, "lifecycle": "customer",
            "company": {"country": "US", "industry": "SaaS", "employee_count": 120, "domain": "acme.com",
                        "website": "acme.com", "name": "Acme"},
            "title": "VP Sales", "seniority": "vp", "email": "jo@acme.com", "website": "acme.com",
            "domain": "acme.com", "name": "Jo", "firstName": "Jo", "lastName": "Park"}
    full = {**{f"custom_{i:02d}": "c" * 60 for i in range(40)}, **read}
    kept = _bounded(full, _rank(config), budget=len(json.dumps(read, separators=(",", ":"))) + 40)
    assert AccountTraits.from_traits("acme.com", kept) == AccountTraits.from_traits("acme.com", full)
    derived, derived_full = derive_traits(config.scoring, kept), derive_traits(config.scoring, full)
    for key in ("seniority", "email_domain", "email_domain_type", "country_code"):
        assert derived[key] == derived_full[key], key
    assert {k: kept[k] for k in read} == read


def test_item16_an_unsubscribe_among_many_properties_still_unsubscribes(config: Config) -> None:
    # Given an Unsubscribed whose custom properties fill the bound before `all: true`
    properties = {**{f"mailing_{i:02d}": "m" * 40 for i in range(20)}, "all": True}
    message = {"type": "track", "userId": "u-un", "event": "Unsubscribed", "properties": properties}
    store = MemoryStore()
    Collector(store, config).collect([message], source_id="email", received_at=NOW)
    (stored,) = store.events.values()
    image = items.event_item(stored.event, stored.hits, 400)
    assert len(image["pr"].encode()) <= BOUND and json.loads(image["pr"])["all"] is True
    record = change_of(str(next(_sequence)), "INSERT", items.table_key(image), image, None)
    ContactAggregator(store, config, NOW).apply([record])
    # Then the contact is unsubscribed from everything (no longer counts towards routing)
    assert store.contacts["u:u-un"].unsubscribed


def test_the_bound_cuts_long_text_and_drops_lists_and_deep_objects_first(config: Config) -> None:
    kept = _bounded({"title": "t" * 500, "k" * 100: 1, "tags": ["a", "b"],
                     "company": {"industry": "Software", "meta": {"deep": 1}}}, _rank(config))
    assert kept == {"title": "t" * 200, "k" * 64: 1, "company": {"industry": "Software", "meta": {}}}
    # within the bound nothing else changes, and a stored form stays as it is
    assert items.compact_json(kept, BOUND, _rank(config)) == json.dumps(kept, separators=(",", ":"))


def test_properties_keep_what_is_read_after_collection_over_custom_ones(config: Config, tmp_path: Path) -> None:
    from leadscore.engine.messages import property_rank

    read = {"form_id": "demo-request", "stage": "bottom", "url": "https://acme.com/pricing", "scope": "all"}
    props = {**read, **{f"utm_{i:02d}": "u" * 40 for i in range(20)}, "plan_viewed": "enterprise"}
    kept = json.loads(items.compact_json(props, BOUND, property_rank(config.scoring)) or "{}")
    assert read.items() <= kept.items() and "plan_viewed" not in kept
    # a property an engagement rule matches on is kept as well
    text = (Path(config.dir) / "scoring.yaml").read_text().replace(
        "properties: {stage: bottom}}", "properties: {stage: bottom, plan_viewed: enterprise}}", 1)
    (tmp_path / "scoring.yaml").write_text(text)
    kept = json.loads(items.compact_json(props, BOUND, property_rank(load_scoring(tmp_path / "scoring.yaml"))) or "{}")
    assert kept["plan_viewed"] == "enterprise" and read.items() <= kept.items()
