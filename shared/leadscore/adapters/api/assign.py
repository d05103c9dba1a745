"""A lead's reassignments (IAM-authorized): `POST /v1/accounts/{accountId}/assign`
`{"sdr", "by", "note"}` and `POST /v1/sdrs/{sdrId}/reassign` `{"to", "by", "note"}`, the
bodies checked at the edge, then `leadscore.services.assign`."""

from __future__ import annotations

from typing import Any

from leadscore.adapters.api import has_surrogate, json_object, no_route, path_id, refusal
from leadscore.adapters.http import HttpError, Request, json_response
from leadscore.domain.records import Account
from leadscore.services.assign import MAX_NAME, MAX_NOTE, AssignOrder, AssignService, ReassignOrder
from leadscore.services.errors import ServiceError

ASSIGN_ROUTE = "POST /v1/accounts/{accountId}/assign"
REASSIGN_ROUTE = "POST /v1/sdrs/{sdrId}/reassign"
MAX_BODY = 16 * 1024


def _refuse(field_name: str, reason: str) -> HttpError:
    return HttpError(400, "invalid_assignment", f"{field_name}: {reason}", field=field_name)


def _name(data: dict[str, Any], key: str, what: str) -> str:
    value = data.get(key)
    if value is None:
        raise _refuse(key, f"required: {what}")
    if not isinstance(value, str):
        raise _refuse(key, "must be a string")
    value = value.strip()
    if not 1 <= len(value) <= MAX_NAME:
        raise _refuse(key, f"must be 1 to {MAX_NAME} characters")
    if has_surrogate(value):
        raise _refuse(key, "must be Unicode text: a lone surrogate (such as \\ud800) is not")
    return value


def _note(data: dict[str, Any]) -> str | None:
    note = data.get("note")
    if note is not None and not isinstance(note, str):
        raise _refuse("note", "must be a string or null")
    if note is not None and len(note) > MAX_NOTE:
        raise _refuse("note", f"must be at most {MAX_NOTE} characters")
    if note is not None and has_surrogate(note):
        raise _refuse("note", "must be Unicode text: a lone surrogate (such as \\ud800) is not")
    return note


def _unknown(data: dict[str, Any], known: tuple[str, ...]) -> None:
    unknown = [key for key in data if key not in known]
    if unknown:
        raise _refuse(str(unknown[0]), f"unknown field ({', '.join(known)})")


def assign_order(raw: bytes) -> AssignOrder:
    """`sdr`, `by`, `note` (optional). Strict JSON types; unknown keys refused; HttpError 400
    naming the first field in error."""
    data = json_object(raw, MAX_BODY, "invalid_assignment")
    sdr = _name(data, "sdr", "the SDR who gets the account (id or email)")
    by = _name(data, "by", "the lead reassigning it (routing.yaml leads:)")
    note = _note(data)
    _unknown(data, ("sdr", "by", "note"))
    return AssignOrder(sdr=sdr, by=by, note=note)


def reassign_order(raw: bytes) -> ReassignOrder:
    """`to`, `by`, `note` (optional), checked as `assign_order` checks its body."""
    data = json_object(raw, MAX_BODY, "invalid_assignment")
    to = _name(data, "to", "\"pool\" (its pool's round-robin) or the SDR who gets the book")
    by = _name(data, "by", "the lead reassigning it (routing.yaml leads:)")
    note = _note(data)
    _unknown(data, ("to", "by", "note"))
    return ReassignOrder(to=to, by=by, note=note)


def _assigned_by(account: Account) -> str | None:
    hand = account.routing.assigned if account.routing is not None else None
    return hand.by if hand is not None else None


class AssignRoutes:
    def __init__(self, service: AssignService) -> None:
        self.service = service

    def handle(self, request: Request) -> dict[str, Any]:
        try:
            if request.route == ASSIGN_ROUTE:
                account_id = path_id(request, "accountId")
                moved = self.service.assign(account_id, assign_order(request.body), caller=request.caller)
                return json_response(200, {**moved.view(), "assignedBy": _assigned_by(moved.account)})
            if request.route == REASSIGN_ROUTE:
                sdr_id = path_id(request, "sdrId")
                body = reassign_order(request.body)
                result = self.service.reassign_book(sdr_id, body, caller=request.caller)
                return json_response(200, {"sdrId": sdr_id, "to": body.to, "moved": [m.view() for m in result.moved],
                                           "kept": result.kept, "more": result.more})
            raise no_route(request)
        except ServiceError as problem:
            return refusal(problem).response()
        except HttpError as problem:
            return problem.response()
