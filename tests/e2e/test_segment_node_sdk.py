"""The real Segment Node SDK (`@segment/analytics-node`) pointed at the local stack by its host.

What a Node back end does to adopt the product: change `host`, keep their tracking code. The
SDK runs in `node tests/e2e/node/send.mjs` (a subprocess per test), installed pinned by
tests/e2e/node/package-lock.json: `npm ci --prefix tests/e2e/node` (CI does it before the tests).

What the SDK sends (read from its source, checked below): one `POST <host>/v1/batch` per batch,
`Content-Type: application/json`, `Authorization: Basic base64(<writeKey>:)`, a plain (never
gzipped) JSON body `{"batch": [...], "writeKey": ..., "sentAt": ...}`. Any 2xx or 3xx is a
delivery; a 4xx other than 408/410/429/460 fails the batch's events at once, without a retry.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest

from local.serve_client import REPO_ROOT, WEB_KEY, LocalServer, breakdown_points
from tests.e2e.journey import assert_scored

pytestmark = pytest.mark.slow

NODE_DIR = REPO_ROOT / "tests" / "e2e" / "node"
SEND = NODE_DIR / "send.mjs"
SDK = "@segment/analytics-node"
SEND_TIMEOUT = 60.0
INSTALL = f"run `npm ci --prefix {NODE_DIR.relative_to(REPO_ROOT)}` before these tests"


def node_sdk() -> str:
    """The node executable, once the pinned SDK is installed; fails the test (never skips) otherwise."""
    node = shutil.which("node")
    if node is None:
        pytest.fail(f"node is not on PATH: install Node.js >= 20, then {INSTALL}", pytrace=False)
    pinned = json.loads((NODE_DIR / "package.json").read_text())["dependencies"][SDK]
    installed = NODE_DIR / "node_modules" / SDK / "package.json"
    if not installed.is_file():
        pytest.fail(f"{SDK} is not installed in {installed.parents[2]}: {INSTALL}", pytrace=False)
    version = json.loads(installed.read_text())["version"]
    if version != pinned:
        pytest.fail(f"{SDK} {version} is installed, package.json pins {pinned}: {INSTALL}", pytrace=False)
    return node


def send(server: LocalServer, calls: list[dict[str, Any]], *, write_key: str = WEB_KEY,
         flush_at: int = 1) -> tuple[int, dict[str, Any]]:
    """Make the SDK calls in one Node process, `closeAndFlush()`, and return its exit code and summary."""
    node = node_sdk()
    env = {**os.environ, "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}
    command = [node, str(SEND), "--host", server.api, "--write-key", write_key,
               "--flush-at", str(flush_at), "--max-retries", "1"]
    try:
        done = subprocess.run(command, input=json.dumps(calls), capture_output=True, text=True,
                              cwd=REPO_ROOT, env=env, timeout=SEND_TIMEOUT, check=False)
    except subprocess.TimeoutExpired as expired:
        pytest.fail(f"send.mjs did not finish in {SEND_TIMEOUT:.0f} s: {expired.stdout!r} {expired.stderr!r}")
    assert done.returncode in (0, 1), f"send.mjs exited {done.returncode}:\n{done.stderr}{done.stdout}"
    summary: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    assert not summary["timedOut"], summary
    assert done.returncode == (1 if summary["errors"] else 0), (done.returncode, summary)
    return done.returncode, summary


def assert_sent_as_segment(server: LocalServer, summary: dict[str, Any], write_key: str = WEB_KEY) -> None:
    """Every request went to /v1/batch of the host, as JSON, with the write key as Basic username."""
    basic = "Basic " + base64.b64encode(f"{write_key}:".encode()).decode()
    assert summary["requests"], summary
    for request in summary["requests"]:
        headers = {k.lower(): v for k, v in request["headers"].items()}
        assert (request["method"], request["url"]) == ("POST", f"{server.api}/v1/batch")
        assert headers["content-type"] == "application/json"
        assert headers["authorization"] == basic
        assert "content-encoding" not in headers  # the Node SDK never gzips
    assert len(summary["responses"]) == len(summary["requests"]), summary


def journey(user: str, domain: str) -> list[dict[str, Any]]:
    """A VP of Sales at a 200-employee US software company reads pricing and clicks the demo link."""
    return [
        {"method": "identify", "args": {"userId": user, "traits": {
            "email": f"jo@{domain}", "title": "VP Sales",
            "company": {"name": "Acme", "industry": "Software", "employee_count": 200},
            "address": {"country": "US"},
        }}},
        {"method": "track", "args": {"userId": user, "event": "Demo Link Clicked",
                                     "properties": {"link": "https://example.org/demo"}}},
        {"method": "page", "args": {"userId": user, "category": "Marketing", "name": "Pricing",
                                    "properties": {"url": f"https://www.{domain}/pricing", "path": "/pricing"}}},
        {"method": "group", "args": {"userId": user, "groupId": f"grp-{domain}", "traits": {
            "website": f"https://www.{domain}", "name": "Acme", "industry": "Software", "employees": 200,
        }}},
    ]


def test_one_request_per_call_identify_track_page_group(server: LocalServer, rules: Any) -> None:
    suffix = uuid.uuid4().hex[:8]
    user, domain = f"node-{suffix}", f"acme-{suffix}.com"

    code, summary = send(server, journey(user, domain), flush_at=1)
    server.drain()

    assert (code, summary["errors"]) == (0, [])
    assert_sent_as_segment(server, summary)
    assert [r["types"] for r in summary["requests"]] == [["identify"], ["track"], ["page"], ["group"]]
    assert [r["status"] for r in summary["responses"]] == [200] * 4
    assert_scored(server, rules, user, domain)


def test_several_events_in_one_batch_on_flush(server: LocalServer, rules: Any) -> None:
    suffix = uuid.uuid4().hex[:8]
    user, domain = f"nodeq-{suffix}", f"queued-{suffix}.com"

    code, summary = send(server, journey(user, domain), flush_at=20)
    server.drain()

    assert (code, summary["errors"]) == (0, [])
    assert_sent_as_segment(server, summary)
    assert [r["types"] for r in summary["requests"]] == [["identify", "track", "page", "group"]]
    assert [r["status"] for r in summary["responses"]] == [200]
    assert_scored(server, rules, user, domain)


def test_sdk_retries_score_once(server: LocalServer, rules: Any) -> None:
    """An SDK retry resends the same messageId: it must not count twice."""
    suffix = uuid.uuid4().hex[:8]
    user = f"noderetry-{suffix}"
    calls = [{"method": "track", "args": {"userId": user, "event": "Demo Link Clicked",
                                          "messageId": f"mid-{suffix}"}}] * 3

    code, summary = send(server, calls, flush_at=1)
    server.drain()

    assert (code, summary["errors"]) == (0, [])
    assert [r["messageIds"] for r in summary["requests"]] == [[f"mid-{suffix}"]] * 3
    assert [r["status"] for r in summary["responses"]] == [200] * 3
    assert breakdown_points(server.contact(user), "demo_link_clicked") == rules.points("demo_link_clicked")


def test_unknown_write_key_is_reported_and_nothing_is_stored(server: LocalServer) -> None:
    suffix = uuid.uuid4().hex[:8]
    user = f"nodenokey-{suffix}"
    calls = [
        {"method": "identify", "args": {"userId": user, "traits": {"email": f"jo@nokey-{suffix}.com",
                                                                   "title": "VP Sales"}}},
        {"method": "track", "args": {"userId": user, "event": "Demo Link Clicked"}},
    ]

    code, summary = send(server, calls, write_key="wk_not_a_key", flush_at=20)
    server.drain()

    assert code == 1
    assert_sent_as_segment(server, summary, write_key="wk_not_a_key")
    # one batch, answered 401 once (a 401 is not retried), and every event of it reported failed
    assert [r["types"] for r in summary["requests"]] == [["identify", "track"]]
    assert [r["status"] for r in summary["responses"]] == [401]
    assert [(e["code"], e["type"], e["reason"]["message"]) for e in summary["errors"]] == [
        ("delivery_failure", "identify", "[401] Unauthorized"),
        ("delivery_failure", "track", "[401] Unauthorized"),
    ]
    assert server.request("GET", f"/v1/contacts/{user}").status == 404
    table = server.resources()["Table"]["name"]
    items = server.boto3_client("dynamodb").scan(TableName=table)["Items"]
    assert not [item for item in items if user in str(item)], "an unknown write key stored something"


def test_missing_sdk_fails_with_the_install_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without node_modules the tests above fail (not skip) and say how to install the SDK."""
    (tmp_path / "package.json").write_text((NODE_DIR / "package.json").read_text())
    monkeypatch.setattr(f"{__name__}.NODE_DIR", tmp_path)

    with pytest.raises(pytest.fail.Exception, match=r"npm ci --prefix tests/e2e/node"):
        node_sdk()
