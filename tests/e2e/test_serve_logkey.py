"""`make serve` has a log key of its own, its functions hash with it, and `python -m
local.logkey` run against its AWS endpoint (`AWS_ENDPOINT_URL`, as its banner prints it)
gives the digest a contact's lines carry."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from local.serve_client import REPO_ROOT, WEB_KEY, LocalServer

pytestmark = pytest.mark.slow


def test_logkey_against_the_local_server_gives_the_digest_under_its_secret(server: LocalServer, uid: str) -> None:
    from leadscore.engine.identity import DEV_LOG_KEY, key_digest

    secret = server.resources()["LogKeySecret"]
    value = server.boto3_client("secretsmanager").get_secret_value(SecretId=secret["arn"])["SecretString"]
    assert secret["name"] == "leadscore-log-key" and len(value) == 48
    # the functions digest every contact they fold: they read the key from the server's moto
    email = f"jo.{uid}@acme-{uid}.com"
    answer = server.request("POST", "/v1/identify", basic_user=WEB_KEY,
                            body={"userId": f"u-{uid}", "traits": {"email": email}})
    assert answer.status == 200, answer.body
    server.drain()  # raises when a function failed (a log key it could not read, say)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update({"AWS_ENDPOINT_URL": server.aws, "AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing", "AWS_CONFIG_FILE": os.devnull,
                "AWS_SHARED_CREDENTIALS_FILE": os.devnull})
    done = subprocess.run([sys.executable, "-m", "local.logkey", email.upper(), f"u:u-{uid}"], cwd=REPO_ROOT,
                          env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [key_digest(f"e:{email}", log_key=value.encode()),
                                   key_digest(f"u:u-{uid}", log_key=value.encode())]
    assert key_digest(f"e:{email}", log_key=DEV_LOG_KEY) not in done.stdout
