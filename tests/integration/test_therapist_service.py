"""The therapist service against real PostgreSQL, logged in as a role with exactly the
therapist service's privileges: repository round trips, list filters and pagination, audit
rows, events committed atomically with the change, and the schema's constraints."""

from __future__ import annotations

import dataclasses
import itertools
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from alembic import command
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import DBAPIError, IntegrityError, ProgrammingError

from fakes import FakeBus
from runner import upgrade
from schemas import SERVICE_SCHEMAS
from support import api_event, call, least_roles, load_function, migrate, with_if_match
from therapist_fakes import FakeGeocoder
from therapy_platform.contracts.therapists import TherapistSnapshot
from therapy_platform.platform.clock import platform_today
from therapy_platform.platform.database import make_engine
from therapy_platform.platform.outbox import SqlOutboxStore
from therapy_platform.platform.outbox_relay import PublishNow
from therapy_platform.therapists.adapters.store import SqlTherapistUnitOfWork
from therapy_platform.therapists.bootstrap import TherapistService
from therapy_platform.therapists.domain.therapist import TherapistQuery

pytestmark = pytest.mark.integration

SCHEMA = "therapist_service"
BASE = "/api/v2/therapists"
VALID: dict[str, Any] = {
    "salutation": "Frau",
    "gender": "female",
    "title": "Prof. Dr.",
    "first_name": "Änne",
    "last_name": "Özdemir",
    "street": "Domhof 1",
    "postcode": "52062",
    "city": "Aachen",
    "phone": "+49 241 12345",
    "fax": "0241 12346",
    "email": "Praxis.Oezdemir@example.org",
    "website": "www.praxis-oezdemir.example",
    "statutory_seat": True,
    "procedures": ["VT", "ST"],
    "languages": ["de", "tr"],
    "phone_windows": {"mon": ["08:00-09:00"], "thu": ["12:30-13:00", "07:45-08:15"]},
    "working_hours": {"tue": ["08:00-18:00"]},
    "preferred_age_min": 18,
    "preferred_age_max": 65,
    "preferred_patient_gender": "female",
    "offers_group_therapy": True,
    "group_only": False,
    "symptom_preferences": ["trauma", "anxiety"],
    "potentially_available": True,
}


@pytest.fixture(scope="module")
def therapist_engine(service_url: Callable[[str], str]) -> Iterator[Engine]:
    engine = make_engine(service_url(SCHEMA), pool_size=2)
    yield engine
    engine.dispose()


@pytest.fixture(autouse=True)
def empty_tables(admin_engine: Engine) -> None:
    with admin_engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {SCHEMA}.therapists, {SCHEMA}.audit_log, {SCHEMA}.outbox"))


@dataclass
class Api:
    module: Any
    bus: FakeBus

    def __call__(
        self, method: str, path: str, body: Any = None, *, query: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        # The caller as the API's authorizer verified them, with the role the route needs.
        event = api_event(
            method,
            path,
            body,
            query=query,
            user="staff@team.example",
            roles=least_roles(method, path),
            headers=with_if_match(method, path, None),
        )
        return call(self.module.lambda_handler, event)

    def create(self, **overrides: Any) -> dict[str, Any]:
        status, body = self("POST", BASE, {**VALID, **overrides})
        assert status == 201, body
        return dict(body)


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch, therapist_engine: Engine) -> Api:
    module = load_function("therapists_api")
    bus = FakeBus()
    ticks = itertools.count()
    now = datetime.now(UTC)
    # As deployed: the unit of work publishes what it committed right after the commit.
    publish = PublishNow(store=lambda: SqlOutboxStore(therapist_engine, SCHEMA), publisher=lambda: bus)
    service = TherapistService(
        unit_of_work=lambda: SqlTherapistUnitOfWork(therapist_engine, publish=publish),
        geocoder=FakeGeocoder,
        clock=lambda: now + timedelta(milliseconds=next(ticks)),
    )
    monkeypatch.setattr(module, "service", service)
    return Api(module, bus)


def _rows(admin_engine: Engine, sql: str, **params: Any) -> list[Any]:
    with admin_engine.connect() as connection:
        return list(connection.execute(text(sql), params))


# ------------------------------------------------------------------------------ role isolation


def test_therapist_role_reaches_its_own_tables(therapist_engine: Engine) -> None:
    with therapist_engine.begin() as connection:
        for table in ("therapists", "audit_log", "outbox"):
            connection.execute(text(f"SELECT count(*) FROM {SCHEMA}.{table}")).scalar_one()


