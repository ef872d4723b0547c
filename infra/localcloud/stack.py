"""Build and deploy template.yaml to LocalStack with `sam`, run the migrations, and invoke
any function of the stack with a sample event (the Docker-free `sam local invoke`)."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
import tomllib
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import make_url

from localcloud import directory, identity, kafka, localstack, postgres, queues, smtp
from localcloud.aws import REGION, aws_env, client, localstack_url
from localcloud.names import UnknownNameError
from localcloud.paths import LOG_DIR, PROJECT_ROOT, STATE_DIR
from localcloud.progress import logged_step
from therapy_platform.platform.kafka_topics import TOPICS

CONFIG_ENV = "local"
STACK_FILE = STATE_DIR / "stack.json"
DEPLOY_LOG = LOG_DIR / "deploy.log"  # sam build and sam deploy write here, not to the terminal
KAFKA_TOPICS = tuple(topic.name for topic in TOPICS)  # declared in platform/kafka_topics.py


@dataclass
class StackInfo:
    stack_name: str
    api_id: str
    stage: str
    api_base_url: str
    outputs: dict[str, str]
    functions: dict[str, str] = field(default_factory=dict)

    def save(self) -> None:
        STACK_FILE.write_text(json.dumps(asdict(self), indent=2))

    @classmethod
    def load(cls) -> StackInfo:
        if not STACK_FILE.exists():
            raise RuntimeError("the stack is not deployed yet: run `localcloud up` first")
        return cls(**json.loads(STACK_FILE.read_text()))


def _samconfig() -> dict[str, Any]:
    with open(PROJECT_ROOT / "samconfig.toml", "rb") as handle:
        return tomllib.load(handle)


def _deploy_parameters() -> dict[str, Any]:
    params: dict[str, Any] = _samconfig()[CONFIG_ENV]["deploy"]["parameters"]
    return params


def _say(message: str) -> None:
    print(message, flush=True)


def _sam(*args: str) -> None:
    """Run sam with its output appended to DEPLOY_LOG (the terminal gets progress lines only)."""
    sam = Path(sys.executable).with_name("sam")
    # `sam build` looks for `python3.13` (the functions' runtime) on PATH: this interpreter's own.
    interpreter = str(Path(sys.base_prefix) / "bin")
    env = {**os.environ, **aws_env(), "PATH": os.pathsep.join([interpreter, os.environ.get("PATH", "")])}
    DEPLOY_LOG.parent.mkdir(parents=True, exist_ok=True)
    with open(DEPLOY_LOG, "a") as log:
        log.write(f"\n==== {time.strftime('%Y-%m-%d %H:%M:%S')} sam {args[0]}\n")
        log.flush()
        subprocess.run(  # noqa: S603
            [str(sam), *args], cwd=PROJECT_ROOT, env=env, check=True, stdout=log, stderr=subprocess.STDOUT
        )


def build() -> None:
    logged_step("building", lambda: _sam("build", "--config-env", CONFIG_ENV), log=DEPLOY_LOG, say=_say)


def server_parameters(*, admin_password: str) -> list[str]:
    """What the local deployment learns from the servers `localcloud up` runs (every port, the
    local directory, the SMTP server and its Maildir, the local identity provider), on top of
    samconfig.toml's `local` overrides, which name no port: each server's port comes from its
    environment variable (PG_PORT, KAFKA_PORT, SMTP_PORT, DIRECTORY_PORT, IDENTITY_PORT)."""
    return [
        f"ExternalDbPort={postgres.port()}",
        f"KafkaBootstrapServers={kafka.bootstrap_servers()}",
        f"ExternalDbAdminPassword={admin_password}",
        f"DirectoryBaseUrl={directory.url()}",
        f"ReplyMaildir={smtp.maildir_path()}",
        f"SmtpHost={smtp.HOST}",
        f"SmtpPort={smtp.port()}",
        f"AuthIssuerUrl={identity.url()}",
    ]


def deploy() -> StackInfo:
    """sam build + sam deploy (local environment, which migrates the database); returns the
    stack's facts."""
    params = _deploy_parameters()
    s3 = client("s3")
    bucket = params["s3_bucket"]
    if bucket not in {b["Name"] for b in s3.list_buckets().get("Buckets", [])}:
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    build()
    _clear_failed_stack(params["stack_name"])
    admin_password = make_url(postgres.admin_url()).password or ""
    overrides = [*params["parameter_overrides"], *server_parameters(admin_password=admin_password)]
    deploy_args = ("deploy", "--config-env", CONFIG_ENV, "--no-progressbar", "--parameter-overrides")
    deploy_args += tuple(overrides)

    def sam_deploy() -> None:
        try:
            _sam(*deploy_args)
        except subprocess.CalledProcessError:
            # LocalStack's CloudFormation engine cannot apply some updates (e.g. a new API
            # deployment re-creates the stage) and leaves a half-rolled-back stack: start it
            # afresh and create the stack anew. Its KMS keys go with it, and with them the keys
            # that sealed patient fields (docs/privacy.md#encryption): the local stack's database
            # starts empty too, rather than holding rows nothing can open. Secrets are
            # re-provisioned by the migration.
            _say("  the stack update failed; restarting LocalStack and creating the stack anew")
            _say("  (local data reset: the patient fields' KMS keys were LocalStack's)")
            localstack.stop()
            localstack.start()
            postgres.recreate_database()
            s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
            _sam(*deploy_args)

    logged_step("deploying", sam_deploy, log=DEPLOY_LOG, say=_say)
    info = describe()
    info.save()
    # No topic or migration step here: the stack's KafkaTopicDeclarations and DatabaseMigration
    # custom resources ran them (or found nothing changed) during `sam deploy`, as in AWS.
    _say(f"  database    migrated during the deploy ({migration_status(info)})")
    return info


