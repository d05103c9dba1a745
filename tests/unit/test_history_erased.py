"""An account written before an erasure, whose write reaches the stream after it, does not copy
the erased contact back into the account's history (history.without_erased)."""

from __future__ import annotations

from leadscore.domain.ledgers import ContactEntry
from leadscore.domain.records import Account
from leadscore.services.history import AccountStep, HistoryItem, without_erased


def _item(erasures: int) -> HistoryItem:
    account = Account(id="acme.com", entries=[ContactEntry(key="u:gone", version=3, email="gone@acme.com"),
                                              ContactEntry(key="u:stays", version=2)],
                      extra={"erN": erasures} if erasures else {})
    causes = [{"kind": "event", "contactId": "gone", "rule": "demo_requested", "points": 50},
              {"kind": "event", "contactId": "stays", "rule": "webinar_attended", "points": 20}]
    return HistoryItem("acme.com", [AccountStep(account, causes)])


def _erasures(account: Account) -> int:
    return int(account.extra.get("erN") or 0)


def test_an_erased_contact_is_taken_out_of_a_late_step_of_an_account_that_had_an_erasure() -> None:
    asked: list[set[str]] = []

    def suppressed(keys: object) -> set[str]:
        asked.append(set(keys))  # type: ignore[call-overload]
        return {"u:gone"} & set(keys)  # type: ignore[call-overload]

    (item,) = without_erased([_item(erasures=1)], suppressed, _erasures)
    step = item.steps[0]
    assert [e.key for e in step.account.entries] == ["u:stays"]
    assert [c["contactId"] for c in step.causes] == ["stays"]
    assert asked == [{"u:gone", "u:stays"}]


def test_accounts_that_never_had_an_erasure_cost_no_read() -> None:
    def suppressed(keys: object) -> set[str]:
        raise AssertionError("no read for an account with no erasure")

    (item,) = without_erased([_item(erasures=0)], suppressed, _erasures)
    assert len(item.steps[0].account.entries) == 2
