"""Patient use cases, over the ports of a `PatientService` (unit of work, geocoder, clock;
bootstrap.build() wires the deployed one, unit tests build one from in-memory fakes).

Each use case runs in one unit of work: the change, its audit rows (GDPR: who read or changed
which patient, when) and its outbox event commit together or not at all; the unit of work's
after-commit hook publishes the event. Reads are audited too, so a read commits its audit row.
Each returns an `Outcome`: its value and the events it committed. The operators' bulk load
(`bulk_upsert`) runs one transaction per row and answers the shared `BulkReport`. Events are
built through their contracts (contracts/patients.py); `follow_search_status`, the reaction to
`search.status_changed`, runs inside the event consumer's transaction (bootstrap).
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Final

from pydantic import TypeAdapter, ValidationError

from therapy_platform.contracts import patients as contract
from therapy_platform.contracts.contacts import ContactState, PatientContactCard
from therapy_platform.contracts.personal_data import (
    DataSubject,
    NoOtherServices,
    PersonalDataExport,
    PersonalDataPart,
    PersonalDataParts,
    PersonalDataRequest,
)
from therapy_platform.contracts.searches import SearchStatus, SearchStatusChanged
from therapy_platform.patients.domain.patient import (
    PRODUCER,
    Patient,
    PatientDeleted,
    PatientDraft,
    PatientErasedError,
    PatientPatch,
    PatientQuery,
    PatientReplacement,
    PatientStatus,
    PatientValidationError,
    changed_fields,
    merge_patch,
    validated,
)
from therapy_platform.patients.domain.statistics import statistics_row
from therapy_platform.patients.ports import PatientAuditAction as Action
from therapy_platform.patients.ports import PatientAuditEntry, PatientStaging, PatientUnitOfWork
from therapy_platform.platform.bulk_load import BulkReport, Chunks, RowOutcome, load_rows, loose_text
from therapy_platform.platform.clock import utc_now
from therapy_platform.platform.consumer import PoisonMessageError
from therapy_platform.platform.errors import ConflictError, NotFoundError
from therapy_platform.platform.events import EventEnvelope
from therapy_platform.platform.geography.locations import Location
from therapy_platform.platform.geography.ports import Geocoder
from therapy_platform.platform.outcome import Outcome
from therapy_platform.platform.preconditions import check_version, entity_tag
from therapy_platform.platform.publishing import record_event
from therapy_platform.platform.rest.pagination import Page
from therapy_platform.platform.validation import FieldRuleError


@dataclass(frozen=True)
class PatientService:
    """The ports the patient use cases run on."""

    unit_of_work: Callable[[], PatientUnitOfWork]
    geocoder: Geocoder
    clock: Callable[[], datetime] = utc_now
    personal_data_parts: PersonalDataParts = field(default_factory=NoOtherServices)


def _record_event(
    uow: PatientUnitOfWork, event_type: str, patient_id: uuid.UUID, payload: dict[str, Any], now: datetime
) -> EventEnvelope:
    return record_event(uow.outbox, event_type, producer=PRODUCER, key=patient_id, payload=payload, now=now)


def _locate(geocoder: Geocoder, draft: PatientDraft) -> Location:
    return geocoder.locate(postcode=draft.postcode, street=draft.street, city=draft.city)


def _json_time(moment: datetime) -> str:
    # The same form as in every response body (pydantic's JSON datetimes).
    return str(TypeAdapter(datetime).dump_python(moment, mode="json"))


def _missing(uow: PatientUnitOfWork, patient_id: uuid.UUID) -> NotFoundError:
    erased_at = uow.patients.erased_at(patient_id)
    if erased_at is not None:
        return PatientErasedError(
            f"patient {patient_id} was erased on request on {erased_at.date().isoformat()}",
            details={"erased_at": _json_time(erased_at)},
        )
    return NotFoundError(f"patient {patient_id} does not exist")


def _locked(uow: PatientUnitOfWork, patient_id: uuid.UUID) -> Patient:
    patient = uow.patients.get(patient_id, for_update=True)
    if patient is None:
        raise _missing(uow, patient_id)
    return patient


def register_patient(
    service: PatientService,
    draft: PatientDraft,
    *,
    actor: str = "system",
    status: PatientStatus | None = None,
    reason: str | None = None,
    now: datetime | None = None,
) -> Outcome[Patient]:
    """Store a new patient (status `open` unless given), located through the geocoder, with
    its audit row and `patient.created` event in one transaction. `now` defaults to the
    service's clock (a bulk load stamps every row with its start)."""
    now = now or service.clock()
    # Located before the transaction opens: a slow geocoder holds no connection.
    patient = Patient.register(draft, now=now, location=_locate(service.geocoder, draft))
    if status is not None:
        patient = patient.model_copy(update={"status": status})
    with service.unit_of_work() as uow:
        uow.patients.add(patient)
        created = PatientAuditEntry(
            actor, Action.CREATE, patient.id, now, after=patient.audit_view(), reason=reason
        )
        uow.audit.record([created])
        event = _record_event(uow, "patient.created", patient.id, patient.event_payload(), now)
        uow.commit()
    return Outcome(patient, (event,))


