"""Jobs CloudFormation runs during a deploy (platform/deploy_hooks.py): the migration function and
the Kafka topics function answer a custom resource request on its ResponseURL, run the job on
Create and Update, leave everything alone on Delete, and report a failure without its text."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Mapping
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest

from support import FakeLambdaContext, load_function
from therapy_platform.platform.deploy_hooks import (
    answer_cloudformation,
    cloudformation_answer,
    is_cloudformation_request,
    send_answer,
)


def request(kind: str, url: str = "https://cloudformation-custom-resource.example/answer") -> dict[str, Any]:
    return {
        "RequestType": kind,
        "ResponseURL": url,
        "StackId": "arn:aws:cloudformation:eu-central-1:000000000000:stack/therapy-platform-dev/1",
        "RequestId": "req-1",
        "LogicalResourceId": "DatabaseMigration",
        "ResourceType": "Custom::DatabaseMigration",
        "ResourceProperties": {"MigrationsVersion": "7"},
    }


def test_an_operators_event_is_not_a_cloudformation_request() -> None:
    assert is_cloudformation_request(request("Create"))
    assert not is_cloudformation_request({})
    assert not is_cloudformation_request({"revision": "head"})


@pytest.mark.parametrize("kind", ["Create", "Update"])
def test_create_and_update_run_the_job_and_return_its_flat_fields(kind: str) -> None:
    runs: list[str] = []

    def job() -> Mapping[str, Any]:
        runs.append(kind)
        return {"revision": "0015", "roles": ["a", "b"]}

    answer = cloudformation_answer(request(kind), job, physical_id="database-migration")
    assert runs == [kind]
    assert answer["Status"] == "SUCCESS" and answer["Data"] == {"revision": "0015"}
    assert answer["PhysicalResourceId"] == "database-migration"
    assert (answer["StackId"], answer["RequestId"], answer["LogicalResourceId"]) == (
        request(kind)["StackId"],
        "req-1",
        "DatabaseMigration",
    )


def test_delete_leaves_everything_alone() -> None:
    def job() -> Mapping[str, Any]:
        raise AssertionError("a stack's removal must not run the job")

    answer = cloudformation_answer(request("Delete"), job, physical_id="database-migration")
    assert answer["Status"] == "SUCCESS"


def test_a_failure_is_answered_naming_the_error_class_only() -> None:
    seen: list[Exception] = []

    def job() -> Mapping[str, Any]:
        raise RuntimeError("duplicate key value (email)=(anna@example.org)")

    answer = cloudformation_answer(request("Update"), job, physical_id="x", on_failure=seen.append)
    assert answer["Status"] == "FAILED" and answer["Reason"].startswith("RuntimeError")
    assert "anna" not in json.dumps(answer)
    assert len(seen) == 1


@pytest.fixture
def response_url() -> Iterator[tuple[str, list[tuple[str, dict[str, str], bytes]]]]:
    """A local stand-in for the presigned S3 URL CloudFormation hands out."""
    received: list[tuple[str, dict[str, str], bytes]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_PUT(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((self.command, dict(self.headers), body))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/answer?X-Amz-Signature=abc", received
    server.shutdown()


def test_the_answer_is_put_to_the_response_url_without_a_content_type(
    response_url: tuple[str, list[tuple[str, dict[str, str], bytes]]],
) -> None:
    url, received = response_url
    send_answer(url, {"Status": "SUCCESS"})
    [(method, headers, body)] = received
    assert method == "PUT" and json.loads(body) == {"Status": "SUCCESS"}
    assert headers.get("Content-Type", "") == ""


def test_the_migration_function_answers_cloudformation(monkeypatch: pytest.MonkeyPatch) -> None:
    module = load_function("db_migrate")

    sent: list[tuple[str, Mapping[str, Any]]] = []
    monkeypatch.setattr(module, "migrate", lambda revision="head": {"revision": "0015", "roles": []})
    monkeypatch.setattr(
        module,
        "answer_cloudformation",
        lambda event, run, **kwargs: answer_cloudformation(
            event, run, **kwargs, send=lambda url, answer: sent.append((url, answer))
        ),
    )
    answer = module.lambda_handler(request("Create"), FakeLambdaContext())
    assert answer["Status"] == "SUCCESS" and sent == [(request("Create")["ResponseURL"], answer)]


def test_the_topics_function_answers_cloudformation(monkeypatch: pytest.MonkeyPatch) -> None:
    module = load_function("kafka_topics")
    sent: list[Mapping[str, Any]] = []
    report = {"created": ["patient-events"], "reconfigured": {}, "unchanged": [], "warnings": []}
    monkeypatch.setattr(module, "apply", lambda: report)
    monkeypatch.setattr(
        module,
        "answer_cloudformation",
        lambda event, run, **kwargs: answer_cloudformation(
            event, run, **kwargs, send=lambda url, answer: sent.append(answer)
        ),
    )
    answer = module.lambda_handler(request("Update"), FakeLambdaContext())
    assert answer["Data"] == {"created": 1, "reconfigured": 0, "unchanged": 0, "warnings": 0}
    assert sent == [answer]
