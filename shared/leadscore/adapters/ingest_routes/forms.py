"""`POST /v1/forms/{formId}`: a plain HTML form (urlencoded) or a script's JSON.

The form id is the sender (`call.form_id`). An `email` field identifies the contact, other
fields become traits. A submission is stored whole or not at all: every field is checked
before anything is collected, and its identify and submission are collected together.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from leadscore.adapters.http import HttpError, json_response, parse_form, redirect_response
from leadscore.adapters.ingest_routes.call import Answer, Call, read_json, refuse_oversized
from leadscore.engine.messages import MAX_EVENT_BYTES

# Form fields that steer collection rather than describe the person (`userId` is ignored:
# a public form must not name a known contact).
FORM_CONTROL_FIELDS = {"writekey", "anonymousid", "userid", "messageid", "formid", "redirect", "_redirect"}
MAX_FORM_FIELD_NAME = 100  # characters
MAX_FORM_VALUE = 2000  # characters of one field; a stored trait keeps 200


def submit(call: Call) -> Answer:
    """`303` to the form's redirect (or back to the page) for HTML, `200` JSON for scripts."""
    form, request = call.form, call.request
    if request.content_type == "multipart/form-data":
        message = "send the form as application/x-www-form-urlencoded (the HTML default) or JSON"
        raise call.refuse(HttpError(415, "unsupported_media_type", message, field="content-type"))
    is_html = request.content_type == "application/x-www-form-urlencoded"
    fields = _html_fields(call) if is_html else _json_fields(call)
    _check_fields(call, fields)
    result = call.collect(form_messages(call, fields), user_agent=request.user_agent, all_or_nothing=True)
    if result.rejected:  # the collector kept it as rejected
        problem = result.rejected[0]
        field_name = _form_field_name(problem.field)
        raise HttpError(400, "invalid_form", f"{field_name}: {problem.reason}", field=field_name)
    if is_html:
        target = form.redirect or request.headers.get("referer")
        if target:
            return redirect_response(target)
    return json_response(200, {"success": True})


def _html_fields(call: Call) -> dict[str, Any]:

    body = call.request.body
    refuse_oversized(call, body, MAX_EVENT_BYTES, "the form")
    try:
        return parse_form(body)
    except HttpError as problem:
        raise call.refuse(problem, field="body") from None


def _json_fields(call: Call) -> dict[str, Any]:

    fields = read_json(call, MAX_EVENT_BYTES)
    if not isinstance(fields, dict):
        raise call.refuse(HttpError(400, "invalid_form", "the form body must be a JSON object of fields",
                                    field="body"))
    return fields


def _check_fields(call: Call, fields: dict[str, Any]) -> None:
    """Every field within its limits, and an email, before anything is collected."""
    for name, value in fields.items():
        reason = _form_field_problem(name, value)
        if reason:
            field_name = name[:MAX_FORM_FIELD_NAME]
            raise call.refuse(HttpError(400, "invalid_form", f"{field_name}: {reason}", field=field_name),
                              raw={"field": field_name}, reason=reason)
    email = fields.get("email")
    if not isinstance(email, str) or not email.strip():
        raise call.refuse(HttpError(400, "invalid_form", "email: the form needs an email field to identify "
                                    "the contact", field="email"), raw=fields, reason="the form has no email field")


def form_messages(call: Call, fields: dict[str, Any]) -> list[dict[str, Any]]:
    """An identify of the person the email names, and the form's submission.

    A public form is anyone's to post: it never takes a `userId` from its body (that
    would let anyone rewrite a known contact); an `anonymousId` only links that
    visitor's anonymous history to the submitted email."""
    form, request = call.form, call.request
    traits: dict[str, Any] = {}
    for name, value in fields.items():
        if name.lower() in FORM_CONTROL_FIELDS or value in ("", None):
            continue
        node = traits
        *parents, leaf = str(name).split(".")  # "company.name" -> {"company": {"name": ...}}
        for parent in parents:
            node = node.setdefault(parent, {}) if isinstance(node.get(parent, {}), dict) else {}
        node[leaf] = value
    base = fields.get("messageId") or hashlib.sha256(
        json.dumps([form.id, fields, call.now.strftime("%Y%m%dT%H%M")], sort_keys=True, default=str)
        .encode()).hexdigest()[:32]
    ids = {"anonymousId": fields["anonymousId"]} if fields.get("anonymousId") else {}
    context = {"userAgent": request.user_agent, "page": {"url": request.headers.get("referer")}}
    return [
        {"type": "identify", "messageId": f"{base}-identify", "traits": traits, "context": context, **ids},
        {"type": "track", "event": "Form Submitted", "messageId": f"{base}-submit",
         "properties": {"form_id": form.id, "stage": form.stage},
         "context": {**context, "traits": {"email": traits.get("email")}}, **ids},
    ]


def _form_field_problem(name: str, value: Any) -> str | None:
    if len(name) > MAX_FORM_FIELD_NAME:
        return f"a field name is longer than {MAX_FORM_FIELD_NAME} characters"
    if isinstance(value, str) and len(value) > MAX_FORM_VALUE:
        return f"is longer than {MAX_FORM_VALUE} characters"
    if name.lower() == "messageid" and not isinstance(value, str | int):
        return "must be a string"
    return None


def _form_field_name(message_field: str) -> str:
    """The form field behind a message's key path: `traits.company.name` -> `company.name`."""
    for prefix in ("context.traits.", "traits."):
        if message_field.startswith(prefix):
            return message_field[len(prefix):]
    return message_field or "body"
