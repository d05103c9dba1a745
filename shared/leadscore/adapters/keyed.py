"""Keyed digests of contact keys for suppression records: HMAC-SHA256 under the deployment's
secret.

What a suppression record is keyed by (items.suppression_key): the table holds a digest no
one can recompute from an address without the secret, so it neither names the erased person
nor lets anyone test "was jo@acme.com erased?" by hashing a guess.

The secret is the stack's log key (`adapters/log_key.from_environment`: the `LogKeySecret` of
template.yaml, read on the first digest, never at import), from which a key of its own is
derived (HMAC(log key, "suppression")), so a suppression record's key and a log line's digest
of the same contact never match.
"""

from __future__ import annotations

import hashlib
import hmac

_PURPOSE = b"leadscore suppression records v1"
_DERIVED: dict[bytes, bytes] = {}


def suppression_secret(root: bytes | None = None) -> bytes:
    """The key of suppression digests, derived from this deployment's log key (or `root`)."""
    if root is None:
        from leadscore.adapters.log_key import from_environment  # cold start: only when an id is checked

        root = from_environment()
    derived = _DERIVED.get(root)
    if derived is None:
        derived = _DERIVED[root] = hmac.new(root, _PURPOSE, hashlib.sha256).digest()
    return derived


def keyed_digest(contact_key: str, *, root: bytes | None = None) -> str:
    """The HMAC-SHA256 (hex) of a contact key (`u:<userId>`, `e:<email>`, `a:<anonymousId>`),
    under the deployment's suppression key (derived from `root`, a log key, when given: tools)."""
    secret = suppression_secret(root)
    return hmac.new(secret, contact_key.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()
