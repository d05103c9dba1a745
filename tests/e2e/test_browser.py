"""A real page in a real browser against the local stack: analytics.js, RudderStack's SDK, a
pixel and an HTML form, in headless Chromium (Debian's `chromium`).

The page (tests/e2e/browser/page/pricing.html) is what a site does, on an origin of the
website source's `cors_origins` (config/sources.yaml, `http://localhost:8000`):

- Segment's snippet, self-hosted as README.md's "Self-hosting analytics.js" says: the
  standalone bundle of `@segment/analytics-next` from its npm package, `analytics._cdn` set
  to this API, which answers the settings and the events; identify, track, page, group;
- RudderStack's JavaScript SDK v3 (`@rudderstack/analytics-js`) from its npm package: the
  build with its plugins bundled, its source configuration from the API (`configUrl`), the
  API as the data plane; the same four calls for a visitor of its own;
- an `<img>` pixel and a plain HTML form (`POST /v1/forms/demo-request`, 303 to its redirect).

A second page (batched.html), visited at the same time in its own browser context, loads
the same snippet with analytics.js's batching delivery (`POST /v1/b`) and RudderStack's SDK
delivering by `navigator.sendBeacon` (`POST /beacon/v1/batch?writeKey=`), for two more visitors.

Nothing comes from a CDN: a static server of the test serves the page and the SDK bundles
from tests/e2e/browser/node_modules (`npm ci --prefix tests/e2e/browser`, pinned by its
package-lock.json; `make node-deps`), and Chromium maps the page's origin to that server
(`--host-resolver-rules`), so the page keeps the configured origin whatever port the server
got. `tests/e2e/browser/drive.mjs` drives Chromium with playwright-core (never a downloaded
browser) with Chromium's own user agent less "Headless" (a headless one is judged a bot),
records every request the page makes to the API, submits the form, and prints it all as JSON.

The first test prints the versions driven; every test prints what the browser sent.
"""

from __future__ import annotations

import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import pytest
import yaml

from local.serve_client import REPO_ROOT, WEB_KEY, LocalServer, breakdown_points
from tests.e2e.journey import assert_scored

# The first test that needs Chromium may install it (apt-get, at most INSTALL_TIMEOUT).
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

BROWSER_DIR = REPO_ROOT / "tests" / "e2e" / "browser"
PAGE_DIR = BROWSER_DIR / "page"
DRIVE = BROWSER_DIR / "drive.mjs"
MODULES = BROWSER_DIR / "node_modules"
CHROMIUM = Path("/usr/bin/chromium")
INSTALL_CHROMIUM = "apt-get update -qq && apt-get install -y -qq chromium"
INSTALL_NODE = f"run `npm ci --prefix {BROWSER_DIR.relative_to(REPO_ROOT)}` (make node-deps) before these tests"
PAGE_ORIGIN = "http://localhost:8000"  # the website source's cors_origins and its forms' redirect
FORM_ID = "demo-request"
DRIVE_TIMEOUT = 90.0
INSTALL_TIMEOUT = 600.0
DELIVERY_TIMEOUT_MS = 12000

#: What the static server serves from the npm packages (no CDN anywhere).
VENDOR = {
    "analytics-next": MODULES / "@segment" / "analytics-next" / "dist" / "umd",
    "rudderstack": MODULES / "@rudderstack" / "analytics-js" / "dist" / "npm" / "modern" / "bundled" / "umd",
}
VENDOR_FILES = {"rudderstack": {"rsa.js": "index.js"}}  # the URL's name -> the package's file


# ------------------------------------------------------------------------------ what it needs


@pytest.fixture(scope="session")
def chromium() -> Path:
    return ensure_chromium()


def ensure_chromium() -> Path:
    """Debian's Chromium, installed with apt-get when it is missing and we are root; else skip, loudly."""
    if not _runs(CHROMIUM):
        reason = _install_chromium()
        if reason:
            message = f"BROWSER E2E TESTS SKIPPED: Chromium is not installed and cannot be here: {reason}"
            print(f"\n{'!' * 100}\n{message}\n{'!' * 100}", file=sys.stderr)
            pytest.skip(message)
    return CHROMIUM


