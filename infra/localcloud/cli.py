"""`localcloud`: the project's local cloud without Docker.

localcloud up        start PostgreSQL, Tansu, SMTP and LocalStack, deploy the stack, migrate
localcloud down      stop every server the project started (by PID)
localcloud status    what runs, where, the API URL and the depth of every queue (DLQs marked)
localcloud deploy    sam build + sam deploy to LocalStack + migrations
localcloud invoke F  invoke function F (logical id from template.yaml) with an event file
localcloud logs F    the function's recent CloudWatch Logs lines (--follow: until Ctrl-C)
localcloud dlq peek Q  a dead-letter queue's messages, left in the queue
localcloud redrive Q   move a dead-letter queue's messages back to their queue
localcloud check-ports  every local port the deployed functions name is one of this cloud's servers
localcloud token     a bearer token of the local identity provider (--role staff|admin|auditor)
localcloud demo      up + seed + drive a request through the skeleton + summary
localcloud publish-registration FILE  sign a website registration and produce it to Kafka
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
import time
from typing import Any

from localcloud import (
    directory,
    identity,
    kafka,
    kafka_source,
    localstack,
    logtail,
    names,
    postgres,
    queues,
    smtp,
    stack,
)
from localcloud.aws import client
from localcloud.paths import LOG_DIR, STATE_DIR
from therapy_platform.contracts.access import ROLES
from therapy_platform.platform.problems import describe_problem

SERVERS = (
    ("postgres", postgres),
    ("kafka", kafka),
    ("smtp", smtp),
    ("directory", directory),  # the local stand-in for the 116117 directory
    ("identity", identity),  # the development OpenID Connect issuer the API trusts locally
    ("localstack", localstack),
)


def _say(message: str) -> None:
    print(message, flush=True)


def up(*, deploy: bool = True) -> dict[str, float]:
    """Idempotent: running servers are left alone; deploy is a no-op when nothing changed."""
    timings: dict[str, float] = {}
    started = time.perf_counter()
    localstack.install()
    timings["install"] = time.perf_counter() - started
    for name, module in SERVERS:
        began = time.perf_counter()
        module.start()
        timings[name] = time.perf_counter() - began
        _say(f"  {name:<11} up ({timings[name]:.1f} s)")
    # The local broker keeps topics in memory: a restarted one needs them again even when the
    # stack (whose KafkaTopicDeclarations resource applies them in a deploy) is unchanged.
    kafka.apply_topic_declarations()
    if deploy:
        began = time.perf_counter()
        info = stack.deploy()
        timings["deploy"] = time.perf_counter() - began
        _say(f"  stack       deployed ({timings['deploy']:.1f} s); API: {info.api_base_url}")
        # Lambda's Kafka event source, which LocalStack's free edition lacks (kafka_source.py).
        kafka_source.start()
        _say("  kafka-source up (patient-registrations -> RegistrationIntakeFunction; local stand-in)")
    timings["total"] = time.perf_counter() - started
    return timings


def down() -> None:
    if kafka_source.stop():
        _say("  kafka-source stopped")
    for name, module in reversed(SERVERS):
        stopped = module.stop()
        _say(f"  {name:<11} {'stopped' if stopped else 'was not running'}")


def status() -> int:
    healthy = True
    for name, module in SERVERS:
        ok = module.is_healthy()
        healthy &= ok
        _say(f"  {name:<11} {'healthy' if ok else 'DOWN'}")
    try:
        info = stack.StackInfo.load()
        _say(f"  API         {info.api_base_url}")
    except RuntimeError as error:
        _say(f"  API         {error}")
        return 0 if healthy else 1
    if localstack.is_healthy():
        _say("  queues      depth = visible + in flight")
        prefix = stack.queue_prefix()
        for line in queues.format_depths(queues.queue_depths(client("sqs"), prefix), prefix):
            _say(line)
    return 0 if healthy else 1


def _load_event(path: str | None) -> Any:
    if path is None:
        return {}
    if path == "-":
        return json.load(sys.stdin)
    return json.loads(names.event_path(path).read_text())


def api_problem(payload: Any) -> str | None:
    """An API function's error answer (problem details in a proxy result) as one readable line:
    status, code, title, detail and each field's German message, as the API names them."""
    if not isinstance(payload, dict) or int(payload.get("statusCode") or 0) < 400:
        return None
    try:
        body = json.loads(payload.get("body") or "")
    except (TypeError, ValueError):
        return None
    return describe_problem(body, status=int(payload["statusCode"])) if isinstance(body, dict) else None


