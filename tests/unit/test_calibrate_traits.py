"""An account's traits at its close (services/calibrate.traits_at_close): what its persons had
said by then, merged as the aggregation merges them (the last change wins a key), over the
stored traits no retained event explains; a stored key only later events set is left out; the
same whichever order the shards hand the persons in, and through a partial's JSON."""

from __future__ import annotations

import json

from leadscore.services.calibrate import SaidTraits, traits_at_close

STORED = {"company": {"name": "Acme", "industry": "Software"},
          "group": {"name": "Acme Inc", "industry": "Software", "employees": 200, "plan": "enterprise"}}


def test_a_key_only_an_event_after_the_close_set_is_left_out_and_one_no_event_explains_is_kept() -> None:
    said = SaidTraits("u:a", 100.0, company={"name": "Acme"}, group={"name": "Acme Inc", "industry": "Retail"},
                      later_group=frozenset({"industry", "employees"}))
    traits = traits_at_close(STORED, [said])
    # industry: as said by the close; employees: set only after it (gone); plan: no event behind it (kept)
    assert traits["group"] == {"plan": "enterprise", "name": "Acme Inc", "industry": "Retail"}
    # company: the profile's industry has no retained event behind it: the stored value stands
    assert traits["company"] == {"industry": "Software", "name": "Acme"}


def test_the_person_who_said_a_key_last_wins_it_whatever_order_the_persons_come_in() -> None:
    early = SaidTraits("u:b", 100.0, group={"industry": "Retail"})
    late = SaidTraits("u:a", 200.0, group={"industry": "Software"})
    assert traits_at_close({}, [early, late])["group"] == {"industry": "Software"}
    assert traits_at_close({}, [late, early])["group"] == {"industry": "Software"}
    tie = SaidTraits("u:c", 200.0, group={"industry": "Fintech"})
    assert traits_at_close({}, [tie, late])["group"] == traits_at_close({}, [late, tie])["group"] \
        == {"industry": "Fintech"}  # a tie goes by the person's key: the same on every run


def test_with_nothing_said_after_the_close_the_stored_traits_stand() -> None:
    assert traits_at_close(STORED, []) == STORED
    same = SaidTraits("u:a", 100.0, company=dict(STORED["company"]), group=dict(STORED["group"]))
    assert traits_at_close(STORED, [same]) == STORED
    assert traits_at_close({}, []) == {}


def test_what_a_person_said_survives_a_partials_json() -> None:
    said = SaidTraits("u:a", 1767225600.5, company={"industry": "Software"},
                      group={"address": {"country": "US"}, "employees": 200},
                      later_company=frozenset({"name"}), later_group=frozenset({"industry", "employees"}))
    assert SaidTraits.from_doc(json.loads(json.dumps(said.doc()))) == said