@pytest.mark.parametrize("other", [schema for schema in SERVICE_SCHEMAS if schema != SCHEMA])
def test_therapist_role_cannot_read_other_schemas(service_url: Callable[[str], str], other: str) -> None:
    engine = create_engine(service_url(SCHEMA))
    with engine.connect() as connection, pytest.raises(ProgrammingError, match="permission denied"):
        connection.execute(text(f"SELECT count(*) FROM {other}.outbox"))
    engine.dispose()


def test_other_services_cannot_read_therapists(service_url: Callable[[str], str]) -> None:
    for schema in ("matching_service", "patient_service"):
        engine = create_engine(service_url(schema))
        with engine.connect() as connection, pytest.raises(ProgrammingError, match="permission denied"):
            connection.execute(text(f"SELECT * FROM {SCHEMA}.therapists"))
        engine.dispose()


def test_the_audit_log_is_append_only_for_the_service(api: Api, therapist_engine: Engine) -> None:
    api.create()
    for statement in (f"UPDATE {SCHEMA}.audit_log SET actor = 'x'", f"DELETE FROM {SCHEMA}.audit_log"):
        with (
            therapist_engine.connect() as connection,
            pytest.raises(ProgrammingError, match="permission denied"),
        ):
            connection.execute(text(statement))


def test_therapist_role_cannot_create_tables(therapist_engine: Engine) -> None:
    with therapist_engine.connect() as connection, pytest.raises(ProgrammingError, match="permission denied"):
        connection.execute(text(f"CREATE TABLE {SCHEMA}.intruder (id int)"))


# ------------------------------------------------------------------------------ round trips


def test_every_field_survives_the_round_trip(api: Api, admin_engine: Engine) -> None:
    created = api.create()
    assert created["phone_windows"] == {"mon": ["08:00-09:00"], "thu": ["07:45-08:15", "12:30-13:00"]}
    assert created["website"] == "https://www.praxis-oezdemir.example"
    assert created["procedures"] == ["ST", "VT"] and created["symptom_preferences"] == ["anxiety", "trauma"]
    status, read = api("GET", f"{BASE}/{created['id']}")
    assert (status, read) == (200, created)
    (row,) = _rows(admin_engine, f"SELECT * FROM {SCHEMA}.therapists")
    assert row.search_text == "änne özdemir aachen praxis.oezdemir@example.org"
    assert row.practice_key == "praxis.oezdemir@example.org"
    assert row.location_precision == "postcode" and row.latitude == pytest.approx(50.7766)
    # The event is in the outbox, published, with the public model as payload (of an objection
    # only whether there is one: `contact_opt_out`).
    (event,) = _rows(admin_engine, f"SELECT * FROM {SCHEMA}.outbox")
    assert event.event_type == "therapist.created" and event.aggregate_key == created["id"]
    assert event.published_at is not None
    assert event.envelope["payload"] == TherapistSnapshot.of(created).model_dump(mode="json")  # minimal
    assert event.envelope["producer"] == "therapist-service"
    (audit,) = _rows(admin_engine, f"SELECT * FROM {SCHEMA}.audit_log")
    assert (audit.actor, audit.action, str(audit.entity_id)) == (
        "staff@team.example",
        "create",
        created["id"],
    )
    assert audit.before is None and audit.after["last_name"] == "Özdemir"


def test_patch_put_status_and_cooling_are_audited_with_before_and_after(
    api: Api, admin_engine: Engine
) -> None:
    created = api.create()
    path = f"{BASE}/{created['id']}"
    assert api("PATCH", path, {"fax": None, "potentially_available": False})[0] == 200
    assert api("POST", f"{path}/block", {"reason": "Beschwerde"})[0] == 200
    until = (platform_today(datetime.now(UTC)) + timedelta(days=28)).isoformat()
    assert (
        api("PUT", f"{path}/cooling-period", {"next_contact_allowed_on": until, "reason": "Antwort"})[0]
        == 200
    )
    status, cooling = api("GET", f"{path}/cooling-period")
    assert (
        status == 200 and cooling["in_cooling_period"] is True and cooling["next_contact_allowed_on"] == until
    )
    assert api("DELETE", path)[0] == 200
    audit = _rows(admin_engine, f"SELECT * FROM {SCHEMA}.audit_log ORDER BY id")
    assert [entry.action for entry in audit] == [
        "create",
        "patch",
        "block",
        "set_cooling_period",
        "deactivate",
    ]
    assert audit[1].before == {"fax": "0241 12346", "potentially_available": True}
    assert audit[1].after == {"fax": None, "potentially_available": False}
    assert (audit[2].before, audit[2].after, audit[2].reason) == (
        {"status": "active", "block_reason": None},
        {"status": "blocked", "block_reason": "Beschwerde"},
        "Beschwerde",
    )
    assert audit[3].before == {"next_contact_allowed_on": None}
    assert audit[3].after == {"next_contact_allowed_on": until}
    events = _rows(admin_engine, f"SELECT event_type, envelope FROM {SCHEMA}.outbox ORDER BY id")
    assert [event.event_type for event in events] == [
        "therapist.created",
        "therapist.updated",
        "therapist.blocked",
        "therapist.updated",
        "therapist.updated",
    ]
    assert events[-1].envelope["payload"]["status"] == "inactive"
    assert len(api.bus.messages) == 5
    (stored,) = _rows(admin_engine, f"SELECT staff_edited_fields FROM {SCHEMA}.therapists")
    assert {"fax", "potentially_available"} <= set(stored.staff_edited_fields)


