"""Erasing a therapist (GDPR Art. 17) in the therapist service, with in-memory adapters: the pure
suppression-key rules, the erase route (admin only, 404, idempotent), what stays behind, the
event, and imports that never re-create an erased therapist."""

from __future__ import annotations

import itertools
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from directory_fakes import (
    DirectoryDatabase,
    InMemoryDirectoryImportUnitOfWork,
    InMemoryImportReportStore,
    entry,
)
from fakes import OTHER_SERVICES, FakeBus, FakeOtherServices, InMemoryOutboxStore
from support import api_event, call, load_function
from therapist_fakes import FakeGeocoder, InMemoryTherapistUnitOfWork, TherapistDatabase
from therapy_platform.contracts.directory_files import RawPage, RawRun, Region, SearchPoint
from therapy_platform.platform.outbox_relay import PublishNow
from therapy_platform.therapists.bootstrap import TherapistService
from therapy_platform.therapists.domain.erasure import (
    directory_key,
    is_suppressed,
    name_key,
    suppression_keys,
)
from therapy_platform.therapists.erasure import erase_therapist
from therapy_platform.therapists.imports.domain.reports import ImportSource
from therapy_platform.therapists.imports.use_cases import import_directory_file

BASE = "/api/v2/therapists"
NOW = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
AACHEN = SearchPoint(latitude=50.7766, longitude=6.0834)
CANARY = {
    "gender": "female",
    "first_name": "Kanarienvogel",
    "last_name": "Löschtest",
    "street": "Domhof 1",
    "postcode": "52062",
    "city": "Aachen",
    "email": "kanarien.loeschtest@example.org",
    "phone": "0241 123456",
    "procedures": ["VT"],
}


# ------------------------------------------------------------------------------ pure rules


def test_suppression_keys_are_digests_that_ignore_case_and_spacing() -> None:
    keys = suppression_keys(directory_ids={"ABC-1"}, first_name="Änne", last_name="Müller", postcode="52062")
    assert keys == {directory_key("ABC-1"), name_key("Änne", "Müller", "52062")}
    assert all(len(key) == 64 and int(key, 16) >= 0 for key in keys)  # hex SHA-256
    assert not any("Müller" in key or "ABC-1" in key for key in keys)
    assert name_key("  ÄNNE ", "müller", "52062") == name_key("Änne", "Müller", "52062")
    assert name_key("Änne", "Müller", "52064") != name_key("Änne", "Müller", "52062")
    assert directory_key("ABC-1") != directory_key("ABC-2")


def test_an_entry_is_suppressed_by_either_key() -> None:
    keys = suppression_keys(directory_ids={"d1"}, first_name="Änne", last_name="Müller", postcode="52062")
    same_listing = {"directory_id": "d1", "first_name": "Anna", "last_name": "Meier", "postcode": "10115"}
    new_listing_same_person = {
        "directory_id": "d9",
        "first_name": "änne",
        "last_name": "MÜLLER",
        "postcode": "52062",
    }
    other = {"directory_id": "d2", "first_name": "Änne", "last_name": "Müller", "postcode": "52064"}
    assert is_suppressed(keys, **same_listing)
    assert is_suppressed(keys, **new_listing_same_person)
    assert not is_suppressed(keys, **other)


# ------------------------------------------------------------------------------ the route


@dataclass
class Api:
    module: Any
    database: TherapistDatabase
    bus: FakeBus

    def __call__(
        self, method: str, path: str, body: Any = None, *, roles: tuple[str, ...] = ("admin",)
    ) -> tuple[int, Any]:
        return call(
            self.module.lambda_handler, api_event(method, path, body, user="admin@team.example", roles=roles)
        )


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> Iterator[Api]:
    module = load_function("therapists_api")
    database, bus = TherapistDatabase(), FakeBus()
    publish = PublishNow(store=lambda: InMemoryOutboxStore(database), publisher=lambda: bus)
    ticks = itertools.count()
    service = TherapistService(
        unit_of_work=lambda: InMemoryTherapistUnitOfWork(database, publish=publish),
        geocoder=FakeGeocoder,
        clock=lambda: NOW + timedelta(seconds=next(ticks)),
        personal_data_parts=FakeOtherServices(OTHER_SERVICES),
    )
    monkeypatch.setattr(module, "service", service)
    yield Api(module, database, bus)


