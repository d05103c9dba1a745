"""A client of the local stack (`python -m local.server`): start it in a subprocess on free
ports, wait for its ready line, talk to it over HTTP like curl, stop it with SIGTERM.

Used by the end-to-end tests (tests/e2e) and handy in a REPL:

    from local.serve_client import LocalServer
    server = LocalServer.temporary().start()
    server.request("POST", "/v1/track", basic_user="wk_demo_website",
                   body={"userId": "u-1", "event": "Demo Link Clicked"}).json()  # {'success': True}
    server.drain()          # everything caused so far delivered, with counts
    server.contact("u-1")   # the read API's answer
    server.stop()           # SIGTERM; 0 when it shut down cleanly
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from local.apigw import basic_auth, encode_body

REPO_ROOT = Path(__file__).resolve().parents[1]
READY = re.compile(r"^ready api=(?P<api>\S+) aws=(?P<aws>\S+)$", re.MULTILINE)
START_TIMEOUT = 90.0
STOP_TIMEOUT = 20.0
REQUEST_TIMEOUT = 30.0

CHROME_UA = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
)
WEB_KEY = "wk_demo_website"
EMAIL_KEY = "wk_demo_email"
PRODUCT_KEY = "wk_demo_product"

SERVER_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "PYTHONUNBUFFERED": "1",
}


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # a 303 is an answer to look at, not to follow


# No machine proxy for 127.0.0.1, and no redirect following.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect)


def http(method: str, url: str, *, body: bytes | str | Mapping[str, Any] | list[Any] | None = None,
         headers: Mapping[str, str] | None = None, basic_user: str | None = None,
         timeout: float = REQUEST_TIMEOUT) -> Answer:
    """One request as curl would send it; any status comes back as an Answer."""
    hdrs = dict(headers or {})
    data = encode_body(body)
    if data is not None and not isinstance(body, bytes | str):
        hdrs.setdefault("Content-Type", "application/json")
    if basic_user is not None:
        hdrs["Authorization"] = basic_auth(basic_user)
    request = urllib.request.Request(url, data=data, headers=hdrs, method=method)
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            return Answer(response.status, {k.lower(): v for k, v in response.headers.items()}, response.read())
    except urllib.error.HTTPError as error:
        return Answer(error.code, {k.lower(): v for k, v in error.headers.items()}, error.read())


class LocalServer:
    """`python -m local.server` in a subprocess, and what a test asks of it."""

    @classmethod
    def temporary(cls) -> LocalServer:
        """A server whose output goes to a file in a fresh temporary folder."""
        return cls(Path(tempfile.mkdtemp(prefix="leadscore-serve-")) / "server.log")

    def __init__(self, log_path: Path, args: Sequence[str] = ()) -> None:
        self.log_path = log_path
        self.args = list(args)  # more arguments of local.server (e.g. --parameter KEY=VALUE)
        self.process: subprocess.Popen[bytes] | None = None
        self._log: BinaryIO | None = None
        self.api = ""
        self.aws = ""

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> LocalServer:
        env = {k: v for k, v in os.environ.items()
               if k not in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL", "LEADSCORE_NOW")}
        env.update(SERVER_ENV)
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "local.server", "--port", "0", "--aws-port", "0", *self.args],
            cwd=REPO_ROOT, env=env, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            found = READY.search(self.output())
            if found:
                self.api, self.aws = found.group("api"), found.group("aws")
                return self
            if self.process.poll() is not None:
                raise RuntimeError(f"local.server exited with {self.process.returncode}:\n{self.output()}")
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"local.server not ready after {START_TIMEOUT:.0f} s:\n{self.output()}")

    def stop(self) -> int | None:
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=STOP_TIMEOUT)
        if self._log is not None:
            self._log.close()
        return self.process.returncode

    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    @classmethod
    @contextlib.contextmanager
    def running(cls, prefix: str = "leadscore-serve-", args: Sequence[str] = ()) -> Iterator[LocalServer]:
        """A server for the length of the block (a test module's fixture); it must stop cleanly."""
        with tempfile.TemporaryDirectory(prefix=prefix) as folder:
            local = cls(Path(folder) / "server.log", args).start()
            try:
                yield local
            finally:
                code = local.stop()
                if code != 0:
                    print(local.output()[-4000:], file=sys.stderr)
                assert code == 0, f"local.server exited with {code} on SIGTERM"

    # -- requests ----------------------------------------------------------------------------

    def request(self, method: str, path: str, **kwargs: Any) -> Answer:
        return http(method, self.api + path, **kwargs)

    def control(self, method: str, path: str, body: Any = None) -> Any:
        answer = self.request(method, path, body=body if body is not None else ({} if method == "POST" else None))
        return _expect_ok(answer, f"{method} {path}")

    def drain(self) -> dict[str, Any]:
        """Deliver everything caused so far; fails when a function raised while delivering."""
        result: dict[str, Any] = self.control("POST", "/_local/drain")
        if result["errors"]:
            raise AssertionError(f"functions failed while delivering: {result['errors']}")
        return result

    def resources(self) -> dict[str, Any]:
        return self.control("GET", "/_local/resources")

    def contact(self, contact_id: str) -> dict[str, Any]:
        path = f"/v1/contacts/{urllib.parse.quote(contact_id, safe='@')}"
        return _expect_ok(self.request("GET", path), f"GET {path}")

    def account(self, account_id: str) -> dict[str, Any]:
        path = f"/v1/accounts/{urllib.parse.quote(account_id)}"
        return _expect_ok(self.request("GET", path), f"GET {path}")

    def boto3_client(self, service: str) -> Any:
        """A boto3 client of the local AWS endpoint (fake credentials)."""
        import boto3

        make: Any = boto3.client
        return make(service, endpoint_url=self.aws, region_name="us-east-1",
                    aws_access_key_id="testing", aws_secret_access_key="testing")


def _expect_ok(answer: Answer, what: str) -> Any:
    if answer.status != 200:
        raise AssertionError(f"{what}: {answer.status} {answer.body[:500]!r}")
    return answer.json()


def breakdown_points(body: Mapping[str, Any], rule_id: str) -> float:
    """The points a read API breakdown gives one rule (summed over its lines)."""
    return sum(float(line["points"]) for line in body["breakdown"] if line["rule"] == rule_id)
