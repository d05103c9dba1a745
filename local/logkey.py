"""Find one contact's log lines: the digest its key has in a deployment's logs.

    python -m local.logkey jo@acme.com [--stack leadscore]
    python -m local.logkey u:12345 a:0f2c... --stack prod
    python -m local.logkey jo@acme.com --secret arn:aws:secretsmanager:...:secret:prod-log-key-AbCdEf

Logs never name a contact: they carry `<kind>:<12 hex>`, the first 12 hex digits of the
HMAC-SHA256 of its contact key (`u:<userId>`, `e:<email>`, `a:<anonymousId>`) under the
stack's log key (`LogKeySecret`, template.yaml). This tool reads that secret, so only who may
`secretsmanager:GetSecretValue` on it can link a log line to a person, and prints one digest
per contact given, in order: search the functions' log groups for it (CloudWatch Logs
Insights: `filter @message like "e:3f9a0c1b2d4e"`).

A contact is a contact key as above, or an email address (normalized as the functions do:
trimmed, lowercased). A bare id is refused: `u:` and `a:` of the same id are different contacts.

Works against AWS (the credentials and region of the environment; the secret of the stack,
found through CloudFormation, else by its name `<stack>-log-key`) or the local stack
(`AWS_ENDPOINT_URL`, as `make serve` prints it).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any

SECRET = "LogKeySecret"
KINDS = ("u", "e", "a")


class LogKeyToolError(Exception):
    """What the tool cannot do, said plainly (exit 1; a bad contact exits 2)."""


def contact_key(value: str) -> str:
    """The contact key a user gave: `u:`/`e:`/`a:` keys as they are (an email normalized),
    an email address as `e:<email>`. `ValueError` naming the problem otherwise."""
    from leadscore.domain.events import InvalidMessage
    from leadscore.engine.identity import normalize_email

    text = value.strip()
    kind, separator, rest = text.partition(":")
    if separator and kind in KINDS and rest:
        if kind != "e":
            return text
        text = rest
    elif "@" not in text:
        raise ValueError(f"{value!r} is not a contact: give u:<userId>, e:<email>, a:<anonymousId> or an email "
                         "address (a bare id could be a userId or an anonymousId)")
    try:
        email = normalize_email(text)
    except InvalidMessage as error:
        raise ValueError(f"{value!r}: the email {error.reason}") from None
    if email is None:
        raise ValueError(f"{value!r} is not a contact: the email is empty")
    return f"e:{email}"


def secret_id(stack_name: str, session: Any) -> str:
    """The stack's log key secret: CloudFormation's physical id (its ARN), else its template name."""
    from local.replay import Stack

    return Stack(stack_name, session).physical_id(SECRET) or f"{stack_name}-log-key"


def read_key(secret: str, session: Any) -> bytes:
    from leadscore.adapters.log_key import LogKeyUnavailable, SecretsManagerLogKey

    try:
        return SecretsManagerLogKey(secret, client=session.client("secretsmanager")).read()
    except LogKeyUnavailable as error:
        raise LogKeyToolError(str(error)) from None


def digests(contacts: Sequence[str], key: bytes) -> list[str]:
    """The log digest of each contact (see `contact_key`) under `key`."""
    from leadscore.engine.identity import key_digest

    return [key_digest(contact_key(contact), log_key=key) for contact in contacts]


def main(argv: Sequence[str] | None = None, session: Any = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.logkey", description=__doc__.split("\n\n")[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("contacts", nargs="+", metavar="CONTACT",
                        help="a contact key (u:<userId>, e:<email>, a:<anonymousId>) or an email address")
    parser.add_argument("--stack", default=os.environ.get("STACK_NAME", "leadscore"),
                        help="the stack's name (default: $STACK_NAME or leadscore, the local stack's)")
    parser.add_argument("--secret", help="the log key secret's ARN or name (default: the stack's LogKeySecret)")
    args = parser.parse_args(argv)
    for contact in args.contacts:  # every contact checked before the secret is read
        try:
            contact_key(contact)
        except ValueError as error:
            parser.error(str(error))
    if session is None:
        import boto3

        session = boto3.Session()
    try:
        key = read_key(args.secret or secret_id(args.stack, session), session)
    except LogKeyToolError as error:
        print(f"logkey: {error}", file=sys.stderr)
        return 1
    for line in digests(args.contacts, key):
        print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
