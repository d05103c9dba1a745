"""SECURITY.md names the test behind each guarantee: every name it cites must exist."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _defined_tests() -> set[str]:
    names: set[str] = set()
    for path in (ROOT / "tests").rglob("*.py"):
        names.update(re.findall(r"^\s*(?:def|class) ((?:test_|Test)\w+)", path.read_text(), re.MULTILINE))
    return names


def test_every_test_security_md_cites_exists() -> None:
    text = re.sub(r"tests/[\w/]+\.py", "", (ROOT / "SECURITY.md").read_text())  # file names are checked below
    cited = set(re.findall(r"\b((?:test_|Test)\w+\*?)", text))
    assert len(cited) > 20
    defined = _defined_tests()
    missing = sorted(name for name in cited
                     if not (any(d.startswith(name[:-1]) for d in defined) if name.endswith("*") else name in defined))
    assert missing == []


def test_every_test_file_security_md_cites_exists() -> None:
    text = (ROOT / "SECURITY.md").read_text()
    files = set(re.findall(r"(tests/[\w/]+\.py)", text))
    assert files and [f for f in sorted(files) if not (ROOT / f).is_file()] == []


def test_item7_security_md_lists_every_iam_route_and_a_feedback_only_policy() -> None:
    """Every IAM-authorized route of template.yaml is in SECURITY.md's table, and its example
    policy for a feedback integration allows `execute-api:Invoke` on the feedback route only."""
    import json

    from tests.support.stack import load_template

    text = (ROOT / "SECURITY.md").read_text()
    iam_routes = sorted(
        f"{event['Properties']['Method'].upper()} {event['Properties']['Path']}"
        for resource in load_template(ROOT / "template.yaml")["Resources"].values()
        if resource.get("Type") == "AWS::Serverless::Function"
        for event in (resource["Properties"].get("Events") or {}).values()
        if event["Type"] == "HttpApi" and (event["Properties"].get("Auth") or {}).get("Authorizer") == "AWS_IAM")
    assert "POST /v1/accounts/{accountId}/feedback" in iam_routes
    table = [line for line in text.splitlines() if line.startswith("| `")]
    missing = [route for route in iam_routes if not any(f"`{route}`" in line and "IAM" in line for line in table)]
    assert missing == []
    policies = [json.loads(block) for block in re.findall(r"```json\n(.*?)```", text, re.DOTALL)]
    (feedback_only,) = [p for p in policies if any(s.get("Sid") == "SalesFeedbackOnly" for s in p["Statement"])]
    statements = feedback_only["Statement"]
    assert [(s["Effect"], s["Action"]) for s in statements] == [("Allow", "execute-api:Invoke")]
    resources = statements[0]["Resource"]
    resources = [resources] if isinstance(resources, str) else resources
    assert [r.split("/", 1)[1] for r in resources] == ["$default/POST/v1/accounts/*/feedback"]
