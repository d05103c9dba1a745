"""Repair a contact, or every contact an account tracks, from their stored events.

    python -m local.rebuild --contact <userId | email> [--stack leadscore] [--dry-run]
    python -m local.rebuild --account <accountId> [--stack leadscore] [--dry-run]
    make rebuild CONTACT=<userId | email> | ACCOUNT=<accountId> [STACK=leadscore] [ARGS=--dry-run]

The contact is rebuilt with the code that scores live (services/rebuild.py): its events and
those of the ids merged into it, folded one by one in the order they arrived, under the rules
of `config/` (or `--config`), and written back conditioned on the version read (the stream then
carries it to its account, as any contact change). Nothing is written when the rebuild equals
what is stored. An account is rebuilt through the contacts it tracks (its top contacts and a
few more: the account item holds no list of every contact it ever had).

Works against AWS (the environment's credentials and region) or the local stack
(`AWS_ENDPOINT_URL`, e.g. `make serve`'s moto). Prints what changed, per contact; exit 1 when a
contact or account is unknown or a rebuild failed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from datetime import datetime

from leadscore.domain.records import Contact, VersionConflict
from leadscore.engine.rules import score
from leadscore.rulesfiles.loading import Config, load_config
from leadscore.services.ports import RebuildStore
from leadscore.services.read import ReadService
from leadscore.services.rebuild import Rebuilder, RebuildFailed, gather, replay, rewrite, save_rewrite

ATTEMPTS = 5


def _values(config: Config, contact: Contact | None, now: datetime) -> dict[str, float] | None:
    if contact is None:
        return None
    card = score(config.scoring, contact.engine_state, now)
    return {"score": card.score, "fit": card.fit, "engagement": card.engagement, "velocity": card.velocity}


def rebuild_contact(store: RebuildStore, config: Config, contact: Contact, now: datetime, *,
                    dry_run: bool) -> dict[str, object]:
    """Rebuild one contact (its person) and write what changed; a report of it."""
    rebuilder = Rebuilder(store, config, now, retention_days=int(os.environ.get("EVENT_RETENTION_DAYS", "400")))
    for _ in range(ATTEMPTS):
        person = gather(store, contact.key, known=contact)
        stored = person.stored.get(person.root)
        scratch = replay(config, person)
        changes = rewrite(config, person, scratch, now)
        report: dict[str, object] = {"contact": person.root.split(":", 1)[1], "events": len(person.events),
                  "ids": len(person.stored), "complete": rebuilder.complete(person),
                  "before": _values(config, stored, now),
                  "after": _values(config, scratch.contacts.get(person.root), now),
                  "written": 0 if dry_run else len(changes.writes)}
        if not report["complete"]:
            report["warning"] = ("first seen before the event retention window: events may have expired, "
                                 "so the rebuild may lack their points")
        if dry_run or not changes.changed:
            return report
        try:
            save_rewrite(store, changes)
            return report
        except VersionConflict:
            refreshed = store.load_contact(contact.key)
            contact = refreshed or contact
    raise RebuildFailed(f"contact {contact.key.split(':', 1)[1]!r} kept changing; try again")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.rebuild", description=__doc__.split("\n\n")[0])
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--contact", help="the contact's userId (or email for an email-only contact)")
    which.add_argument("--account", help="an account id: rebuild every contact it tracks")
    parser.add_argument("--stack", default=os.environ.get("STACK_NAME", "leadscore"),
                        help="the stack's name (default: $STACK_NAME or leadscore, the local stack's)")
    parser.add_argument("--config", help="rules folder (default: config/)")
    parser.add_argument("--dry-run", action="store_true", help="show what a rebuild would change; write nothing")
    args = parser.parse_args(argv)

    import boto3
    from leadscore.adapters import runtime
    from leadscore.adapters.storage import Store

    from local.replay import Stack

    store = Store(Stack(args.stack, boto3.Session()).table_name())
    config = load_config(args.config) if args.config else load_config()
    now = runtime.now()  # LEADSCORE_NOW when set (the local stack's clock), else now
    reader = ReadService(store, config, clock=lambda: now)
    if args.contact:
        found = reader.find_contact(args.contact)
        if found is None:
            print(f"no contact {args.contact!r}", file=sys.stderr)
            return 1
        contacts = [found]
    else:
        account = store.load_account(args.account.strip().lower() if "." in args.account else args.account)
        if account is None:
            print(f"no account {args.account!r}", file=sys.stderr)
            return 1
        loaded = store.load_contacts([entry.key for entry in account.entries])
        contacts = [loaded[entry.key] for entry in account.entries if entry.key in loaded]
    failed = 0
    for contact in contacts:
        try:
            print(json.dumps(rebuild_contact(store, config, contact, now, dry_run=args.dry_run)))
        except RebuildFailed as problem:
            print(f"{contact.key.split(':', 1)[1]}: {problem}", file=sys.stderr)
            failed += 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
