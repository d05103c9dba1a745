"""`make serve` as a developer drives it: curl-like HTTP, boto3 on the AWS endpoint, the control routes."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest

from local.serve_client import CHROME_UA, EMAIL_KEY, PRODUCT_KEY, WEB_KEY, LocalServer, breakdown_points

pytestmark = pytest.mark.slow

PIXEL_GIF_BYTES = 43


def identify_vp(server: LocalServer, user_id: str, domain: str) -> None:
    answer = server.request("POST", "/v1/identify", basic_user=WEB_KEY, body={
        "userId": user_id,
        "traits": {"email": f"jo@{domain}", "title": "VP Sales",
                   "company": {"name": "Acme", "industry": "Software", "employee_count": 200},
                   "address": {"country": "US"}},
    })
    assert answer.status == 200, answer.body


# ------------------------------------------------------------------------------ the stack is up


def test_resources_name_every_resource_of_the_template(server: LocalServer) -> None:
    resources = server.resources()

    assert resources["Table"]["name"] and resources["Table"]["arn"].startswith("arn:aws:dynamodb:")
    assert resources["EventBus"]["name"]
    assert resources["AggregateFailureQueue"]["url"].startswith(server.aws)
    assert {"CollectFunction", "ReadApiFunction", "AggregateFunction", "DecayFunction"} <= set(resources)


def test_the_ready_banner_lists_urls_and_resource_names(server: LocalServer) -> None:
    output = server.output()

    assert f"API           {server.api}" in output
    assert f"AWS endpoint  {server.aws}" in output
    assert server.resources()["EventBus"]["name"] in output


# ------------------------------------------------------------------------------ the HTTP API


def test_track_with_basic_auth_answers_as_segment(server: LocalServer, uid: str) -> None:
    answer = server.request("POST", "/v1/track", basic_user=WEB_KEY,
                            body={"userId": f"u-{uid}", "event": "Demo Link Clicked"})

    assert answer.status == 200
    assert answer.json() == {"success": True}
    assert answer.headers["content-type"] == "application/json"


def test_pixel_answers_the_gif_uncached(server: LocalServer, uid: str) -> None:
    answer = server.request("GET", f"/v1/pixel.gif?k={EMAIL_KEY}&e=Email%20Opened&uid=u-{uid}&mid=m-{uid}",
                            headers={"User-Agent": CHROME_UA})

    assert answer.status == 200
    assert answer.headers["content-type"] == "image/gif"
    assert answer.headers["cache-control"] == "no-store"
    assert answer.body.startswith(b"GIF89a") and len(answer.body) == PIXEL_GIF_BYTES


def test_pixel_with_a_bad_key_still_answers_the_gif(server: LocalServer) -> None:
    answer = server.request("GET", "/v1/pixel.gif?k=nope")

    assert answer.status == 200 and len(answer.body) == PIXEL_GIF_BYTES


def test_html_form_redirects_and_scores_its_stage(server: LocalServer, uid: str, rules: Any) -> None:
    email = f"ann-{uid}@acme-{uid}.com"
    answer = server.request(
        "POST", "/v1/forms/demo-request",
        body=f"email={email.replace('@', '%40')}&title=Director+of+IT&company.name=Acme",
        headers={"Content-Type": "application/x-www-form-urlencoded", "User-Agent": CHROME_UA,
                 "Referer": "http://localhost:8000/demo.html"},
    )
    assert answer.status == 303
    assert answer.headers["location"] == "http://localhost:8000/thanks.html"

    server.drain()
    contact = server.contact(email)

    assert breakdown_points(contact, "form_bottom_of_funnel") == rules.points("form_bottom_of_funnel")
    assert contact["accountId"] == f"acme-{uid}.com"


def test_drain_then_read_shows_the_score(server: LocalServer, uid: str, rules: Any) -> None:
    user, domain = f"u-{uid}", f"acme-{uid}.com"
    identify_vp(server, user, domain)
    tracked = server.request("POST", "/v1/track", basic_user=WEB_KEY,
                             body={"userId": user, "event": "Demo Link Clicked"})
    assert tracked.status == 200

    drained = server.drain()
    contact = server.contact(user)

    assert drained["delivered"]["stream_records"] >= 2
    fit = rules.points("title_executive", "industry_technology", "company_size", "country_focus")
    engagement = rules.points("demo_link_clicked")
    assert (contact["fit"], contact["engagement"], contact["score"]) == (fit, engagement, fit + engagement)
    assert contact["accountId"] == domain
    assert server.account(domain)["engagement"] == engagement


def test_read_routes_accept_unsigned_requests_locally(server: LocalServer) -> None:
    answer = server.request("GET", "/v1/accounts/no-such-account.example")

    assert answer.status == 404  # the read API's own answer: the route ran without a signature
    assert answer.json()["success"] is False


def test_a_boto3_client_on_the_aws_endpoint_sees_the_table(server: LocalServer, uid: str) -> None:
    user = f"u-{uid}"
    identify_vp(server, user, f"acme-{uid}.com")
    server.drain()
    table = server.resources()["Table"]["name"]

    items = server.boto3_client("dynamodb").scan(TableName=table)["Items"]

    mine = [item for item in items if user in json.dumps(item, default=str)]  # (history steps are binary)
    assert mine, f"no item of {user} among {len(items)} items"


def test_tracking_events_put_on_the_bus_with_boto3_are_scored(server: LocalServer, uid: str, rules: Any) -> None:
    user = f"u-{uid}"
    identify_vp(server, user, f"acme-{uid}.com")
    bus = server.resources()["EventBus"]["name"]

    result = server.boto3_client("events").put_events(Entries=[{
        "EventBusName": bus, "Source": "com.example.product", "DetailType": "Tracking Event",
        "Detail": json.dumps({"type": "track", "userId": user, "event": "Demo Requested", "messageId": f"p-{uid}"}),
    }])
    assert result["FailedEntryCount"] == 0
    drained = server.drain()

    assert drained["delivered"]["bus_events"] >= 1
    assert breakdown_points(server.contact(user), "demo_requested") == rules.points("demo_requested")


def test_events_flow_without_a_drain(server: LocalServer, uid: str) -> None:
    """The background delivery keeps the pipeline moving as AWS would."""
    import time

    user = f"u-{uid}"
    identify_vp(server, user, f"acme-{uid}.com")
    deadline = time.monotonic() + 15
    status = 0
    while time.monotonic() < deadline:
        status = server.request("GET", f"/v1/contacts/{user}").status
        if status == 200:
            break
        time.sleep(0.2)

    assert status == 200


# ------------------------------------------------------------------------------ the clock and schedules


def test_decay_after_sixty_days_halves_email_opens(server: LocalServer, uid: str, rules: Any,
                                                   restore_clock: None) -> None:
    user = f"u-{uid}"
    opened = server.request("GET", f"/v1/pixel.gif?k={EMAIL_KEY}&e=Email%20Opened&uid={user}&mid=open-{uid}",
                            headers={"User-Agent": CHROME_UA})
    assert opened.status == 200
    server.drain()
    full = rules.points("email_opened")
    assert breakdown_points(server.contact(user), "email_opened") == full

    decay = rules.scoring["decay"]["email"]
    days = decay["stale_after_days"] + decay["half_life_days"]  # stale, then one half-life
    clock = server.control("POST", "/_local/clock", {"advance": f"P{days}D"})
    run = server.control("POST", "/_local/schedules/DecaySchedule/run")
    server.drain()
    decayed = server.contact(user)

    assert clock["offsetSeconds"] == pytest.approx(days * 86400, abs=5)
    assert run["function"] == "DecayFunction"
    assert run["result"]["written"] >= 1
    assert breakdown_points(decayed, "email_opened") == pytest.approx(full / 2, abs=0.01)


def test_clock_can_be_set_and_read(server: LocalServer, restore_clock: None) -> None:
    set_to = server.control("POST", "/_local/clock", {"now": "2027-01-04T09:00:00Z"})
    read = server.control("GET", "/_local/clock")
    advanced = server.control("POST", "/_local/clock", {"advance": 3600})

    assert set_to["now"].startswith("2027-01-04T09:00")
    assert read["now"].startswith("2027-01-04T09:0")
    assert advanced["now"].startswith("2027-01-04T10:0")


def test_bad_clock_input_is_a_400(server: LocalServer) -> None:
    answer = server.request("POST", "/_local/clock", body={"advance": "thirty days"})

    assert answer.status == 400
    assert "advance" in answer.json()["message"]


def test_unknown_schedule_is_a_404(server: LocalServer) -> None:
    answer = server.request("POST", "/_local/schedules/NoSuchFunction/run", body={})

    assert answer.status == 404
    assert "DecayFunction" in answer.json()["scheduled"]


# ------------------------------------------------------------------------------ what API Gateway does itself


def test_unknown_route_is_a_404_json(server: LocalServer) -> None:
    unknown = server.request("GET", "/v1/nothing-here")
    wrong_method = server.request("GET", "/v1/track")

    assert (unknown.status, unknown.json()) == (404, {"message": "Not Found"})
    assert wrong_method.status == 404


def test_cors_preflight_allows_the_origins_of_sources_yaml(server: LocalServer) -> None:
    ask = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type,authorization"}
    answer = server.request("OPTIONS", "/v1/track", headers={"Origin": "http://localhost:8000", **ask})

    assert answer.status == 204
    assert answer.headers["access-control-allow-origin"] == "http://localhost:8000"
    assert "POST" in answer.headers["access-control-allow-methods"]
    assert "authorization" in answer.headers["access-control-allow-headers"]
    assert answer.headers["access-control-max-age"] == "600"

    stranger = server.request("OPTIONS", "/v1/track", headers={"Origin": "https://evil.example", **ask})
    assert stranger.status == 403 and "access-control-allow-origin" not in stranger.headers


def test_cors_headers_on_a_cross_origin_post(server: LocalServer, uid: str) -> None:
    answer = server.request("POST", "/v1/track", basic_user=WEB_KEY,
                            headers={"Origin": "http://localhost:8000"},
                            body={"userId": f"u-{uid}", "event": "Signed Up"})

    assert answer.status == 200
    assert answer.headers["access-control-allow-origin"] == "http://localhost:8000"
    # a source that lists no origins gives a browser nothing to read
    other = server.request("POST", "/v1/track", basic_user=PRODUCT_KEY, headers={"Origin": "http://localhost:8000"},
                           body={"userId": f"u-{uid}", "event": "Signed Up"})
    assert other.status == 200 and "access-control-allow-origin" not in other.headers


def test_unknown_write_key_is_a_401_json(server: LocalServer, uid: str) -> None:
    answer = server.request("POST", "/v1/track", basic_user="wk_nope", body={"userId": f"u-{uid}", "event": "x"})

    assert answer.status == 401
    assert answer.json()["error"] == "unauthorized"


@pytest.mark.parametrize(("text", "seconds"), [
    ("P30D", 30 * 86400), ("PT1H30M", 5400), ("P1DT12H", 129600), ("P2W", 14 * 86400), ("PT0.5S", 0.5),
    ("-PT5M", -300), (90, 90), ("3600", 3600), (1.5, 1.5),
])
def test_clock_advance_takes_iso_durations_or_seconds(text: Any, seconds: float) -> None:
    from local.server import parse_duration

    assert parse_duration(text).total_seconds() == seconds


@pytest.mark.parametrize("text", ["P", "PT", "P1DT", "30 days", "P1Y", True])
def test_clock_advance_rejects_what_it_cannot_read(text: Any) -> None:
    from local.server import parse_duration

    with pytest.raises(ValueError, match="advance"):
        parse_duration(text)

# ------------------------------------------------------------------------------ routing exactly once
# Real HTTP, the real moto server, concurrent senders: the account qualifies through the
# public ingestion API; then 20 threads put the same `Account SDR Ready` on the bus at once,
# over the local AWS endpoint, while the stack is still aggregating and routing. However
# the deliveries interleave, the account gets one SDR, one message on the routed FIFO queue
# and one step of its pool's counter.


def _qualify(server: LocalServer, domain: str) -> None:
    """A VP at a 200-person US software company (account fit 30) who requests a demo, attends
    a webinar and clicks a demo link: engagement capped at 80, account score 110 >= 100."""
    user = f"vp@{domain}"
    answer = server.request("POST", "/v1/identify", basic_user=WEB_KEY, body={
        "userId": user, "traits": {"email": user, "title": "VP Sales",
                                   "company": {"name": domain, "industry": "Software", "employee_count": 200},
                                   "address": {"country": "US"}}})
    assert answer.status == 200, answer.body
    for name in ("Demo Requested", "Webinar Attended", "Demo Link Clicked"):
        answer = server.request("POST", "/v1/track", basic_user=WEB_KEY, body={"userId": user, "event": name})
        assert answer.status == 200, answer.body


def _routed_messages(server: LocalServer, account_id: str) -> list[dict[str, Any]]:
    sqs = server.boto3_client("sqs")
    url = server.resources()["RoutedQueue"]["url"]
    found: list[dict[str, Any]] = []
    while True:
        page = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0,
                                   AttributeNames=["All"]).get("Messages", [])
        if not page:
            return [m for m in found if m["body"]["accountId"] == account_id]
        for message in page:
            found.append({"body": json.loads(message["Body"]), "group": message["Attributes"]["MessageGroupId"]})
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


def test_20_concurrent_deliveries_over_http_give_one_message_and_one_counter_step(
        server: LocalServer, uid: str) -> None:
    # Given an account qualifying through the ingestion API, its routing not yet settled
    domain = f"acme-{uid}.io"
    events = server.boto3_client("events")
    bus = server.resources()["EventBus"]["name"]
    dynamodb = server.boto3_client("dynamodb")
    table = server.resources()["Table"]["name"]

    def pool_counter() -> int:
        item = dynamodb.get_item(TableName=table, Key={"pk": {"S": "POOL#na"}, "sk": {"S": "RR"}}).get("Item")
        return int(item["n"]["N"]) if item else 0

    before = pool_counter()
    _qualify(server, domain)

    # When 20 threads put the same Account SDR Ready on the bus at once
    ready = json.dumps({"accountId": domain, "cycle": 1, "state": "sdr_ready"})
    barrier = threading.Barrier(20, timeout=30)
    failures: list[Any] = []

    def deliver() -> None:
        barrier.wait()
        answer = events.put_events(Entries=[{"EventBusName": bus, "Source": "leadscore",
                                             "DetailType": "Account SDR Ready", "Detail": ready}])
        if answer.get("FailedEntryCount"):
            failures.append(answer)

    threads = [threading.Thread(target=deliver) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    server.drain()

    # Then one SDR, one message on the routed FIFO queue, one counter step
    assert failures == []
    account = server.account(domain)
    assert account["state"] == "routed", account
    messages = _routed_messages(server, domain)
    assert len(messages) == 1
    assert messages[0]["group"] == account["sdr"]["id"] == messages[0]["body"]["sdr"]["id"]
    assert pool_counter() == before + 1
