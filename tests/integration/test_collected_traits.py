"""Traits through collection end to end (issue 21, item 16): a stored event's traits are
bounded, and the bound never drops a trait the rules, routing or the Segment Spec know for
keys nobody reads."""

from __future__ import annotations

import json
from typing import Any

from tests.integration.conftest import Pipeline

# 16 custom strings and a nested object: the shape a CRM sync puts in both placements
EXTRAS: dict[str, Any] = {**{f"x{i:02d}": f"val-{i:02d}" for i in range(16)}, "meta": {"owner": "pat"}}
KNOWN = {"email": "dee@acmetech.io", "title": "Director of Sales",
         "company": {"name": "Acme Tech", "industry": "Software", "employee_count": 200}}


def identify(user_id: str, own: dict[str, Any], context: dict[str, Any]) -> dict[str, Any]:
    return {"userId": user_id, "traits": own, "context": {"traits": context}}


def test_item16_collection_keeps_known_traits_over_unknown_ones(pipeline: Pipeline) -> None:
    # Given an identify whose company carries 17 custom keys, and whose context.traits
    # carries the same keys again (no company): together over the stored event's bound
    company = {**KNOWN["company"], **EXTRAS}
    pipeline.send("identify", identify("u-dee", {**KNOWN, "company": company}, dict(EXTRAS)))
    # and the same number of small integer keys, which fit either way
    numbers = {f"x{i:02d}": i for i in range(17)}
    pipeline.send("identify", identify("u-ints", {**KNOWN, "email": "int@acmetech.io",
                                                  "company": {**KNOWN["company"], **numbers}}, numbers))
    pipeline.settle()

    # Then the contact keeps its company's industry and size: director 10 + software 15 +
    # 50-500 employees 10
    for user in ("u-dee", "u-ints"):
        contact = pipeline.contact(user)
        rules = {line["rule"] for line in contact["breakdown"]}
        assert {"title_manager", "industry_technology", "company_size"} <= rules, (user, rules)
        assert contact["fit"] == 35, (user, contact["breakdown"])
    # and so does its account (fit on the company traits its contacts bring)
    account_rules = {line["rule"] for line in pipeline.account("acmetech.io")["breakdown"]}
    assert {"account_industry_technology", "account_size"} <= account_rules, account_rules
    # and what was dropped to stay within the bound is custom keys only
    stored = next(i for i in pipeline.table_items() if i.get("k") == "E" and i.get("uid") == "u-dee")
    traits = json.loads(stored["tr"])
    assert traits["company"]["industry"] == "Software" and traits["company"]["employee_count"] == 200
    assert traits["email"] == KNOWN["email"] and traits["title"] == KNOWN["title"]
    assert len(stored["tr"].encode()) <= 600
