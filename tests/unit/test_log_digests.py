"""Contact digests in logs are keyed (issue 24): HMAC-SHA256 under the deployment's log key.

`engine.identity.key_digest` (pure: its key comes from `use_log_key`'s provider or the caller)
and `adapters/log_key.py` (the provider: the secret LOG_KEY_SECRET names, read on the first
digest, once per container), the latter on moto. Whether importing the functions makes an
AWS call is checked in a fresh interpreter, as a new Lambda container would import them.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from leadscore.adapters import log_key
from leadscore.engine import identity
from leadscore.engine.identity import DEV_LOG_KEY, key_digest, use_log_key

REPO_ROOT = Path(__file__).resolve().parents[2]
CONTACT = "e:jo.secret@acmetech.io"
KEY_A = b"a" * 48
KEY_B = b"b" * 48
DIGEST = re.compile(r"^[uea]:[0-9a-f]{12}$")


@pytest.fixture(autouse=True)
def provider_restored() -> Iterator[None]:
    """Each test sets the engine's provider as it needs; the one before is put back after."""
    before = identity._log_key
    log_key.reset()
    yield
    use_log_key(before)
    log_key.reset()


# ---------------------------------------------------------------- the digest (engine, pure)


def test_a_digest_is_the_kind_and_12_hex_of_the_hmac_sha256_of_the_contact_key() -> None:
    expected = hmac.new(KEY_A, CONTACT.encode(), hashlib.sha256).hexdigest()[:12]
    assert key_digest(CONTACT, log_key=KEY_A) == f"e:{expected}"
    for contact in ("u:12345", "a:0f2c-anon", "e:jo@acme.com"):
        assert DIGEST.match(key_digest(contact, log_key=KEY_A)), contact
    # no one-letter kind: the digest alone (a kind is never invented)
    assert re.fullmatch(r"[0-9a-f]{12}", key_digest("ab:c", log_key=KEY_A))
    assert re.fullmatch(r"[0-9a-f]{12}", key_digest("no kind", log_key=KEY_A))
    # a lone surrogate (an id no store keeps, but logs must not raise on it)
    assert DIGEST.match(key_digest("u:\ud800", log_key=KEY_A))


def test_one_key_always_gives_the_same_digest_and_another_key_another() -> None:
    contacts = [CONTACT, "u:12345", "a:0f2c-anon", "e:jo@acme.com"]
    assert [key_digest(c, log_key=KEY_A) for c in contacts] == [key_digest(c, log_key=KEY_A) for c in contacts]
    for contact in contacts:
        assert key_digest(contact, log_key=KEY_A) != key_digest(contact, log_key=KEY_B), contact
        assert key_digest(contact, log_key=KEY_A) != key_digest(contact, log_key=DEV_LOG_KEY), contact
    # and two contacts under one key differ
    assert len({key_digest(c, log_key=KEY_A) for c in contacts}) == len(contacts)


def test_no_plain_sha256_of_the_contact_key_or_the_email_is_in_its_digest() -> None:
    """The old digest (sha256 of the key, 12 hex) let anyone who knew an email find its lines."""
    email = CONTACT.removeprefix("e:")
    for key in (KEY_A, KEY_B, DEV_LOG_KEY):
        digest = key_digest(CONTACT, log_key=key)
        for plain in (hashlib.sha256(CONTACT.encode()).hexdigest(), hashlib.sha256(email.encode()).hexdigest()):
            assert plain[:12] not in digest
            assert digest.split(":", 1)[1] not in plain
        assert email not in digest and "jo.secret" not in digest


def test_without_a_provider_the_public_dev_key_is_used() -> None:
    use_log_key(None)
    assert key_digest(CONTACT) == key_digest(CONTACT, log_key=DEV_LOG_KEY)
    assert DEV_LOG_KEY != KEY_A and key_digest(CONTACT) != key_digest(CONTACT, log_key=KEY_A)


def test_the_provider_is_asked_on_each_digest_never_before_and_its_failure_is_the_digests() -> None:
    asked: list[int] = []

    def provider() -> bytes:
        asked.append(1)
        return KEY_A

    use_log_key(provider)
    assert asked == []  # setting it reads nothing
    assert key_digest(CONTACT) == key_digest(CONTACT, log_key=KEY_A)
    assert asked == [1]
    assert key_digest(CONTACT, log_key=KEY_B) != key_digest(CONTACT)  # a given key wins
    assert asked == [1, 1]

    def unavailable() -> bytes:
        raise log_key.LogKeyUnavailable("LOG_KEY_SECRET: the secret x cannot be read")

    use_log_key(unavailable)
    with pytest.raises(log_key.LogKeyUnavailable, match="cannot be read"):
        key_digest(CONTACT)  # never a digest under another key


# ---------------------------------------------------------------- the provider (adapter, moto)


@pytest.fixture
def aws_calls(aws: None) -> Iterator[list[str]]:
    """Every AWS call made by clients of boto3's default session (the functions' clients:
    LazyClient makes them with `boto3.client`), as `service.Operation`."""
    import boto3

    boto3.setup_default_session()
    calls: list[str] = []

    def record(event_name: str, **_: Any) -> None:
        calls.append(event_name.removeprefix("before-call."))

    boto3.DEFAULT_SESSION.events.register("before-call", record)
    yield calls
    boto3.DEFAULT_SESSION = None