def _runs(executable: Path) -> bool:
    if not os.access(executable, os.X_OK):
        return False
    try:
        done = subprocess.run([str(executable), "--version"], capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0 and "Chromium" in done.stdout


def _install_chromium() -> str | None:
    """None once installed, else why it cannot be."""
    if shutil.which("apt-get") is None:
        return f"no apt-get on this machine (Debian's chromium is what the test drives: {CHROMIUM})"
    if os.geteuid() != 0:
        return f"not root, so apt-get cannot install it: run `sudo sh -c '{INSTALL_CHROMIUM}'`"
    print(f"\ninstalling Chromium: {INSTALL_CHROMIUM}", file=sys.stderr)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    try:
        done = subprocess.run(["sh", "-c", INSTALL_CHROMIUM], capture_output=True, text=True, env=env,
                              timeout=INSTALL_TIMEOUT, check=False)
    except subprocess.TimeoutExpired:
        return f"`{INSTALL_CHROMIUM}` did not finish in {INSTALL_TIMEOUT / 60:.0f} minutes"
    if done.returncode != 0 or not _runs(CHROMIUM):
        return f"`{INSTALL_CHROMIUM}` exited {done.returncode}: {(done.stderr or done.stdout)[-1500:]}"
    return None


def node_with_packages() -> str:
    """node, once the pinned packages are installed; fails the test (never skips) otherwise."""
    node = shutil.which("node")
    if node is None:
        pytest.fail(f"node is not on PATH: install Node.js >= 20, then {INSTALL_NODE}", pytrace=False)
    pinned: dict[str, str] = json.loads((BROWSER_DIR / "package.json").read_text())["dependencies"]
    for name, version in pinned.items():
        installed = MODULES / name / "package.json"
        if not installed.is_file():
            pytest.fail(f"{name} is not installed in {MODULES}: {INSTALL_NODE}", pytrace=False)
        found = json.loads(installed.read_text())["version"]
        if found != version:
            pytest.fail(f"{name} {found} is installed, package.json pins {version}: {INSTALL_NODE}", pytrace=False)
    return node


# ------------------------------------------------------------------------------ the site


@dataclass
class Site:
    """The static server of the pages: its port, each page's file and what it fills in, what it was asked."""

    url: str = ""
    pages: dict[str, tuple[str, dict[str, str]]] = field(default_factory=dict)
    log: list[str] = field(default_factory=list)


def _site_handler(site: Site) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the http.server name
            path = urlsplit(self.path).path
            found = self._resolve(path)
            site.log.append(f"GET {self.path} {200 if found else 404}")
            if found is None:
                self._send(404, "text/plain", b"not found")
                return
            content_type, body = found
            self._send(200, content_type, body)

        def _resolve(self, path: str) -> tuple[str, bytes] | None:
            if path in site.pages:
                name, fill = site.pages[path]
                text = (PAGE_DIR / name).read_text()
                for placeholder, value in fill.items():
                    text = text.replace(placeholder, value)
                return "text/html; charset=utf-8", text.encode()
            if path == "/thanks.html":
                return "text/html; charset=utf-8", (PAGE_DIR / "thanks.html").read_bytes()
            vendor = re.fullmatch(r"/vendor/([\w-]+)/([\w.-]+\.js)", path)
            if vendor and vendor.group(1) in VENDOR:
                package, name = vendor.groups()
                file = VENDOR[package] / VENDOR_FILES.get(package, {}).get(name, name)
                if file.is_file():
                    return "text/javascript; charset=utf-8", file.read_bytes()
            return None

        def _send(self, status: int, content_type: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the http.server name
            pass  # the site's log is `Site.log`

    return Handler


@pytest.fixture(scope="module")
def site() -> Iterator[Site]:
    site = Site()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _site_handler(site))
    site.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield site
    finally:
        httpd.shutdown()
        httpd.server_close()


# ------------------------------------------------------------------------------ one browser run


@dataclass
class Run:
    """One run of the page in Chromium, and the ids it used."""

    summary: dict[str, Any]
    ajs_user: str
    ajs_domain: str
    batched_user: str
    batched_domain: str
    beacon_user: str
    beacon_domain: str
    rudder_user: str
    rudder_domain: str
    pixel_user: str
    form_email: str
    site_log: list[str]
    server_log: list[str]

    def requests(self, user: str | None = None) -> list[dict[str, Any]]:
        """The page's requests to the API, or those carrying an event of `user`."""
        every: list[dict[str, Any]] = self.summary["requests"]
        if user is None:
            return every
        return [r for r in every if any(e.get("userId") == user for e in r["body"].get("events", []))]

    def report(self, user: str | None = None) -> str:
        """What the browser sent (and got), readable: printed by each test, part of each failure."""
        lines = []
        for r in self.requests(user):
            headers = {k: v for k, v in r["headers"].items()
                       if k in ("content-type", "authorization", "x-retry-count", "anonymousid", "sentat",
                                "origin", "user-agent") or k.startswith("rsa-")}
            answer = r["status"] if r["status"] is not None else f"FAILED {r['failure']}"
            lines.append(f"  {r['method']} {r['path']} -> {answer} {r.get('responseHeaders', {})}\n"
                         f"      sent {json.dumps(headers)}\n      body {json.dumps(r['body'])}")
        console = [line for line in self.summary["console"] if not line.startswith("debug")]
        return "\n".join([
            f"browser requests to the API{f' for {user}' if user else ''}:", *lines,
            "console:", *[f"  {line}" for line in console],
            "page errors:", *[f"  {line}" for line in self.summary["pageErrors"]],
            "API access log (the server's own lines, preflights included):", *[f"  {line}" for line in self.server_log],
            f"undelivered after {DELIVERY_TIMEOUT_MS / 1000:.0f} s: "
            f"{[u for v in self.summary['visits'].values() for u in v['undelivered'] or []]}",
        ])


def _form_redirect() -> str:
    sources = yaml.safe_load((REPO_ROOT / "config" / "sources.yaml").read_text())
    website = next(s for s in sources["sources"] if s["write_key"] == WEB_KEY)
    assert PAGE_ORIGIN in website.get("cors_origins", []), f"{PAGE_ORIGIN} left the website source's cors_origins"
    redirect: str = next(f for f in sources["forms"] if f["id"] == FORM_ID)["redirect"]
    assert redirect.startswith(PAGE_ORIGIN + "/"), f"the {FORM_ID} form redirects off the page's origin: {redirect}"
    return redirect


@pytest.fixture(scope="module")
def run(server: LocalServer, site: Site, chromium: Path) -> Run:
    """The page, driven once for the module's tests; everything it caused delivered."""
    node = node_with_packages()
    s = uuid.uuid4().hex[:8]
    ajs_user, ajs_domain = f"ajs-{s}", f"ajs-{s}.com"
    batched_user, batched_domain = f"ajsb-{s}", f"ajsb-{s}.com"
    beacon_user, beacon_domain = f"rsb-{s}", f"rsb-{s}.com"
    rudder_user, rudder_domain = f"rs-{s}", f"rs-{s}.com"
    pixel_user, form_email = f"px-{s}", f"ann@form-{s}.com"
    page_url = f"{PAGE_ORIGIN}/pricing"
    fill = {"__API__": server.api, "__WRITE_KEY__": WEB_KEY}
    site.pages = {
        "/pricing": ("pricing.html", {
            **fill,
            "__PIXEL_SRC__": f"{server.api}/v1/pixel.gif?k={WEB_KEY}&uid={pixel_user}&url={quote(page_url, safe='')}",
            "__E2E__": json.dumps({"segment": {"user": ajs_user, "domain": ajs_domain},
                                   "rudder": {"user": rudder_user, "domain": rudder_domain},
                                   "form": {"email": form_email}}),
        }),
        "/batched/pricing": ("batched.html", {
            **fill, "__E2E__": json.dumps({"segment": {"user": batched_user, "domain": batched_domain},
                                           "rudder": {"user": beacon_user, "domain": beacon_domain}}),
        }),
    }
    journey = ["identify", "track", "page", "group"]
    job = {
        "chromium": str(chromium),
        "hostRules": f"MAP {urlsplit(PAGE_ORIGIN).netloc} {urlsplit(site.url).netloc}",
        "api": server.api,
        "deliveryTimeoutMs": DELIVERY_TIMEOUT_MS,
        "visits": [
            {"name": "page", "url": page_url, "expect": {ajs_user: journey, rudder_user: journey},
             "formId": FORM_ID},
            {"name": "batched", "url": f"{PAGE_ORIGIN}/batched/pricing",
             "expect": {batched_user: journey, beacon_user: journey}},
        ],
    }
    log_start = len(server.output())
    env = {**os.environ, "NO_PROXY": "*", "no_proxy": "*", "PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD": "1"}
    try:
        done = subprocess.run([node, str(DRIVE)], input=json.dumps(job), capture_output=True, text=True,
                              cwd=BROWSER_DIR, env=env, timeout=DRIVE_TIMEOUT, check=False)
    except subprocess.TimeoutExpired as expired:
        pytest.fail(f"drive.mjs did not finish in {DRIVE_TIMEOUT:.0f} s: {expired.stdout!r} {expired.stderr!r}")
    lines = done.stdout.strip().splitlines()
    assert done.returncode == 0 and lines, f"drive.mjs exited {done.returncode}:\n{done.stderr}{done.stdout}"
    summary = json.loads(lines[-1])
    server.drain()
    # the server's access log (its lines can interleave when requests end together)
    access = re.findall(r"[A-Z]+ /(?:beacon/)?v1/\S* \d{3}.*? \d+ ms", server.output()[log_start:])
    return Run(summary, ajs_user, ajs_domain, batched_user, batched_domain, beacon_user, beacon_domain,
               rudder_user, rudder_domain,
               pixel_user, form_email, site.log, access)


# ------------------------------------------------------------------------------ the tests


def test_versions_driven_and_a_browser_user_agent(run: Run, capsys: pytest.CaptureFixture[str]) -> None:
    versions = run.summary["versions"]
    with capsys.disabled():  # shown in every run, not only with -s
        print(f"\n[browser e2e] drove Chromium {versions['chromium']} (playwright-core {versions['playwright-core']})"
              f" with @segment/analytics-next {versions['@segment/analytics-next']} (the snippet, self-hosted)"
              f" and @rudderstack/analytics-js {versions['@rudderstack/analytics-js']} (rudder-sdk-js v3,"
              f" bundled build, offline) in {run.summary['seconds']:.1f} s")
    print(run.report())

    agents = {r["headers"].get("user-agent") for r in run.requests()}
    assert agents == {run.summary["userAgent"]}
    assert "Headless" not in run.summary["userAgent"] and "Chrome/" in run.summary["userAgent"]
    # nothing but the page and the packages' bundles came from the site; nothing from a CDN
    assert not [line for line in run.site_log if line.endswith(" 404") and "favicon" not in line], run.site_log


def test_analytics_js_snippet_is_scored(run: Run, server: LocalServer, rules: Any) -> None:
    report = run.report(run.ajs_user)
    print(report)
    settings = [r for r in run.requests() if r["path"] == f"/v1/projects/{WEB_KEY}/settings" and r["visit"] == "page"]
    assert [r["status"] for r in settings] == [200], report  # from the API (`analytics._cdn`), not Segment's CDN
    assert run.summary["visits"]["page"]["analyticsJs"]["initialized"], report
    assert run.summary["visits"]["page"]["undelivered"] == [], report
    sent = run.requests(run.ajs_user)
    assert all(r["status"] == 200 for r in sent), report
    # one call a request, to /v1/<the type's first letter>, JSON as text/plain, the key as Basic user
    assert sorted(r["path"] for r in sent) == ["/v1/g", "/v1/i", "/v1/p", "/v1/t"], report
    assert {r["headers"]["content-type"] for r in sent} == {"text/plain"}, report

    assert_scored(server, rules, run.ajs_user, run.ajs_domain)


def test_analytics_js_batching_is_scored(run: Run, server: LocalServer, rules: Any) -> None:
    report = run.report(run.batched_user)
    print(report)
    assert run.summary["visits"]["batched"]["undelivered"] == [], report
    sent = run.requests(run.batched_user)
    assert sent and all(r["status"] == 200 for r in sent), report
    # the calls in batches to /v1/b, JSON as text/plain: {"batch": [...], "writeKey", "sentAt"}
    assert {(r["path"], r["headers"]["content-type"], r["body"]["batch"]) for r in sent} == {
        ("/v1/b", "text/plain", True)}, report
    assert sorted(e["type"] for r in sent for e in r["body"]["events"]) == ["group", "identify", "page", "track"]

    assert_scored(server, rules, run.batched_user, run.batched_domain)


def test_rudderstack_sdk_by_beacon_is_scored(run: Run, server: LocalServer, rules: Any) -> None:
    report = run.report(run.beacon_user)
    print(report)
    assert run.summary["visits"]["batched"]["undelivered"] == [], report
    sent = run.requests(run.beacon_user)
    # navigator.sendBeacon: no header but its content type, the write key in the query
    assert sent and {(r["path"], r["status"], r["body"]["batch"]) for r in sent} == {
        ("/beacon/v1/batch", 200, True)}, report
    assert all(f"writeKey={WEB_KEY}" in r["url"] and "authorization" not in r["headers"] for r in sent), report

    assert_scored(server, rules, run.beacon_user, run.beacon_domain)


def test_pixel_is_scored(run: Run, server: LocalServer, rules: Any) -> None:
    pixel = run.summary["visits"]["page"]["pixel"]
    assert pixel["complete"] and pixel["naturalWidth"] == 1, pixel

    contact = server.contact(run.pixel_user)

    # a page view of the pricing page, from a browser (a bot's would be stored, not scored)
    assert breakdown_points(contact, "pricing_page") == rules.points("pricing_page")
    assert contact["engagement"] == rules.points("pricing_page")


def test_form_redirects_and_is_scored(run: Run, server: LocalServer, rules: Any) -> None:
    redirect = _form_redirect()
    form = run.summary["visits"]["page"]["form"]

    assert (form["status"], form["location"], form["finalUrl"], form["title"]) == (303, redirect, redirect, "Thanks")
    contact = server.contact(run.form_email)
    assert breakdown_points(contact, "form_bottom_of_funnel") == rules.points("form_bottom_of_funnel")
    assert contact["fit"] == rules.points("title_manager")  # "Director of IT"
    assert contact["accountId"] == run.form_email.split("@")[1]


def test_rudderstack_sdk_is_scored(run: Run, server: LocalServer, rules: Any) -> None:
    report = run.report(run.rudder_user)
    print(report)
    assert run.requests(run.rudder_user), f"rudder-sdk-js sent nothing:\n{run.report()}"
    assert run.summary["visits"]["page"]["undelivered"] == [], report
    config = [r for r in run.requests() if r["path"] == "/v1/sourceConfig" and r["visit"] == "page"]
    assert [r["status"] for r in config] == [200], report  # from the API (`configUrl`), not RudderStack's
    assert {r["path"] for r in run.requests(run.rudder_user)} == {"/v1/identify", "/v1/track", "/v1/page", "/v1/group"}

    assert_scored(server, rules, run.rudder_user, run.rudder_domain)


def test_readme_recipe_is_the_page_s() -> None:
    """README.md's "Self-hosting analytics.js" is this page's snippet and RudderStack `load`, word for word."""
    readme = " ".join((REPO_ROOT / "README.md").read_text().split())
    page, batched = (PAGE_DIR / "pricing.html").read_text(), (PAGE_DIR / "batched.html").read_text()
    snippet = re.search(r'^\s*(!function\(\)\{var i="analytics".*)$', page, re.MULTILINE)
    load = re.search(r"rudder\.load\(.*?\n\s*\}\);", page, re.DOTALL)
    batched_load = re.search(r'analytics\.load\("__WRITE_KEY__", \{.*?\}\);', batched, re.DOTALL)
    assert snippet and load and batched_load, "a page lost Segment's snippet, its load() or RudderStack's load()"
    assert snippet.group(1) in batched, "batched.html's snippet is not pricing.html's"
    for code in (snippet.group(1), 'analytics.load("__WRITE_KEY__");', batched_load.group(0), load.group(0)):
        recipe = " ".join(code.replace("__WRITE_KEY__", WEB_KEY).replace("__API__", "https://<api>").split())
        assert recipe in readme, f"README.md's recipe differs from the tested page's:\n{recipe}"


def test_without_chromium_and_not_root_it_skips_and_says_how_to_install(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(f"{__name__}.CHROMIUM", tmp_path / "chromium")
    monkeypatch.setattr(os, "geteuid", lambda: 1000)

    with pytest.raises(pytest.skip.Exception, match=r"not root.*apt-get install -y -qq chromium"):
        ensure_chromium()
    assert "BROWSER E2E TESTS SKIPPED" in capsys.readouterr().err


def test_missing_packages_fail_with_the_install_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without node_modules the browser tests fail (not skip) and say how to install the packages."""
    monkeypatch.setattr(f"{__name__}.MODULES", tmp_path / "node_modules")

    with pytest.raises(pytest.fail.Exception, match=r"npm ci --prefix tests/e2e/browser"):
        node_with_packages()
