"""`make rebuild` (python -m local.rebuild) on the local stack: a contact whose stored state
lost points is repaired from its events, its account follows; a dry run writes nothing."""

from __future__ import annotations

import json

import pytest

from local import rebuild
from tests.integration.conftest import Pipeline, vp_identify


def _journey(pipeline: Pipeline) -> None:
    pipeline.send("page", {"anonymousId": "anon-r", "properties": {"url": "https://acmetech.io/pricing"},
                           "messageId": "r-page"})
    pipeline.advance(minutes=5)
    pipeline.send("identify", vp_identify() | {"anonymousId": "anon-r", "messageId": "r-id"})
    pipeline.advance(minutes=5)
    pipeline.send("track", {"userId": "u-jo", "event": "Webinar Attended", "messageId": "r-web"})
    pipeline.settle()


def _break_contact(pipeline: Pipeline) -> None:
    """What a lost update would leave: the contact without its engine state."""
    from leadscore.adapters.storage import Store

    store = Store(pipeline.stack.name_of("Table"))
    contact = store.load_contact("u:u-jo")
    assert contact is not None
    contact.state = None
    contact.version = (contact.version or 0) + 1
    store.save_contact(contact, contact.version - 1)
    pipeline.settle()


def test_a_contact_that_lost_points_is_rebuilt_from_its_events(pipeline: Pipeline,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    _journey(pipeline)
    healthy = pipeline.contact("u-jo")
    account = pipeline.account("acmetech.io")["score"]
    _break_contact(pipeline)
    assert pipeline.contact("u-jo")["engagement"] == 0
    # a dry run says what it would do and writes nothing
    assert rebuild.main(["--contact", "u-jo", "--dry-run"]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["events"] == 3 and report["ids"] == 3 and report["written"] == 0
    assert report["before"]["engagement"] == 0 and report["after"]["engagement"] == healthy["engagement"]
    assert pipeline.contact("u-jo")["engagement"] == 0
    # the rebuild writes it back, and the stream carries it to its account
    assert rebuild.main(["--contact", "jo@acmetech.io"]) == 0
    pipeline.settle()
    assert {k: v for k, v in pipeline.contact("u-jo").items() if k != "updatedAt"} == \
        {k: v for k, v in healthy.items() if k != "updatedAt"}
    assert pipeline.account("acmetech.io")["score"] == account
    # again: nothing to change, nothing written
    assert rebuild.main(["--account", "acmetech.io"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["written"] == 0


def test_an_unknown_contact_or_account_fails_the_run(pipeline: Pipeline) -> None:
    assert rebuild.main(["--contact", "nobody"]) == 1
    assert rebuild.main(["--account", "nobody.example"]) == 1


def test_the_readme_shows_what_a_rebuild_prints(pipeline: Pipeline, capsys: pytest.CaptureFixture[str]) -> None:
    import re
    from pathlib import Path

    readme = Path(__file__).resolve().parents[2].joinpath("README.md").read_text()
    shown = json.loads(re.search(r"make rebuild CONTACT=.*?```json\n(.*?)```", readme, re.S).group(1))  # type: ignore[union-attr]
    _journey(pipeline)
    _break_contact(pipeline)
    assert rebuild.main(["--contact", "u-jo"]) == 0
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert printed == shown
