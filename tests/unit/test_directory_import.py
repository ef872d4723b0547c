"""The directory import use case with in-memory adapters: what is created, updated, left alone
or skipped (with the reason), idempotency (a second import writes nothing), staff edits and
operational fields, matching, duplicates, vanished listings, and all-or-nothing entries."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from directory_fakes import (
    DirectoryDatabase,
    InMemoryDirectoryImportUnitOfWork,
    InMemoryImportReportStore,
    entry,
)
from therapist_fakes import FakeGeocoder
from therapy_platform.contracts.directory_files import RawPage, RawRun, Region, SearchPoint
from therapy_platform.contracts.practices import hashed_practice_key
from therapy_platform.platform.errors import ConflictError, DependencyUnavailableError
from therapy_platform.platform.geography.locations import LocationPrecision
from therapy_platform.therapists import use_cases as therapist_use_cases
from therapy_platform.therapists.domain.therapist import (
    CoolingPeriodChange,
    TherapistAction,
    TherapistDraft,
    TherapistPatch,
)
from therapy_platform.therapists.imports.domain.reports import ImportResult, ImportSource, ImportStatus
from therapy_platform.therapists.imports.use_cases import get_import, import_directory_file

NOW = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
AACHEN = SearchPoint(latitude=50.7766, longitude=6.0834)


class World:
    def __init__(self) -> None:
        self.database = DirectoryDatabase()
        self.reports = InMemoryImportReportStore()
        self.geocoder = FakeGeocoder()

    def uow(self) -> InMemoryDirectoryImportUnitOfWork:
        return InMemoryDirectoryImportUnitOfWork(self.database)

    def run(self, data: bytes, *, now: datetime = NOW, **kwargs: Any) -> ImportResult:
        kwargs.setdefault("source", ImportSource("s3://raw/raw/2026-11-22/52.json", "v1"))
        return import_directory_file(self.uow(), self.reports, self.geocoder, data, now=now, **kwargs).value

    def therapist(self, directory_id: str) -> Any:
        return next(t for t in self.database.therapists.values() if t.directory_id == directory_id)


def answer(*entries: Any, more: bool = False) -> dict[str, Any]:
    return {"arztPraxisDatas": list(entries), "moreResults": more}


def run_file(*pages: dict[str, Any], complete: bool = True, region: str = "52") -> bytes:
    return RawRun(
        region=Region.parse({"prefix": region, "radius_km": 10}) if region else None,
        radius_km=10,
        points=[AACHEN],
        complete=complete,
        pages=[RawPage(point=AACHEN, page=index, answer=page) for index, page in enumerate(pages)],
    ).to_json_bytes()


@pytest.fixture
def world() -> World:
    return World()


def sample_file() -> bytes:
    return run_file(
        answer(
            entry(id="e1"),
            entry(id="e2", vorname="Jürgen", name="Weiß", geschlecht="M", anrede="Herr", email="", tsz=None),
            "kaputter Eintrag",
            entry(id="e3", plz="5206A"),
            more=True,
        ),
        answer(
            entry(
                id="e4",
                vorname="Ömer",
                name="Öztürk",
                psy=[{"verfahren": "Verhaltenstherapie", "altersgruppen": ["Kinder"]}],
            ),
            entry(id="e1"),  # the same entry again from an overlapping search circle
            entry(id="e2", vorname="Jürgen", name="Weiß", tel="0241 000000"),  # same id, other data
        ),
    )


def test_first_import_creates_adult_therapists_and_reports_every_skip(world: World) -> None:
    outcome = world.run(sample_file())
    report = outcome.report
    assert report.status is ImportStatus.FINISHED and report.region == "52" and report.complete_source
    counts = report.counts
    assert (counts.entries, counts.new, counts.updated, counts.unchanged) == (7, 2, 0, 0)
    assert (counts.skipped, counts.repeats) == (4, 1)
    assert report.skip_reasons == {
        "malformed_entry": 1,
        "invalid_value": 1,
        "not_for_adults": 1,
        "duplicate": 1,
    }
    skipped = {item.position: item for item in outcome.items if item.outcome == "skipped"}
    assert (
        skipped["page 1, entry 4"].reason == "invalid_value" and "plz" in skipped["page 1, entry 4"].message
    )
    assert skipped["page 2, entry 3"].name == "Jürgen Weiß"
    assert "first at page 1, entry 2" in skipped["page 2, entry 3"].message
    anne = world.therapist("e1")
    assert anne.first_name == "Änne" and anne.procedures == ["VT"] and anne.languages == ["de", "en", "tr"]
    assert anne.location.precision is LocationPrecision.ADDRESS  # the directory's coordinates
    assert anne.staff_edited_fields == []
    events = world.database.events("therapist.imported")
    assert len(events) == 2 and len(outcome.event_ids) == 2
    assert {entry.action for entry in world.database.audit} == {"directory_import"}
    # The stored report reads back with its items.
    stored = get_import(world.reports, report.id, outcome="skipped").value
    assert stored.items_total == 4


def test_a_second_import_of_the_same_file_writes_nothing(world: World) -> None:
    world.run(sample_file())
    writes = world.database.writes
    therapists_before = dict(world.database.therapists)
    second = world.run(
        sample_file(), now=NOW + timedelta(days=7), source=ImportSource("s3://raw/raw/x.json", "v2")
    )
    assert world.database.writes == writes
    assert world.database.therapists == therapists_before
    counts = second.report.counts
    assert (counts.new, counts.updated, counts.unchanged, counts.skipped) == (0, 0, 2, 4)
    assert second.event_ids == []


def test_the_same_object_version_is_imported_once(world: World) -> None:
    first = world.run(sample_file(), once_per_version=True)
    again = world.run(sample_file(), once_per_version=True)
    assert again.already_done and again.report.id == first.report.id
    assert len(world.reports.reports) == 1


def test_changes_update_only_what_staff_did_not_edit(world: World) -> None:
    world.run(run_file(answer(entry(id="e1"))))
    anne = world.therapist("e1")
    uow = world.uow()
    therapist_use_cases.patch_therapist(
        uow,
        world.geocoder,
        anne.id,
        TherapistPatch.model_validate({"phone": "0241 777"}),
        actor="staff",
        now=NOW,
    )
    therapist_use_cases.change_status(
        uow, anne.id, TherapistAction.BLOCK, reason="Beschwerde", actor="staff", now=NOW
    )
    therapist_use_cases.set_cooling_period(
        uow,
        anne.id,
        CoolingPeriodChange(next_contact_allowed_on=date(2026, 12, 24), reason="Rückmeldung"),
        actor="staff",
        now=NOW,
    )
    changed = entry(id="e1", tel="0241 999999", fax="0241 888888", email="neu@praxis.example")
    outcome = world.run(run_file(answer(changed)), now=NOW + timedelta(days=7))
    assert outcome.report.counts.updated == 1
    after = world.therapist("e1")
    assert after.phone == "0241 777"  # staff's
    assert (after.fax, after.email) == ("0241 888888", "neu@praxis.example")
    assert (after.status, after.block_reason, after.next_contact_allowed_on) == (
        "blocked",
        "Beschwerde",
        date(2026, 12, 24),
    )
    update = world.database.events("therapist.updated")[-1]
    assert "email" not in update.payload and update.payload["reachable_by_email"] is True
    assert update.payload["practice_key"] == hashed_practice_key("neu@praxis.example")
    audit = world.database.audit[-1]
    assert audit.action == "directory_update" and set(audit.before or {}) == {"fax", "email"}


def test_a_known_email_is_never_blanked(world: World) -> None:
    world.run(run_file(answer(entry(id="e1"))))
    outcome = world.run(run_file(answer(entry(id="e1", email="", tel="0241 555555"))))
    assert outcome.report.counts.updated == 1
    assert world.therapist("e1").email == "praxis@mueller.example"


def test_existing_therapists_match_by_name_and_postcode_and_get_the_directory_id(world: World) -> None:
    outcome = therapist_use_cases.create_therapist(
        world.uow(),
        world.geocoder,
        TherapistDraft(
            first_name="ÄNNE", last_name="müller-lüdenscheidt", postcode="52062", preferred_age_min=21
        ),
        actor="staff",
        now=NOW,
    )
    report = world.run(run_file(answer(entry(id="e1")))).report
    assert (report.counts.new, report.counts.updated) == (0, 1)
    matched = world.database.therapists[outcome.value.id]
    assert matched.directory_id == "e1"
    assert matched.first_name == "ÄNNE"  # typed by staff: kept
    assert matched.preferred_age_min == 21
    assert matched.procedures == ["VT"]


def test_several_therapists_with_the_same_name_and_postcode_are_not_guessed(world: World) -> None:
    for _ in range(2):
        therapist_use_cases.create_therapist(
            world.uow(),
            world.geocoder,
            TherapistDraft(first_name="Änne", last_name="Müller-Lüdenscheidt", postcode="52062"),
            actor="staff",
            now=NOW,
        )
    report = world.run(run_file(answer(entry(id="e1")))).report
    assert report.skip_reasons == {"ambiguous_match": 1}
    assert len(world.database.therapists) == 2


def test_a_therapist_with_another_directory_id_is_another_person(world: World) -> None:
    world.run(run_file(answer(entry(id="e1"))))
    report = world.run(run_file(answer(entry(id="e9")))).report
    assert report.counts.new == 1
    assert len(world.database.therapists) == 2


def test_listings_missing_from_a_complete_run_are_marked_for_review_not_deleted(world: World) -> None:
    world.run(run_file(answer(entry(id="e1"), entry(id="e2", vorname="Jürgen", name="Weiß"))))
    partial = world.run(run_file(answer(entry(id="e1")), complete=False))
    assert partial.report.counts.vanished == 0
    outcome = world.run(run_file(answer(entry(id="e1"))))
    assert outcome.report.counts.vanished == 1
    vanished = [item for item in outcome.items if item.outcome == "vanished"]
    assert vanished[0].directory_id == "e2" and vanished[0].reason == "vanished_from_directory"
    jurgen = world.therapist("e2")
    assert jurgen.status == "active"  # kept as it is; staff decide
    assert world.database.listings["e2"].review_reason == "vanished_from_directory"
    again = world.run(run_file(answer(entry(id="e1"))))
    assert again.report.counts.vanished == 0  # marked once
    back = world.run(run_file(answer(entry(id="e1"), entry(id="e2", vorname="Jürgen", name="Weiß"))))
    assert back.report.counts.reappeared == 1
    assert world.database.listings["e2"].review_reason is None
    assert [entry.action for entry in world.database.audit].count("directory_back") == 1


def test_a_bare_answer_never_marks_anything_vanished(world: World) -> None:
    world.run(run_file(answer(entry(id="e1"), entry(id="e2", vorname="Jürgen", name="Weiß"))))
    outcome = world.run(json.dumps(answer(entry(id="e1"))).encode(), source=ImportSource("/tmp/answer.json"))
    assert outcome.report.counts.vanished == 0 and not outcome.report.complete_source


def test_an_unusable_file_gives_a_failed_report_and_writes_nothing(world: World) -> None:
    outcome = world.run(b"\x00 not json")
    assert outcome.report.status is ImportStatus.FAILED and "not JSON" in (outcome.report.error or "")
    assert world.database.writes == 0 and world.reports.reports[outcome.report.id].finished_at is not None


class FailingListings(InMemoryDirectoryImportUnitOfWork):
    """The listing write of one entry fails: its therapist, audit entry and event must go too."""

    def __init__(self, database: DirectoryDatabase, failing_id: str, error: Exception) -> None:
        super().__init__(database)
        self.failing_id, self.error = failing_id, error

    def __enter__(self) -> FailingListings:
        super().__enter__()
        save = self.listings.save

        def failing_save(listing: Any, **kwargs: Any) -> None:
            if listing.directory_id == self.failing_id:
                raise self.error
            save(listing, **kwargs)

        self.listings.save = failing_save  # type: ignore[method-assign]
        return self


def test_an_entry_is_written_completely_or_not_at_all(world: World) -> None:
    uow = FailingListings(world.database, "e2", ConflictError("the database refused the values"))
    outcome = import_directory_file(
        uow,
        world.reports,
        world.geocoder,
        run_file(
            answer(
                entry(id="e1"), entry(id="e2", vorname="Jürgen", name="Weiß"), entry(id="e3", vorname="Lea")
            )
        ),
        source=ImportSource("f"),
        now=NOW,
    ).value
    assert (outcome.report.counts.new, outcome.report.skip_reasons) == (2, {"conflict": 1})
    assert {t.directory_id for t in world.database.therapists.values()} == {"e1", "e3"}
    assert len(world.database.events()) == 2 and len(world.database.audit) == 2


def test_a_lost_database_stops_the_import_with_a_failed_report(world: World) -> None:
    uow = FailingListings(
        world.database, "e2", DependencyUnavailableError("the database connection was lost")
    )
    with pytest.raises(DependencyUnavailableError):
        import_directory_file(
            uow,
            world.reports,
            world.geocoder,
            run_file(answer(entry(id="e1"), entry(id="e2", vorname="Jürgen", name="Weiß"), entry(id="e3"))),
            source=ImportSource("f"),
            now=NOW,
        )
    (report,) = world.reports.reports.values()
    assert report.status is ImportStatus.FAILED and report.counts.new == 1
    assert "connection was lost" in (report.error or "")


def test_unlocated_directory_entries_fall_back_to_the_geocoder(world: World) -> None:
    world.run(run_file(answer(entry(id="e1", lat=None, lon=None, plz="10115"))))
    therapist = world.therapist("e1")
    assert therapist.location.precision is LocationPrecision.POSTCODE
    assert world.geocoder.calls and world.geocoder.calls[0]["postcode"] == "10115"


def test_report_lookup_of_an_unknown_id_is_not_found(world: World) -> None:
    from therapy_platform.platform.errors import NotFoundError

    with pytest.raises(NotFoundError):
        get_import(world.reports, uuid.uuid4())
