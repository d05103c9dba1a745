"""The pipeline driven as AWS would: HTTP API v2 events in, the stream and bus pumped."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pytest

from tests.support.apigw import http_event, json_body

if TYPE_CHECKING:
    from tests.support.stack import TemplateStack

WEB_KEY = "wk_demo_website"
EMAIL_KEY = "wk_demo_email"
PRODUCT_KEY = "wk_demo_product"
START = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


class Pipeline:
    """A small driver over the stack: send, settle, read back."""

    def __init__(self, stack: TemplateStack, monkeypatch: pytest.MonkeyPatch) -> None:
        self.stack = stack
        self.monkeypatch = monkeypatch
        self.now = START
        self.set_clock(START)

    def set_clock(self, moment: datetime) -> None:
        self.now = moment
        self.monkeypatch.setenv("LEADSCORE_NOW", moment.isoformat())

    def advance(self, **delta: float) -> None:
        from datetime import timedelta

        self.set_clock(self.now + timedelta(**delta))

    def http(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        return self.stack.invoke("CollectFunction", http_event(method, path, now=self.now, **kwargs))

    def send(self, kind: str, message: dict[str, Any], key: str = WEB_KEY) -> dict[str, Any]:
        message = {"timestamp": self.now.isoformat(), **message}
        response = self.http("POST", f"/v1/{kind}", body=message, basic_user=key)
        assert response["statusCode"] == 200, response
        return response

    def settle(self) -> dict[str, int]:
        return self.stack.pump()

    def read(self, path: str, **kwargs: Any) -> tuple[int, Any]:
        route = "GET /v1/accounts/{accountId}" if path.startswith("/v1/accounts/") else "GET /v1/contacts/{contactId}"
        event = http_event("GET", path, route_key=route, now=self.now, **kwargs)
        response = self.stack.invoke("ReadApiFunction", event)
        return response["statusCode"], json_body(response)

    def contact(self, contact_id: str) -> dict[str, Any]:
        status, body = self.read(f"/v1/contacts/{contact_id}")
        assert status == 200, body
        return body

    def account(self, account_id: str) -> dict[str, Any]:
        status, body = self.read(f"/v1/accounts/{account_id}")
        assert status == 200, body
        return body

    def table_items(self) -> list[dict[str, Any]]:
        from leadscore.adapters.storage import unmarshal

        client = self.stack.client("dynamodb")
        name = self.stack.name_of("Table")
        items, kwargs = [], {"TableName": name}
        while True:
            page = client.scan(**kwargs)
            items += [unmarshal(i) for i in page["Items"]]
            if "LastEvaluatedKey" not in page:
                return items
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def stream_records(self) -> list[dict[str, Any]]:
        """Every record of the table's stream so far, shaped as Lambda delivers them."""
        streams = self.stack.client("dynamodbstreams")
        arn = self.stack.resources["Table"]["stream_arn"]
        records: list[dict[str, Any]] = []
        for shard in streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]:
            iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard["ShardId"],
                                                  ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
            while iterator:
                page = streams.get_records(ShardIterator=iterator)
                records += [self.stack._lambda_stream_record(r, arn) for r in page["Records"]]
                if not page["Records"]:
                    break
                iterator = page.get("NextShardIterator")
        return records

    def bus(self, detail_type: str) -> list[dict[str, Any]]:
        return [e for e in self.stack.bus_log if e.get("detail-type") == detail_type]


@pytest.fixture(autouse=True)
def fresh_runtime() -> Iterator[None]:
    from leadscore.adapters import runtime
    runtime.reset()
    yield
    runtime.reset()


@pytest.fixture
def pipeline(stack: TemplateStack, monkeypatch: pytest.MonkeyPatch) -> Pipeline:
    return Pipeline(stack, monkeypatch)


def vp_identify(user_id: str = "u-jo", email: str = "jo@acmetech.io") -> dict[str, Any]:
    """A VP at a 200-person US technology company (DOMAIN.md's example contact)."""
    return {
        "userId": user_id,
        "traits": {
            "email": email,
            "name": "Jo Park",
            "title": "VP Sales",
            "company": {"name": "Acme Tech", "industry": "Software", "employee_count": 200},
            "address": {"country": "US"},
        },
    }
