"""schemathesis against openapi.yaml on the local stack (`python -m local.server`, what
`make serve` runs): for every public ingestion route, requests generated from the document
(positive: what it allows; negative: what it forbids), sent with a shipped write key, and the
answers checked against the document: no server error, a documented status code, content
type and body schema; allowed data accepted, forbidden data refused; a Segment route
without its key refused (ignored_auth).

Together with tests/integration/test_openapi.py this keeps openapi.yaml and the code in
agreement both ways.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import schemathesis
from hypothesis import assume, given, note
from leadscore.adapters.ingest_routes.forms import MAX_FORM_FIELD_NAME
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    negative_data_rejection,
    positive_data_acceptance,
    response_schema_conformance,
    status_code_conformance,
)

from local.serve_client import REPO_ROOT, LocalServer
from tests.fuzz.tally import TALLY, fuzz_settings

WRITE_KEY = "wk_demo_website"
SEGMENT = ["/v1/batch", "/v1/track", "/v1/identify", "/v1/page", "/v1/group", "/v1/alias", "/v1/screen"]
POSITIVE, NEGATIVE = GenerationMode.POSITIVE, GenerationMode.NEGATIVE
# (method, path, media type of the body, examples, modes). The settings route and the
# preflight have no constraint to violate (any key or origin is answered), so no negative.
OPERATIONS = [
    *[("POST", path, "application/json", 25, (POSITIVE, NEGATIVE)) for path in SEGMENT],
    ("POST", "/v1/forms/{formId}", "application/x-www-form-urlencoded", 20, (POSITIVE, NEGATIVE)),
    ("POST", "/v1/forms/{formId}", "application/json", 20, (POSITIVE, NEGATIVE)),
    ("GET", "/v1/pixel.gif", None, 15, (POSITIVE, NEGATIVE)),
    ("GET", "/v1/projects/{writeKey}/settings", None, 15, (POSITIVE,)),
    ("OPTIONS", "/v1/{proxy+}", None, 15, (POSITIVE,)),
]
CASES = [(method, path, media_type, examples, mode) for method, path, media_type, examples, modes in OPERATIONS
         for mode in modes]
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          positive_data_acceptance, negative_data_rejection]
# What refuses data the document forbids: a 4xx that names it (413 for a body over the limit).
REFUSALS = [400, 401, 403, 404, 413, 415, 422]


@pytest.fixture(scope="module")
def server() -> Iterator[LocalServer]:
    with LocalServer.running("leadscore-fuzz-") as local:
        yield local


@pytest.fixture(scope="module")
def schema() -> Any:
    config = schemathesis.Config.from_dict({
        "checks": {"negative_data_rejection": {"expected-statuses": [str(s) for s in REFUSALS]}},
        # the write key as the HTTP Basic username, as Segment's SDKs send it
        "auth": {"openapi": {"writeKey": {"username": WRITE_KEY, "password": ""}}},
    })
    return schemathesis.openapi.from_path(REPO_ROOT / "openapi.yaml", config=config)


def _in_utc_years(body: Any) -> bool:
    """Whether every timestamp of a body is within the years 1 to 9999 once in UTC: OpenAPI's
    date-time has no such bound, so it is in the Timestamp schema's description only."""
    messages = body.get("batch") if isinstance(body, dict) and isinstance(body.get("batch"), list) else [body]
    for message in messages:
        for name in ("timestamp", "originalTimestamp"):
            value = message.get(name) if isinstance(message, dict) else None
            if isinstance(value, str) and value.strip():
                try:
                    moment = datetime.fromisoformat(value.strip())
                    if moment.tzinfo is not None:
                        moment.astimezone(UTC)
                except OverflowError:
                    return False
                except ValueError:
                    pass  # not a date at all: the document forbids it, the server says so
    return True


def _fixed(method: str, path: str, mode: GenerationMode) -> dict[str, Any]:
    """Path parameters of a known form or source for allowed data, so it can be stored."""
    if mode is GenerationMode.POSITIVE and path == "/v1/forms/{formId}":
        return {"path_parameters": {"formId": "demo-request"}}
    if mode is GenerationMode.POSITIVE and path == "/v1/projects/{writeKey}/settings":
        return {"path_parameters": {"writeKey": WRITE_KEY}}
    if path == "/v1/{proxy+}":
        # API Gateway matches any path here; the local server's router does not match every
        # byte (a newline), so the origin is what varies
        return {"path_parameters": {"proxy+": "track"}}
    return {}


@pytest.mark.parametrize(("method", "path", "media_type", "examples", "mode"), CASES,
                         ids=[f"{m} {p} {t or ''} {mode.value}".replace("  ", " ") for m, p, t, _, mode in CASES])
def test_the_document_and_the_code_agree(server: LocalServer, schema: Any, method: str, path: str,
                                         media_type: str | None, examples: int, mode: GenerationMode) -> None:
    operation = schema[path][method]
    kwargs = _fixed(method, path, mode)
    if media_type:
        kwargs["media_type"] = media_type
    checks = [*CHECKS, ignored_auth] if path in SEGMENT else CHECKS

    @fuzz_settings(examples)
    @given(case=operation.as_strategy(generation_mode=mode, **kwargs))
    def run(case: Any) -> None:
        if mode is GenerationMode.POSITIVE and path == "/v1/forms/{formId}" and isinstance(case.body, dict):
            # OpenAPI 3.0 has no propertyNames: the 100-character limit on a form's field names
            # is in the schema's description only, so a longer generated name is not "allowed"
            assume(all(len(name) <= MAX_FORM_FIELD_NAME for name in case.body))
        if mode is GenerationMode.POSITIVE and path in SEGMENT:
            assume(_in_utc_years(case.body))
        TALLY.add(f"{method} {path}", tool="schemathesis")
        response = case.call(base_url=server.api, timeout=30)
        sent = response.request
        note(f"{sent.method} {sent.url} auth={sent.headers.get('Authorization')} body={(sent.body or b'')[:800]!r}"
             f" -> {response.status_code} {response.content[:300]!r}")
        case.validate_response(response, checks=checks)

    run()
