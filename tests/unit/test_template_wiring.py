"""template.yaml is the single source of wiring: these checks keep it equal to what the code
expects (the communication rule's event types, the directory schedules' generator, what the
consumer runtime needs of every queue consumer, the layers each function's imports need, the
event source each function may publish as) and hold its protections in place (throttling, the
web ACL, CORS, the rules that refuse an unsafe deploy, Kafka sign-in)."""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import sys
import tomllib
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

import grimp
import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from samtranslator.yaml_helper import yaml_parse

from therapy_platform.communication.use_cases.events import HANDLED_EVENT_TYPES
from therapy_platform.contracts.catalog import EVENT_PAYLOADS
from therapy_platform.directory.domain.week_plan import (
    FIRST_HOUR,
    LAST_HOUR,
    SCHEDULE_EXPRESSION,
    SPACING_MINUTES,
    week_plan,
)
from therapy_platform.platform.clock import PLATFORM_TIMEZONE
from therapy_platform.therapists import settings as therapist_settings
from tools.directory_schedules import prefixes
from tools.function_environment import _Resolver, function_environment, local_parameters

TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"


@pytest.fixture(scope="module")
def resources() -> dict[str, Any]:
    return _template()["Resources"]  # type: ignore[no-any-return]


def test_the_communication_rule_delivers_exactly_the_handled_event_types(resources: dict[str, Any]) -> None:
    pattern = resources["EventsToCommunicationRule"]["Properties"]["EventPattern"]
    assert set(pattern["detail-type"]) == set(HANDLED_EVENT_TYPES)
    assert set(EVENT_PAYLOADS) >= HANDLED_EVENT_TYPES


def test_one_directory_schedule_fires_at_every_slot_of_the_week_plan(resources: dict[str, Any]) -> None:
    schedules = {
        name: body["Properties"]
        for name, body in resources.items()
        if body["Type"] == "AWS::Scheduler::Schedule" and name.startswith("DirectorySchedule")
    }
    assert list(schedules) == ["DirectorySchedule"]
    schedule = schedules["DirectorySchedule"]
    assert schedule["ScheduleExpression"] == SCHEDULE_EXPRESSION
    assert schedule["ScheduleExpressionTimezone"] == PLATFORM_TIMEZONE
    assert json.loads(schedule["Target"]["Input"]) == {
        "scheduled_time": "<aws.scheduler.scheduled-time>",
        "trigger": "schedule",
    }
    # cron(0/20 1-5 ? * * *): every slot of the plan is a minute 0/20/40 of the hours 1 to 5.
    plan = week_plan(prefixes())
    assert len(plan) >= 90  # every 2-digit prefix with a locatable postcode
    assert all(FIRST_HOUR <= slot.hour <= LAST_HOUR and slot.minute % SPACING_MINUTES == 0 for slot in plan)


def test_the_raw_bucket_feeds_the_import_queue(resources: dict[str, Any]) -> None:
    bucket = resources["RawDirectoryBucket"]["Properties"]
    assert bucket["NotificationConfiguration"]["EventBridgeConfiguration"]["EventBridgeEnabled"] is True
    rule = resources["RawDirectoryObjectCreatedRule"]["Properties"]
    assert rule["EventPattern"]["detail"]["object"]["key"] == [{"prefix": "raw/"}]
    assert rule["Targets"][0]["Arn"] == {"Fn::GetAtt": ["DirectoryImportQueue", "Arn"]}


# ---------------------------------------------------------------- queue consumers


def _functions(resources: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: body["Properties"]
        for name, body in resources.items()
        if body["Type"] == "AWS::Serverless::Function"
    }


