"""Test configuration shared by every suite: import paths, the unit-test environment, Hypothesis
profiles, and no network for unit tests."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from hypothesis import settings

ROOT = Path(__file__).resolve().parents[1]
for path in (
    ROOT / "tests",
    ROOT / "tests" / "unit",
    ROOT / "infra",
    ROOT / "infra" / "migrations",
    ROOT / "layers" / "shared",
    ROOT,  # the simulator (simulation/), a tool beside the services
    ROOT / "benchmarks",  # its data generator (datagen.py)
):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

# What every function's composition root (<service>/bootstrap.py) validates when a handler module
# is imported, as the deployed template sets it. Unit tests replace the adapters with in-memory
# fakes, so these values are never used to reach anything; integration tests set their own.
UNIT_TEST_ENVIRONMENT: dict[str, str] = {
    "EMAIL_QUEUE_URL": "https://sqs.eu-central-1.amazonaws.com/000000000000/therapy-platform-unit-emails",
    "EVENT_BUS_NAME": "therapy-platform-unit",
    "EVENT_SOURCE": "therapy-platform.unit-tests",
    "FEATURE_FLAGS_LOCATION": "/therapy-platform/unit/feature-flags",
    "FEATURE_FLAGS_STORE": "ssm",
    "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9",
    "LEGAL_EMAIL": "team@vermittlung.test",
    "LEGAL_ORGANISATION": "Therapieplatz-Vermittlung Test e. V.",
    "LEGAL_POSTCODE_CITY": "10969 Berlin",
    "LEGAL_STREET": "Lindenstraße 1",
    "MAIL_FROM": "Therapieplatz-Vermittlung <team@vermittlung.test>",
    "RAW_BUCKET": "therapy-platform-unit-directory-raw",
    "REGISTRATION_SECRET_ARN": "arn:aws:secretsmanager:eu-central-1:000000000000:secret:unit-registration",
    "REPLY_DOMAIN": "antwort.vermittlung.test",
    "REPLY_MAILDIR": "/nonexistent/unit-test-maildir",
}
for _name, _value in UNIT_TEST_ENVIRONMENT.items():
    os.environ.setdefault(_name, _value)

# ---------------------------------------------------------------- Hypothesis profiles
# thorough (the default, `make test`): every property test searches as far as its own settings say.
# fast (`make unit`: --hypothesis-profile=fast): at most FAST_MAX_EXAMPLES examples per property
# test, whatever it asks for, so the developer's lane stays under a minute; the example database
# still replays every failure found before.
FAST_MAX_EXAMPLES = 12
settings.register_profile("thorough", parent=settings.get_profile("default"))
settings.register_profile("fast", max_examples=FAST_MAX_EXAMPLES, deadline=None)

UNIT_TESTS = ROOT / "tests" / "unit"
# Unit tests reach no network: not the internet, and not the local cloud's services either (a test
# that passed only because PostgreSQL or LocalStack happen to run here belongs in tests/integration).
# These modules run an in-process server on the loopback interface and may connect to it.
LOOPBACK_SERVER_MODULES = frozenset(
    {
        "test_mail_transport.py",
        "test_directory_public_web.py",
        "test_local_identity.py",
        "test_deploy_hooks.py",
    }
)


# boto3 clients in unit tests (moto, stubs) must never look for credentials on the network (the
# instance metadata service): they find these.
FAKE_AWS_ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "eu-central-1",
}


@pytest.fixture(autouse=True)
def _unit_tests_use_fake_aws_credentials(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    if request.node.path.is_relative_to(UNIT_TESTS):
        for name, value in FAKE_AWS_ENVIRONMENT.items():
            monkeypatch.setenv(name, value)


def _cap_examples(item: pytest.Item, cap: int) -> None:
    """The fast profile's limit applied to a test's own @settings (Hypothesis keeps a test's
    settings on the wrapped function and reads them when the test runs, as its @seed does)."""
    test = getattr(item, "obj", None)
    own = getattr(test, "_hypothesis_internal_use_settings", None)
    if getattr(test, "is_hypothesis_test", False) and isinstance(own, settings) and own.max_examples > cap:
        test._hypothesis_internal_use_settings = settings(own, max_examples=cap)  # type: ignore[union-attr]
    machine = getattr(item, "cls", None)
    own = getattr(machine, "settings", None)  # a RuleBasedStateMachine.TestCase
    if isinstance(own, settings) and own.max_examples > cap:
        machine.settings = settings(own, max_examples=cap)  # type: ignore[union-attr]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    fast = config.getoption("hypothesis_profile", None) == "fast"
    for item in items:
        if fast:
            _cap_examples(item, FAST_MAX_EXAMPLES)
        if item.path.is_relative_to(UNIT_TESTS):
            if item.path.name in LOOPBACK_SERVER_MODULES:
                item.add_marker(pytest.mark.allow_hosts(["127.0.0.1"]))
            else:
                item.add_marker(pytest.mark.disable_socket)