def proxy_answer(payload: Any) -> list[str] | None:
    """An API Gateway proxy result as the client would see it: the HTTP status and the body
    decoded (JSON pretty-printed), not the escaped string inside the Lambda result."""
    if not isinstance(payload, dict) or "statusCode" not in payload or "body" not in payload:
        return None
    headers = {
        name.lower(): ", ".join(values) for name, values in (payload.get("multiValueHeaders") or {}).items()
    }
    headers |= {name.lower(): value for name, value in (payload.get("headers") or {}).items()}
    body = payload.get("body") or ""
    if payload.get("isBase64Encoded"):
        shown = f"({len(base64.b64decode(body))} bytes, base64-encoded)"
    else:
        shown = queues.readable_body(body) if body else "(empty)"
    content_type = f" ({headers['content-type']})" if "content-type" in headers else ""
    return [f"answer   : HTTP {payload['statusCode']}{content_type}", "body     :", shown]


def invoke_command(function: str, event_path: str | None) -> int:
    names.require_function(function, names.template_functions())
    event = _load_event(event_path)
    result = stack.invoke(function, event)
    _say(f"function : {result.function_name}")
    _say(f"status   : {result.status_code}{' (' + result.error + ')' if result.error else ''}")
    _say(f"duration : {result.duration_ms:.0f} ms")
    problem = api_problem(result.payload)
    if problem:
        _say(f"problem  : {problem}")
    answer = proxy_answer(result.payload)
    if answer:
        for line in answer:
            _say(line)
    else:
        _say("result   :")
        _say(
            json.dumps(result.payload, indent=2, ensure_ascii=False)
            if not isinstance(result.payload, str)
            else result.payload
        )
    logs = result.logs or "\n".join(stack.recent_logs(function, since_s=120, limit=50))
    _say("logs     :")
    _say(logs.rstrip() or "(none)")
    return 1 if result.error else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="localcloud", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    up_parser = commands.add_parser("up", help="start servers, deploy and migrate")
    up_parser.add_argument("--no-deploy", action="store_true", help="start the servers only")
    commands.add_parser("down", help="stop every server the project started")
    commands.add_parser("status", help="health of each server and the API URL")
    commands.add_parser("deploy", help="sam build + deploy to LocalStack + migrate")
    commands.add_parser(
        "check-ports", help="the deployed functions name no local port but this cloud's servers'"
    )
    invoke_parser = commands.add_parser("invoke", help="invoke a function with an event file")
    invoke_parser.add_argument("function", help="logical id in template.yaml, e.g. PatientsApiFunction")
    invoke_parser.add_argument("--event", "-e", help="JSON file (path, name under events/, or - for stdin)")
    logs_parser = commands.add_parser("logs", help="recent CloudWatch Logs of a function")
    logs_parser.add_argument("function")
    logs_parser.add_argument("--minutes", type=int, default=60, help="how far back to start (default 60)")
    logs_parser.add_argument(
        "--follow", "-f", action="store_true", help="keep printing new lines until Ctrl-C"
    )
    dlq_parser = commands.add_parser("dlq", help="look into a dead-letter queue")
    dlq_commands = dlq_parser.add_subparsers(dest="dlq_command", required=True)
    peek_parser = dlq_commands.add_parser("peek", help="show a DLQ's messages without removing them")
    peek_parser.add_argument("queue", help="short name (e.g. emails or emails-dlq), full name or URL")
    peek_parser.add_argument("--max", type=int, default=10, help="at most this many messages (default 10)")
    redrive_parser = commands.add_parser("redrive", help="move a dead-letter queue's messages back")
    redrive_parser.add_argument(
        "queue", help="dead-letter queue: short name (e.g. kafka-bridge), full name or URL"
    )
    token_parser = commands.add_parser("token", help="print a bearer token of the local identity provider")
    token_parser.add_argument("--role", required=True, choices=ROLES, help="the caller's role")
    token_parser.add_argument("--user", help="the caller's user id (sub), e.g. anna@team.example")
    token_parser.add_argument(
        "--ttl", type=int, default=identity.DEFAULT_TTL_S, help="seconds the token is valid (default 3600)"
    )
    commands.add_parser("demo", help="the main job: stack up, seed, drive requests, summary")
    publish_parser = commands.add_parser(
        "publish-registration", help="sign a registration file and produce it to patient-registrations"
    )
    publish_parser.add_argument("file", help="e.g. events/registration_intake/registration.json")
    publish_parser.add_argument("--forge", action="store_true", help="sign with a wrong key (must be parked)")
    publish_parser.add_argument("--new-id", action="store_true", help="give it a fresh registration id")
    publish_parser.add_argument(
        "--event", action="store_true", help="print the signed Lambda Kafka event instead of producing it"
    )
    args = parser.parse_args(argv)
    try:
        return _run(parser, args)
    except (names.UnknownNameError, queues.UnknownQueueError) as error:
        print(f"localcloud: {error}", file=sys.stderr, flush=True)
        return 2


