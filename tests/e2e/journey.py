"""The VP journey the Python SDK tests send (Segment's and RudderStack's clients share the
same calls) and what the e2e tests expect of it."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from local.serve_client import LocalServer, breakdown_points


@dataclass
class Errors:
    """What a Python SDK reports through `on_error`."""

    seen: list[tuple[BaseException, list[dict[str, Any]]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, error: BaseException, batch: list[dict[str, Any]]) -> None:
        with self.lock:
            self.seen.append((error, batch))


def journey(client: Any, user: str, domain: str) -> None:
    """A VP of Sales at a 200-employee US software company reads pricing and clicks the demo link."""
    client.identify(user, {
        "email": f"jo@{domain}", "title": "VP Sales",
        "company": {"name": "Acme", "industry": "Software", "employee_count": 200},
        "address": {"country": "US"},
    })
    client.track(user, "Demo Link Clicked", {"link": "https://example.org/demo"})
    client.page(user, "Marketing", "Pricing", {"url": f"https://www.{domain}/pricing", "path": "/pricing"})
    client.group(user, f"grp-{domain}", {"website": f"https://www.{domain}", "name": "Acme",
                                         "industry": "Software", "employees": 200})


def assert_scored(server: LocalServer, rules: Any, user: str, domain: str) -> None:
    contact = server.contact(user)
    fit = rules.points("title_executive", "industry_technology", "company_size", "country_focus")
    engagement = rules.points("pricing_page", "demo_link_clicked")
    assert (fit, engagement) == (50, 40)  # what the product promises for this journey with the shipped rules
    assert (contact["fit"], contact["engagement"], contact["score"]) == (fit, engagement, fit + engagement)
    assert breakdown_points(contact, "pricing_page") == rules.points("pricing_page")
    assert breakdown_points(contact, "demo_link_clicked") == rules.points("demo_link_clicked")
    assert contact["accountId"] == domain

    account = server.account(domain)
    # firmographics from the group call, the country from the contact's address
    account_fit = rules.points("account_industry_technology", "account_size", "account_country_focus")
    assert account["fit"] == account_fit
    assert account["engagement"] == engagement  # one decision maker: weight 1.0, under the contact cap
    assert account["score"] == account_fit + engagement
    assert [c["contactId"] for c in account["contacts"]] == [user]
