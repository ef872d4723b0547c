"""The operator's view of the local cloud (`localcloud status`, `dlq peek`, `invoke`, `logs
--follow`, deploy progress): formatting and lookups against fakes, no server."""

from __future__ import annotations

import itertools
import json
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from localcloud import logtail, names, progress, queues
from localcloud.cli import proxy_answer
from tools.function_environment import function_environment, local_parameters

PREFIX = "therapy-platform-local-"
URL = "http://127.0.0.1:4566/queue/eu-central-1/000000000000/"


class FakeSqs:
    """The SQS calls the operator commands make, over queues held in memory."""

    def __init__(self) -> None:
        self.attributes: dict[str, dict[str, str]] = {}
        self.messages: dict[str, list[dict[str, Any]]] = {}
        self.released: list[str] = []
        self.held: set[str] = set()

    def add(self, name: str, *, visible: int = 0, in_flight: int = 0, dead_letter: str | None = None) -> str:
        url = URL + name
        self.attributes[url] = {
            "QueueArn": f"arn:aws:sqs:eu-central-1:000000000000:{name}",
            "ApproximateNumberOfMessages": str(visible),
            "ApproximateNumberOfMessagesNotVisible": str(in_flight),
        }
        if dead_letter:
            policy = {"deadLetterTargetArn": f"arn:aws:sqs:eu-central-1:000000000000:{dead_letter}"}
            self.attributes[url]["RedrivePolicy"] = json.dumps(policy)
        self.messages[url] = []
        return url

    def list_queues(self, QueueNamePrefix: str, **_: Any) -> dict[str, Any]:  # noqa: N803 - boto3's names
        return {
            "QueueUrls": [url for url in self.attributes if url.removeprefix(URL).startswith(QueueNamePrefix)]
        }

    def get_queue_attributes(self, QueueUrl: str, AttributeNames: list[str]) -> dict[str, Any]:  # noqa: N803
        return {"Attributes": self.attributes[QueueUrl]}

    def receive_message(self, QueueUrl: str, MaxNumberOfMessages: int, **_: Any) -> dict[str, Any]:  # noqa: N803
        # Like SQS: a received message stays invisible until its visibility is given back.
        available = [m for m in self.messages[QueueUrl] if m["ReceiptHandle"] not in self.held]
        taken = available[:MaxNumberOfMessages]
        self.held.update(m["ReceiptHandle"] for m in taken)
        return {"Messages": taken}

    def change_message_visibility_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> None:  # noqa: N803
        assert all(entry["VisibilityTimeout"] == 0 for entry in Entries)
        self.released += [entry["ReceiptHandle"] for entry in Entries]


def test_status_lists_every_queue_with_its_depth_and_shouts_at_a_dead_letter_queue_with_messages() -> None:
    sqs = FakeSqs()
    sqs.add(
        "therapy-platform-local-emails",
        visible=3,
        in_flight=2,
        dead_letter="therapy-platform-local-emails-dlq",
    )
    sqs.add("therapy-platform-local-emails-dlq", visible=1)
    sqs.add("therapy-platform-local-kafka-bridge-dlq")
    sqs.add("someone-elses-queue", visible=9)

    depths = queues.queue_depths(sqs, PREFIX)
    lines = queues.format_depths(depths, PREFIX)

    assert [queue.name.removeprefix(PREFIX) for queue in depths] == [
        "emails",
        "emails-dlq",
        "kafka-bridge-dlq",
    ]
    assert [queue.is_dead_letter for queue in depths] == [False, True, True]
    emails, emails_dlq, bridge_dlq = lines
    assert "emails " in emails and " 5  (3 visible, 2 in flight)" in emails and "DLQ" not in emails
    assert emails_dlq.lstrip().startswith("DLQ emails-dlq") and "!! DEAD LETTERS" in emails_dlq
    assert "dlq peek emails-dlq" in emails_dlq
    assert bridge_dlq.lstrip().startswith("DLQ kafka-bridge-dlq") and "!!" not in bridge_dlq


