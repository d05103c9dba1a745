"""The account item's entries and traits as ONE compressed Binary attribute (`items.ACCOUNT_BODY`):
under 1 KB for a full account of named contacts (one write unit, issue 26's cost budget), exact
on a round trip (the item, DynamoDB's typed JSON, a Lambda stream record), and items written
before it (`top` and `tr` as JSON texts) still read and replaced whole by their next write."""

from __future__ import annotations

import base64
import json
import zlib
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from leadscore.adapters import items
from leadscore.adapters.streams import parse_batch
from leadscore.adapters.table import marshal, unmarshal
from leadscore.domain.ledgers import ContactEntry, CounterPoints, RuleLedger
from leadscore.domain.records import Account, RoutingStatus
from leadscore.services.changes import AccountChanged

from bench.meter import item_size

T0 = 1_793_617_200
KB = 1024
FIRST = ["Alexandra", "Maximilian", "Guinevere", "Evangeline", "Fitzgerald", "Anastasia", "Christopher", "Priyanka"]
LAST = ["Konstantinou", "Featherstone", "Vandenberghe", "Oyelaran", "Wojciechowski", "Montgomery", "Santamaria",
        "Ramakrishnan"]
TITLES = ["Senior Vice President, Global Sales", "Director of Infrastructure Engineering",
          "Head of Revenue Operations, EMEA", "Principal Solutions Architect", "Chief Information Security Officer",
          "VP Demand Generation & Field Marketing", "Group Product Manager, Data Platform",
          "Regional Director, Strategic Accounts"]


def full_account(first: list[str] = FIRST, last: list[str] = LAST, titles: list[str] = TITLES,
                 domain: str = "globex-corp.com") -> Account:
    """The default top-contacts count (5, plus the 3 kept beyond it: 8 entries), every contact
    named, titled, with an email and two scored rules, the account SDR-ready and due for routing."""
    entries = []
    for i, (given_name, family, title) in enumerate(zip(first, last, titles, strict=True)):
        email = f"{given_name}.{family}@{domain}".lower()
        rules: dict[str, RuleLedger | CounterPoints] = {
            "webinar_attended": RuleLedger(touches=[[T0 + 3600 * i, 20.0], [T0 + 86400 + 60 * i, 20.0]], count=2),
            "pricing_page": RuleLedger(touches=[[T0 + 7200 + i, 15.0]], count=1)}
        entries.append(ContactEntry(key=f"u:{email}", version=7 + i, email=email, title=title,
                                    name=f"{given_name} {family}", persona="decision_maker" if i < 3 else "influencer",
                                    fit=35.0, rules=rules, recent=[[float(T0 + 86400 + 60 * i), 20.0]],
                                    last_engaged=float(T0 + 86400 + 60 * i)))
    return Account(
        id=domain, version=12, entries=entries,
        traits={"company": {"name": "Globex Corporation", "industry": "Software", "employee_count": 4200,
                            "country": "US"}, "group": {"plan": "enterprise"}},
        name="Globex Corporation", domain=domain, threshold=100.0, fit=40.0, engagement=380.0, bonus=15.0,
        score=435.0, velocity=120.0, state="sdr_ready", cycle=1, state_at="2026-11-03T09:01:00+00:00",
        state_why="score crossed the threshold", first_seen="2026-11-02T09:00:00+00:00",
        updated_at="2026-11-03T09:01:00+00:00", routing=RoutingStatus(due_at="2026-11-03T09:16:00+00:00"))


def old_item(account: Account) -> dict[str, Any]:
    """The account's item as written before the body: `top` and `tr` two JSON texts."""
    item = items.account_item(account)
    item["top"] = json.dumps([items.entry_doc(e) for e in account.entries], separators=(",", ":"))
    item["tr"] = json.dumps(account.traits, separators=(",", ":"), default=str)
    return item


def stored_size(item: dict[str, Any]) -> int:
    """DynamoDB's item size (attribute names + values) of an item as the table stores it."""
    return item_size(marshal(item))


# ------------------------------------------------------------------ size


def test_a_full_account_of_named_titled_contacts_is_one_write_unit() -> None:
    account = full_account()
    assert len(account.entries) == 8
    new, old = stored_size(items.account_item(account)), stored_size(old_item(account))
    assert new < KB, new
    assert old > 3 * KB, old  # what it was: four write units


def test_a_full_account_with_short_names_stays_well_under_1_kb() -> None:
    account = full_account(first=["Jo", "Al", "Bo", "Cy", "Di", "Ed", "Fi", "Gu"],
                           last=["Park", "Chen", "Diaz", "Ng", "Roy", "Li", "Wu", "Ito"], titles=["VP Sales"] * 8,
                           domain="acme.io")
    assert stored_size(items.account_item(account)) < 800


