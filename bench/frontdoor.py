"""The front door's share of the cost per million events, and what a batch of 100 would need to reach $1.00.

The collection path behind either front door is the same: the same Collect function, the
same payload (format 2.0), the same DynamoDB, stream, bus and Lambda requests, all counted
once by `bench.pipeline`. What differs is the front door's own charge, added here per HTTP
request (a single event is one request, a batch of 100 one request):

- API Gateway HTTP API: a charge per request (metered in 512 KB increments).
- Lambda Function URL: no charge of its own (Lambda's requests and duration are counted).
- Function URL behind CloudFront (a custom domain, the settings route cached): CloudFront's
  HTTPS request charge and its data transfer to the origin (the request bodies); with AWS
  WAF on the distribution, WAF's charge per request and its monthly web ACL and rules.

List prices, USD, as of 2026-12-06 (search of the stored pricing pages that day):
- HTTP API: $1.00 per million requests for the first 300 million a month, then $0.90
  (us-east-1; aws.amazon.com/api-gateway/pricing: "HTTP APIs are metered in 512 KB increments").
- Lambda Function URL: no additional charge (aws.amazon.com/lambda/pricing; Lambda requests
  $0.20 per million and duration are priced in `bench.pipeline.PRICES`).
- CloudFront, pay-as-you-go (aws.amazon.com/cloudfront/pricing): data transfer out to the
  internet $0.085 per GB for the first 10 TB (United States, Mexico, Canada; Europe the
  same), the Always Free tier 10,000,000 requests and 1 TB a month: both read on the stored
  page. HTTPS requests $0.0100 per 10,000 (United States, Mexico, Canada; $0.0120 in Europe)
  and regional data transfer out to origin $0.020 per GB (United States): the page's request
  table was not in the stored excerpt; the request rate is the one issue 26 gives (the
  commonly listed one), the origin rate the one infracost's CloudFront resource prices.
  Check both against the page before quoting them.
  Since 2025-11-18 CloudFront also sells flat-rate plans with WAF included and no overage
  (Business: $200 a month for 125 million requests; Premium from $1,000 for 500 million).
- AWS WAF: $0.60 per million requests inspected, $5.00 per web ACL and $1.00 per rule (or
  rule group) a month (aws.amazon.com/waf/pricing).

Not priced, for any door, as in the rest of the bench: the response's data transfer to the
internet (a 2xx answer of about 100 bytes: under $0.01 per million events at $0.09 per GB),
free tiers, CloudWatch logs (API Gateway access logs are optional and billed by CloudWatch).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from bench.pipeline import PRICES, PhaseFigures

HTTP_API_INCREMENT = 512 * 1024  # bytes: an HTTP API request is metered per started 512 KB
#: Request bytes CloudFront forwards besides the body (method, path, headers): an assumption.
HEADER_BYTES = 600
GB = 1024 ** 3

FRONT_DOOR_PRICES = {  # USD, see the module's docstring for sources and date
    "http_api_request": 1.00 / 1e6,  # first 300 million a month
    "http_api_request_over_300m": 0.90 / 1e6,
    "function_url_request": 0.0,
    "cloudfront_https_request": 0.0100 / 1e4,  # United States, Mexico, Canada
    "cloudfront_https_request_europe": 0.0120 / 1e4,
    "cloudfront_to_origin_gb": 0.020,  # United States
    "waf_request": 0.60 / 1e6,
    "waf_web_acl_month": 5.00,
    "waf_rule_month": 1.00,
}
#: The rules of the web ACL priced for the WAF option's monthly charge (a rate-based rule and
#: two AWS managed rule groups) when the template has no web ACL to count them from.
DEFAULT_WAF_RULES = 3

DOORS = ("HTTP API", "Function URL", "Function URL + CloudFront", "Function URL + CloudFront + WAF")
#: The components every door shares (everything bench.pipeline.cost_breakdown prices but the HTTP API).
FRONT_DOOR_COMPONENT = "HTTP API requests"
#: Budgets per million events on the Function URL path (issue 26): singles must fit; batches of
#: 100 are a target where it can be had without giving up anything PRODUCT promises.
FUNCTION_URL_SINGLE_BUDGET = 1.50
FUNCTION_URL_BATCH_TARGET = 1.00


def door_charges(figures: PhaseFigures) -> dict[str, dict[str, float]]:
    """Each door's own charges, USD per million events of the phase."""
    million = 1e6 / figures.events
    requests = figures.http_requests
    body = figures.request_bytes / requests if requests else 0.0
    increments = requests * max(1, math.ceil(body / HTTP_API_INCREMENT))
    to_origin_gb = (figures.request_bytes + requests * HEADER_BYTES) / GB
    cloudfront = {
        "CloudFront HTTPS requests": requests * FRONT_DOOR_PRICES["cloudfront_https_request"] * million,
        "CloudFront data transfer to the origin": to_origin_gb * FRONT_DOOR_PRICES["cloudfront_to_origin_gb"]
        * million,
    }
    return {
        "HTTP API": {"HTTP API requests": increments * FRONT_DOOR_PRICES["http_api_request"] * million},
        "Function URL": {"Function URL (no charge of its own)": 0.0},
        "Function URL + CloudFront": cloudfront,
        "Function URL + CloudFront + WAF": {
            **cloudfront, "WAF requests": requests * FRONT_DOOR_PRICES["waf_request"] * million},
    }