def test_409_on_illegal_status_change_writes_nothing(api: Api, admin_engine: Engine) -> None:
    created = api.create()
    status, error = api("POST", f"{BASE}/{created['id']}/unblock", {"reason": "x"})
    assert status == 409 and "active -> active" in error["detail"]
    assert len(_rows(admin_engine, f"SELECT * FROM {SCHEMA}.audit_log")) == 1
    assert len(_rows(admin_engine, f"SELECT * FROM {SCHEMA}.outbox")) == 1


# ------------------------------------------------------------------------------ atomicity


@pytest.mark.parametrize("failing", ["outbox", "audit"])
def test_a_crash_before_commit_leaves_neither_therapist_nor_event_nor_audit(
    api: Api, admin_engine: Engine, monkeypatch: pytest.MonkeyPatch, failing: str
) -> None:
    from therapy_platform.platform import outbox as outbox_module
    from therapy_platform.therapists.adapters import store as therapists_module

    def explode(self: object, *args: object) -> None:
        raise RuntimeError("simulated crash between the inserts")

    target = outbox_module.SqlOutbox if failing == "outbox" else therapists_module.SqlTherapistAuditLog
    monkeypatch.setattr(target, "add", explode)
    status, body = api("POST", BASE, VALID)
    assert status == 500 and body["code"] == "internal_error"
    for table in ("therapists", "audit_log", "outbox"):
        assert _rows(admin_engine, f"SELECT * FROM {SCHEMA}.{table}") == []


