"""Finding the account a path names, and showing a feedback: what the read, feedback and
assign routes share (kept apart from read.py, so feedback and assign do not load the rebuild)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from leadscore.domain.records import Account, Feedback
from leadscore.services.errors import NotFound

#: The longest id collection stores (messages.MAX_ID_LENGTH, not imported: it needs pydantic).
MAX_PATH_ID = 256


def storable_id(text: str) -> bool:
    """Whether an id can name a stored item: a longer one, or one with a lone surrogate (not
    Unicode text), names nothing and is no valid DynamoDB key: unknown without a read. Checked
    by the use cases, not at the HTTP edge, so that it answers where a missing item would:
    after the checks of the body (who, which SDR)."""
    return len(text) <= MAX_PATH_ID and not any("\ud800" <= char <= "\udfff" for char in text)


def load_account_named(load: Callable[[str], Account | None], account_id: str, **details: Any) -> Account:
    """The account a path names, read by `load` (a store's `load_account`): a domain as sent or
    lowercased (`Acme.com`), read once per spelling; NotFound `unknown_account` (with
    `details`) for none, or an id that names nothing."""
    if not storable_id(account_id):
        raise NotFound("unknown_account", f"no account {account_id[:MAX_PATH_ID]!r}", **details)
    lookup = account_id.strip().lower() if "." in account_id else account_id
    account = load(lookup) or (load(account_id) if lookup != account_id else None)
    if account is None:
        raise NotFound("unknown_account", f"no account {account_id!r}", **details)
    return account


def feedback_view(feedback: Feedback) -> dict[str, Any]:
    """One sales feedback as the API shows it: the outcome, who (`sdr` as sent, `by` the IAM
    caller of a signed request), when, the note, the cycle and the state it left."""
    return {"outcome": feedback.outcome, "sdr": feedback.sdr, "note": feedback.note, "by": feedback.caller,
            "at": feedback.at, "cycle": feedback.cycle, "state": feedback.state}
