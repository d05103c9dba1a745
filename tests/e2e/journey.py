"""What the e2e tests expect of the VP journey the SDK tests send (shared by both SDKs)."""

from __future__ import annotations

from typing import Any

from local.serve_client import LocalServer, breakdown_points


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