def get_patient(service: PatientService, patient_id: uuid.UUID, *, actor: str) -> Outcome[Patient]:
    """One patient; the read is audited. Unknown id: NotFoundError; erased: PatientErasedError."""
    now = service.clock()
    with service.unit_of_work() as uow:
        patient = uow.patients.get(patient_id)
        if patient is None:
            raise _missing(uow, patient_id)
        uow.audit.record([PatientAuditEntry(actor, Action.READ, patient.id, now)])
        uow.commit()
    return Outcome(patient)


def list_patients(service: PatientService, query: PatientQuery, *, actor: str) -> Outcome[Page[Patient]]:
    """One page of patients and the total matching the filters. Every patient shown is
    audited as read (action `list`)."""
    now = service.clock()
    with service.unit_of_work() as uow:
        items, total = uow.patients.search(query)
        uow.audit.record([PatientAuditEntry(actor, Action.LIST, patient.id, now) for patient in items])
        uow.commit()
    return Outcome(Page[Patient](items=items, total=total, page=query.page, limit=query.limit))


def _save_revision(
    uow: PatientUnitOfWork,
    current: Patient,
    draft: PatientDraft,
    status: PatientStatus | None,
    *,
    geocoder: Geocoder,
    now: datetime,
    actor: str,
    reason: str | None = None,
) -> Outcome[Patient]:
    """The revision, audited, and its `patient.updated` event, in the open transaction (the
    caller commits)."""
    # Locate again when the address changed, and whenever the last attempt failed: saving a
    # flagged patient retries the lookup.
    relocate = current.address_differs(draft) or not current.location.is_known
    location = _locate(geocoder, draft) if relocate else current.location
    revised = current.revised(draft, status=status, location=location, now=now)
    before, after = changed_fields(current, revised)
    if not after:
        # Nothing changed: no event, no new timestamp; the access is still audited.
        uow.audit.record([PatientAuditEntry(actor, Action.UPDATE, current.id, now, {}, {}, reason)])
        return Outcome(current)
    uow.patients.update(revised)
    uow.audit.record([PatientAuditEntry(actor, Action.UPDATE, current.id, now, before, after, reason)])
    event = _record_event(uow, "patient.updated", revised.id, revised.event_payload(), now)
    return Outcome(revised, (event,))


def replace_patient(
    service: PatientService,
    patient_id: uuid.UUID,
    replacement: PatientReplacement,
    *,
    actor: str,
    if_match: str | None = None,
) -> Outcome[Patient]:
    """Full update (PUT): every editable field from `replacement`; `patient.updated` when
    anything changed (no event otherwise). `if_match`: the entity tag the client read; 412 when
    the patient changed since (checked with the row locked)."""
    draft = validated(PatientDraft, replacement.model_dump(exclude={"status"}))
    now = service.clock()
    with service.unit_of_work() as uow:
        current = _locked(uow, patient_id)
        check_version(if_match, entity_tag(current), what="patient")
        saved = _save_revision(
            uow, current, draft, replacement.status, geocoder=service.geocoder, now=now, actor=actor
        )
        uow.commit()
    return saved


def patch_patient(
    service: PatientService,
    patient_id: uuid.UUID,
    patch: PatientPatch,
    *,
    actor: str,
    reason: str | None = None,
    now: datetime | None = None,
    if_match: str | None = None,
) -> Outcome[Patient]:
    """Partial update (PATCH): the sent fields change, the merged record must satisfy every
    rule (PatientValidationError naming the fields otherwise). `if_match` as for PUT."""
    now = now or service.clock()
    with service.unit_of_work() as uow:
        current = _locked(uow, patient_id)
        check_version(if_match, entity_tag(current), what="patient")
        draft, status = merge_patch(current, patch)
        saved = _save_revision(
            uow, current, draft, status, geocoder=service.geocoder, now=now, actor=actor, reason=reason
        )
        uow.commit()
    return saved


UNFINISHED_SEARCH_STATUSES: Final = frozenset({PatientStatus.SEARCHING})