def test_erase_deletes_the_record_keeps_no_personal_data_and_emits_the_id_only(api: Api) -> None:
    status, therapist = api("POST", BASE, CANARY, roles=("staff",))
    assert status == 201, therapist
    therapist_id = therapist["id"]

    status, result = api("POST", f"{BASE}/{therapist_id}/erase")

    assert status == 200, result
    assert result["therapist_id"] == therapist_id and result["erased_now"] is True
    assert api("GET", f"{BASE}/{therapist_id}")[0] == 404
    deleted = [message for message in api.bus.messages if message.envelope.event_type == "therapist.deleted"]
    assert len(deleted) == 1 and deleted[0].key == therapist_id
    assert set(deleted[0].envelope.payload) == {"id", "erased_at"}
    # The outbox no longer holds the therapist.created payload; the audit trail keeps actions only.
    assert [row.envelope.event_type for row in api.database.outbox if row.key == therapist_id] == [
        "therapist.deleted"
    ]
    assert [entry.action for entry in api.database.audit] == ["create", "erase"]
    erase_entry = api.database.audit[-1]
    assert erase_entry.actor == "admin@team.example" and erase_entry.before is None
    kept = json.dumps(
        [entry.model_dump(mode="json") for entry in api.database.audit]
        + [erasure.model_dump(mode="json") for erasure in api.database.erasures.values()]
        + [row.envelope.model_dump(mode="json") for row in api.database.outbox]
    )
    for value in ("Kanarienvogel", "Löschtest", "kanarien.loeschtest", "123456", "Domhof"):
        assert value not in kept


def test_a_repeated_erase_changes_nothing_and_an_unknown_therapist_is_404(api: Api) -> None:
    _, therapist = api("POST", BASE, CANARY, roles=("staff",))
    first = api("POST", f"{BASE}/{therapist['id']}/erase")[1]
    outbox_rows = len(api.database.outbox)

    status, again = api("POST", f"{BASE}/{therapist['id']}/erase")

    assert status == 200 and again["erased_now"] is False and again["erased_at"] == first["erased_at"]
    assert len(api.database.outbox) == outbox_rows
    status, problem = api("POST", f"{BASE}/{uuid.uuid4()}/erase")
    assert status == 404 and "Kanarien" not in json.dumps(problem)


def test_only_an_admin_may_erase(api: Api) -> None:
    _, therapist = api("POST", BASE, CANARY, roles=("staff",))
    status, problem = api("POST", f"{BASE}/{therapist['id']}/erase", roles=("staff",))
    assert status == 403 and problem["required_role"] == "admin"
    assert therapist["id"] in {str(key) for key in api.database.therapists}


# ------------------------------------------------------------------------------ imports


def _file(*entries: Any) -> bytes:
    return RawRun(
        region=Region.parse({"prefix": "52", "radius_km": 10}),
        radius_km=10,
        points=[AACHEN],
        complete=True,
        pages=[
            RawPage(point=AACHEN, page=0, answer={"arztPraxisDatas": list(entries), "moreResults": False})
        ],
    ).to_json_bytes()


def test_an_import_never_recreates_an_erased_therapist_and_counts_it() -> None:
    database, reports, geocoder = DirectoryDatabase(), InMemoryImportReportStore(), FakeGeocoder()

    def run(version: str, *entries: Any) -> Any:
        return import_directory_file(
            InMemoryDirectoryImportUnitOfWork(database),
            reports,
            geocoder,
            _file(*entries),
            source=ImportSource(f"s3://raw/raw/2026-11-22/52-{version}.json", version),
            now=NOW,
        ).value

    first = run("v1", entry(id="e1"), entry(id="e2", vorname="Jürgen", name="Weiß", geschlecht="M"))
    assert first.report.counts.new == 2
    erased = next(t for t in database.therapists.values() if t.directory_id == "e1")
    erase_therapist(InMemoryDirectoryImportUnitOfWork(database), erased.id, actor="admin", now=NOW)
    assert erased.id not in database.therapists and "e1" not in database.listings

    # The same listing again, and the same person under a new directory id: neither comes back.
    again = run(
        "v2",
        entry(id="e1"),
        entry(id="e7"),
        entry(id="e2", vorname="Jürgen", name="Weiß", geschlecht="M"),
    )

    counts = again.report.counts
    assert (counts.suppressed, counts.new, counts.unchanged) == (2, 0, 1)
    assert [t.directory_id for t in database.therapists.values()] == ["e2"]
    assert not any(item.outcome == "skipped" for item in again.items)  # nobody named in the report