def door_costs(figures: PhaseFigures, shared: dict[str, float]) -> dict[str, dict[str, float]]:
    """Per door: its own charges, then what every door pays (`shared`: the pipeline's cost
    breakdown, its HTTP API line left out), USD per million events."""
    rest = {k: v for k, v in shared.items() if k != FRONT_DOOR_COMPONENT}
    return {door: {**own, **rest} for door, own in door_charges(figures).items()}


def waf_monthly(rules: int) -> float:
    return FRONT_DOOR_PRICES["waf_web_acl_month"] + rules * FRONT_DOOR_PRICES["waf_rule_month"]


def template_waf_rules(template: dict[str, Any]) -> int | None:
    """The rules of the template's web ACL (AWS::WAFv2::WebACL), None when it has none."""
    for resource in (template.get("Resources") or {}).values():
        if resource.get("Type") == "AWS::WAFv2::WebACL":
            return len((resource.get("Properties") or {}).get("Rules") or [])
    return None


# ------------------------------------------------------------------ what it would take


@dataclass
class Component:
    """One line of the cost per event: what is done, in its own units, and its price."""

    name: str
    units: float  # per event
    unit: str
    usd: float  # per million events
    floor: str = ""  # why it cannot go (empty: it could)


@dataclass
class Lever:
    """A change that would lower the cost per million events, with what it needs."""

    name: str
    saves: float  # USD per million events
    needs: str
    after: float = 0.0  # the total with this lever and those before it


@dataclass
class Anatomy:
    total: float
    components: list[Component] = field(default_factory=list)
    levers: list[Lever] = field(default_factory=list)

    @property
    def with_levers(self) -> float:
        return self.levers[-1].after if self.levers else self.total