def _create_secret(name: str, value: str) -> str:
    import boto3

    return str(boto3.client("secretsmanager").create_secret(Name=name, SecretString=value)["ARN"])


def test_the_first_digest_reads_the_secret_once_for_all_threads_and_keeps_it(
        aws_calls: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from leadscore.adapters import runtime  # wires the provider

    value = "k" * 48
    arn = _create_secret("leadscore-log-key", value)
    aws_calls.clear()
    monkeypatch.setenv(log_key.LOG_KEY_ENV, arn)
    runtime.reset()
    assert identity._log_key is log_key.from_environment
    assert aws_calls == []
    # a batch's threads digest at once: one read between them
    barrier = threading.Barrier(8)
    digests: list[str] = []

    def digest() -> None:
        barrier.wait()
        digests.append(key_digest(CONTACT))

    threads = [threading.Thread(target=digest) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert digests == [key_digest(CONTACT, log_key=value.encode())] * 8
    for _ in range(50):
        key_digest(CONTACT)
    assert aws_calls == ["secrets-manager.GetSecretValue"]


def test_an_unreadable_secret_fails_the_digest_loudly_and_the_next_digest_tries_again(
        aws_calls: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(log_key.LOG_KEY_ENV, "leadscore-log-key")  # a name: not created yet
    use_log_key(log_key.from_environment)
    with pytest.raises(log_key.LogKeyUnavailable, match=r"LOG_KEY_SECRET: the secret leadscore-log-key cannot be "
                                                       r"read \(ResourceNotFoundException"):
        key_digest(CONTACT)
    _create_secret("leadscore-log-key", "v" * 40)
    assert key_digest(CONTACT) == key_digest(CONTACT, log_key=b"v" * 40)  # no failure kept
    assert aws_calls.count("secrets-manager.GetSecretValue") == 2


def test_a_secret_too_short_to_be_a_key_is_refused(aws_calls: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(log_key.LOG_KEY_ENV, _create_secret("leadscore-log-key", "short"))
    use_log_key(log_key.from_environment)
    with pytest.raises(log_key.LogKeyUnavailable, match="holds 5 bytes; a log key needs at least 32"):
        key_digest(CONTACT)


def test_without_log_key_secret_tests_and_local_tools_use_the_dev_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(log_key.LOG_KEY_ENV, raising=False)
    monkeypatch.delenv("AWS_LAMBDA_FUNCTION_NAME", raising=False)
    assert log_key.from_environment() == DEV_LOG_KEY


def test_in_lambda_a_function_without_log_key_secret_fails_rather_than_use_the_dev_key(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(log_key.LOG_KEY_ENV, raising=False)
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "leadscore-ReadApiFunction")
    use_log_key(log_key.from_environment)
    with pytest.raises(log_key.LogKeyUnavailable, match="LOG_KEY_SECRET is not set"):
        key_digest(CONTACT)


# ---------------------------------------------------------------- a fresh container


_CONTAINER = """
import importlib.util, json, sys
sys.path.insert(0, {layer!r})
import botocore.client
calls = []
make_api_call = botocore.client.BaseClient._make_api_call


def record(self, operation, params):
    calls.append(self.meta.service_model.service_name + "." + operation)
    return make_api_call(self, operation, params)


botocore.client.BaseClient._make_api_call = record
for name, path in {handlers!r}:
    spec = importlib.util.spec_from_file_location("app_" + name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
at_import = list(calls)
from leadscore.engine.identity import key_digest
try:
    key_digest("e:jo@acme.com")
    outcome = "a digest"
except Exception as error:
    outcome = type(error).__name__ + ": " + str(error)
print(json.dumps({{"at_import": at_import, "first_digest": calls[len(at_import):], "outcome": outcome}}))
"""


def test_importing_every_function_makes_no_aws_call_and_the_first_digest_one() -> None:
    """No AWS call at cold start; the first digest reads the secret (here unreachable: an
    endpoint nothing answers on), and fails loudly instead of hashing with another key."""
    handlers = sorted((p.parent.name, str(p)) for p in (REPO_ROOT / "functions").glob("*/app.py"))
    assert len(handlers) >= 10
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "LOG_KEY_"))}
    env.update({"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
                "AWS_ENDPOINT_URL": "http://127.0.0.1:9", "AWS_MAX_ATTEMPTS": "1", "AWS_RETRY_MODE": "standard",
                "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
                "LOG_KEY_SECRET": "arn:aws:secretsmanager:us-east-1:123456789012:secret:leadscore-log-key-AbCdEf",
                "TABLE_NAME": "leadscore-Table", "EVENT_BUS_NAME": "leadscore-events",
                "POWERTOOLS_TRACE_DISABLED": "true"})
    env.pop("PYTHONPATH", None)
    script = _CONTAINER.format(layer=str(REPO_ROOT / "shared"), handlers=handlers)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120,
                          check=False, cwd=REPO_ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["at_import"] == []
    assert result["first_digest"] == ["secretsmanager.GetSecretValue"]
    assert result["outcome"].startswith("LogKeyUnavailable: LOG_KEY_SECRET: the secret arn:aws:secretsmanager:"), \
        result["outcome"]
