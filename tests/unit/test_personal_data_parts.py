"""Gathering the other services' parts of a personal-data export (contracts/personal_data.py):
only complete, matching parts make an export; the personal-data functions refuse malformed
requests naming the field."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

import pytest

from support import FakeLambdaContext, load_function
from therapy_platform.contracts.personal_data import (
    DataSubject,
    InvokedParts,
    PersonalDataRequest,
)
from therapy_platform.platform.errors import InternalCallError

REQUEST = PersonalDataRequest(subject=DataSubject.PATIENT, subject_id=uuid.uuid4(), request_id=uuid.uuid4())


def part(service: str, request: PersonalDataRequest = REQUEST, **change: Any) -> dict[str, Any]:
    return {
        "service": service,
        "request_id": str(request.request_id),
        "subject": request.subject.value,
        "subject_id": str(request.subject_id),
        "records": {"searches": [{"id": "s1"}]},
        **change,
    }


def answering(answers: Mapping[str, dict[str, Any]]) -> Any:
    def invoke(name: str, payload: Mapping[str, Any]) -> dict[str, Any]:
        assert PersonalDataRequest.model_validate(payload) == REQUEST  # the request travels as JSON
        return answers[name]

    return invoke


def test_every_function_contributes_its_part_in_order() -> None:
    parts = InvokedParts(answering({"m": part("matching"), "c": part("communication")}), ["m", "c"])
    assert [p.service for p in parts.collect(REQUEST)] == ["matching", "communication"]


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        ({"error": "validation_failed", "fields": []}, "m answered no personal-data part"),
        (part("matching", request_id=str(uuid.uuid4())), "m answered a part of another request"),
        (part("matching", subject_id=str(uuid.uuid4())), "m answered a part of another request"),
        (part("matching", subject="therapist"), "m answered a part of another request"),
        (part("matching", unexpected=True), "m answered no personal-data part"),
    ],
)
def test_an_answer_that_is_not_this_requests_part_fails_the_export(
    answer: dict[str, Any], message: str
) -> None:
    with pytest.raises(InternalCallError, match=message):
        InvokedParts(answering({"m": answer}), ["m"]).collect(REQUEST)


def test_without_functions_the_export_fails_instead_of_looking_complete() -> None:
    with pytest.raises(InternalCallError, match="PERSONAL_DATA_FUNCTIONS"):
        InvokedParts(answering({}), []).collect(REQUEST)


@pytest.mark.parametrize("function", ["matching_personal_data", "communication_personal_data"])
def test_a_personal_data_function_refuses_a_malformed_request_naming_the_field(function: str) -> None:
    module = load_function(function)
    answer = module.lambda_handler({"subject": "visitor", "subject_id": "x"}, FakeLambdaContext())
    assert answer["error"] == "validation_failed"
    assert {problem["field"] for problem in answer["fields"]} == {"subject", "subject_id", "request_id"}


@pytest.mark.parametrize("function", ["matching_personal_data", "communication_personal_data"])
def test_a_personal_data_function_answers_its_readers_records(
    function: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = load_function(function)

    class Reader:
        def records_of(self, subject: DataSubject, subject_id: uuid.UUID) -> dict[str, list[dict[str, Any]]]:
            assert (subject, subject_id) == (REQUEST.subject, REQUEST.subject_id)
            return {"searches": [{"id": "s1"}]}

    monkeypatch.setattr(module, "reader", Reader())
    answer = module.lambda_handler(REQUEST.model_dump(mode="json"), FakeLambdaContext())
    service = function.removesuffix("_personal_data")
    assert answer == part(service)
