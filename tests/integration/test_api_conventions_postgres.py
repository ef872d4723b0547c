"""The API conventions against real PostgreSQL, as the service's own role: `Idempotency-Key`
(the keys table of migration 0014: a repeated key answers the first answer, another body is
409, racing first requests create one record, keys expire) and `ETag`/`If-Match` (a stale tag
is 412, of two concurrent writers with the same tag exactly one wins)."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, text

from fakes import FakeBus
from support import FakeLambdaContext, api_event, assert_problem, least_roles, load_function
from therapy_platform.patients.bootstrap import build
from therapy_platform.patients.domain.patient import PatientPatch
from therapy_platform.patients.use_cases import patch_patient
from therapy_platform.platform.database import make_engine
from therapy_platform.platform.errors import PreconditionFailedError
from therapy_platform.platform.geography.postcodes import postcode_directory
from therapy_platform.platform.idempotency import KeyScope, SqlIdempotencyStore, StoredAnswer

pytestmark = pytest.mark.integration

STAFF = "sabine.staff@example.org"
SCHEMA = "patient_service"


def _patient(**fields: Any) -> dict[str, Any]:
    return {
        "first_name": "Änne",
        "last_name": "Konvention",
        "postcode": "52062",
        "symptoms": ["anxiety"],
        "email": f"{uuid.uuid4().hex[:8]}@example.org",
        **fields,
    }


@dataclass
class Api:
    module: Any
    engine: Engine

    def __call__(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> dict[str, Any]:
        event = api_event(method, path, body, user=STAFF, roles=least_roles(method, path), headers=headers)
        response = dict(self.module.lambda_handler(event, FakeLambdaContext()))
        response["json"] = json.loads(response["body"]) if response.get("body") else None
        return response


@pytest.fixture
def engine(service_url: Callable[[str], str]) -> Iterator[Engine]:
    engine = make_engine(service_url(SCHEMA))
    yield engine
    engine.dispose()


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch, engine: Engine) -> Api:
    module = load_function("patients_api")
    service = replace(build(engine=lambda: engine, publisher=FakeBus), geocoder=postcode_directory())
    monkeypatch.setattr(module, "service", service)
    monkeypatch.setattr(module, "idempotency_keys", SqlIdempotencyStore(lambda: engine, SCHEMA))
    return Api(module, engine)


def _count(engine: Engine, last_name: str) -> int:
    with engine.connect() as connection:
        return int(
            connection.execute(
                text(f"SELECT count(*) FROM {SCHEMA}.patients WHERE last_name = :name"), {"name": last_name}
            ).scalar_one()
        )


# --- Idempotency-Key ---------------------------------------------------------------------------


def test_a_repeated_key_answers_the_first_answer_and_another_body_is_409(api: Api) -> None:
    name = f"Idem{uuid.uuid4().hex[:8]}"
    key = str(uuid.uuid4())
    body = _patient(last_name=name)
    first = api("POST", "/api/v2/patients", body, {"Idempotency-Key": key})
    again = api("POST", "/api/v2/patients", body, {"Idempotency-Key": key})
    assert (first["statusCode"], again["statusCode"]) == (201, 201)
    assert again["json"] == first["json"]
    assert again["multiValueHeaders"]["Location"] == first["multiValueHeaders"]["Location"]
    conflict = api("POST", "/api/v2/patients", {**body, "city": "Köln"}, {"Idempotency-Key": key})
    assert conflict["statusCode"] == 409 and assert_problem(conflict)["code"] == "idempotency_key_reused"
    assert _count(api.engine, name) == 1


def test_racing_first_requests_with_one_key_get_one_claim(engine: Engine) -> None:
    """Concurrent first requests (a client retrying before its first answer): the key's row
    lets exactly one of them run the route; the others see it running (409 in use)."""
    store = SqlIdempotencyStore(lambda: engine, SCHEMA)
    scope = KeyScope("POST /api/v2/patients", STAFF, uuid.uuid4().hex)
    now = datetime.now(UTC)
    results: list[object] = []
    start = threading.Barrier(6)

    def claim() -> None:
        start.wait()
        results.append(store.claim(scope, "a" * 64, now=now))

    threads = [threading.Thread(target=claim) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 6
    assert results.count(None) == 1
    assert all(result is None or result.answer is None for result in results)  # type: ignore[attr-defined]


def test_the_store_claims_once_completes_releases_and_expires(engine: Engine) -> None:
    store = SqlIdempotencyStore(lambda: engine, SCHEMA)
    scope = KeyScope("POST /api/v2/patients", STAFF, uuid.uuid4().hex)
    now = datetime.now(UTC)
    assert store.claim(scope, "a" * 64, now=now) is None
    running = store.claim(scope, "a" * 64, now=now)
    assert running is not None and running.answer is None
    store.complete(scope, StoredAnswer(201, '{"id": 1}', "/api/v2/patients/1"))
    done = store.claim(scope, "b" * 64, now=now)
    assert done is not None and done.request_hash == "a" * 64
    assert done.answer == StoredAnswer(201, '{"id": 1}', "/api/v2/patients/1")
    # 24 hours later the key is new again (and the old row is gone: retention)
    assert store.claim(scope, "b" * 64, now=now + timedelta(hours=24, seconds=1)) is None
    store.release(scope)
    assert store.claim(scope, "c" * 64, now=now) is None
    # another user's key with the same name is another key
    assert store.claim(replace(scope, actor="someone.else@example.org"), "c" * 64, now=now) is None


# --- ETag / If-Match ---------------------------------------------------------------------------


def test_a_stale_if_match_is_412_over_postgres(api: Api) -> None:
    created = api("POST", "/api/v2/patients", _patient())["json"]
    path = f"/api/v2/patients/{created['id']}"
    stale = api("GET", path)["multiValueHeaders"]["ETag"][0]
    saved = api("PATCH", path, {"city": "Köln"}, {"If-Match": stale})
    assert saved["statusCode"] == 200
    refused = api("PATCH", path, {"city": "Bonn"}, {"If-Match": stale})
    assert refused["statusCode"] == 412 and assert_problem(refused)["code"] == "precondition_failed"
    assert api("PATCH", path, {"city": "Bonn"})["statusCode"] == 428
    current = api("GET", path)
    assert current["json"]["city"] == "Köln"
    assert current["multiValueHeaders"]["ETag"] == saved["multiValueHeaders"]["ETag"]


def test_of_two_concurrent_writers_with_one_tag_exactly_one_wins(api: Api) -> None:
    """Both read the same version; the row lock orders their transactions and the second
    finds the tag changed: 412, never a silent overwrite."""
    created = api("POST", "/api/v2/patients", _patient())["json"]
    patient_id = uuid.UUID(created["id"])
    tag = api("GET", f"/api/v2/patients/{patient_id}")["multiValueHeaders"]["ETag"][0]
    service = api.module.service
    outcomes: list[str] = []
    start = threading.Barrier(2)

    def write(city: str) -> None:
        start.wait()
        try:
            patch_patient(service, patient_id, PatientPatch(city=city), actor=STAFF, if_match=tag)
            outcomes.append(f"saved {city}")
        except PreconditionFailedError:
            outcomes.append("412")

    threads = [threading.Thread(target=write, args=(city,)) for city in ("Köln", "Bonn")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes)[0] == "412" and len(outcomes) == 2
    [saved] = [outcome.removeprefix("saved ") for outcome in outcomes if outcome != "412"]
    assert api("GET", f"/api/v2/patients/{patient_id}")["json"]["city"] == saved