def test_the_body_is_smaller_than_the_json_texts_whatever_the_text() -> None:
    """Incompressible names and titles (random letters) still cost fewer bytes than before."""
    import random

    rng = random.Random(26)
    def noise(n: int) -> str:
        return "".join(rng.choice("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") for _ in range(n))
    account = full_account(first=[noise(12) for _ in range(8)], last=[noise(14) for _ in range(8)],
                           titles=[noise(40) for _ in range(8)])
    assert stored_size(items.account_item(account)) < stored_size(old_item(account)) / 2


# ------------------------------------------------------------------ round trips


_text = st.text(max_size=30)  # lone surrogates too: JSON input may hold them
_json_leaf = st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.floats(allow_nan=False) | _text
_json = st.recursive(_json_leaf, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_text, inner, max_size=4),
                     max_leaves=12)
# numbers an entry keeps exactly (ledgers round to 4 places): whole, or quarters
_points = st.integers(-400, 400).map(lambda q: q / 4)
_epoch = st.integers(T0 - 10**7, T0 + 10**7).map(float)
_ledger = st.builds(RuleLedger, base=_points, touches=st.lists(st.tuples(_epoch, _points).map(list), max_size=4),
                    count=st.integers(0, 50), recent=st.lists(_epoch, max_size=3))
_counter = st.builds(CounterPoints, category=_text, points=_points, detail=st.none() | _text)
_entry = st.builds(
    ContactEntry, key=_text.map(lambda k: f"u:{k}"), version=st.integers(0, 10**6), email=st.none() | _text,
    title=st.none() | _text, name=st.none() | _text, persona=st.sampled_from(["user", "decision_maker", "influencer"]),
    fit=_points, rules=st.dictionaries(_text, _ledger | _counter, max_size=3),
    recent=st.lists(st.tuples(_epoch, _points).map(list), max_size=3), last_engaged=st.none() | _epoch,
    excluded=st.none() | st.just("unsubscribed"))
_accounts = st.builds(Account, id=st.just("acme.io"), version=st.integers(1, 10**6),
                      entries=st.lists(_entry, max_size=9),
                      traits=st.dictionaries(st.sampled_from(["company", "group"]), st.dictionaries(_text, _json,
                                                                                                     max_size=5)),
                      name=st.none() | _text, domain=st.just("acme.io"), state=st.just("below_threshold"),
                      cycle=st.integers(0, 9))


@settings(max_examples=150, deadline=None)
@given(_accounts)
def test_an_account_round_trips_exactly_through_its_item_the_table_and_a_lambda_stream_record(account: Account) -> None:
    item = items.account_item(account)
    assert isinstance(item[items.ACCOUNT_BODY], bytes) and "tr" not in item
    assert items.account_from_item(item) == account
    # DynamoDB's typed JSON both ways (a Binary comes back as bytes)
    assert items.account_from_item(unmarshal(marshal(item))) == account
    # and as a Lambda stream record carries it (a Binary as base64 text, left so by Powertools)
    new = items.account_from_item(unmarshal(marshal(item)) | {
        items.ACCOUNT_BODY: base64.b64encode(item[items.ACCOUNT_BODY]).decode("ascii")})
    assert new == account
    # what the items written before say of the same account, the new form says too
    assert items.account_from_item(old_item(account)) == account


def lambda_record(item: dict[str, Any], old: dict[str, Any] | None, sequence: str) -> dict[str, Any]:
    """A MODIFY record as Lambda hands it over: DynamoDB JSON, a Binary as base64 text."""
    def image(value: dict[str, Any]) -> dict[str, Any]:
        return {name: ({"B": base64.b64encode(attr["B"]).decode("ascii")} if "B" in attr else attr)
                for name, attr in marshal(value).items()}
    body: dict[str, Any] = {"Keys": marshal(items.key_item(item["pk"], item["sk"])), "NewImage": image(item),
                            "SequenceNumber": sequence, "StreamViewType": "NEW_AND_OLD_IMAGES"}
    if old is not None:
        body["OldImage"] = image(old)
    return {"eventName": "MODIFY", "eventSource": "aws:dynamodb", "dynamodb": body}


def test_the_stream_reads_an_account_change_from_the_old_form_to_the_new() -> None:
    account = full_account()
    before = old_item(account)
    after = items.account_item(account)
    changes, unparsed = parse_batch([lambda_record(after, before, "100")])
    assert unparsed == []
    (change,) = changes
    assert isinstance(change, AccountChanged) and change.old_in_full is not None
    assert change.new(True) == account and change.old_in_full() == account
    assert change.new(False).entries == [] and change.new(False).score == account.score