def _queue_consumers(resources: dict[str, Any]) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(function, its properties, the SQS event source's properties) of every queue consumer."""
    return [
        (name, properties, event["Properties"])
        for name, properties in _functions(resources).items()
        for event in properties.get("Events", {}).values()
        if event["Type"] == "SQS"
    ]


def test_every_queue_consumer_reports_partial_failures_and_can_dead_letter_and_back_off(
    resources: dict[str, Any],
) -> None:
    consumers = _queue_consumers(resources)
    assert len(consumers) >= 7
    for name, properties, source in consumers:
        queue = source["Queue"]["Fn::GetAtt"][0]
        dead_letter_queue = resources[queue]["Properties"]["RedrivePolicy"]["deadLetterTargetArn"][
            "Fn::GetAtt"
        ][0]
        assert source["FunctionResponseTypes"] == ["ReportBatchItemFailures"], name
        # The runtime sends poison to the queue's own DLQ, with the reason ...
        assert properties["Environment"]["Variables"]["DEAD_LETTER_QUEUE_URL"] == {
            "Ref": dead_letter_queue
        }, name
        assert {"SQSSendMessagePolicy": {"QueueName": {"Fn::GetAtt": [dead_letter_queue, "QueueName"]}}} in (
            properties["Policies"]
        ), name
        # ... and delays a retry by changing the message's visibility (the queue URL from its ARN).
        statements = [
            statement
            for policy in properties["Policies"]
            if isinstance(policy, dict) and "Statement" in policy
            for statement in policy["Statement"]
        ]
        assert any(
            {"sqs:ChangeMessageVisibility", "sqs:GetQueueUrl"} <= set(statement["Action"])
            and statement["Resource"] == {"Fn::GetAtt": [queue, "Arn"]}
            for statement in statements
        ), name


def test_every_consumed_queue_outlasts_its_function_and_an_hour_of_outage(resources: dict[str, Any]) -> None:
    """AWS advises a visibility timeout of at least six times the consuming function's timeout
    (throttled retries of a batch); and a message must survive an hour of outage (say, of the
    database) before its redrive policy moves it to the dead-letter queue."""
    default_timeout = _template()["Globals"]["Function"]["Timeout"]
    for name, properties, source in _queue_consumers(resources):
        queue = resources[source["Queue"]["Fn::GetAtt"][0]]["Properties"]
        visibility = queue["VisibilityTimeout"]
        assert visibility >= 6 * properties.get("Timeout", default_timeout), name
        assert queue["RedrivePolicy"]["maxReceiveCount"] * visibility >= 3600, name


# ---------------------------------------------------------------- layers per need

ROOT = TEMPLATE.parent
# The python3.13 Lambda runtime ships the AWS SDK; layers deliberately do not bundle it.
RUNTIME_PACKAGES = frozenset({"boto3", "botocore"})
# Accelerators imported only under `except ImportError` with a pure-Python fallback giving the same
# answers (matching/domain/round.py: numpy_pair_search): a function that may reach them without
# their layer is slower there, never wrong. Only the functions that plan rounds get the layer.
OPTIONAL_ACCELERATORS = frozenset({"numpy"})


def _distribution_closure(requirements: list[str]) -> set[str]:
    """The distributions `pip install` of these requirement lines installs (per the dev venv)."""
    found: set[str] = set()
    pending = [Requirement(line) for line in requirements]
    while pending:
        requirement = pending.pop()
        name = str(canonicalize_name(requirement.name))
        if name in found:
            continue
        found.add(name)
        for dependency in metadata.requires(requirement.name) or []:
            parsed = Requirement(dependency)
            extras = requirement.extras or {""}
            if parsed.marker is None or any(parsed.marker.evaluate({"extra": extra}) for extra in extras):
                pending.append(parsed)
    return found


@cache
def _import_names_by_distribution() -> dict[str, set[str]]:
    names: dict[str, set[str]] = {}
    for import_name, distributions in metadata.packages_distributions().items():
        for distribution in distributions:
            names.setdefault(str(canonicalize_name(distribution)), set()).add(import_name)
    return names


def _requirement_lines(path: Path) -> list[str]:
    if not path.exists():
        return []
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return [line for line in lines if line]


def _provided_imports(requirements: list[str]) -> set[str]:
    by_distribution = _import_names_by_distribution()
    return {name for dist in _distribution_closure(requirements) for name in by_distribution.get(dist, set())}


@cache
def _import_graph() -> grimp.ImportGraph:
    return grimp.build_graph("therapy_platform", include_external_packages=True)


def _imported_modules(code_dir: Path) -> set[str]:
    """Every module the code in `code_dir` imports, at module level or lazily."""
    imported: set[str] = set()
    for path in code_dir.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                imported.add(node.module)
                imported.update(f"{node.module}.{alias.name}" for alias in node.names)
    return imported


def _third_party_imports(code_dir: Path) -> set[str]:
    """Top-level third-party packages the function's code may import, through the layer's
    packages too (lazy imports count: a code path that runs them needs the package)."""
    graph = _import_graph()
    local = {path.stem for path in code_dir.glob("*.py")} | {
        path.name for path in code_dir.iterdir() if path.is_dir()
    }
    modules = _imported_modules(code_dir)
    pending = [
        module for module in modules if module in graph.modules and module.startswith("therapy_platform")
    ]
    seen = set(pending)
    while pending:
        for imported in graph.find_modules_directly_imported_by(pending.pop()):
            if imported not in seen:
                seen.add(imported)
                pending.append(imported)
    top_level = {module.split(".")[0] for module in seen | modules}
    return {
        name
        for name in top_level
        if name != "therapy_platform" and name not in sys.stdlib_module_names and name not in local
    }


def _layers_of(template: dict[str, Any], properties: dict[str, Any]) -> list[str]:
    layers = template["Globals"]["Function"].get("Layers", []) + properties.get("Layers", [])
    return [layer["Ref"] for layer in layers]


@cache
def _template() -> dict[str, Any]:
    return yaml_parse(TEMPLATE.read_text())  # type: ignore[no-any-return]


def _layer_requirements(name: str) -> list[str]:
    layer = _template()["Resources"][name]
    assert layer["Metadata"]["BuildMethod"] == "python3.13", name
    return _requirement_lines(ROOT / layer["Properties"]["ContentUri"] / "requirements.txt")


def _layer_modules(name: str) -> set[str]:
    """Modules a layer brings from its own source (MigrationsLayer: runner.py and friends)."""
    content = ROOT / _template()["Resources"][name]["Properties"]["ContentUri"]
    return {path.stem for path in content.glob("*.py")} if name != "SharedLayer" else set()


@pytest.mark.parametrize("function", sorted(_functions(_template()["Resources"])))
def test_a_function_has_the_layers_its_code_needs_and_no_other(function: str) -> None:
    template = _template()
    properties = template["Resources"][function]["Properties"]
    code_dir = ROOT / properties["CodeUri"]
    layers = _layers_of(template, properties)
    needed = _third_party_imports(code_dir)
    own = _requirement_lines(code_dir / "requirements.txt")
    provided = RUNTIME_PACKAGES | _provided_imports(own)
    for layer in layers:
        provided |= _provided_imports(_layer_requirements(layer)) | _layer_modules(layer)
    missing = needed - provided - OPTIONAL_ACCELERATORS
    assert missing == set(), f"{function} imports packages none of its layers provide: {missing}"
    for layer in layers[1:]:  # the shared layer goes to every function; the others only where used
        assert needed & _provided_imports(_layer_requirements(layer)), f"{function} does not use {layer}"


def test_a_distribution_in_two_layers_is_one_pinned_version() -> None:
    """Lambda unpacks the layers over each other into /opt: a distribution two layers install
    must be the same version in both, so each pins it."""
    template = _template()
    layers = [
        name
        for name, body in template["Resources"].items()
        if body["Type"] == "AWS::Serverless::LayerVersion"
    ]
    closures = {layer: _distribution_closure(_layer_requirements(layer)) for layer in layers}
    pins = {
        layer: {
            str(canonicalize_name(Requirement(line).name)): str(Requirement(line).specifier)
            for line in _layer_requirements(layer)
        }
        for layer in layers
    }
    for distribution in set().union(*closures.values()):
        holders = [layer for layer in layers if distribution in closures[layer]]
        if len(holders) > 1:
            versions = {pins[layer].get(distribution, "unpinned") for layer in holders}
            assert len(versions) == 1 and versions != {"unpinned"}, (distribution, holders, versions)
            assert all(pins[layer].get(distribution, "").startswith("==") for layer in holders), distribution


def test_numpy_goes_only_to_the_functions_that_plan_rounds() -> None:
    template = _template()
    carrying = {
        name
        for name, properties in _functions(template["Resources"]).items()
        if "NumpyLayer" in _layers_of(template, properties)
    }
    assert carrying == {"BundleRoundFunction", "BundleRoundApiFunction", "MatchingApiFunction"}


# ---------------------------------------------------------------- cold start with the template's environment

# What Lambda itself puts into every function's environment (besides the template's variables).
LAMBDA_ENVIRONMENT = {"AWS_REGION": "eu-central-1", "AWS_DEFAULT_REGION": "eu-central-1", "TZ": ":UTC"}
KEPT_FROM_HOST = ("PATH", "HOME", "LANG", "TMPDIR", "PYTHONHASHSEED", "PYTHONDONTWRITEBYTECODE")


def _start_cold(function: str) -> tuple[int, int]:
    """Forks a child that imports the function's handler module with exactly the environment the
    template gives it (plus Lambda's own), its therapy_platform modules imported afresh as in a
    new execution environment. Returns (pid, read end of the pipe carrying its error)."""
    properties = _template()["Resources"][function]["Properties"]
    code_dir = ROOT / properties["CodeUri"]
    module_name, _ = properties["Handler"].rsplit(".", 1)
    environment = {**LAMBDA_ENVIRONMENT, **function_environment(function)}
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child, which always leaves through os._exit
        os.close(read)
        status = 0
        try:
            kept = {name: os.environ[name] for name in KEPT_FROM_HOST if name in os.environ}
            os.environ.clear()
            os.environ.update({**kept, **environment})
            # A new execution environment imports the layer's code afresh (third-party packages
            # stay imported: they read no settings, and importing them again would only be slow).
            for name in [name for name in sys.modules if name.split(".")[0] == "therapy_platform"]:
                del sys.modules[name]
            spec = importlib.util.spec_from_file_location(
                f"cold_start_{function}", code_dir / f"{module_name}.py"
            )
            assert spec and spec.loader
            sys.path.insert(0, str(code_dir))
            module = importlib.util.module_from_spec(spec)
            sys.modules[spec.name] = module
            spec.loader.exec_module(module)
        except BaseException as error:  # report anything: the parent names the function
            os.write(write, f"{type(error).__name__}: {error}".encode()[:4000])
            status = 1
        finally:
            os._exit(status)
    os.close(write)
    return child, read


def _finish_cold(child: int, read: int) -> str | None:
    with os.fdopen(read, "rb") as pipe:
        message = pipe.read().decode(errors="replace")
    _, status = os.waitpid(child, 0)
    return None if status == 0 else message or f"exit status {status}"


@pytest.fixture(scope="module")
def cold_starts() -> dict[str, str | None]:
    """Every function's cold start, a few at a time (one per core)."""
    functions = sorted(_functions(_template()["Resources"]))
    results: dict[str, str | None] = {}
    width = max(1, os.cpu_count() or 1)
    for start in range(0, len(functions), width):
        running = {function: _start_cold(function) for function in functions[start : start + width]}
        results.update({function: _finish_cold(*child) for function, child in running.items()})
    return results


@pytest.mark.slow  # about half a second of CPU per function: `make unit` leaves it to `make test`
@pytest.mark.parametrize("function", sorted(_functions(_template()["Resources"])))
def test_every_handler_starts_with_the_environment_the_template_gives_it(
    function: str, cold_starts: dict[str, str | None]
) -> None:
    """Settings are validated when the handler module is imported (cold start): a variable the
    template does not set, or sets to something invalid, fails here instead of after a deploy."""
    assert cold_starts[function] is None, f"{function} fails its cold start: {cold_starts[function]}"


def test_optional_accelerators_are_imported_only_with_a_fallback() -> None:
    """numpy is imported at module level only by the module planning uses through a guarded
    import; every other import of it sits under `except ImportError`."""
    layer = ROOT / "layers" / "shared" / "therapy_platform"
    for path in layer.rglob("*.py"):
        tree = ast.parse(path.read_text())
        guarded = {
            id(node)
            for handler in ast.walk(tree)
            if isinstance(handler, ast.Try)
            and any(isinstance(h.type, ast.Name) and h.type.id == "ImportError" for h in handler.handlers)
            for stmt in handler.body
            for node in ast.walk(stmt)
        }
        for node in ast.walk(tree):
            names = (
                [alias.name for alias in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            if any(name.split(".")[0] in OPTIONAL_ACCELERATORS for name in names):
                assert path.name == "bulk.py", f"{path} imports an accelerator directly"
            imports_bulk = isinstance(node, ast.ImportFrom) and any(
                alias.name == "bulk" for alias in node.names
            )
            if imports_bulk and any(name.endswith("matching.domain") for name in names):
                assert id(node) in guarded, f"{path} imports the NumPy module without a fallback"


# ---------------------------------------------------------------- who may publish what on the bus

# A service whose settings name its source when EVENT_SOURCE is not set (therapists/settings.py).
DEFAULT_SOURCE_BY_SCHEMA = {"therapist_service": therapist_settings.EVENT_SOURCE}


def _statements(document: Any) -> list[dict[str, Any]]:
    """Every IAM statement in a policy document, through Fn::If branches."""
    found: list[dict[str, Any]] = []
    if isinstance(document, list):
        for item in document:
            found += _statements(item)
    elif isinstance(document, dict):
        if "Fn::If" in document:
            found += _statements(document["Fn::If"][1:])
        elif "Effect" in document:
            found.append(document)
        elif "Statement" in document:
            found += _statements(document["Statement"])
    return found


def _granted_statements(resources: dict[str, Any], policy: Any) -> list[dict[str, Any]]:
    """The statements one entry of a function's Policies grants (inline, or a managed policy of
    the template it references, also through Fn::If)."""
    if isinstance(policy, dict) and "Fn::If" in policy:
        return [s for branch in policy["Fn::If"][1:] for s in _granted_statements(resources, branch)]
    if isinstance(policy, dict) and "Ref" in policy:
        if policy["Ref"] == "AWS::NoValue":
            return []
        managed = resources[policy["Ref"]]
        assert managed["Type"] == "AWS::IAM::ManagedPolicy", policy
        return _statements(managed["Properties"]["PolicyDocument"])
    return _statements(policy)


def _puts_events(statement: dict[str, Any]) -> bool:
    actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
    return any(action in ("events:PutEvents", "events:*", "*") for action in actions)


def _expected_source(function: str) -> str | None:
    environment = function_environment(function)
    return environment.get("EVENT_SOURCE") or DEFAULT_SOURCE_BY_SCHEMA.get(environment.get("DB_SCHEMA", ""))


def test_every_function_may_put_only_events_of_its_own_source_on_the_bus(resources: dict[str, Any]) -> None:
    """SAM's EventBridgePutEventsPolicy cannot carry a condition, so no function uses it: each
    lists its service's publish policy, whose only PutEvents statement is conditioned on exactly
    the source its EVENT_SOURCE (or its service's default) names."""
    publishers = 0
    for function, properties in _functions(resources).items():
        policies = properties.get("Policies", [])
        assert not any(isinstance(p, dict) and "EventBridgePutEventsPolicy" in p for p in policies), function
        granted = [
            s for policy in policies for s in _granted_statements(resources, policy) if _puts_events(s)
        ]
        source = _expected_source(function)
        if source is None:
            assert granted == [], f"{function} publishes as no service but may put events"
            continue
        environment = function_environment(function)
        if "EVENT_SOURCE" in environment:  # it publishes what it commits: it needs the permission
            assert granted, f"{function} has EVENT_SOURCE but may not put events"
        for statement in granted:
            assert statement["Effect"] == "Allow", function
            assert statement["Action"] == "events:PutEvents", function
            assert statement["Resource"] == {"Fn::GetAtt": ["EventBus", "Arn"]}, function
            assert statement["Condition"] == {"StringEquals": {"events:source": source}}, function
        publishers += bool(granted)
    assert publishers >= 15


def test_no_statement_anywhere_grants_put_events_without_a_source_condition(
    resources: dict[str, Any],
) -> None:
    statements = _statements(
        [
            body["Properties"].get("PolicyDocument") or body["Properties"].get("Policies")
            for body in resources.values()
            if body["Type"] in ("AWS::IAM::ManagedPolicy", "AWS::IAM::Role", "AWS::IAM::Policy")
        ]
        + [
            policy.get("PolicyDocument", policy) if isinstance(policy, dict) else policy
            for body in resources.values()
            if body["Type"] == "AWS::IAM::Role"
            for policy in body["Properties"].get("Policies", [])
        ]
    )
    statements += [
        statement
        for properties in _functions(resources).values()
        for policy in properties.get("Policies", [])
        for statement in _granted_statements(resources, policy)
    ]
    for statement in statements:
        if _puts_events(statement):
            assert set(statement["Condition"]["StringEquals"]) == {"events:source"}, statement


# ---------------------------------------------------------------- throttling, reserved concurrency, WAF

ROUND_ROUTE = ("/api/v2/bundles/create", "POST")


def _api_events(properties: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        (event["Properties"]["Path"], event["Properties"]["Method"].upper())
        for event in properties.get("Events", {}).values()
        if event["Type"] == "Api"
    ]


def test_the_stage_and_the_round_route_are_throttled(resources: dict[str, Any]) -> None:
    settings = {
        (setting["ResourcePath"], setting["HttpMethod"]): setting
        for setting in resources["Api"]["Properties"]["MethodSettings"]
    }
    stage = settings[("/*", "*")]
    assert stage["ThrottlingRateLimit"] == {"Ref": "ApiThrottleRateLimit"}
    assert stage["ThrottlingBurstLimit"] == {"Ref": "ApiThrottleBurstLimit"}
    path, method = ROUND_ROUTE
    # A method setting's path is "/" then the route with each "/" written "~1"; the route must exist.
    round_route = settings[("/" + path.replace("/", "~1"), method)]
    assert round_route["ThrottlingRateLimit"] == {"Ref": "RoundThrottleRateLimit"}
    assert round_route["ThrottlingBurstLimit"] == {"Ref": "RoundThrottleBurstLimit"}
    assert any(ROUND_ROUTE in _api_events(p) for p in _functions(resources).values())
    parameters = _template()["Parameters"]
    assert int(parameters["RoundThrottleRateLimit"]["Default"]) < int(
        parameters["ApiThrottleRateLimit"]["Default"]
    )
    assert int(parameters["RoundThrottleBurstLimit"]["Default"]) < int(
        parameters["ApiThrottleBurstLimit"]["Default"]
    )


def test_rounds_run_in_functions_with_reserved_concurrency(resources: dict[str, Any]) -> None:
    functions = _functions(resources)
    [(name, properties)] = [(n, p) for n, p in functions.items() if ROUND_ROUTE in _api_events(p)]
    assert _api_events(properties) == [ROUND_ROUTE], "the round route has a function of its own"
    assert properties["ReservedConcurrentExecutions"] == {"Ref": "RoundApiReservedConcurrency"}
    assert functions["BundleRoundFunction"]["ReservedConcurrentExecutions"] == 1
    # It is the matching API's code, with the matching API's environment.
    matching = functions["MatchingApiFunction"]
    assert (properties["CodeUri"], properties["Handler"]) == (matching["CodeUri"], matching["Handler"])
    assert function_environment(name) == function_environment("MatchingApiFunction")
    # Lambda keeps at least 100 of an account's (default 1,000) concurrent executions unreserved.
    parameters = _template()["Parameters"]
    most = sum(
        int(parameters[value["Ref"]]["MaxValue"]) if isinstance(value, dict) else int(value)
        for value in (p.get("ReservedConcurrentExecutions") for p in functions.values())
        if value is not None
    )
    assert most <= 50


def test_the_web_acl_limits_each_client_address_outside_local(resources: dict[str, Any]) -> None:
    acl, association = resources["ApiWebAcl"], resources["ApiWebAclAssociation"]
    assert acl["Condition"] == association["Condition"] == "IsAws"
    assert _Resolver({**local_parameters(), "Environment": "local"}).condition("IsAws") is False
    assert _Resolver({**local_parameters(), "Environment": "prod"}).condition("IsAws") is True
    [rule] = acl["Properties"]["Rules"]
    assert rule["Action"] == {"Block": {}}
    assert rule["Statement"]["RateBasedStatement"]["AggregateKeyType"] == "IP"
    assert rule["Statement"]["RateBasedStatement"]["Limit"] == {"Ref": "WafRateLimitPerIp"}
    assert association["Properties"]["WebACLArn"] == {"Fn::GetAtt": ["ApiWebAcl", "Arn"]}
    assert "/restapis/${Api}/stages/${Api.Stage}" in association["Properties"]["ResourceArn"]["Fn::Sub"]


def test_every_gateway_response_carries_the_cors_origin(resources: dict[str, Any]) -> None:
    """What API Gateway answers itself (401, 403, 404, 429, 5xx) must be readable by the staff
    frontend, which a browser allows only with the same Access-Control-Allow-Origin."""
    api = resources["Api"]["Properties"]
    responses = api["GatewayResponses"]
    assert {"DEFAULT_4XX", "DEFAULT_5XX", "THROTTLED"} <= set(responses)
    for name, response in responses.items():
        headers = response.get("ResponseParameters", {}).get("Headers", {})
        assert headers.get("Access-Control-Allow-Origin") == api["Cors"]["AllowOrigin"], name


# ---------------------------------------------------------------- rules that refuse an unsafe deploy

# What a dev or prod deploy must be given besides samconfig.toml (account-specific).
ACCOUNT_VALUES = {
    "VpcSubnetIds": "subnet-1,subnet-2",
    "VpcSecurityGroupIds": "sg-1",
    "KafkaBootstrapServers": "b-1.msk.example:9098",
    "KafkaClusterArn": "arn:aws:kafka:eu-central-1:123456789012:cluster/platform/0f0f-1",
    "AllowedOrigin": "https://staff.example.org",
}


def _parameters(environment: str, **overrides: str) -> dict[str, str]:
    values = {
        name: str(spec["Default"]) for name, spec in _template()["Parameters"].items() if "Default" in spec
    }
    config = tomllib.loads((ROOT / "samconfig.toml").read_text())[environment]["deploy"]["parameters"]
    for override in config["parameter_overrides"]:
        name, _, value = override.partition("=")
        values[name] = value
    return {**values, **overrides}


def _failed_rules(parameters: dict[str, str]) -> set[str]:
    """The names of the template's rules whose assertions fail for these parameter values."""
    resolver = _Resolver(parameters)
    failed = set()
    for name, rule in _template()["Rules"].items():
        if "RuleCondition" in rule and not resolver.resolve(rule["RuleCondition"]):
            continue
        if not all(resolver.resolve(assertion["Assert"]) for assertion in rule["Assertions"]):
            failed.add(name)
    return failed


# What a prod deploy must be given besides: the organisation's real footer and addresses.
LEGAL_VALUES = {
    "LegalOrganisation": "Therapieplatz-Vermittlung Nord e. V.",
    "LegalStreet": "Hafenstraße 12",
    "LegalPostcodeCity": "20457 Hamburg",
    "LegalEmail": "kontakt@vermittlung-nord.de",
    "LegalRepresentedBy": "Dr. Eva Beispiel (Vorstand)",
    "LegalPrivacyUrl": "https://vermittlung-nord.de/datenschutz",
    "MailFrom": "Therapieplatz-Vermittlung <vermittlung@vermittlung-nord.de>",
    "StaffAlertEmail": "team@vermittlung-nord.de",
}


def _account_values(environment: str) -> dict[str, str]:
    return {**ACCOUNT_VALUES, **(LEGAL_VALUES if environment == "prod" else {})}


@pytest.mark.parametrize("environment", ["dev", "prod"])
def test_a_deploy_to_aws_needs_a_real_origin_and_authenticated_kafka(environment: str) -> None:
    account = _account_values(environment)  # prod also needs its real legal footer
    assert _failed_rules(_parameters(environment, **account)) == set()
    refused_origin = {**account, "AllowedOrigin": "*"}
    assert _failed_rules(_parameters(environment, **refused_origin)) == {"CorsOriginOutsideLocal"}
    assert "CorsOriginOutsideLocal" in _failed_rules(_parameters(environment))  # samconfig alone
    plaintext = {**account, "KafkaSecurityProtocol": "PLAINTEXT", "KafkaSaslMechanism": "NONE"}
    assert _failed_rules(_parameters(environment, **plaintext)) == {"KafkaAuthenticatedOutsideLocal"}
    no_cluster = {**account, "KafkaClusterArn": ""}
    assert _failed_rules(_parameters(environment, **no_cluster)) == {"KafkaIamNeedsCluster"}
    scram = {**account, "KafkaSaslMechanism": "SCRAM-SHA-512"}
    assert _failed_rules(_parameters(environment, **scram)) == {"KafkaScramNeedsSecret"}
    secret = "arn:aws:secretsmanager:eu-central-1:123456789012:secret:AmazonMSK_platform-AbCdEf"
    assert _failed_rules(_parameters(environment, **scram, KafkaSaslSecretArn=secret)) == set()


PLACEHOLDER_FOOTER = {
    "LegalOrganisation": "Therapieplatz-Vermittlung (lokale Entwicklung)",
    "LegalStreet": "Musterstraße 1",
    "LegalEmail": "kontakt@example.org",
    "LegalRepresentedBy": "",
    "LegalPrivacyUrl": "",
    "LegalPostcodeCity": "",
    "MailFrom": "Therapieplatz-Vermittlung <vermittlung@example.org>",
    "StaffAlertEmail": "team@example.org",
}


def test_prod_refuses_the_placeholder_legal_footer_and_addresses() -> None:
    """Emails to therapists and patients carry the Impressum and the privacy notice: prod must
    not go out with the development placeholders (each one alone is refused), dev and local may."""
    prod = {**ACCOUNT_VALUES, **LEGAL_VALUES}
    assert _failed_rules(_parameters("prod", **prod)) == set()
    assert "ProdNeedsRealLegalFooter" in _failed_rules(_parameters("prod", **ACCOUNT_VALUES))  # defaults
    for name, placeholder in PLACEHOLDER_FOOTER.items():
        assert _failed_rules(_parameters("prod", **{**prod, name: placeholder})) == {
            "ProdNeedsRealLegalFooter"
        }, name
    defaults = _template()["Parameters"]
    for name, placeholder in PLACEHOLDER_FOOTER.items():  # the rule names today's defaults
        assert placeholder in ("", str(defaults[name]["Default"])), name
    assert _failed_rules(_parameters("dev", **ACCOUNT_VALUES)) == set()  # placeholders are fine there
    assert "ProdNeedsRealLegalFooter" not in _failed_rules(local_parameters())


def test_the_local_deployment_passes_every_rule() -> None:
    assert _failed_rules(local_parameters()) == set()
    assert local_parameters()["AllowedOrigin"] == "*"
    assert local_parameters()["KafkaSecurityProtocol"] == "PLAINTEXT"


# ---------------------------------------------------------------- Kafka reaches only the Kafka functions

KAFKA_FUNCTIONS = {"HealthFunction", "KafkaBridgeFunction", "KafkaTopicsFunction"}


def test_only_the_kafka_functions_get_the_kafka_settings_and_may_sign_in(resources: dict[str, Any]) -> None:
    for function, properties in _functions(resources).items():
        environment = function_environment(function)
        signs_in = {"Fn::If": ["KafkaUsesSasl", {"Ref": "KafkaClientPolicy"}, {"Ref": "AWS::NoValue"}]}
        if function in KAFKA_FUNCTIONS:
            assert {"KAFKA_BOOTSTRAP_SERVERS", "KAFKA_SECURITY_PROTOCOL", "KAFKA_SASL_MECHANISM"} <= set(
                environment
            ), function
            assert signs_in in properties["Policies"], function
        else:
            assert not any(name.startswith("KAFKA_") for name in environment), function
            assert signs_in not in properties.get("Policies", []), function
    producer = {"Fn::If": ["KafkaUsesIam", {"Ref": "KafkaProducerPolicy"}, {"Ref": "AWS::NoValue"}]}
    admin = {"Fn::If": ["KafkaUsesIam", {"Ref": "KafkaTopicAdminPolicy"}, {"Ref": "AWS::NoValue"}]}
    assert producer in resources["KafkaBridgeFunction"]["Properties"]["Policies"]
    assert admin in resources["KafkaTopicsFunction"]["Properties"]["Policies"]


def test_wall_clock_schedules_run_in_berlin_time(resources: dict[str, Any]) -> None:
    """EventBridge rules know only UTC (07:00 in winter is 08:00 in summer): a cron schedule is an
    EventBridge Scheduler entry in Europe/Berlin; rules keep only rate() sweeps."""
    parameters = _template()["Parameters"]

    def expression(value: Any) -> str:
        return str(parameters[value["Ref"]]["Default"]) if isinstance(value, dict) else str(value)

    seen = 0
    for name, function in _functions(resources).items():
        for event in (function.get("Events") or {}).values():
            properties = event["Properties"]
            if event["Type"] == "Schedule":
                assert expression(properties["Schedule"]).startswith("rate("), name
            elif event["Type"] == "ScheduleV2":
                seen += 1
                assert properties["ScheduleExpressionTimezone"] == PLATFORM_TIMEZONE, name
    assert seen >= 3  # the bundle round, expiry and reminders


# ---------------------------------------------------------------- alarms


def _dead_letter_queues(resources: dict[str, Any]) -> set[str]:
    """Every queue something gives up into: redrive targets, Scheduler and Lambda failure targets."""
    found: set[str] = set()
    text = json.dumps(resources)
    for name, body in resources.items():
        if body["Type"] != "AWS::SQS::Queue":
            continue
        arn = json.dumps({"Fn::GetAtt": [name, "Arn"]})
        as_target = (
            f'"deadLetterTargetArn": {arn}' in text
            or f'"DeadLetterConfig": {{"Arn": {arn}}}' in text
            or f'"Destination": {arn}' in json.dumps(_template()["Globals"])
        )
        if as_target:
            found.add(name)
    return found


def test_every_dead_letter_queue_has_an_alarm_that_tells_staff(resources: dict[str, Any]) -> None:
    dead_letter_queues = _dead_letter_queues(resources)
    assert len(dead_letter_queues) >= 9 and "FailedJobsQueue" in dead_letter_queues
    alarmed = {}
    for body in resources.values():
        if body["Type"] == "AWS::CloudWatch::Alarm" and body["Properties"].get("Namespace") == "AWS/SQS":
            dimension = body["Properties"]["Dimensions"][0]["Value"]
            alarmed[dimension["Fn::GetAtt"][0]] = body["Properties"]
    assert set(alarmed) == dead_letter_queues
    for queue, alarm in alarmed.items():
        assert alarm["MetricName"] == "ApproximateNumberOfMessagesVisible", queue
        assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (0, "GreaterThanThreshold"), queue
        assert alarm["AlarmActions"] == [{"Ref": "StaffAlertTopic"}], queue


def test_every_function_is_alarmed_for_errors_and_throttles_and_its_failed_jobs_are_kept(
    resources: dict[str, Any],
) -> None:
    queries = {
        json.dumps(body["Properties"]["Metrics"][0]["Expression"]).strip('"').replace('\\"', '"')
        for body in resources.values()
        if body["Type"] == "AWS::CloudWatch::Alarm" and "Metrics" in body["Properties"]
    }
    assert 'SELECT SUM(Errors) FROM SCHEMA("AWS/Lambda", FunctionName)' in queries
    assert 'SELECT SUM(Throttles) FROM SCHEMA("AWS/Lambda", FunctionName)' in queries
    on_failure = _template()["Globals"]["Function"]["EventInvokeConfig"]["DestinationConfig"]["OnFailure"]
    assert on_failure["Destination"] == {"Fn::GetAtt": ["FailedJobsQueue", "Arn"]}
    # No function opts out of the failure destination.
    assert not [name for name, props in _functions(resources).items() if "EventInvokeConfig" in props]


def test_the_dashboard_is_valid_json() -> None:
    body = _template()["Resources"]["OperationsDashboard"]["Properties"]["DashboardBody"]["Fn::Sub"][0]
    dashboard = json.loads(body.replace("${AWS::Region}", "eu-central-1"))
    assert len(dashboard["widgets"]) >= 4


def test_the_platforms_own_metrics_that_must_stay_zero_are_alarmed(resources: dict[str, Any]) -> None:
    alarmed = {
        body["Properties"].get("MetricName")
        for body in resources.values()
        if body["Type"] == "AWS::CloudWatch::Alarm"
        and body["Properties"].get("Namespace") == "TherapyPlatform"
    }
    assert {"CoolingPeriodViolations", "RoundDuration", "EmailsFailed"} <= alarmed
    lag = resources["OutboxLagAlarm"]["Properties"]["Metrics"][0]["Expression"]["Fn::Sub"]
    assert "MAX(OutboxLag)" in lag and "${Environment}" in lag