def erase_patient(
    service: PatientService, patient_id: uuid.UUID, *, actor: str, reason: str | None = None
) -> Outcome[PatientDeleted]:
    """GDPR erasure (DELETE).

    Refused (ConflictError, 409) while the patient has an unfinished search. The search lives
    in the matching service; the patient service knows about it through the patient status,
    which follows the search: `searching` means a search is active or paused (not finished).
    Staff end the search first (the status becomes `search_cancelled`, or `in_therapy` when
    placed); every other status allows the erasure.

    The erasure writes one anonymous row to `patient_statistics` (domain/statistics.py: no id,
    months instead of dates, an age band, codes only), reduces the record to a tombstone (id
    and erasure time), blanks the values and reasons in the patient's audit trail (who did what
    when stays), drops the patient's earlier outbox events (they carry personal data) and emits
    `patient.deleted` with only the id and the erasure time; every other service erases what it
    holds on that event (docs/privacy.md#erasure). Afterwards every access answers
    PatientErasedError (410).
    """
    now = service.clock()
    with service.unit_of_work() as uow:
        current = _locked(uow, patient_id)
        if current.status in UNFINISHED_SEARCH_STATUSES:
            raise ConflictError(
                f"patient {patient_id} cannot be erased while their search is not finished "
                f"(status {current.status}); end the search first",
                details={"patient_status": str(current.status)},
            )
        deleted = PatientDeleted(id=patient_id, erased_at=now)
        uow.patients.erase(patient_id, erased_at=now, statistics=statistics_row(current, erased_at=now))
        uow.audit.redact(patient_id)
        uow.audit.record(
            [
                PatientAuditEntry(
                    actor,
                    Action.ERASE,
                    patient_id,
                    now,
                    after={"erased_at": now.isoformat()},
                    reason=reason,
                )
            ]
        )
        # Only after erase(): it drops the patient's earlier outbox events, not this one.
        payload = contract.PatientDeleted(id=patient_id, erased_at=now).model_dump(mode="json")
        event = _record_event(uow, "patient.deleted", patient_id, payload, now)
        uow.commit()
    return Outcome(deleted, (event,))


def export_patient(
    service: PatientService, patient_id: uuid.UUID, *, actor: str
) -> Outcome[PersonalDataExport]:
    """Everything the platform holds about one patient, from every service (GDPR Art. 15/20).

    The patient service's own part (the record and its audit trail) is read first; then every
    other service is asked for its part (no transaction is held meanwhile). Only a complete
    export is answered, and only then is it audited (action `export`); if a service fails, the
    export fails (InternalCallError, 502) and nothing is written. Unknown: 404; erased: 410
    (what is left is anonymous)."""
    request = PersonalDataRequest(subject=DataSubject.PATIENT, subject_id=patient_id, request_id=uuid.uuid4())
    with service.unit_of_work() as uow:
        patient = uow.patients.get(patient_id)
        if patient is None:
            raise _missing(uow, patient_id)
        own = PersonalDataPart(
            service="patients",
            request_id=request.request_id,
            subject=request.subject,
            subject_id=patient_id,
            records={
                "patients": [patient.model_dump(mode="json")],
                "audit_log": uow.audit.entries_of(patient_id),
            },
        )
    others = service.personal_data_parts.collect(request)
    now = service.clock()
    with service.unit_of_work() as uow:
        services = [own.service, *(part.service for part in others)]
        detail = {"request_id": str(request.request_id), "services": services}
        uow.audit.record([PatientAuditEntry(actor, Action.EXPORT, patient_id, now, after=detail)])
        uow.commit()
    export = PersonalDataExport(
        request_id=request.request_id,
        subject=request.subject,
        subject_id=patient_id,
        exported_at=now,
        parts=[own, *others],
    )
    return Outcome(export)


# --- bulk load for operators -------------------------------------------------------------------


BULK_COLUMNS: Final = frozenset({*PatientDraft.model_fields, "status"})
_LIST_FIELDS: Final = frozenset({"symptoms", "therapy_procedures", "languages", "excluded_therapist_ids"})
_BOOL_FIELDS: Final = frozenset(
    {"previous_therapy", "open_to_group_therapy", "group_only", "needs_shared_language"}
)
_GERMAN_FLAGS: Final = {"ja": True, "j": True, "nein": False, "n": False}