def logs_command(function: str, *, minutes: int, follow: bool) -> int:
    names.require_function(function, names.template_functions())
    start_ms = int((time.time() - minutes * 60) * 1000)
    if not follow:
        for event in stack.log_events(function, start_ms, limit=500):
            _say(str(event["message"]).rstrip())
        return 0
    info = stack.StackInfo.load()
    lines = logtail.follow(
        lambda since: stack.log_events(function, since, info=info), start_ms, sleep=lambda: time.sleep(1.0)
    )
    try:
        for line in lines:
            _say(line)
    except KeyboardInterrupt:
        _say("")  # Ctrl-C ends following; not an error
    return 0


def dlq_peek_command(queue: str, max_messages: int) -> int:
    sqs = client("sqs")
    url = queues.resolve_dead_letter_queue(sqs, queue, stack.queue_prefix())
    for line in queues.format_peeked(
        url.rsplit("/", 1)[-1], queues.peek(sqs, url, max_messages=max_messages)
    ):
        _say(line)
    return 0


def check_ports_command() -> int:
    """A second local cloud on moved ports (README) must not reach the first one's servers."""
    from localcloud import ports

    servers = ports.server_ports()
    _say("  " + ", ".join(f"{name} {port}" for name, port in servers.items()))
    environments = ports.deployed_environments(client("lambda"))
    strays = ports.stray_ports(environments, servers.values())
    for stray in strays:
        _say(f"  {stray.function}: {stray.variable} names port {stray.port}, no server of this cloud's")
    _say(f"  {len(environments)} functions, {len(strays)} stray port(s)")
    return 1 if strays or not environments else 0


def _run(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    if args.command == "up":
        _say("Starting the local cloud (state in .state/, logs in .state/logs/) ...")
        up(deploy=not args.no_deploy)
        return 0
    if args.command == "down":
        down()
        return 0
    if args.command == "status":
        return status()
    if args.command == "deploy":
        info = stack.deploy()
        _say(f"API base URL: {info.api_base_url}")
        return 0
    if args.command == "check-ports":
        return check_ports_command()
    if args.command == "invoke":
        return invoke_command(args.function, args.event)
    if args.command == "logs":
        return logs_command(args.function, minutes=args.minutes, follow=args.follow)
    if args.command == "dlq":
        if not 1 <= args.max <= 1000:
            parser.error("--max must be between 1 and 1000")
        return dlq_peek_command(args.queue, args.max)
    if args.command == "redrive":
        result = stack.redrive(args.queue)
        _say(f"moved {result.moved} message(s) from {result.dead_letter_queue} back to its source queue")
        return 0
    if args.command == "token":
        if not 1 <= args.ttl <= 7 * 24 * 3600:
            parser.error("--ttl must be between 1 second and 7 days")
        print(identity.issue_token((args.role,), user=args.user, ttl_s=args.ttl))
        return 0
    if args.command == "publish-registration":
        from localcloud.registrations import publish_registration_command

        return publish_registration_command(
            args.file, forge=args.forge, new_id=args.new_id, event_only=args.event
        )
    if args.command == "demo":
        from localcloud import demo

        return demo.run(up)
    parser.error(f"unknown command {args.command}")
    return 2


__all__ = ["LOG_DIR", "STATE_DIR", "main"]

if __name__ == "__main__":
    sys.exit(main())