def anatomy(figures: PhaseFigures, costs: dict[str, float]) -> Anatomy:
    """What one event costs on the Function URL path, by component (from the counters), and
    the levers that would lower it, each priced from the same counters, applied in turn."""
    n = figures.events
    collect, aggregate = figures.collect, figures.aggregate
    wcu, rcu = PRICES["wcu"] * 1e6, PRICES["rcu"] * 1e6  # USD per million units
    total = sum(costs.values())
    suppression_rcu = collect.get("rcu:suppression", 0.0) / n
    contact_rcu = aggregate.get("rcu:contact", 0.0) / n
    account_rcu = aggregate.get("rcu:account", 0.0) / n
    other_rcu = (collect.get("rcu", 0.0) + aggregate.get("rcu", 0.0)) / n - suppression_rcu - contact_rcu - account_rcu
    contact_keys = aggregate.get("keys_read:contact", 0.0)
    contact_writes = aggregate.get("write:contact", 0.0)
    account_writes = aggregate.get("write:account", 0.0)
    lam = costs.get("Lambda requests", 0.0) + costs.get("Lambda compute (arm64)", 0.0)
    components = [
        Component("the stored event (its conditional write)", collect.get("wcu", 0.0) / n, "WCU",
                  collect.get("wcu", 0.0) / n * wcu, "PRODUCT's exactly-once guard: one write per event"),
        Component("erased-id check at collection", suppression_rcu, "RCU", suppression_rcu * rcu),
        Component(f"aggregation: contact reads ({contact_keys / n:.2f} keys / event)", contact_rcu, "RCU",
                  contact_rcu * rcu),
        Component("aggregation: account reads", account_rcu, "RCU", account_rcu * rcu),
        Component(f"contact writes ({contact_writes / n:.2f} / event)", aggregate.get("wcu:contact", 0.0) / n,
                  "WCU", aggregate.get("wcu:contact", 0.0) / n * wcu,
                  "a contact whose score changed is written once per stream batch"),
        Component(f"account writes ({account_writes / n:.2f} / event, up to "
                  f"{int(aggregate.get('max_bytes:account', 0))} bytes)", aggregate.get("wcu:account", 0.0) / n,
                  "WCU", aggregate.get("wcu:account", 0.0) / n * wcu),
        Component("account history", aggregate.get("wcu:history", 0.0) / n, "WCU",
                  aggregate.get("wcu:history", 0.0) / n * wcu,
                  "PRODUCT: one small history write per account per stream batch"),
        Component("DueIndex entries", aggregate.get("gsi_wcu", 0.0) / n, "WCU",
                  aggregate.get("gsi_wcu", 0.0) / n * wcu),
        Component("`Account Score Changed` on the bus", aggregate.get("bus_entries", 0.0) / n, "entries",
                  costs.get("EventBridge entries", 0.0), "PRODUCT: state changes out, coalesced per account per batch"),
        Component("Lambda requests and compute", sum(figures.invocations.values()) / n, "invocations", lam,
                  "one invocation per HTTP request" if figures.http_requests >= n else ""),
    ]
    if other_rcu > 1e-9:
        components.append(Component("other reads", other_rcu, "RCU", other_rcu * rcu))
    components.sort(key=lambda c: -c.usd)

    levers: list[Lever] = []
    # 1. The erased-id check once per request (a filter of the erased ids' digests, one read
    #    per request; the exact suppression record read only for an id the filter matches).
    per_request = 0.5 * figures.http_requests / n  # one eventually consistent read of a small item
    levers.append(Lever(
        "erased-id check: one read per request instead of one per id", max(0.0, suppression_rcu - per_request) * rcu,
        "a filter item of the erased ids' digests (written by the erasure before its suppression records), "
        "read once per request; a precise read only for an id it matches"))
    # 2. No read of a contact whose events of the batch change nothing (none scored, no new trait).
    per_key = contact_rcu * n / contact_keys if contact_keys else 0.0
    idle = max(0.0, contact_keys - contact_writes) / n
    levers.append(Lever(
        "no contact read for events that score nothing", idle * per_key * rcu,
        f"the aggregation reads {contact_keys / n:.2f} contacts per event and writes {contact_writes / n:.2f}: "
        "collection would store with each event that it changes nothing (no rule hit, no new id or trait), "
        "and the stream would skip such events"))
    remaining_contact = contact_rcu - idle * per_key
    # 3. Eventually consistent reads in the aggregation (the conditional write on the version
    #    catches a stale read: re-read consistently and retry).
    levers.append(Lever(
        "aggregation reads eventually consistent", (remaining_contact + account_rcu) / 2 * rcu,
        "half the read units; a stale read fails the version condition (a wasted write unit) and is re-read, "
        "likeliest for a contact in two batches in a row"))
    # 4. The account item under 1 KB (one write unit a write), where it is not already: its
    #    entries and traits are compressed, so only accounts of very long names and titles pass it.
    account_wcu = aggregate.get("wcu:account", 0.0) / n
    if account_wcu - account_writes / n > 1e-9:
        levers.append(Lever(
            "account item under 1 KB", (account_wcu - account_writes / n) * wcu,
            f"the account item is up to {int(aggregate.get('max_bytes:account', 0))} bytes (2 write units): "
            "fewer or shorter top-contact entries"))
    running = total
    for lever in levers:
        running -= lever.saves
        lever.after = running
    return Anatomy(total, components, levers)
