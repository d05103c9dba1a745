"""`POST /v1/accounts/{accountId}/feedback` (IAM-authorized): the body checked at the edge,
then `leadscore.services.feedback` (what each outcome does)."""

from __future__ import annotations

from typing import Any

from leadscore.adapters.api import has_surrogate, json_object, no_route, path_id, refusal
from leadscore.adapters.http import HttpError, Request, json_response
from leadscore.services.errors import ServiceError
from leadscore.services.feedback import MAX_NOTE, MAX_SDR, OUTCOMES, FeedbackGiven, FeedbackService
from leadscore.services.lookup import feedback_view

ROUTE = "POST /v1/accounts/{accountId}/feedback"
MAX_BODY = 16 * 1024


def feedback_from_json(data: dict[str, Any]) -> FeedbackGiven:
    """`outcome` (one of OUTCOMES), `sdr` (1-256 characters, trimmed), `note` (at most 2,000
    characters, optional). Strict JSON types; unknown keys are refused, so a typo is not lost.
    HttpError 400 naming the first field in error (fields in order, then unknown keys). Checked
    by hand: three fields do not need pydantic's import on a function's first invocation."""
    def refuse(field: str, reason: str) -> HttpError:
        return HttpError(400, "invalid_feedback", f"{field}: {reason}", field=field)

    outcome = data.get("outcome")
    if outcome is None:
        raise refuse("outcome", f"required, one of {', '.join(OUTCOMES)}")
    if not isinstance(outcome, str) or outcome not in OUTCOMES:
        raise refuse("outcome", f"must be one of {', '.join(OUTCOMES)}")
    sdr = data.get("sdr")
    if sdr is None:
        raise refuse("sdr", "required: the SDR giving the feedback")
    if not isinstance(sdr, str):
        raise refuse("sdr", "must be a string")
    sdr = sdr.strip()
    if not 1 <= len(sdr) <= MAX_SDR:
        raise refuse("sdr", f"must be 1 to {MAX_SDR} characters")
    note = data.get("note")
    if note is not None and not isinstance(note, str):
        raise refuse("note", "must be a string or null")
    if note is not None and len(note) > MAX_NOTE:
        raise refuse("note", f"must be at most {MAX_NOTE} characters")
    for name, text in (("sdr", sdr), ("note", note)):
        if text is not None and has_surrogate(text):
            raise refuse(name, "must be Unicode text: a lone surrogate (such as \\ud800) is not")
    unknown = [key for key in data if key not in ("outcome", "sdr", "note")]
    if unknown:
        raise refuse(str(unknown[0]), "unknown field (outcome, sdr, note)")
    return FeedbackGiven(outcome=outcome, sdr=sdr, note=note)


class FeedbackRoutes:
    def __init__(self, service: FeedbackService) -> None:
        self.service = service

    def handle(self, request: Request) -> dict[str, Any]:
        try:
            if request.route != ROUTE:
                raise no_route(request)
            account_id = path_id(request, "accountId")
            body = feedback_from_json(json_object(request.body, MAX_BODY, "invalid_feedback"))
            applied = self.service.give(account_id, body, caller=request.caller)
            return json_response(200, {"accountId": applied.account.id, "state": applied.account.state,
                                       "cycle": applied.account.cycle, "cooldownUntil": applied.account.cooldown_until,
                                       "replayed": applied.replayed, "feedback": feedback_view(applied.feedback)})
        except ServiceError as problem:
            return refusal(problem).response()
        except HttpError as problem:
            return problem.response()