# ------------------------------------------------------------------ the items written before


def test_an_item_written_before_is_read_and_its_next_write_replaces_both_texts() -> None:
    account = full_account()
    read = items.account_from_item(unmarshal(marshal(old_item(account))))
    assert read == account and read.extra == {}  # `tr` is not carried over as an unknown attribute
    rewritten = items.account_item(read)
    assert "tr" not in rewritten and isinstance(rewritten["top"], bytes)
    assert items.account_from_item(rewritten) == account


def test_an_item_written_before_with_no_entries_or_traits_reads_empty() -> None:
    bare = {"pk": items.account_pk("acme.io"), "sk": items.PROFILE, "id": "acme.io", "ver": 1}
    assert items.account_from_item(bare).entries == [] and items.account_from_item(bare).traits == {}
    assert items.account_from_item({**bare, "top": "[]", "tr": "{}"}).traits == {}


# ------------------------------------------------------------------ corrupt bodies


@pytest.mark.parametrize(("body", "problem"), [
    (b"\x78\xbb\x00\x00\x00\x01garbage", "unknown zlib dictionary"),
    (b"\x78\x9cnot deflate", "does not decompress"),
    (zlib.compress(b"[1, 2]"), "is not"),
    (zlib.compress(b'{"top": {"c": 1}}'), "is not"),
    ("@@not base64 or JSON@@", "Invalid base64|Non-base64|Incorrect padding|Only base64"),
])
def test_a_corrupt_body_is_a_value_error_naming_it(body: bytes | str, problem: str) -> None:
    """A ValueError: what the routing pass parks and the stream reports as poison."""
    item = {**items.account_item(full_account()), items.ACCOUNT_BODY: body}
    with pytest.raises(ValueError, match=problem):
        items.account_from_item(item)
    assert items.account_from_item(item, summary=True).score == 435.0  # its scores still read


def test_a_truncated_body_is_refused() -> None:
    blob = items.account_item(full_account())[items.ACCOUNT_BODY]
    with pytest.raises(ValueError, match="truncated|does not decompress"):
        items.account_from_item({"pk": items.account_pk("x.io"), items.ACCOUNT_BODY: blob[:-40]})


def test_the_dictionary_is_pinned_bodies_written_with_it_must_stay_readable() -> None:
    """Editing the preset dictionary would make every body written with it unreadable: add one."""
    blob = items.account_item(full_account())[items.ACCOUNT_BODY]
    assert blob[1] & 0x20, "written with the preset dictionary"
    assert int.from_bytes(blob[2:6], "big") == 0x19180462
    # a plain zlib body (no dictionary) is read too
    plain = zlib.compress(json.dumps({"top": [], "tr": {"company": {"name": "Acme"}}}).encode())
    assert items.account_from_item({"pk": items.account_pk("acme.io"), "top": plain}).traits["company"] == {
        "name": "Acme"}


# ------------------------------------------------------------------ history keeps its step format


def test_a_history_step_keeps_entries_and_traits_as_json_and_reads_back() -> None:
    account = full_account()
    (item,) = items.history_items(account.id, [(account, [{"c": "score"}])], 30, datetime(2026, 11, 3, tzinfo=UTC))
    (step,) = items.steps_of(item)
    assert step["a"]["top"] == [items.entry_doc(e) for e in account.entries]
    assert step["a"]["tr"] == account.traits
    ((read, causes),) = items.history_steps(item)
    assert read.entries == account.entries and read.traits == account.traits and causes == [{"c": "score"}]


def test_a_replay_to_the_deployed_functions_sends_the_body_as_lambda_does() -> None:
    """`make replay` to the deployed functions sends its records as JSON: a Binary as base64
    text, as Lambda would (text of its bytes' repr would be a poison record)."""
    from local.replay import _lambda_json

    account = full_account()
    after, before = items.account_item(account), old_item(account)
    record = {"eventName": "MODIFY", "dynamodb": {"Keys": marshal(items.key_item(after["pk"], after["sk"])),
                                                  "NewImage": marshal(after), "OldImage": marshal(before),
                                                  "SequenceNumber": "5"}}
    sent = json.loads(json.dumps({"Records": [record]}, default=_lambda_json))
    (change,), unparsed = parse_batch(sent["Records"])
    assert unparsed == [] and isinstance(change, AccountChanged) and change.old_in_full is not None
    assert change.new(True) == account and change.old_in_full() == account
