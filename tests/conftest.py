"""Shared fixtures: fake AWS credentials for every test, moto, and the stack of template.yaml."""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from local.env import LOCAL_AWS_ENV, UNSET_AWS_ENV

if TYPE_CHECKING:
    import boto3

    from tests.support.stack import TemplateStack

REPO_ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = REPO_ROOT / "template.yaml"

AWS_ENV = {**LOCAL_AWS_ENV, "SAM_CLI_TELEMETRY": "0"}

#: Slow tests in modules that are otherwise fast (whole slow modules say `pytestmark = pytest.mark.slow`).
SLOW_TESTS = (
    "tests/integration/test_accounts.py::TestCost::test_a_contact_change_costs_the_same_for_5_or_2000_contacts",
)


#: The longest test files, longest first (seconds on one worker of a run here: the bench's file
#: about 90, the others 28 to 48). `make test` runs xdist with `--dist loadfile
#: --no-loadscope-reorder`, which hands files out in collection order, so these go first and the
#: many short files even out the two workers' ends. (xdist's own order, most tests first, started
#: the bench's 10 tests after three minutes.)
LONGEST_FIRST = (
    "tests/integration/test_bench.py",
    "tests/fuzz/test_fuzz_openapi.py",
    "tests/integration/test_team_flow.py",
    "tests/integration/test_openapi.py",
    "tests/fuzz/test_fuzz_ingest.py",
    "tests/integration/test_accounts.py",
    "tests/integration/test_template.py",
)


#: The collection routes' two front doors (template.yaml IngestEndpoint; issue 26): the HTTP
#: API, or the collect function's Function URL. The modules below run every test on both in
#: one run (the `ingest` fixture, parametrized); elsewhere `ingest` is INGEST (default http-api).
INGEST_SHAPES = ("http-api", "function-url")
BOTH_SHAPES = (
    "tests/integration/test_collection.py",
    "tests/integration/test_hostile_input.py",
    "tests/integration/test_collected_traits.py",
    "tests/integration/test_sample_events.py",
    "tests/fuzz/test_fuzz_ingest.py",
    # the local stack over HTTP (`make serve INGEST=...`): real SDKs, the browser, the README's curl
    "tests/e2e/test_segment_sdk.py",
    "tests/e2e/test_segment_node_sdk.py",
    "tests/e2e/test_rudder_sdk.py",
    "tests/e2e/test_browser.py",
    "tests/e2e/test_curl_recipe.py",
)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    path = Path(str(metafunc.definition.fspath)).relative_to(REPO_ROOT).as_posix()
    if "ingest" in metafunc.fixturenames and path in BOTH_SHAPES and not os.environ.get("INGEST"):
        metafunc.parametrize("ingest", INGEST_SHAPES, scope="module")


@pytest.fixture(scope="module")
def ingest() -> str:
    """The front door collection requests take: INGEST=function-url|http-api (default http-api)."""
    shape = os.environ.get("INGEST") or "http-api"
    if shape not in INGEST_SHAPES:
        raise pytest.UsageError(f"INGEST={shape!r}: use one of {', '.join(INGEST_SHAPES)}")
    return shape


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if item.nodeid in SLOW_TESTS:
            item.add_marker(pytest.mark.slow)
    rank = {path: n for n, path in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::", 1)[0], len(rank)))  # stable: files keep their order


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Every test runs with fake credentials in us-east-1 and no profile or endpoint of the machine."""
    for name in UNSET_AWS_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(REPO_ROOT / ".no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(REPO_ROOT / ".no-aws-credentials"))
    for name, value in AWS_ENV.items():
        monkeypatch.setenv(name, value)
    return AWS_ENV


@pytest.fixture
def aws(aws_env: dict[str, str]) -> Iterator[None]:
    """moto for the duration of the test (every service, fresh state)."""
    from moto import mock_aws

    with mock_aws():
        yield


@pytest.fixture
def stack(aws: None, ingest: str) -> TemplateStack:
    """The stack of template.yaml, created in moto (see tests/support/stack.py): fresh resources
    and a fresh runner for every test. What makes that cheap: the template is parsed and expanded
    once per run (local/stack.py), and the stack's own clients come from one boto3 session.
    With `ingest` function-url: the template's IngestEndpoint FunctionUrl, and the HTTP API
    events the tests hand the collect function delivered as its Function URL would."""
    from tests.support.stack import TemplateStack

    if ingest == "http-api":
        return TemplateStack.create(TEMPLATE, session=_stack_session())
    stack = TemplateStack.create(TEMPLATE, session=_stack_session(), parameters={"IngestEndpoint": "FunctionUrl"})
    through_url(stack)
    return stack


def through_url(stack: TemplateStack) -> None:
    """The collect function of `stack` given every HTTP API event as a Function URL event."""
    from local.apigw import as_function_url, is_function_url_event

    invoke = stack.invoke

    def invoke_through_url(logical_id: str, event: object, context: object = None) -> object:
        if logical_id == "CollectFunction" and isinstance(event, dict) and event.get("version") == "2.0" \
                and not is_function_url_event(event):
            event = as_function_url(event, region=stack.region)
        return invoke(logical_id, event, context)

    stack.invoke = invoke_through_url  # type: ignore[method-assign]


@functools.cache
def _stack_session() -> boto3.Session:
    """One boto3 session for the stacks the tests create (a session loads each service's model
    once; a new one per stack made most of the stack's creation time). Created under the first
    test's fake credentials, which are every test's."""
    import boto3

    return boto3.Session(region_name=AWS_ENV["AWS_DEFAULT_REGION"])


# The fuzz suite's tally of inputs tried: each xdist worker hands its counts to the controller,
# which prints the sum (without xdist the one process prints its own).
def pytest_sessionfinish(session: pytest.Session) -> None:
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:
        from tests.fuzz.tally import TALLY

        workeroutput["fuzz_tally"] = TALLY.to_rows()


@pytest.hookimpl(optionalhook=True)  # an xdist hook: unknown when xdist is not installed
def pytest_testnodedown(node: object, error: object) -> None:
    from tests.fuzz.tally import TALLY

    TALLY.add_rows(getattr(node, "workeroutput", {}).get("fuzz_tally", []))


def pytest_terminal_summary(terminalreporter: object, exitstatus: int, config: pytest.Config) -> None:
    from tests.fuzz.tally import TALLY

    if not TALLY:
        return
    terminalreporter.write_sep("-", "fuzz")  # type: ignore[attr-defined]
    for line in TALLY.summary_lines():
        terminalreporter.write_line(line)  # type: ignore[attr-defined]
