"""LocalStack with the `subprocess` Lambda executor: create functions and layers with boto3, invoke them."""

from __future__ import annotations

import io
import json
import os
import textwrap
import time
import uuid
import zipfile
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from localcloud import aws, localstack
from localcloud.process import read_pid

pytestmark = pytest.mark.integration

ROLE = "arn:aws:iam::000000000000:role/lambda-test-role"


def _zip(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in files.items():
            archive.writestr(name, textwrap.dedent(content))
    return buffer.getvalue()


@pytest.fixture(scope="session")
def localstack_endpoint() -> Iterator[str]:
    """LocalStack with our executor; started here only if not running, and then stopped at the end."""
    started_here = not (read_pid(localstack.NAME) is not None and localstack.is_healthy())
    if started_here:
        localstack.start()
    yield localstack.endpoint_url()
    if started_here:
        localstack.stop()


def _client(endpoint: str, service: str) -> Any:
    assert endpoint == aws.localstack_url()  # both follow LOCALSTACK_PORT
    return aws.client(service)


@pytest.fixture(scope="session")
def lambda_client(localstack_endpoint: str) -> Any:
    return _client(localstack_endpoint, "lambda")


@pytest.fixture(scope="session")
def logs_client(localstack_endpoint: str) -> Any:
    return _client(localstack_endpoint, "logs")


LAYERS = (
    {
        "python/shared_helpers.py": "GREETING = 'hello from the layer'\n",
        "python/lib/python3.13/site-packages/vendored_dep.py": "SOURCE = 'site-packages of layer 1'\n",
        "python/layer_order.py": "WINNER = 'first layer'\n",
    },
    # Lambda unzips layers into /opt in order: the later layer's file wins.
    {"python/layer_order.py": "WINNER = 'second layer'\n"},
)


@pytest.fixture(scope="session")
def layer_arns(lambda_client: Any) -> Iterator[list[str]]:
    published: list[tuple[str, int, str]] = []
    for files in LAYERS:
        name = f"exec-test-layer-{uuid.uuid4().hex[:8]}"
        response = lambda_client.publish_layer_version(
            LayerName=name, Content={"ZipFile": _zip(files)}, CompatibleRuntimes=["python3.13"]
        )
        published.append((name, response["Version"], response["LayerVersionArn"]))
    yield [arn for _, _, arn in published]
    for name, version, _ in published:
        lambda_client.delete_layer_version(LayerName=name, VersionNumber=version)


CreateFunction = Callable[..., str]


@pytest.fixture
def create_function(lambda_client: Any) -> Iterator[CreateFunction]:
    created: list[str] = []

    def create(code: str, *, runtime: str = "python3.13", wait_active: bool = True, **kwargs: Any) -> str:
        name = f"exec-test-{uuid.uuid4().hex[:10]}"
        lambda_client.create_function(
            FunctionName=name,
            Runtime=runtime,
            Role=ROLE,
            Handler="app.handler",
            Code={"ZipFile": _zip({"app.py": code})},
            **kwargs,
        )
        created.append(name)
        if wait_active:
            lambda_client.get_waiter("function_active_v2").wait(
                FunctionName=name, WaiterConfig={"Delay": 0.5, "MaxAttempts": 60}
            )
        return name

    yield create
    for name in created:
        try:
            lambda_client.delete_function(FunctionName=name)
        except ClientError:
            # LocalStack quirk: deleting a function whose version is in state Failed raises InternalError.
            if lambda_client.get_function_configuration(FunctionName=name)["State"] != "Failed":
                raise


def _invoke(lambda_client: Any, name: str, event: object) -> tuple[dict[str, Any], Any]:
    response = lambda_client.invoke(FunctionName=name, Payload=json.dumps(event).encode())
    return response, json.loads(response["Payload"].read())


def test_plugin_is_registered_in_localstack_venv() -> None:
    entry_points = list(
        (localstack.LOCALSTACK_VENV / "lib").glob(
            "python3.*/site-packages/localstack_subprocess_executor-*.dist-info/entry_points.txt"
        )
    )
    assert len(entry_points) == 1
    text = entry_points[0].read_text()
    assert "[localstack.lambda.runtime_executor]" in text
    assert "subprocess = localstack_subprocess_executor.plugin:SubprocessRuntimeExecutorPlugin" in text


def test_invoke_with_layer_env_and_sdk(
    lambda_client: Any, create_function: CreateFunction, layer_arns: list[str]
) -> None:
    name = create_function(
        """
        import os
        import boto3
        import layer_order
        import shared_helpers
        import vendored_dep

        def handler(event, context):
            identity = boto3.client("sts").get_caller_identity()
            return {
                "echo": event,
                "greeting": shared_helpers.GREETING,
                "site_packages": vendored_dep.SOURCE,
                "layer_winner": layer_order.WINNER,
                "init_type": os.environ.get("AWS_LAMBDA_INITIALIZATION_TYPE"),
                "custom_env": os.environ.get("APP_SETTING"),
                "function_name": os.environ.get("AWS_LAMBDA_FUNCTION_NAME"),
                "endpoint": os.environ.get("AWS_ENDPOINT_URL"),
                "task_root": os.environ.get("LAMBDA_TASK_ROOT"),
                "cwd": os.getcwd(),
                "account": identity["Account"],
                "context_name": context.function_name,
                "memory": context.memory_limit_in_mb,
                "boto3": boto3.__version__,
            }
        """,
        Layers=layer_arns,
        Environment={"Variables": {"APP_SETTING": "matching-enabled"}},
        MemorySize=256,
    )
    response, body = _invoke(lambda_client, name, {"patient": "p-1"})
    assert "FunctionError" not in response, body
    assert body["echo"] == {"patient": "p-1"}
    assert body["greeting"] == "hello from the layer"
    assert body["site_packages"] == "site-packages of layer 1"
    assert body["layer_winner"] == "second layer"
    assert body["init_type"] == "on-demand"
    assert body["custom_env"] == "matching-enabled"
    assert body["function_name"] == name == body["context_name"]
    assert body["endpoint"] == localstack.endpoint_url()
    assert body["task_root"] == body["cwd"] and os.path.isdir(body["task_root"])
    assert body["account"] == "000000000000"
    assert body["memory"] == "256"
    assert body["boto3"] == "1.44.5"  # the Lambda runtime venv, not LocalStack's own boto3


def test_handler_error_shape(lambda_client: Any, create_function: CreateFunction) -> None:
    name = create_function(
        """
        def handler(event, context):
            raise RuntimeError("no therapist available")
        """
    )
    response, body = _invoke(lambda_client, name, {})
    assert response["FunctionError"] == "Unhandled"
    assert body["errorType"] == "RuntimeError"
    assert body["errorMessage"] == "no therapist available"
    assert body["requestId"] == response["ResponseMetadata"]["RequestId"]
    assert len(body["stackTrace"]) == 1 and "in handler" in body["stackTrace"][0]


def test_init_error_shape(lambda_client: Any, create_function: CreateFunction) -> None:
    name = create_function("import package_that_is_not_there\n\ndef handler(event, context):\n    return 1\n")
    response, body = _invoke(lambda_client, name, {})
    assert response["FunctionError"] == "Unhandled"
    assert body["errorType"] == "Runtime.ImportModuleError"
    assert (
        body["errorMessage"] == "Unable to import module 'app': No module named 'package_that_is_not_there'"
    )


def test_timeout_then_next_invoke_works(lambda_client: Any, create_function: CreateFunction) -> None:
    name = create_function(
        """
        import os, time
        def handler(event, context):
            if event.get("sleep"):
                time.sleep(event["sleep"])
            return {"pid": os.getpid()}
        """,
        Timeout=2,
    )
    _, warm = _invoke(lambda_client, name, {})
    started = time.monotonic()
    response, body = _invoke(lambda_client, name, {"sleep": 10})
    elapsed = time.monotonic() - started
    assert response["FunctionError"] == "Unhandled"
    assert body["errorType"] == "Sandbox.Timedout"
    assert body["errorMessage"].endswith("Error: Task timed out after 2.00 seconds")
    assert 1.9 <= elapsed < 6, elapsed
    response, after = _invoke(lambda_client, name, {})
    assert "FunctionError" not in response
    assert after["pid"] != warm["pid"]  # the timed-out process was replaced


def test_logs_reach_cloudwatch(lambda_client: Any, logs_client: Any, create_function: CreateFunction) -> None:
    marker = f"log-marker-{uuid.uuid4().hex}"
    name = create_function(
        """
        def handler(event, context):
            print("handler says", event["marker"])
            return "ok"
        """
    )
    response, _ = _invoke(lambda_client, name, {"marker": marker})
    request_id = response["ResponseMetadata"]["RequestId"]
    group = f"/aws/lambda/{name}"
    messages: list[str] = []
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            events = logs_client.filter_log_events(logGroupName=group)["events"]
        except logs_client.exceptions.ResourceNotFoundException:
            events = []
        messages = [event["message"].rstrip("\n") for event in events]
        if any(message.startswith("REPORT RequestId:") for message in messages):
            break
        time.sleep(0.25)
    assert f"handler says {marker}" in messages, messages
    assert any(message.startswith("START RequestId:") for message in messages)
    assert any(message.startswith("END RequestId:") for message in messages)
    assert any(message.startswith(f"REPORT RequestId: {request_id}") for message in messages), messages


def test_non_python_runtime_fails_clearly(lambda_client: Any, create_function: CreateFunction) -> None:
    name = create_function("exports.handler = async () => 1;\n", runtime="nodejs20.x", wait_active=False)
    deadline = time.monotonic() + 20
    configuration: dict[str, Any] = {}
    while time.monotonic() < deadline:
        configuration = lambda_client.get_function_configuration(FunctionName=name)
        if configuration["State"] != "Pending":
            break
        time.sleep(0.25)
    assert configuration["State"] == "Failed"
    assert "runs Python functions only" in configuration["StateReason"]