def migration_status(info: StackInfo) -> str:
    """The DatabaseMigration custom resource's status in the deployed stack."""
    resource = client("cloudformation").describe_stack_resource(
        StackName=info.stack_name, LogicalResourceId="DatabaseMigration"
    )["StackResourceDetail"]
    return str(resource["ResourceStatus"])


def _clear_failed_stack(stack_name: str) -> None:
    """A first deploy that failed leaves the stack in ROLLBACK_COMPLETE, which cannot be updated;
    LocalStack's rollback may also leave named resources behind. Remove both so a retry works."""
    cloudformation = client("cloudformation")
    try:
        status = cloudformation.describe_stacks(StackName=stack_name)["Stacks"][0]["StackStatus"]
    except cloudformation.exceptions.ClientError:
        status = None
    if status not in (None, "ROLLBACK_COMPLETE", "DELETE_COMPLETE"):
        return
    if status == "ROLLBACK_COMPLETE":
        cloudformation.delete_stack(StackName=stack_name)
        cloudformation.get_waiter("stack_delete_complete").wait(StackName=stack_name)
    events = client("events")
    environment = deployed_environment()
    bus = f"therapy-platform-{environment}"
    if any(b["Name"] == bus for b in events.list_event_buses(NamePrefix=bus)["EventBuses"]):
        for rule in events.list_rules(EventBusName=bus)["Rules"]:
            targets = events.list_targets_by_rule(Rule=rule["Name"], EventBusName=bus)["Targets"]
            if targets:
                events.remove_targets(Rule=rule["Name"], EventBusName=bus, Ids=[t["Id"] for t in targets])
            events.delete_rule(Name=rule["Name"], EventBusName=bus)
        events.delete_event_bus(Name=bus)


def queue_prefix() -> str:
    """What every queue name of the local stack starts with (template.yaml names them
    therapy-platform-<environment>-..., the local stack is therapy-platform-local)."""
    return f"therapy-platform-{deployed_environment()}-"


def deployed_environment() -> str:
    """The template's Environment parameter of the local deployment (samconfig.toml)."""
    overrides = _deploy_parameters()["parameter_overrides"]
    return str(next(item.split("=", 1)[1] for item in overrides if item.startswith("Environment=")))


def directory_schedule_input(prefix: str, *, after: datetime | None = None) -> dict[str, Any]:
    """The input EventBridge Scheduler gives the scraper when the deployed `DirectorySchedule`
    fires at the slot that reads `prefix` (the week plan), next after `after` (now): the
    schedule's own input with the context attribute filled in as Scheduler fills it."""
    from therapy_platform.directory.domain.week_plan import next_occurrence, regions_of, slot_of
    from therapy_platform.platform.geography.postcodes import postcode_directory

    environment = deployed_environment()
    schedule = client("scheduler").get_schedule(
        Name=f"therapy-platform-{environment}-directory",
        GroupName=f"therapy-platform-{environment}-directory",
    )
    regions = regions_of(postcode_directory().postcodes(locatable_only=True))
    fires_at = next_occurrence(slot_of(regions, prefix), after or datetime.now(UTC))
    scheduled_time = fires_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    document: dict[str, Any] = json.loads(
        schedule["Target"]["Input"].replace("<aws.scheduler.scheduled-time>", scheduled_time)
    )
    return document


def describe() -> StackInfo:
    stack_name = _deploy_parameters()["stack_name"]
    cloudformation = client("cloudformation")
    stack = cloudformation.describe_stacks(StackName=stack_name)["Stacks"][0]
    outputs = {output["OutputKey"]: output["OutputValue"] for output in stack.get("Outputs", [])}
    resources = cloudformation.describe_stack_resources(StackName=stack_name)["StackResources"]
    functions = {
        resource["LogicalResourceId"]: resource["PhysicalResourceId"]
        for resource in resources
        if resource["ResourceType"] == "AWS::Lambda::Function"
    }
    api_id, stage = outputs["ApiId"], outputs["ApiStage"]
    # No DNS for *.localstack.cloud here: LocalStack's path form reaches the same API.
    base_url = f"{localstack_url()}/_aws/execute-api/{api_id}/{stage}"
    return StackInfo(stack_name, api_id, stage, base_url, outputs, functions)


