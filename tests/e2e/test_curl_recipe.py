"""The README's curl lines, run as written against the local stack (`make serve`).

Two blocks of README.md: "curl (the Segment Tracking API)" (JSON, curl's own user agent:
the JSON routes judge only a message's `context.userAgent`) and "Testing with curl: the bot
filter" (the pixel and the form with a browser's user agent, `-A`, are scored; the same
pixel from plain curl is a bot: its GIF, a rejected record saying what crawlerdetect
matched, the `X-Leadscore-Not-Scored` header and the access log's note). Only the API's
address is changed, so the README cannot drift from what was tested.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from typing import Any

import pytest

from local.serve_client import REPO_ROOT, LocalServer, breakdown_points

pytestmark = pytest.mark.slow

BOT_NOTE = 'bot user agent: crawlerdetect matched "curl"'


def readme_block(heading: str) -> str:
    """The first ```bash block under a README heading."""
    readme = (REPO_ROOT / "README.md").read_text()
    section = readme.split(f"\n{heading}\n", 1)[1]
    found = re.search(r"```bash\n(.*?)```", section, re.DOTALL)
    assert found, f"no bash block under {heading!r} in README.md"
    return found.group(1)


def run_as_written(block: str, api: str) -> str:
    """The block through bash, with its `API=` line pointed at the local stack; its stdout."""
    script, count = re.subn(r"(?m)^API=\S+", f"API={api}", block)
    assert count == 1, "the block must set API= once"
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", script], capture_output=True, text=True,
                          timeout=60, check=False, env={**os.environ, "NO_PROXY": "127.0.0.1,localhost",
                                                        "no_proxy": "127.0.0.1,localhost"})
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def curl_version() -> str:
    if shutil.which("curl") is None:
        pytest.fail("curl is not installed: the README's curl recipes cannot be run as written "
                    "(apt-get install curl; .ci/run installs it)")
    version = subprocess.run(["curl", "--version"], capture_output=True, text=True, check=True).stdout.split()[1]
    print(f"\ncurl {version} against make serve")
    return version


def rejected_records(server: LocalServer) -> list[dict[str, Any]]:
    table = server.resources()["Table"]["name"]
    items = server.boto3_client("dynamodb").scan(TableName=table)["Items"]
    return [{k: next(iter(v.values())) for k, v in item.items()} for item in items if item["k"]["S"] == "R"]


def test_the_readme_s_curl_lines_score_and_the_bot_one_says_why(server: LocalServer, curl_version: str,
                                                                 rules: Any) -> None:
    # When the README's Tracking API lines run (curl's own user agent, JSON bodies)
    run_as_written(readme_block("### curl (the Segment Tracking API)"), server.api)
    # and its bot-filter recipe: the pixel and the form with -A, then the pixel without it
    printed = run_as_written(readme_block("### Testing with curl: the bot filter"), server.api)
    server.drain()

    # Then the JSON calls scored, and so did the pixel and the form sent with a browser's user agent
    u42 = server.contact("u-42")
    assert breakdown_points(u42, "demo_link_clicked") == rules.points("demo_link_clicked")
    assert breakdown_points(u42, "email_opened") == rules.points("email_opened")
    assert u42["fit"] == 50
    form = server.contact("ana@globex.com")
    assert breakdown_points(form, "form_bottom_of_funnel") == rules.points("form_bottom_of_funnel")
    assert form["title"] == "Director of IT"

    # And the pixel from plain curl: its answer said why, nothing scored, the record keeps the reason
    headers = dict(line.split(": ", 1) for line in printed.splitlines() if ": " in line)
    headers = {name.lower(): value.strip() for name, value in headers.items()}
    assert (headers["content-type"], headers["x-leadscore-not-scored"]) == ("image/gif", BOT_NOTE)
    assert server.request("GET", "/v1/contacts/u-43").status == 404
    reasons = [r["reason"] for r in rejected_records(server) if r["src"] == "email"]
    assert reasons == [f'{BOT_NOTE} in "curl/{curl_version}"']

    # and make serve's access log says so on that request's line, and on no other
    log = [line for line in server.output().splitlines() if " -> CollectFunction " in line]
    noted = [line for line in log if line.endswith(f"  not scored: {BOT_NOTE}")]
    assert [line.split()[1] for line in noted] == ["/v1/pixel.gif?k=wk_demo_email&uid=u-43"]
