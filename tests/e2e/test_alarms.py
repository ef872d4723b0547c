"""A message in a dead-letter queue reaches staff: the queue's depth reaches CloudWatch, its
alarm goes off and notifies StaffAlertTopic, whose email subscription sends the alert.

LocalStack's community edition hands SNS email to its SES emulator, which records the message
(`/_aws/ses`) instead of speaking SMTP, so the alert is read there, not from the Maildir. It
evaluates plain metric alarms (the dead-letter ones) but not Metrics Insights queries (the
function errors and throttles alarms): those are checked in the template only
(tests/unit/test_template_wiring.py)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import pytest
import requests

from cloud_support import eventually
from localcloud import stack
from localcloud.aws import client, localstack_url
from tools.function_environment import local_parameters

pytestmark = pytest.mark.e2e


def _eventually(probe: Callable[[], Any], timeout_s: float = 240, every: float = 3.0) -> Any:
    return eventually(probe, timeout_s=timeout_s, every=every)


def _alarm_of(queue_name: str) -> dict[str, Any] | None:
    for alarm in client("cloudwatch").describe_alarms(AlarmTypes=["MetricAlarm"])["MetricAlarms"]:
        if any(d["Name"] == "QueueName" and d["Value"] == queue_name for d in alarm.get("Dimensions", [])):
            found: dict[str, Any] = alarm
            return found
    return None


def _alerts_to(address: str, marker: str) -> list[dict[str, Any]]:
    answer = requests.get(f"{localstack_url()}/_aws/ses", timeout=30)
    try:  # LocalStack answered an empty body once while SNS was writing: ask again, not fail
        sent = answer.json()["messages"]
    except ValueError:
        return []
    return [m for m in sent if address in m["Destination"]["ToAddresses"] and marker in json.dumps(m)]


def test_a_dead_letter_reaches_staff_through_its_alarm(deployed: stack.StackInfo) -> None:
    sqs = client("sqs")
    queue_name = f"therapy-platform-{stack.deployed_environment()}-failed-jobs-dlq"
    queue_url = sqs.get_queue_url(QueueName=queue_name)["QueueUrl"]
    alarm = _alarm_of(queue_name)
    assert alarm is not None and alarm["AlarmActions"][0].endswith("-staff-alerts")
    staff = local_parameters()["StaffAlertEmail"]

    poison = {"requestContext": {"condition": "RetriesExhausted"}, "test": str(uuid.uuid4())}
    sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps(poison))
    try:
        fired = _eventually(lambda: (_alarm_of(queue_name) or {}).get("StateValue") == "ALARM")
        assert fired, _alarm_of(queue_name)
        alerts = _eventually(lambda: _alerts_to(staff, alarm["AlarmName"]))
        assert alerts, "the alarm's notification never reached the staff address"
        notification = json.loads(alerts[-1]["Body"]["text_part"])
        assert notification["NewStateValue"] == "ALARM" and notification["AlarmName"] == alarm["AlarmName"]
    finally:
        sqs.purge_queue(QueueUrl=queue_url)
