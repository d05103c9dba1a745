"""The key of the contact digests in logs: a per-deployment secret in Secrets Manager.

`engine.identity.key_digest` writes a contact key into logs as an HMAC-SHA256 digest. Its key
is the stack's `LogKeySecret` (template.yaml), which `LOG_KEY_SECRET` names (its ARN) in the
functions that log contact digests. Without the key a digest cannot be recomputed from an email
address, so the logs need no erasure; with it (`python -m local.logkey`) one contact's lines can
still be found.

Nothing is fetched at import or when a container starts: the first digest it needs reads the
secret (one GetSecretValue, its client made then) and the key is kept for the container's life.
A secret that cannot be read fails that digest loudly (`LogKeyUnavailable`), and the next one
tries again: never a fallback to a key anyone could recompute.

`from_environment` is what `adapters/runtime.py` hands to `engine.identity.use_log_key`.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from leadscore.adapters.clients import LazyClient
from leadscore.engine.identity import DEV_LOG_KEY

#: The environment variable naming the secret (an ARN or a name), set by template.yaml.
LOG_KEY_ENV = "LOG_KEY_SECRET"
#: A shorter key is refused: the template generates 48 characters.
MIN_KEY_BYTES = 32

_KEYS: dict[str, bytes] = {}  # secret id -> its key, for the container's life
_LOCK = threading.Lock()


class LogKeyUnavailable(RuntimeError):
    """The log key cannot be had: its secret cannot be read, is too short, or is not named."""


class SecretsManagerLogKey:
    """Reads the key from one secret (its `SecretString`, UTF-8, else its `SecretBinary`)."""

    client = LazyClient("secretsmanager")

    def __init__(self, secret_id: str, client: Any = None) -> None:
        self.secret_id = secret_id
        self._client = client

    def read(self) -> bytes:
        try:
            answer = self.client.get_secret_value(SecretId=self.secret_id)
        except Exception as error:  # ClientError, no credentials, no endpoint: all mean no key
            raise LogKeyUnavailable(f"{LOG_KEY_ENV}: the secret {self.secret_id} cannot be read "
                                    f"({type(error).__name__}: {error})") from error
        value = answer.get("SecretString")
        key = value.encode("utf-8") if isinstance(value, str) else answer.get("SecretBinary")
        if not isinstance(key, bytes) or len(key) < MIN_KEY_BYTES:
            raise LogKeyUnavailable(f"{LOG_KEY_ENV}: the secret {self.secret_id} holds "
                                    f"{len(key) if isinstance(key, bytes) else 'no'} bytes; a log key needs "
                                    f"at least {MIN_KEY_BYTES}")
        return key


def from_environment() -> bytes:
    """The log key of this deployment: the secret `LOG_KEY_SECRET` names, read on the first
    call and kept (one read however many threads ask at once). Without `LOG_KEY_SECRET`, the
    engine's public `DEV_LOG_KEY` (unit tests, local tools), except in Lambda, where a
    function without it is a template mistake: `LogKeyUnavailable` rather than digests
    anyone can recompute."""
    secret_id = os.environ.get(LOG_KEY_ENV)
    if not secret_id:
        if os.environ.get("AWS_LAMBDA_FUNCTION_NAME"):
            raise LogKeyUnavailable(f"{LOG_KEY_ENV} is not set: this function logs contact digests, so "
                                    "template.yaml must give it the LogKeySecret ARN and GetSecretValue on it")
        return DEV_LOG_KEY
    key = _KEYS.get(secret_id)
    if key is None:
        with _LOCK:
            key = _KEYS.get(secret_id)
            if key is None:
                key = _KEYS[secret_id] = SecretsManagerLogKey(secret_id).read()
    return key


def reset() -> None:
    """Forget the keys read (tests, and a local stack made after another in one process)."""
    _KEYS.clear()