def test_a_queue_another_queue_dead_letters_into_is_a_dlq_whatever_its_name() -> None:
    sqs = FakeSqs()
    sqs.add("therapy-platform-local-work", dead_letter="therapy-platform-local-graveyard")
    sqs.add("therapy-platform-local-graveyard")
    assert {q.name: q.is_dead_letter for q in queues.queue_depths(sqs, PREFIX)} == {
        "therapy-platform-local-work": False,
        "therapy-platform-local-graveyard": True,
    }


@pytest.mark.parametrize(
    "given",
    ["emails", "emails-dlq", "therapy-platform-local-emails-dlq", URL + "therapy-platform-local-emails-dlq"],
)
def test_a_dead_letter_queue_is_found_by_its_short_name_full_name_or_url(given: str) -> None:
    sqs = FakeSqs()
    sqs.add("therapy-platform-local-emails", dead_letter="therapy-platform-local-emails-dlq")
    sqs.add("therapy-platform-local-emails-dlq")
    assert queues.resolve_dead_letter_queue(sqs, given, PREFIX) == URL + "therapy-platform-local-emails-dlq"


def test_an_unknown_or_non_dead_letter_queue_answers_with_the_dead_letter_queues_there_are() -> None:
    sqs = FakeSqs()
    sqs.add("therapy-platform-local-emails", dead_letter="therapy-platform-local-emails-dlq")
    sqs.add("therapy-platform-local-emails-dlq")
    sqs.add("therapy-platform-local-kafka-bridge-dlq")
    for wrong in ("nope", "therapy-platform-local-emails"):
        with pytest.raises(queues.UnknownQueueError) as raised:
            queues.resolve_dead_letter_queue(sqs, wrong, PREFIX)
        assert raised.value.known == ["emails-dlq", "kafka-bridge-dlq"]
        assert "emails-dlq, kafka-bridge-dlq" in str(raised.value)


def _message(number: int) -> dict[str, Any]:
    return {
        "MessageId": f"m-{number}",
        "ReceiptHandle": f"r-{number}",
        "Body": json.dumps({"eventId": f"e-{number}", "detail": {"patientId": "p-1"}}),
        "Attributes": {"ApproximateReceiveCount": "4", "SentTimestamp": "1764892800000"},
    }


def test_peek_collects_up_to_max_messages_and_gives_every_one_back_to_the_queue() -> None:
    sqs = FakeSqs()
    url = sqs.add("therapy-platform-local-emails-dlq")
    sqs.messages[url] = [_message(number) for number in range(23)]

    peeked = queues.peek(sqs, url, max_messages=15)

    assert [m.message_id for m in peeked] == [f"m-{n}" for n in range(15)]
    assert sorted(sqs.released) == sorted(f"r-{n}" for n in range(15))
    assert peeked[0].receive_count == 4
    assert peeked[0].first_sent == datetime(2025, 12, 5, tzinfo=UTC)


def test_peeked_messages_are_printed_with_id_receive_count_first_sent_and_the_body_pretty_printed() -> None:
    sqs = FakeSqs()
    url = sqs.add("therapy-platform-local-emails-dlq")
    sqs.messages[url] = [_message(1)]
    text = "\n".join(queues.format_peeked("emails-dlq", queues.peek(sqs, url)))
    assert "message id    : m-1" in text
    assert "receive count : 4" in text
    assert "first sent    : 2025-12-05T00:00:00+00:00" in text
    assert '{\n  "eventId": "e-1",\n  "detail": {\n    "patientId": "p-1"\n  }\n}' in text
    assert queues.format_peeked("emails-dlq", []) == ["emails-dlq: no messages"]
    assert queues.readable_body("not json") == "not json"


def test_an_api_gateway_proxy_answer_shows_status_and_the_decoded_body() -> None:
    payload = {
        "statusCode": 404,
        "multiValueHeaders": {"Content-Type": ["application/problem+json"]},
        "body": json.dumps({"code": "not_found", "title": "Nicht gefunden"}),
    }
    assert proxy_answer(payload) == [
        "answer   : HTTP 404 (application/problem+json)",
        "body     :",
        '{\n  "code": "not_found",\n  "title": "Nicht gefunden"\n}',
    ]
    binary = proxy_answer({"statusCode": 200, "body": "aGFsbG8=", "isBase64Encoded": True})
    assert binary is not None and binary[2] == "(5 bytes, base64-encoded)"
    assert proxy_answer({"migrated": True}) is None  # not an API function: shown as it is