def _from_flat(row: Mapping[str, Any]) -> dict[str, Any]:
    """Accept spreadsheet rows too: blank cells are absent, list fields may be `a;b` or `a,b`,
    availability may be a JSON string, flags may be ja/nein."""
    values: dict[str, Any] = {}
    for key, value in row.items():
        if value is None or (isinstance(value, str) and not value.strip()):
            continue
        if key in _LIST_FIELDS and isinstance(value, str):
            value = [part.strip() for part in re.split(r"[;,]", value) if part.strip()]
        elif key in _BOOL_FIELDS and isinstance(value, str) and value.strip().lower() in _GERMAN_FLAGS:
            value = _GERMAN_FLAGS[value.strip().lower()]
        elif key == "availability" and isinstance(value, str):
            with suppress(ValueError):  # not JSON: validation names the field
                value = json.loads(value)
        values[str(key)] = value
    return values


def bulk_upsert(
    service: PatientService,
    rows: Iterable[Mapping[str, Any]],
    *,
    actor: str = "bulk-load",
    first_row_number: int = 1,
    on_progress: Callable[[int], None] | None = None,
    chunks: Chunks | None = None,
    staging: PatientStaging | None = None,
    row_numbers: Iterable[int] | None = None,
) -> BulkReport:
    """Create or update many patients (operators' bulk load, infra/tools/bulk_load.py). Rows
    are numbered from `first_row_number` in the report (or by `row_numbers`: a part of a file,
    split by `bulk_partition_keys`).

    Each row is a patient's fields (as in POST, plus an optional `status`) and is stored in its
    own transaction, so a bad row is reported and the others still load. Matching: a row
    belongs to an existing (not erased) patient when email and last name (both case-
    insensitive) and birth date are equal; those three are therefore required in every row, so
    that loading the same file twice never duplicates anyone. A match is updated with the
    row's fields only (PATCH semantics: blank cells change nothing); no match creates a patient
    (status `open` unless the row gives one); two or more matches are rejected (duplicates for
    staff to merge). Each change is audited (`reason` "bulk load row N") and emits its event
    through the outbox; the scheduled relay publishes them. If the database goes away the load
    stops with BulkLoadInterruptedError carrying the report so far. Every row is stamped with
    the time the load started. With `chunks` (the service's units of work joining that shared
    transaction), rows commit a chunk at a time, each row still in its own savepoints. With
    `staging` as well, each chunk is matched with one read and written with one statement per
    table; only a chunk the database refuses runs row by row (platform/bulk_load.load_rows).
    """
    now = service.clock()

    staged = None if staging is None or chunks is None else _BulkStaging(staging)

    def load_row(number: int, raw: Mapping[str, Any]) -> tuple[RowOutcome, tuple[EventEnvelope, ...]]:
        checked = None if staged is None else staged.checked(raw)
        return _upsert_row(service, raw, number, now=now, actor=actor, checked=checked)

    return load_rows(
        rows,
        load_row,
        first_row_number=first_row_number,
        on_progress=on_progress,
        chunks=chunks,
        staging=staged,
        row_numbers=row_numbers,
    )


def bulk_partition_keys(raw: object) -> tuple[str, ...]:
    """What two operator rows describing the same patient share: the last name (matching also
    needs email and birth date), so rows with different last names may load side by side
    (platform/bulk_load.partition_rows)."""
    if not isinstance(raw, Mapping):
        return ()
    name = loose_text(raw.get("last_name"))
    return (name,) if name else ()


class _BulkStaging:
    """A chunk of operator rows staged by what they match: last name and birth date."""

    def __init__(self, staging: PatientStaging) -> None:
        self._staging = staging
        self._checked: dict[int, tuple[object, tuple[dict[str, Any], PatientPatch]]] = {}

    def checked(self, raw: object) -> tuple[dict[str, Any], PatientPatch] | None:
        """The row's values and patch as `begin` validated them (None: invalid, or not of this
        chunk)."""
        found = self._checked.get(id(raw))
        return found[1] if found is not None and found[0] is raw else None

    def begin(self, rows: Sequence[Mapping[str, Any]]) -> None:
        identities: set[tuple[str, date]] = set()
        self._checked = {}
        for raw in rows:
            if not isinstance(raw, Mapping):
                continue
            values = _from_flat(raw)
            try:
                patch = validated(PatientPatch, values)
            except PatientValidationError:
                continue  # rejected (validated again for the report) when its turn comes
            self._checked[id(raw)] = (raw, (values, patch))
            if patch.last_name is not None and patch.birth_date is not None:
                identities.add((patch.last_name, patch.birth_date))
        self._staging.begin_identities(identities)

    def flush(self) -> None:
        self._staging.flush()

    def end(self) -> None:
        self._checked = {}
        self._staging.end()


