"""SECURITY.md's example policies for the three roles (an SDR tool, a team lead, RevOps) against
template.yaml: every ARN is an `execute-api:Invoke` of the API's `$default` stage naming an
IAM route, and each role reaches exactly its routes, with `*` matching as IAM matches it (any
characters, `/` included)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from tests.support.stack import load_template

ROOT = Path(__file__).resolve().parents[2]
ARN = re.compile(r"arn:aws:execute-api:[a-z0-9-]+:\d{12}:[a-z0-9]+/\$default/(?P<route>[A-Z]+/.+)")
READS = {"GET /v1/accounts/{accountId}", "GET /v1/contacts/{contactId}", "GET /v1/sdrs",
         "GET /v1/sdrs/{sdrId}/accounts", "GET /v1/accounts/{accountId}/history",
         "GET /v1/contacts/{contactId}/history"}
ROLES = {
    "SdrToolFeedbackAndReads": READS | {"POST /v1/accounts/{accountId}/feedback"},
    "TeamLeadFull": READS | {"POST /v1/accounts/{accountId}/feedback", "POST /v1/accounts/{accountId}/assign",
                             "POST /v1/sdrs/{sdrId}/reassign", "PUT /v1/sdrs/{sdrId}/availability"},
    "RevOpsReadOnly": READS,
    "PrivacyErasureOnly": {"DELETE /v1/contacts/{contactId}"},
}


def iam_routes() -> set[str]:
    return {f"{event['Properties']['Method'].upper()} {event['Properties']['Path']}"
            for resource in load_template(ROOT / "template.yaml")["Resources"].values()
            if resource.get("Type") == "AWS::Serverless::Function"
            for event in (resource["Properties"].get("Events") or {}).values()
            if event["Type"] == "HttpApi" and (event["Properties"].get("Auth") or {}).get("Authorizer") == "AWS_IAM"}


def invoked(route: str) -> str:
    """What IAM matches for a request of `route`: METHOD/path, a path parameter given a value
    with no slash."""
    method, path = route.split(" ", 1)
    return f"{method}/{re.sub(r'{[^}]+}', 'x-1.io', path.lstrip('/'))}"


def allows(pattern: str, request: str) -> bool:
    return re.fullmatch(".*".join(re.escape(part) for part in pattern.split("*")), request) is not None


def statements() -> dict[str, list[str]]:
    text = (ROOT / "SECURITY.md").read_text()
    found: dict[str, list[str]] = {}
    for block in re.findall(r"```json\n(.*?)```", text, re.DOTALL):
        for statement in json.loads(block)["Statement"]:
            if statement.get("Sid") in ROLES:
                assert (statement["Effect"], statement["Action"]) == ("Allow", "execute-api:Invoke"), statement
                resources = statement["Resource"]
                found[statement["Sid"]] = [resources] if isinstance(resources, str) else resources
    return found


def test_each_role_reaches_exactly_its_routes_and_every_arn_names_a_route() -> None:
    routes = iam_routes()
    assert set().union(*ROLES.values()) == routes  # the three roles cover every IAM route of the template
    policies = statements()
    assert set(policies) == set(ROLES)
    for sid, arns in policies.items():
        patterns = []
        for arn in arns:
            match = ARN.fullmatch(arn)
            assert match, (sid, arn)
            patterns.append(match["route"])
        for pattern in patterns:  # no ARN that names no route
            assert any(allows(pattern, invoked(route)) for route in routes), (sid, pattern)
        reached = {route for route in routes if any(allows(p, invoked(route)) for p in patterns)}
        assert reached == ROLES[sid], (sid, reached ^ ROLES[sid])


def test_a_wildcard_that_would_reach_the_next_route_is_caught() -> None:
    """The check can fail: `POST/v1/accounts/*` reaches feedback and assign alike."""
    reached = {route for route in iam_routes() if allows("POST/v1/accounts/*", invoked(route))}
    assert reached == {"POST /v1/accounts/{accountId}/feedback", "POST /v1/accounts/{accountId}/assign"}
