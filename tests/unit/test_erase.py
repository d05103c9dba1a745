"""Erasure's rules and its reach: every item kind handled, the redaction of notes, the ids an
event names, collection's suppression check (one read per request, nothing stored)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from leadscore.adapters import items
from leadscore.adapters.storage import Store
from leadscore.engine.erasure import ids_of, name_terms, redactor
from leadscore.services.collect import Collector
from leadscore.services.erase import check_contact_id
from leadscore.services.errors import Invalid

from tests.support.fakes import MemoryStore

NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def config() -> Any:
    from leadscore.rulesfiles.loading import load_config

    return load_config()


def test_every_item_kind_has_its_erasure() -> None:
    """A kind added to ITEM_KINDS without saying how erasure handles it fails here (and a kind
    holding personal data must name the store method that erases it, which must exist)."""
    assert set(items.ERASURE_OF_KIND) == set(items.ITEM_KINDS)
    for kind, (_, _, personal) in items.ITEM_KINDS.items():
        how = items.ERASURE_OF_KIND[kind]
        if personal.startswith("yes") and kind != "SDR record":
            method = how.split(":", 1)[0]
            assert callable(getattr(Store, method, None)), (kind, method)
        else:
            assert how.startswith(("nothing", "save_suppressions")), kind


def test_notes_are_redacted_word_by_word_and_the_rest_kept() -> None:
    redact = redactor(["jo@acme.io", "u-77", *name_terms("Jo Park")])
    assert redact("Call Jo Park (jo@acme.io, id u-77) re: parking; Jo agreed") == \
        "Call [erased] ([erased], id [erased]) re: parking; [erased] agreed"
    assert redact("JO@ACME.IO joined") == "[erased] joined"  # any case; `jo` not inside `joined`
    assert redactor([])("anything") == "anything"


def test_an_event_names_its_ids_and_an_alias_its_previous_id_both_ways() -> None:
    from leadscore.engine.messages import parse_message

    event = parse_message({"type": "identify", "userId": "u1", "anonymousId": "a1", "traits": {"email": "J@x.io"}},
                          source_id="website", received_at=NOW)
    assert ids_of(event) == ["u:u1", "e:j@x.io", "a:a1"]
    alias = parse_message({"type": "alias", "userId": "u1", "previousId": "p1"}, source_id="website",
                          received_at=NOW)
    assert ids_of(alias) == ["u:u1", "a:p1", "u:p1"]


@pytest.mark.parametrize(("contact_id", "reason"), [
    ("", "required"), ("  ", "required"), ("x" * 257, "at most 256"), ("a\ud800", "lone surrogate"),
    ("a\nb", "control characters")])
def test_bad_ids_are_refused_naming_the_field(contact_id: str, reason: str) -> None:
    with pytest.raises(Invalid) as refused:
        check_contact_id(contact_id)
    assert refused.value.details == {"field": "contactId"} and reason in refused.value.message


class Counting(MemoryStore):
    def load_suppressed(self, keys: Any, *, consistent: bool = True) -> set[str]:
        self._count("load_suppressed")
        return super().load_suppressed(keys, consistent=consistent)


def test_collection_drops_an_erased_contact_s_messages_with_one_read_and_stores_nothing(config: Any) -> None:
    store = Counting(suppressed={"e:jo@acme.io"})
    batch = [{"type": "identify", "userId": "u-new", "traits": {"email": "JO@acme.io"}},
             {"type": "identify", "userId": "u-other", "traits": {"email": "kim@acme.io"}},
             {"type": "page", "userId": "u-bot", "context": {"userAgent": "Googlebot/2.1"},
              "properties": {"email": "jo@acme.io"}},
             {"type": "identify", "anonymousId": "a1", "traits": {"email": "jo@acme.io"}}]
    result = Collector(store, config).collect(batch, source_id="website", received_at=NOW, indexed=True)
    # her email under a new userId, a bot's hit naming her (not even kept as a rejected bot), her
    # email on another device
    assert [d.index for d in result.dropped] == [0, 2, 3]
    assert result.accepted == 1 and result.bots == 0
    assert store.calls["load_suppressed"] == 1  # one read for the request, whatever its size
    assert [stored.event.contact_key for stored in store.events.values()] == ["u:u-other"]
    assert all("jo@acme.io" not in r.raw for r in store.rejected)  # no raw input of hers kept


def test_collection_reads_nothing_when_no_message_parses(config: Any) -> None:
    store = Counting()
    Collector(store, config).collect([{"type": "track"}], source_id="website", received_at=NOW)
    assert "load_suppressed" not in store.calls


@given(st.text(max_size=400))
@settings(max_examples=300, deadline=None)
def test_any_path_id_is_taken_or_refused_as_invalid_never_anything_else(contact_id: str) -> None:
    try:
        taken = check_contact_id(contact_id)
    except Invalid as refused:
        assert refused.details == {"field": "contactId"} and refused.message.startswith("contactId: ")
        return
    assert taken == contact_id and taken.strip() and len(taken) <= 256 and taken.isprintable()
