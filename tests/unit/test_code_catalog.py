"""The code catalogue (contracts/codes.py, GET /api/v2/catalog): every enumeration the API's
request and response models use has both labels for each value; the server's German wording
reads the same labels; the route is cacheable (strong ETag, Cache-Control, 304)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

import support
from therapy_platform.communication.domain import email_content
from therapy_platform.contracts.codes import VOCABULARIES, code_catalog
from therapy_platform.contracts.languages import LANGUAGE_LABELS
from therapy_platform.contracts.symptoms import Symptom
from tools import openapi


def _enums(node: Any, where: str) -> Iterator[tuple[str, tuple[str, ...]]]:
    if isinstance(node, dict):
        if "enum" in node:
            yield where, tuple(str(value) for value in node["enum"])
        for key, child in node.items():
            yield from _enums(child, f"{where}/{key}")
    elif isinstance(node, list):
        for child in node:
            yield from _enums(child, where)


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return openapi.build()


def _sort_keys(values: tuple[str, ...]) -> bool:
    """Sort keys name fields, they are no vocabulary: each key also comes with a leading '-'."""
    return all(
        value.removeprefix("-") in values and f"-{value.removeprefix('-')}" in values for value in values
    )


def test_every_enumeration_of_the_api_has_german_and_english_labels(document: dict[str, Any]) -> None:
    vocabularies = {name: set(vocabulary.labels) for name, vocabulary in VOCABULARIES.items()}
    found = list(_enums(document, ""))
    assert len(found) > 30  # the walk sees the document's enumerations
    unlabelled = []
    for where, values in found:
        if _sort_keys(values):
            continue
        schema = where.removeprefix("/components/schemas/").split("/", 1)[0]
        covering = vocabularies.get(schema)
        if covering is None or not set(values) <= covering:
            covering = next((codes for codes in vocabularies.values() if set(values) <= codes), None)
        if covering is None:
            unlabelled.append(f"{where}: {values}")
    assert unlabelled == []


def test_named_schemas_have_a_vocabulary_of_their_own_name(document: dict[str, Any]) -> None:
    for name, schema in document["components"]["schemas"].items():
        if "enum" in schema and not _sort_keys(tuple(map(str, schema["enum"]))):
            assert name in VOCABULARIES, name
            assert set(map(str, schema["enum"])) == set(VOCABULARIES[name].labels), name


def test_every_label_is_filled_in_both_languages() -> None:
    for name, vocabulary in VOCABULARIES.items():
        assert vocabulary.labels, name
        for code, label in vocabulary.labels.items():
            assert label.de.strip() and label.en.strip(), f"{name}.{code}"
    assert set(VOCABULARIES["Symptom"].labels) == {str(symptom) for symptom in Symptom}
    assert set(VOCABULARIES["Language"].labels) == set(LANGUAGE_LABELS)


def test_the_servers_german_wording_reads_the_catalogue() -> None:
    assert email_content.GENDER_LABELS["diverse"] == VOCABULARIES["Gender"].labels["diverse"].de
    assert email_content.INSURANCE_LABELS["self_pay"] == "Selbstzahlung"
    assert email_content.KIND_LABELS["ad_hoc"] == VOCABULARIES["EmailKind"].labels["ad_hoc"].de
    assert [email_content.WEEKDAY_LABELS[day] for day in ("mon", "wed", "sun")] == ["Mo", "Mi", "So"]


def _get(headers: dict[str, str] | None = None, roles: tuple[str, ...] = support.AUDITOR) -> dict[str, Any]:
    module = support.load_function("catalog_api")
    event = support.api_event("GET", "/api/v2/catalog", roles=roles, headers=headers)
    return dict(module.lambda_handler(event, support.FakeLambdaContext()))


def _header(response: dict[str, Any], name: str) -> str:
    return str(response["multiValueHeaders"][name][0])


def test_catalog_route_answers_every_vocabulary_with_a_strong_etag() -> None:
    response = _get()
    assert response["statusCode"] == 200
    body = json.loads(response["body"])
    assert body == code_catalog().model_dump(mode="json")
    labels = {item["code"]: item for item in body["vocabularies"]["Symptom"]["codes"]}
    assert labels["depression"]["de"].startswith("Depression") and labels["depression"]["en"]
    etag = _header(response, "ETag")
    assert etag.startswith('"') and not etag.startswith("W/")
    assert _header(response, "Cache-Control") == "private, max-age=3600"
    assert _get()["multiValueHeaders"]["ETag"] == [etag]  # the same body, the same tag


def test_catalog_route_answers_304_to_the_current_tag_only() -> None:
    etag = _header(_get(), "ETag")
    unchanged = _get({"If-None-Match": etag})
    assert unchanged["statusCode"] == 304
    assert not unchanged["body"]
    assert _header(unchanged, "ETag") == etag
    assert _get({"If-None-Match": f'W/{etag}, "other"'})["statusCode"] == 304  # weak comparison
    assert _get({"If-None-Match": '"stale"'})["statusCode"] == 200


def test_catalog_needs_a_verified_caller() -> None:
    module = support.load_function("catalog_api")
    anonymous = support.api_event("GET", "/api/v2/catalog", user=None)
    assert module.lambda_handler(anonymous, support.FakeLambdaContext())["statusCode"] == 401
