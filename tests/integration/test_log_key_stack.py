"""The log key of a stack (issue 24): template.yaml's LogKeySecret, the local stack's copy of
it, the functions that read it, and `python -m local.logkey`, which finds a contact's lines.

Unit tests of the digest and of the provider: tests/unit/test_log_digests.py.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from local import logkey
from tests.integration.conftest import Pipeline
from tests.support.digests import needs_log_key
from tests.support.stack import TemplateStack, expand_template, load_template

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = REPO_ROOT / "template.yaml"
EMAIL = "jo.secret@acmetech.io"


def _secret_value(stack: TemplateStack) -> str:
    arn = stack.resources["LogKeySecret"]["arn"]
    return str(stack.client("secretsmanager").get_secret_value(SecretId=arn)["SecretString"])


# ---------------------------------------------------------------- template.yaml


@pytest.fixture(scope="module")
def sam_template() -> dict[str, Any]:
    return load_template(TEMPLATE)


def _functions(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {k: v["Properties"] for k, v in template["Resources"].items() if v["Type"] == "AWS::Serverless::Function"}


def test_the_log_key_is_a_secret_cloudformation_generates_named_for_the_stack(sam_template: dict[str, Any]) -> None:
    secret = sam_template["Resources"]["LogKeySecret"]
    assert secret["Type"] == "AWS::SecretsManager::Secret"
    assert secret["Properties"]["Name"] == {"Fn::Sub": "${AWS::StackName}-log-key"}
    generate = secret["Properties"]["GenerateSecretString"]
    assert generate["PasswordLength"] == 48  # README; adapters/log_key.MIN_KEY_BYTES is 32
    assert generate["ExcludePunctuation"] is True
    assert "SecretStringTemplate" not in generate  # the whole string is the key, not a JSON field of it
    assert "LOG_KEY_SECRET" not in str(sam_template["Globals"])  # only the functions that need it


def test_exactly_the_functions_that_make_keyed_digests_name_the_log_key(sam_template: dict[str, Any]) -> None:
    """Contact digests in logs (key_digest), suppression records (keyed_digest): see tests/support/digests.py."""
    functions = _functions(sam_template)
    keyed = {name for name, props in functions.items() if needs_log_key(props["CodeUri"])}
    assert "AggregateFunction" in keyed  # the derivation sees the calls there are
    for name, props in functions.items():
        variables = (props.get("Environment") or {}).get("Variables") or {}
        if name in keyed:
            assert variables.get("LOG_KEY_SECRET") == {"Ref": "LogKeySecret"}, (
                f"{name} makes keyed digests: give it LOG_KEY_SECRET: !Ref LogKeySecret and "
                "secretsmanager:GetSecretValue on !Ref LogKeySecret")
        else:
            assert "LOG_KEY_SECRET" not in variables, f"{name} makes no keyed digest: it needs no log key"


def test_only_those_functions_may_read_the_log_key_and_nothing_else_of_secrets_manager(
        sam_template: dict[str, Any]) -> None:
    defaults = {k: str(v.get("Default", "")) for k, v in sam_template["Parameters"].items()}
    expanded = expand_template(sam_template, defaults)
    functions = _functions(sam_template)
    readers = set()
    for name, resource in expanded["Resources"].items():
        if resource["Type"] != "AWS::Lambda::Function":
            continue
        role = expanded["Resources"][resource["Properties"]["Role"]["Fn::GetAtt"][0]]["Properties"]
        for policy in role.get("Policies") or []:
            for statement in policy["PolicyDocument"]["Statement"]:
                actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                secret_actions = [a for a in actions if a.lower().startswith("secretsmanager:")]
                if not secret_actions:
                    continue
                assert secret_actions == actions == ["secretsmanager:GetSecretValue"], (name, statement)
                assert statement["Resource"] == {"Ref": "LogKeySecret"}, (name, statement)  # its ARN, that one
                readers.add(name)
    assert readers == {n for n, props in functions.items() if needs_log_key(props["CodeUri"])}


# ---------------------------------------------------------------- the local stack


def test_the_local_stack_makes_the_secret_with_a_random_key_and_hands_its_arn_to_those_functions(
        stack: TemplateStack) -> None:
    info = stack.resources["LogKeySecret"]
    assert info["name"] == "leadscore-log-key"
    assert info["arn"].startswith("arn:aws:secretsmanager:us-east-1:") and ":secret:leadscore-log-key-" in info["arn"]
    value = _secret_value(stack)
    assert len(value) == 48 and value != "x" * 48
    for name, spec in stack.functions.items():
        expected = info["arn"] if needs_log_key(f"functions/{spec.code_uri.name}/") else None
        assert spec.environment.get("LOG_KEY_SECRET") == expected, name


def test_each_local_stack_has_a_key_of_its_own(aws_env: dict[str, str]) -> None:
    from moto import mock_aws

    values = []
    for _ in range(2):
        with mock_aws():
            values.append(_secret_value(TemplateStack.create(TEMPLATE)))
    assert values[0] != values[1]


@pytest.fixture
def aws_calls(pipeline: Pipeline) -> Iterator[list[str]]:
    """The AWS calls of the functions' clients (boto3's default session, which LazyClient uses)."""
    import boto3

    boto3.setup_default_session()
    calls: list[str] = []
    boto3.DEFAULT_SESSION.events.register("before-call", lambda event_name, **_: calls.append(event_name))
    yield calls
    boto3.DEFAULT_SESSION = None


def test_the_stacks_functions_read_the_key_once_and_log_digests_only_its_holder_can_recompute(
        pipeline: Pipeline, aws_calls: list[str], caplog: pytest.LogCaptureFixture,
        capsys: pytest.CaptureFixture[str]) -> None:
    from tests.integration.test_stream_poison import _put_poison

    # Given contacts scored over several stream batches, then a record of jo's that cannot be read
    pipeline.send("identify", {"userId": "u-1", "traits": {"email": "ana@acmetech.io"}})
    pipeline.settle()
    pipeline.send("track", {"userId": "u-1", "event": "Webinar Attended"})
    pipeline.send("identify", {"anonymousId": "anon-2", "traits": {"email": "bo@acmetech.io"}})
    pipeline.settle()
    _put_poison(pipeline, f"C#e:{EMAIL}", {"ty": "track", "mid": "bad", "src": "website", "ts": EMAIL})
    with caplog.at_level(logging.INFO):
        pipeline.stack.pump(raise_errors=False)
    # Then the container read the log key once, on its first digest, for every batch after
    assert aws_calls.count("before-call.secrets-manager.GetSecretValue") == 1
    # and jo's lines carry the digest `python -m local.logkey` gives for jo's address
    capsys.readouterr()  # the functions' metrics (EMF on stdout)
    assert logkey.main([EMAIL], session=pipeline.stack.session) == 0
    digest = capsys.readouterr().out.strip()
    assert digest.startswith("e:") and len(digest) == 14
    text = caplog.text
    assert digest in text and EMAIL not in text
    # never a digest anyone could recompute from the address: plain SHA-256, the public dev key
    from leadscore.engine.identity import DEV_LOG_KEY, key_digest

    assert hashlib.sha256(f"e:{EMAIL}".encode()).hexdigest()[:12] not in text
    assert key_digest(f"e:{EMAIL}", log_key=DEV_LOG_KEY) not in text


# ---------------------------------------------------------------- python -m local.logkey


def test_logkey_prints_one_digest_per_contact_an_email_normalized_as_the_functions_do(
        stack: TemplateStack, capsys: pytest.CaptureFixture[str]) -> None:
    from leadscore.engine.identity import key_digest

    key = _secret_value(stack).encode()
    assert logkey.main([" Jo.Secret@AcmeTech.IO ", "u:12345", "a:anon-2", f"e:{EMAIL.upper()}"],
                       session=stack.session) == 0
    assert capsys.readouterr().out.split() == [key_digest(f"e:{EMAIL}", log_key=key),
                                               key_digest("u:12345", log_key=key),
                                               key_digest("a:anon-2", log_key=key),
                                               key_digest(f"e:{EMAIL}", log_key=key)]
    # the secret named outright, whatever the stack
    arn = stack.resources["LogKeySecret"]["arn"]
    assert logkey.main(["u:12345", "--stack", "elsewhere", "--secret", arn], session=stack.session) == 0
    assert capsys.readouterr().out.split() == [key_digest("u:12345", log_key=key)]


def test_logkey_refuses_a_bare_id_or_a_malformed_email_before_reading_anything(
        stack: TemplateStack, capsys: pytest.CaptureFixture[str]) -> None:
    for contact, says in (("12345", "u:<userId>, e:<email>, a:<anonymousId>"), ("jo@", "not an email address"),
                          ("e:", "u:<userId>")):
        with pytest.raises(SystemExit) as exited:
            logkey.main([contact], session=stack.session)
        assert exited.value.code == 2
        assert says in capsys.readouterr().err, contact


def test_logkey_says_which_secret_it_cannot_read(stack: TemplateStack, capsys: pytest.CaptureFixture[str]) -> None:
    assert logkey.main([EMAIL, "--stack", "nosuch"], session=stack.session) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "the secret nosuch-log-key cannot be read (ResourceNotFoundException" in captured.err
