"""Functions CloudFormation runs during a deploy (custom resources): recognise its request, run
the job, and answer on the request's presigned ResponseURL, so `sam deploy` alone does what an
operator once had to invoke by hand (migrations, Kafka topics).

Create and Update run the job; Delete does nothing (removing a stack never drops data or
topics). Every request gets an answer, or CloudFormation waits an hour: a failed job is FAILED,
naming only the error's class (a database or broker error's text may quote data).
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any, Final

_REQUEST_FIELDS: Final = ("RequestType", "ResponseURL", "StackId", "RequestId", "LogicalResourceId")


def is_cloudformation_request(event: Mapping[str, Any]) -> bool:
    return all(isinstance(event.get(field), str) for field in _REQUEST_FIELDS)


def cloudformation_answer(
    event: Mapping[str, Any],
    run: Callable[[], Mapping[str, Any]],
    *,
    physical_id: str,
    on_failure: Callable[[Exception], None] = lambda error: None,
) -> dict[str, Any]:
    """The response document for one custom resource request. `physical_id` stays the same on
    every request, so an Update never makes CloudFormation delete an "old" resource; `run`'s
    answer (flat strings and numbers) becomes the resource's attributes."""
    answer: dict[str, Any] = {
        "PhysicalResourceId": physical_id,
        "StackId": event["StackId"],
        "RequestId": event["RequestId"],
        "LogicalResourceId": event["LogicalResourceId"],
    }
    if event["RequestType"] == "Delete":
        return {**answer, "Status": "SUCCESS", "Reason": "kept: removing the stack changes nothing here"}
    try:
        result = run()
    except Exception as error:  # the deploy must hear of every failure
        on_failure(error)
        reason = f"{type(error).__name__}; the function's log has the details"
        return {**answer, "Status": "FAILED", "Reason": reason}
    data = {key: value for key, value in result.items() if isinstance(value, (str, int, float))}
    return {**answer, "Status": "SUCCESS", "Reason": "done", "Data": data}


def send_answer(url: str, answer: Mapping[str, Any]) -> None:
    """PUT the answer to CloudFormation's presigned URL (no content type: the signature has none)."""
    body = json.dumps(answer).encode()
    request = urllib.request.Request(  # noqa: S310 - CloudFormation's own presigned URL
        url, data=body, method="PUT", headers={"Content-Type": "", "Content-Length": str(len(body))}
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
        response.read()


def answer_cloudformation(
    event: Mapping[str, Any],
    run: Callable[[], Mapping[str, Any]],
    *,
    physical_id: str,
    on_failure: Callable[[Exception], None] = lambda error: None,
    send: Callable[[str, Mapping[str, Any]], None] = send_answer,
) -> dict[str, Any]:
    """Run the job for CloudFormation's request and send it the answer; returns the answer."""
    answer = cloudformation_answer(event, run, physical_id=physical_id, on_failure=on_failure)
    send(str(event["ResponseURL"]), answer)
    return answer