def test_unknown_functions_and_event_files_answer_with_the_names_that_exist(tmp_path: Path) -> None:
    (tmp_path / "health_api").mkdir()
    (tmp_path / "health_api" / "get_health.json").write_text("{}")
    (tmp_path / "schemas").mkdir()
    (tmp_path / "schemas" / "patient.created.schema.json").write_text("{}")

    assert (
        names.event_path("health_api/get_health.json", tmp_path)
        == tmp_path / "health_api" / "get_health.json"
    )
    with pytest.raises(
        names.UnknownNameError, match=r"no event file 'nope.json'; known: health_api/get_health.json$"
    ):
        names.event_path("nope.json", tmp_path)
    with pytest.raises(names.UnknownNameError, match="no function 'Nope'; known: A, B"):
        names.require_function("Nope", ["B", "A"])
    assert "HealthFunction" in names.template_functions()
    assert "SharedLayer" not in names.template_functions()


def test_follow_prints_each_new_line_once_across_polls() -> None:
    polls = iter(
        [
            [{"eventId": "1", "timestamp": 100, "message": "one\n"}],
            # the next poll starts at the newest timestamp seen, so it answers that event again
            [
                {"eventId": "1", "timestamp": 100, "message": "one\n"},
                {"eventId": "2", "timestamp": 100, "message": "two"},
            ],
            [],
            [
                {"eventId": "2", "timestamp": 100, "message": "two"},
                {"eventId": "3", "timestamp": 250, "message": "three"},
            ],
        ]
    )
    asked: list[int] = []

    def fetch(since: int) -> list[dict[str, Any]]:
        asked.append(since)
        return next(polls)

    lines = list(itertools.islice(logtail.follow(fetch, 50, sleep=lambda: None), 3))

    assert lines == ["one", "two", "three"]
    assert asked == [50, 100, 100, 100]


def test_json_records_reads_compact_and_indented_powertools_records() -> None:
    compact = ['{"level":"INFO","outcome":"imported_before","key":"raw/a.json"}']
    indented = [
        "START RequestId: x",
        "{",
        '    "level":"INFO",',
        '    "outcome":"done"',
        "}",
        "END RequestId: x",
    ]
    assert [record["outcome"] for record in logtail.json_records(compact + indented)] == [
        "imported_before",
        "done",
    ]


def test_a_step_prints_progress_and_on_failure_the_log_tail_and_its_path(tmp_path: Path) -> None:
    log = tmp_path / "deploy.log"
    log.write_text("".join(f"line {n}\n" for n in range(100)))
    said: list[str] = []
    ticks = iter([10.0, 13.4])
    progress.logged_step("building", lambda: None, log=log, say=said.append, clock=lambda: next(ticks))
    assert said == ["  building...", f"  building done in 3 s (log: {log})"]

    def fail() -> None:
        raise subprocess.CalledProcessError(1, ["sam", "deploy"])

    said.clear()
    with pytest.raises(subprocess.CalledProcessError):
        progress.logged_step("deploying", fail, log=log, say=said.append, clock=lambda: 0.0)
    assert said[1].startswith("  deploying FAILED") and str(log) in said[1]
    assert said[2:-1] == [f"    line {n}" for n in range(60, 100)]
    assert said[-1] == f"  full log: {log}"


def test_readable_powertools_logs_only_in_the_local_environment() -> None:
    assert function_environment("HealthFunction")["POWERTOOLS_DEV"] == "true"  # samconfig's local
    prod = {**local_parameters(), "Environment": "prod", "PowertoolsDev": "true"}
    assert function_environment("HealthFunction", prod)["POWERTOOLS_DEV"] == "false"
    defaults = {**local_parameters(), "PowertoolsDev": "false"}
    assert function_environment("HealthFunction", defaults)["POWERTOOLS_DEV"] == "false"