def migrate(info: StackInfo | None = None) -> dict[str, Any]:
    """Run the migration function by hand (the deploy runs it by itself)."""
    result = invoke("DbMigrateFunction", {}, info=info)
    if result.error:
        raise RuntimeError(f"migration failed: {result.payload}\n{result.logs}")
    payload: dict[str, Any] = result.payload
    return payload


@dataclass
class InvokeResult:
    function_name: str
    status_code: int
    payload: Any
    error: str | None
    logs: str
    duration_ms: float


def resolve_function(name: str, info: StackInfo | None = None) -> str:
    """Logical id from template.yaml (e.g. PatientsApiFunction) or a physical name."""
    info = info or StackInfo.load()
    if name in info.functions:
        return info.functions[name]
    if name in info.functions.values():
        return name
    raise UnknownNameError("function", name, info.functions)


def invoke(name: str, event: Any, *, info: StackInfo | None = None, timeout_s: int = 900) -> InvokeResult:
    from botocore.config import Config

    function_name = resolve_function(name, info)
    lambda_client = client("lambda", config=Config(read_timeout=timeout_s, retries={"max_attempts": 0}))
    started = time.perf_counter()
    response = lambda_client.invoke(
        FunctionName=function_name, Payload=json.dumps(event).encode(), LogType="Tail"
    )
    duration_ms = (time.perf_counter() - started) * 1000
    raw = response["Payload"].read()
    try:
        payload = json.loads(raw) if raw else None
    except json.JSONDecodeError:
        payload = raw.decode(errors="replace")
    logs = (
        base64.b64decode(response["LogResult"]).decode(errors="replace") if response.get("LogResult") else ""
    )
    return InvokeResult(
        function_name=function_name,
        status_code=int(response["StatusCode"]),
        payload=payload,
        error=response.get("FunctionError"),
        logs=logs,
        duration_ms=duration_ms,
    )


def recent_logs(
    name: str, *, since_s: int = 3600, limit: int = 200, info: StackInfo | None = None
) -> list[str]:
    """The function's latest CloudWatch Logs lines."""
    events = log_events(name, int((time.time() - since_s) * 1000), limit=limit, info=info)
    return [str(event["message"]).rstrip() for event in events]


def log_events(
    name: str, start_ms: int, *, limit: int = 1000, info: StackInfo | None = None
) -> list[dict[str, Any]]:
    """The function's CloudWatch Logs events from `start_ms` on (none before its first run)."""
    function_name = resolve_function(name, info)
    logs = client("logs")
    try:
        events: list[dict[str, Any]] = logs.filter_log_events(
            logGroupName=f"/aws/lambda/{function_name}", startTime=start_ms, limit=limit
        )["events"]
    except logs.exceptions.ResourceNotFoundException:
        return []
    return events


@dataclass
class RedriveResult:
    dead_letter_queue: str
    moved: int
    task_handle: str


def redrive(dead_letter_queue: str, *, timeout_s: float = 60.0) -> RedriveResult:
    """Move every message of a dead-letter queue back to the queue it came from (after the cause
    is fixed, e.g. a long broker outage). Uses SQS's own message move task, as the console does."""
    sqs = client("sqs")
    url = queues.resolve_dead_letter_queue(sqs, dead_letter_queue, queue_prefix())
    attributes = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["QueueArn", "ApproximateNumberOfMessages"]
    )["Attributes"]
    sources = sqs.list_dead_letter_source_queues(QueueUrl=url).get("queueUrls", [])
    if len(sources) != 1:
        raise RuntimeError(f"{url} must be the dead-letter queue of exactly one queue, not {len(sources)}")
    destination = sqs.get_queue_attributes(QueueUrl=sources[0], AttributeNames=["QueueArn"])["Attributes"]
    waiting = int(attributes["ApproximateNumberOfMessages"])
    handle = sqs.start_message_move_task(
        SourceArn=attributes["QueueArn"], DestinationArn=destination["QueueArn"]
    )["TaskHandle"]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        tasks = sqs.list_message_move_tasks(SourceArn=attributes["QueueArn"]).get("Results", [])
        current = next(
            (task for task in tasks if task.get("TaskHandle") == handle), tasks[0] if tasks else {}
        )
        if current.get("Status") in ("COMPLETED", "FAILED", "CANCELLED"):
            if current["Status"] != "COMPLETED":
                raise RuntimeError(f"redrive {current['Status']}: {current.get('FailureReason', '')}")
            return RedriveResult(url, int(current.get("ApproximateNumberOfMessagesMoved", waiting)), handle)
        time.sleep(0.5)
    raise RuntimeError(f"redrive of {url} did not finish within {timeout_s:.0f} s")