def test_a_crash_during_an_update_keeps_the_old_record(
    api: Api, admin_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    created = api.create()
    from therapy_platform.platform import outbox as outbox_module

    def explode(self: object, *args: object) -> None:
        raise RuntimeError("simulated crash")

    with monkeypatch.context() as patched:
        patched.setattr(outbox_module.SqlOutbox, "add", explode)
        assert api("POST", f"{BASE}/{created['id']}/block", {"reason": "x"})[0] == 500
    assert api("GET", f"{BASE}/{created['id']}")[1]["status"] == "active"
    assert len(_rows(admin_engine, f"SELECT * FROM {SCHEMA}.audit_log")) == 1


def test_the_deployed_wiring_publishes_right_after_the_commit(
    monkeypatch: pytest.MonkeyPatch, service_url: Callable[[str], str], admin_engine: Engine
) -> None:
    """The composition root as deployed: the function's engine has a pool of one connection, so
    the after-commit hook must run once the unit of work has given it back (else it would wait
    for the pool's timeout and leave the event to the relay: `published_at` would stay NULL)."""
    from therapy_platform.platform import database as platform_database
    from therapy_platform.platform import settings as platform_settings
    from therapy_platform.therapists import bootstrap, use_cases
    from therapy_platform.therapists.domain.therapist import TherapistDraft

    def fresh_engines() -> None:
        if platform_database.default_engine.cache_info().currsize:
            platform_database.default_engine().dispose()
        platform_database.default_engine.cache_clear()
        platform_settings.database_settings.cache_clear()

    bus = FakeBus()
    monkeypatch.setenv("DATABASE_URL", service_url(SCHEMA))
    fresh_engines()
    try:
        service = bootstrap.build(publisher=lambda: bus)
        started = datetime.now(UTC)
        therapist = use_cases.create_therapist(
            service.unit_of_work(),
            FakeGeocoder(),
            TherapistDraft.model_validate(VALID),
            actor="staff@team.example",
            now=started,
        ).value
    finally:
        fresh_engines()
    assert [message.key for message in bus.messages] == [str(therapist.id)]
    (row,) = _rows(admin_engine, f"SELECT published_at FROM {SCHEMA}.outbox")
    assert row.published_at is not None


def test_database_down_is_503(monkeypatch: pytest.MonkeyPatch, api: Api) -> None:
    dead = make_engine("postgresql+pg8000://nobody:nothing@127.0.0.1:9/none")
    monkeypatch.setattr(
        api.module,
        "service",
        dataclasses.replace(api.module.service, unit_of_work=lambda: SqlTherapistUnitOfWork(dead)),
    )
    status, body = api("POST", BASE, VALID)
    assert status == 503 and body["code"] == "dependency_unavailable"
    status, body = api("GET", BASE)
    assert status == 503


# ------------------------------------------------------------------------------ list


def test_filters_in_sql(api: Api) -> None:
    today = platform_today(datetime.now(UTC))
    aachen = api.create()
    berlin = api.create(
        first_name="Karl",
        last_name="Müller",
        postcode="10115",
        city="Berlin",
        email="k.mueller@berlin.example",
        procedures=["TP"],
        languages=["de", "en"],
        offers_group_therapy=False,
        potentially_available=False,
    )
    percent = api.create(
        first_name="Cent", last_name="100%_Sicher", postcode="52064", city="Jülich", email=None, procedures=[]
    )
    blocked = api.create(first_name="Bea", last_name="Block", postcode="01067", city="Dresden", email=None)
    api("POST", f"{BASE}/{blocked['id']}/block", {"reason": "x"})
    api(
        "PUT",
        f"{BASE}/{berlin['id']}/cooling-period",
        {"next_contact_allowed_on": (today + timedelta(days=1)).isoformat(), "reason": "x"},
    )
    api(
        "PUT",
        f"{BASE}/{percent['id']}/cooling-period",
        {"next_contact_allowed_on": today.isoformat(), "reason": "x"},
    )

    def ids(**query: str) -> set[str]:
        status, page = api("GET", BASE, query=query)
        assert status == 200, page
        assert page["total"] == len(page["items"])
        return {item["id"] for item in page["items"]}

    assert ids() == {aachen["id"], berlin["id"], percent["id"], blocked["id"]}
    assert ids(status="active") == {aachen["id"], berlin["id"], percent["id"]}
    assert ids(status="blocked") == {blocked["id"]}
    assert ids(postcode_prefix="52") == {aachen["id"], percent["id"]}
    assert ids(postcode_prefix="01067") == {blocked["id"]}
    assert ids(postcode_prefix="0") == {blocked["id"]}
    assert ids(procedure="TP") == {berlin["id"]}
    assert ids(procedure="ST") == {aachen["id"], blocked["id"]}
    assert ids(language="en") == {berlin["id"]}
    assert ids(language="tr", procedure="VT") == {aachen["id"], blocked["id"]}
    assert ids(offers_group_therapy="false") == {berlin["id"]}
    assert ids(potentially_available="true", status="active") == {aachen["id"], percent["id"]}
    assert ids(in_cooling_period="true") == {berlin["id"]}  # ends tomorrow
    assert ids(in_cooling_period="false") == {
        aachen["id"],
        percent["id"],
        blocked["id"],
    }  # today = free again
    assert ids(q="MÜLLER") == {berlin["id"]}  # case-folded independent of the database locale
    assert ids(q="özdemir") == {aachen["id"]}
    assert ids(q="ÄNNE ÖZ") == {aachen["id"]}
    assert ids(q="berlin.example") == {berlin["id"]}
    assert ids(q="aachen") == {aachen["id"]}
    assert ids(q="100%_") == {percent["id"]}  # LIKE wildcards are matched literally
    assert ids(q="%") == {percent["id"]}
    assert ids(q="_") == {percent["id"]}
    assert ids(q="nobody") == set()


def test_pages_cover_every_row_exactly_once_for_every_sort(
    therapist_engine: Engine, api: Api, admin_engine: Engine
) -> None:
    for index in range(23):
        api.create(last_name=f"Name{index % 5}", postcode=f"{10000 + index * 37:05d}", email=None)
    # Some therapists in a cooling period, others not: NULLs sort last in both directions.
    with admin_engine.begin() as connection:
        connection.execute(
            text(
                f"UPDATE {SCHEMA}.therapists SET next_contact_allowed_on = current_date + (random() * 3)::int"
                " WHERE postcode < '10400'"
            )
        )
    all_ids = {row.id for row in _rows(admin_engine, f"SELECT id FROM {SCHEMA}.therapists")}
    sorts = [
        "created_at", "-created_at", "updated_at", "-updated_at", "last_name", "-last_name",
        "postcode", "-postcode", "next_contact_allowed_on", "-next_contact_allowed_on",
    ]  # fmt: skip
    for sort in sorts:
        seen: list[uuid.UUID] = []
        for page in range(1, 6):
            with SqlTherapistUnitOfWork(therapist_engine) as uow:
                items, total = uow.therapists.list(
                    TherapistQuery(sort=sort, limit=5, page=page), today=date.today()
                )
            assert total == 23
            seen.extend(item.id for item in items)
        assert len(seen) == 23 and set(seen) == all_ids, sort
        key = sort.lstrip("-")
        with SqlTherapistUnitOfWork(therapist_engine) as uow:
            items, _ = uow.therapists.list(TherapistQuery(sort=sort, limit=200), today=date.today())
        values = [getattr(item, key) for item in items if getattr(item, key) is not None]
        assert values == sorted(values, reverse=sort.startswith("-")), sort
        nulls = [getattr(item, key) is None for item in items]
        assert nulls == sorted(nulls), f"{sort}: NULLs must come last"


# ------------------------------------------------------------------------------ schema


def test_the_database_enforces_the_invariants(api: Api, admin_engine: Engine) -> None:
    created = api.create()
    for assignment in (
        "postcode = '1234'",
        "status = 'blocked'",  # without a block reason
        "block_reason = 'x'",  # while active
        "gender = 'other'",
        "procedures = ARRAY['XX']::varchar[]",
        "preferred_age_min = 70",  # above max 65
        "group_only = true, offers_group_therapy = false",
        "location_precision = 'unknown'",  # but coordinates kept
        "location_flagged = true",
    ):
        # pg8000 reports check violations as ProgrammingError: match on the message.
        with (
            admin_engine.connect() as connection,
            pytest.raises(DBAPIError, match="violates check constraint"),
        ):
            connection.execute(
                text(f"UPDATE {SCHEMA}.therapists SET {assignment} WHERE id = :id"), {"id": created["id"]}
            )


def test_directory_ids_are_unique(api: Api, admin_engine: Engine) -> None:
    first, second = api.create(), api.create(email=None)
    with admin_engine.begin() as connection:
        connection.execute(
            text(f"UPDATE {SCHEMA}.therapists SET directory_id = 'D-1' WHERE id = :id"), {"id": first["id"]}
        )
    with admin_engine.connect() as connection, pytest.raises(IntegrityError):
        connection.execute(
            text(f"UPDATE {SCHEMA}.therapists SET directory_id = 'D-1' WHERE id = :id"), {"id": second["id"]}
        )


def test_the_migration_downgrades_and_upgrades_again(
    scratch_database: Callable[[str], AbstractContextManager[Engine]],
) -> None:
    with scratch_database("therapist_migration") as engine:
        upgrade(engine, "0004")
        migrate(engine, command.downgrade, "0003")
        with engine.connect() as connection:
            tables = set(
                connection.execute(
                    text("SELECT table_name FROM information_schema.tables WHERE table_schema = :s"),
                    {"s": SCHEMA},
                ).scalars()
            )
        assert tables == {"outbox"}
        assert upgrade(engine, "0004") == "0004"


def test_concurrent_status_changes_are_serialised(api: Api, therapist_engine: Engine) -> None:
    """Two staff members block the same therapist at once: the second waits for the first's
    row lock and then gets 409, instead of both succeeding (two blocked events)."""
    from therapy_platform.platform.errors import ConflictError
    from therapy_platform.therapists.domain.therapist import TherapistAction
    from therapy_platform.therapists.use_cases import change_status

    created = api.create()
    therapist_id = uuid.UUID(created["id"])
    outcome: list[object] = []

    def second_staff_member() -> None:
        try:
            change_status(
                SqlTherapistUnitOfWork(therapist_engine),
                therapist_id,
                TherapistAction.BLOCK,
                reason="second",
                actor="b",
                now=datetime.now(UTC),
            )
            outcome.append("blocked")
        except ConflictError as error:
            outcome.append(error)

    with SqlTherapistUnitOfWork(therapist_engine) as first:
        current = first.therapists.get_for_update(therapist_id)
        assert current is not None
        racer = threading.Thread(target=second_staff_member)
        racer.start()
        racer.join(timeout=0.5)
        assert racer.is_alive()  # waiting for the row lock
        first.therapists.update(
            current.transition(TherapistAction.BLOCK, reason="first", now=datetime.now(UTC))
        )
        first.commit()
    racer.join(timeout=10)
    assert len(outcome) == 1 and isinstance(outcome[0], ConflictError)
    assert "blocked -> blocked" in outcome[0].message