def _upsert_row(
    service: PatientService,
    raw: Mapping[str, Any],
    number: int,
    *,
    now: datetime,
    actor: str,
    checked: tuple[dict[str, Any], PatientPatch] | None = None,
) -> tuple[RowOutcome, tuple[EventEnvelope, ...]]:
    """`checked`: the row's values and patch, when a staged chunk validated them already."""
    if checked is not None:
        values, patch = checked
    elif not isinstance(raw, Mapping):
        raise PatientValidationError.for_fields(
            {"row": FieldRuleError("not_an_object", "eine Zeile muss ein Objekt mit Patientenfeldern sein")}
        )
    else:
        values = _from_flat(raw)
        patch = validated(PatientPatch, values)
    unmatched = [name for name in ("email", "last_name", "birth_date") if getattr(patch, name) is None]
    if unmatched:
        raise PatientValidationError.for_fields(
            {
                name: FieldRuleError(
                    "missing", "Pflichtfeld: damit wird mit vorhandenen Patienten abgeglichen"
                )
                for name in unmatched
            }
        )
    assert patch.email is not None and patch.last_name is not None and patch.birth_date is not None
    reason = f"bulk load row {number}"
    with service.unit_of_work() as uow:
        matches = uow.patients.find_by_identity(
            email=patch.email, last_name=patch.last_name, birth_date=patch.birth_date
        )
    if len(matches) > 1:
        ids = ", ".join(str(match.id) for match in matches)
        raise ConflictError(f"matches {len(matches)} patients ({ids}); merge the duplicates first")
    if matches:
        patched = patch_patient(service, matches[0].id, patch, actor=actor, reason=reason, now=now)
        return ("updated" if patched.events else "unchanged"), patched.events
    draft = validated(PatientDraft, {key: value for key, value in values.items() if key != "status"})
    registered = register_patient(service, draft, actor=actor, status=patch.status, reason=reason, now=now)
    return "created", registered.events


# The patient's status follows their search (domain.md, state machines).
STATUS_BY_SEARCH_STATUS: Final[dict[SearchStatus, PatientStatus]] = {
    SearchStatus.ACTIVE: PatientStatus.SEARCHING,
    SearchStatus.PAUSED: PatientStatus.OPEN,
    SearchStatus.PLACED: PatientStatus.IN_THERAPY,
    SearchStatus.CANCELLED: PatientStatus.SEARCH_CANCELLED,
}


def follow_search_status(
    uow: PatientUnitOfWork, envelope: EventEnvelope, *, geocoder: Geocoder, now: datetime
) -> Outcome[Patient | None]:
    """`search.status_changed` (payload: contracts.searches.SearchStatusChanged): set the
    patient's status from the search's, in the consumer's open transaction (which also claims
    the eventId and commits). A redelivery changes nothing; an erased or unknown patient is left
    alone (value None). A payload the contract refuses can never be applied: PoisonMessageError."""
    try:
        change = SearchStatusChanged.model_validate(envelope.payload)
    except ValidationError as error:
        fields = ", ".join(".".join(str(part) for part in e["loc"]) for e in error.errors())
        raise PoisonMessageError(f"payload refused by contracts.searches ({fields})") from error
    current = uow.patients.get(change.patient_id, for_update=True)
    if current is None:
        return Outcome(None)
    status = STATUS_BY_SEARCH_STATUS[change.status]
    if current.status is status:
        return Outcome(current)
    saved = _save_revision(
        uow,
        current,
        validated(PatientDraft, current.profile()),
        status,
        geocoder=geocoder,
        now=now,
        actor="system:matching",
        reason=f"search {change.status}",
    )
    return Outcome(saved.value, saved.events)


def contact_card(unit_of_work: Callable[[], PatientUnitOfWork], patient_id: uuid.UUID) -> PatientContactCard:
    """What the communication service may know of a patient when it writes to them
    (contracts/contacts.py): name, salutation, email, travel radius, whether the address is
    flagged; `erased` or `unknown` otherwise. Events carry none of it."""
    with unit_of_work() as uow:
        patient = uow.patients.get(patient_id)
        if patient is None:
            erased = uow.patients.erased_at(patient_id) is not None
            return PatientContactCard(
                id=patient_id, state=ContactState.ERASED if erased else ContactState.UNKNOWN
            )
    return PatientContactCard(
        id=patient.id,
        state=ContactState.FOUND,
        salutation=patient.salutation,
        gender=patient.gender,
        first_name=patient.first_name,
        last_name=patient.last_name,
        email=patient.email,
        max_travel_km=min(max(patient.max_travel_km, 1), 500),
        location_flagged=patient.location_flagged,
    )
