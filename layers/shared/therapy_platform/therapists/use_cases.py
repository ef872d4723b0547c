"""Therapist use cases: staff edits through the API, status changes, the cooling period, the
operators' bulk load, and cooling periods the matching service starts. Every change writes its
audit entry and its event in the same transaction as the change itself; the unit of work's
after-commit hook publishes the event. Each use case returns an `Outcome`."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from datetime import date, datetime
from typing import Any, Final

from therapy_platform.contracts.contacts import ContactState, TherapistContactCard
from therapy_platform.contracts.personal_data import (
    DataSubject,
    PersonalDataExport,
    PersonalDataPart,
    PersonalDataParts,
    PersonalDataRequest,
)
from therapy_platform.platform.bulk_load import BulkReport, Chunks, RowOutcome, load_rows, loose_text
from therapy_platform.platform.clock import platform_today
from therapy_platform.platform.errors import ConflictError, DependencyUnavailableError, NotFoundError
from therapy_platform.platform.events import EventEnvelope
from therapy_platform.platform.geography.locations import Location
from therapy_platform.platform.geography.ports import Geocoder
from therapy_platform.platform.outcome import Outcome
from therapy_platform.platform.preconditions import check_version, entity_tag
from therapy_platform.platform.publishing import record_event
from therapy_platform.platform.validation import FieldRuleError, validate_as
from therapy_platform.therapists.domain.therapist import (
    OPT_OUT_FIELDS,
    PRODUCER,
    ContactOptOutReason,
    CoolingPeriod,
    CoolingPeriodChange,
    Therapist,
    TherapistAction,
    TherapistAuditEntry,
    TherapistDraft,
    TherapistImportRow,
    TherapistPatch,
    TherapistQuery,
    TherapistStatus,
    TherapistValidationError,
    check_cooling_date,
    field_values,
    practice_key,
)
from therapy_platform.therapists.ports import TherapistRepository, TherapistStaging, TherapistUnitOfWork

EVENT_BY_ACTION: Final = {
    TherapistAction.BLOCK: "therapist.blocked",
    TherapistAction.UNBLOCK: "therapist.unblocked",
    TherapistAction.DEACTIVATE: "therapist.updated",
    TherapistAction.REACTIVATE: "therapist.updated",
}
_STATUS_FIELDS: Final = ("status", "block_reason")


def _record_event(
    uow: TherapistUnitOfWork, therapist: Therapist, event_type: str, now: datetime
) -> EventEnvelope:
    return record_event(
        uow.outbox,
        event_type,
        producer=PRODUCER,
        key=therapist.id,
        payload=therapist.event_payload(),
        now=now,
    )


def _store_new(
    uow: TherapistUnitOfWork, therapist: Therapist, *, action: str, actor: str, now: datetime
) -> EventEnvelope:
    """Add a therapist with its audit entry and `therapist.created` (the caller commits)."""
    uow.therapists.add(therapist)
    uow.audit.add(
        TherapistAuditEntry(
            actor=actor,
            action=action,
            entity_id=therapist.id,
            before=None,
            after=therapist.audit_record(),
            at=now,
        )
    )
    return _record_event(uow, therapist, "therapist.created", now)


def _store_change(
    uow: TherapistUnitOfWork,
    current: Therapist,
    updated: Therapist,
    audited: Collection[str],
    *,
    action: str,
    actor: str,
    now: datetime,
    reason: str | None = None,
    event_type: str = "therapist.updated",
) -> EventEnvelope:
    """Store a change with an audit entry holding the `audited` fields before and after, and
    its event (the caller commits)."""
    uow.therapists.update(updated)
    uow.audit.add(
        TherapistAuditEntry(
            actor=actor,
            action=action,
            entity_id=current.id,
            before=field_values(current, audited),
            after=field_values(updated, audited),
            reason=reason,
            at=now,
        )
    )
    return _record_event(uow, updated, event_type, now)


def _locate(geocoder: Geocoder, draft: TherapistDraft) -> Location:
    try:
        return geocoder.locate(postcode=draft.postcode, street=draft.street, city=draft.city)
    except DependencyUnavailableError:
        # Saving the therapist matters more than the coordinates: unknown is flagged for staff
        # and never passes a distance check, and the next address edit locates it again.
        return Location.unknown()


def _relocate(geocoder: Geocoder, current: Therapist, draft: TherapistDraft) -> Location:
    """Geocode again when the address changed, or when the stored location is unknown."""
    if current.address_differs(draft) or not current.location.is_known:
        return _locate(geocoder, draft)
    return current.location


def _validated_draft(values: Mapping[str, Any]) -> TherapistDraft:
    return validate_as(TherapistDraft, values, TherapistValidationError)


def _stored(uow: TherapistUnitOfWork, therapist_id: uuid.UUID) -> Therapist:
    with uow:
        therapist = uow.therapists.get(therapist_id)
    if therapist is None:
        raise NotFoundError(f"therapist {therapist_id} does not exist")
    return therapist


def _locked(uow: TherapistUnitOfWork, therapist_id: uuid.UUID) -> Therapist:
    therapist = uow.therapists.get_for_update(therapist_id)
    if therapist is None:
        raise NotFoundError(f"therapist {therapist_id} does not exist")
    return therapist


def _changed_fields(before: Therapist, after: Therapist, names: Iterable[str]) -> list[str]:
    return [name for name in names if getattr(before, name) != getattr(after, name)]


# ---------------------------------------------------------------------------------------------
# Staff API
# ---------------------------------------------------------------------------------------------


def create_therapist(
    uow: TherapistUnitOfWork, geocoder: Geocoder, draft: TherapistDraft, *, actor: str, now: datetime
) -> Outcome[Therapist]:
    """Store a new therapist. The fields staff typed in count as edited by hand."""
    therapist = Therapist.create(
        draft, location=_locate(geocoder, draft), now=now, staff_edited_fields=draft.model_fields_set
    )
    with uow:
        event = _store_new(uow, therapist, action="create", actor=actor, now=now)
        uow.commit()
    return Outcome(therapist, (event,))


def get_therapist(uow: TherapistUnitOfWork, therapist_id: uuid.UUID) -> Outcome[Therapist]:
    return Outcome(_stored(uow, therapist_id))


def list_therapists(
    uow: TherapistUnitOfWork, filters: Mapping[str, Any], *, now: datetime
) -> Outcome[tuple[Sequence[Therapist], int]]:
    """One page of therapists matching every given filter (the list's query parameters), and
    the total count. A filter value the query refuses (a language that is not ISO 639-1, say)
    is TherapistValidationError naming it."""
    query = validate_as(TherapistQuery, filters, TherapistValidationError, location="query")
    with uow:
        return Outcome(uow.therapists.list(query, today=platform_today(now)))


def _apply_staff_draft(
    uow: TherapistUnitOfWork,
    geocoder: Geocoder,
    current: Therapist,
    draft: TherapistDraft,
    *,
    actor: str,
    action: str,
    now: datetime,
) -> Outcome[Therapist]:
    updated, changed = current.with_fields(
        draft, location=_relocate(geocoder, current, draft), now=now, by_staff=True
    )
    if updated is current:
        return Outcome(current)
    audited = [*changed, *(["location"] if updated.location != current.location else [])]
    event = _store_change(uow, current, updated, audited, action=action, actor=actor, now=now)
    uow.commit()
    return Outcome(updated, (event,))


def replace_therapist(
    uow: TherapistUnitOfWork,
    geocoder: Geocoder,
    therapist_id: uuid.UUID,
    draft: TherapistDraft,
    *,
    actor: str,
    now: datetime,
    if_match: str | None = None,
) -> Outcome[Therapist]:
    """PUT: every editable field takes the draft's value (omitted optional fields are cleared).
    `if_match`: the entity tag the client read; 412 when the therapist changed since."""
    with uow:
        current = _locked(uow, therapist_id)
        check_version(if_match, entity_tag(current), what="therapist")
        return _apply_staff_draft(uow, geocoder, current, draft, actor=actor, action="replace", now=now)


def patch_therapist(
    uow: TherapistUnitOfWork,
    geocoder: Geocoder,
    therapist_id: uuid.UUID,
    patch: TherapistPatch,
    *,
    actor: str,
    now: datetime,
    if_match: str | None = None,
) -> Outcome[Therapist]:
    """PATCH: only the fields sent change; rules across fields are checked on the result.
    `if_match` as for PUT."""
    with uow:
        current = _locked(uow, therapist_id)
        check_version(if_match, entity_tag(current), what="therapist")
        draft = _validated_draft({**current.editable_values(), **patch.changes()})
        return _apply_staff_draft(uow, geocoder, current, draft, actor=actor, action="patch", now=now)


def change_status(
    uow: TherapistUnitOfWork,
    therapist_id: uuid.UUID,
    action: TherapistAction,
    *,
    reason: str,
    actor: str,
    now: datetime,
) -> Outcome[Therapist]:
    """Block, unblock, deactivate (soft delete) or reactivate; illegal moves are 409.
    Deactivating an inactive therapist changes nothing (DELETE is idempotent)."""
    with uow:
        current = _locked(uow, therapist_id)
        if action is TherapistAction.DEACTIVATE and current.status is TherapistStatus.INACTIVE:
            return Outcome(current)
        updated = current.transition(action, reason=reason, now=now)
        event = _store_change(
            uow,
            current,
            updated,
            _STATUS_FIELDS,
            action=str(action),
            actor=actor,
            now=now,
            reason=reason,
            event_type=EVENT_BY_ACTION[action],
        )
        uow.commit()
    return Outcome(updated, (event,))


def get_cooling_period(
    uow: TherapistUnitOfWork, therapist_id: uuid.UUID, *, now: datetime
) -> Outcome[CoolingPeriod]:
    return Outcome(_stored(uow, therapist_id).cooling_period(platform_today(now)))


def set_cooling_period(
    uow: TherapistUnitOfWork,
    therapist_id: uuid.UUID,
    change: CoolingPeriodChange,
    *,
    actor: str,
    now: datetime,
) -> Outcome[CoolingPeriod]:
    """Staff set or end a cooling period by hand; audited with before, after and reason."""
    today = platform_today(now)
    check_cooling_date(change.next_contact_allowed_on, today=today)
    with uow:
        current = _locked(uow, therapist_id)
        if current.next_contact_allowed_on == change.next_contact_allowed_on:
            return Outcome(current.cooling_period(today))
        updated = current.with_cooling_period(change.next_contact_allowed_on, now=now)
        event = _store_change(
            uow,
            current,
            updated,
            ["next_contact_allowed_on"],
            action="set_cooling_period",
            actor=actor,
            now=now,
            reason=change.reason,
        )
        uow.commit()
    return Outcome(updated.cooling_period(today), (event,))


# ---------------------------------------------------------------------------------------------
# The therapist's right to object (GDPR Art. 21)
# ---------------------------------------------------------------------------------------------


def opt_out(
    uow: TherapistUnitOfWork,
    therapist_id: uuid.UUID,
    reason: ContactOptOutReason,
    *,
    actor: str,
    now: datetime,
) -> Outcome[Therapist]:
    """The therapist objects to further inquiries: matching sends them no bundle any more, and
    no directory import undoes it (only `opt_in`). Audited (action `contact_opt_out`, the
    reason code) and published as `therapist.updated` (`contact_opt_out: true`). Idempotent:
    an opted-out therapist stays as recorded first, with no new audit entry or event (a
    redelivered objection, staff clicking twice)."""
    with uow:
        current = _locked(uow, therapist_id)
        updated = current.opted_out(reason, now=now)
        if updated is current:
            return Outcome(current)
        event = _store_change(
            uow,
            current,
            updated,
            OPT_OUT_FIELDS,
            action="contact_opt_out",
            actor=actor,
            now=now,
            reason=str(reason),
        )
        uow.commit()
    return Outcome(updated, (event,))


def opt_in(
    uow: TherapistUnitOfWork,
    therapist_id: uuid.UUID,
    *,
    reason: str,
    actor: str,
    now: datetime,
    if_match: str | None = None,
) -> Outcome[Therapist]:
    """An admin allows contact again (the therapist asked for it). `if_match`: the entity tag
    the admin read (412 when the therapist changed since, e.g. a new objection arrived).
    Audited with the reason; `therapist.updated` with `contact_opt_out: false`. A therapist
    who has not opted out is left as is."""
    with uow:
        current = _locked(uow, therapist_id)
        check_version(if_match, entity_tag(current), what="therapist")
        updated = current.opted_in(now=now)
        if updated is current:
            return Outcome(current)
        event = _store_change(
            uow,
            current,
            updated,
            OPT_OUT_FIELDS,
            action="contact_opt_in",
            actor=actor,
            now=now,
            reason=reason,
        )
        uow.commit()
    return Outcome(updated, (event,))


def apply_opt_out_reply(
    uow: TherapistUnitOfWork, therapist_id: uuid.UUID, *, now: datetime
) -> Outcome[Therapist | None]:
    """`email.opt_out_received`: the therapist replied that they want no more inquiries. Same
    as a staff opt-out with reason `reply` (idempotent); None when the therapist is unknown."""
    try:
        outcome = opt_out(uow, therapist_id, ContactOptOutReason.REPLY, actor="system:communication", now=now)
    except NotFoundError:
        return Outcome(None)
    return Outcome(outcome.value, outcome.events)


# ---------------------------------------------------------------------------------------------
# Operator bulk load
# ---------------------------------------------------------------------------------------------


def _match_existing(repository: TherapistRepository, row: TherapistImportRow) -> Therapist | None:
    """The stored therapist a row describes: same directory id, else same email + last name +
    postcode. A first name in the row must agree as well: two therapists of one practice may
    share email and surname, and merging them would silently overwrite a person, while a
    duplicate is visible and staff can resolve it."""
    if row.directory_id is not None:
        found = repository.find_by_directory_id(row.directory_id)
        if found is not None:
            return found
    if row.email is None or row.last_name is None or row.postcode is None:
        return None
    candidates = [
        therapist
        for therapist in repository.find_by_contact(
            email=row.email, last_name=row.last_name, postcode=row.postcode
        )
        if therapist.directory_id is None
        or row.directory_id is None
        or therapist.directory_id == row.directory_id
    ]
    if row.first_name is not None:
        wanted = row.first_name.casefold()
        candidates = [therapist for therapist in candidates if therapist.first_name.casefold() == wanted]
    if len(candidates) > 1:
        ids = ", ".join(str(therapist.id) for therapist in candidates)
        raise ConflictError(
            f"matches {len(candidates)} therapists by email, name and postcode ({ids}); add a directory_id"
        )
    return candidates[0] if candidates else None


def _upsert_row(
    uow: TherapistUnitOfWork,
    geocoder: Geocoder,
    raw: object,
    *,
    actor: str,
    now: datetime,
    validated: TherapistImportRow | None = None,
) -> tuple[RowOutcome, list[EventEnvelope]]:
    if validated is not None:
        return _upsert_valid_row(uow, geocoder, validated, actor=actor, now=now)
    if not isinstance(raw, Mapping):
        raise TherapistValidationError.for_fields(
            {
                "row": FieldRuleError(
                    "not_an_object", "eine Zeile muss ein Objekt aus Feldnamen und Werten sein"
                )
            }
        )
    row = validate_as(TherapistImportRow, raw, TherapistValidationError)
    return _upsert_valid_row(uow, geocoder, row, actor=actor, now=now)


def _upsert_valid_row(
    uow: TherapistUnitOfWork, geocoder: Geocoder, row: TherapistImportRow, *, actor: str, now: datetime
) -> tuple[RowOutcome, list[EventEnvelope]]:
    provided = row.provided()
    with uow:
        match = _match_existing(uow.therapists, row)
        if match is None:
            draft = _validated_draft(provided)
            therapist = Therapist.create(
                draft, location=_locate(geocoder, draft), now=now, directory_id=row.directory_id
            )
            event = _store_new(uow, therapist, action="bulk_create", actor=actor, now=now)
            uow.commit()
            return "created", [event]
        current = _locked(uow, match.id)
        # Fields staff edited by hand are theirs: a load never overwrites them.
        incoming = {
            name: value for name, value in provided.items() if name not in current.staff_edited_fields
        }
        draft = _validated_draft({**current.editable_values(), **incoming})
        updated, _ = current.with_fields(
            draft, location=_relocate(geocoder, current, draft), now=now, by_staff=False
        )
        if current.directory_id is None and row.directory_id is not None:
            updated = updated.model_copy(update={"directory_id": row.directory_id, "updated_at": now})
        audited = _changed_fields(current, updated, [*incoming, "directory_id", "location"])
        if not audited:
            return "unchanged", []
        event = _store_change(uow, current, updated, audited, action="bulk_update", actor=actor, now=now)
        uow.commit()
        return "updated", [event]


def bulk_upsert(
    uow: TherapistUnitOfWork,
    geocoder: Geocoder,
    rows: Iterable[object],
    *,
    actor: str,
    now: datetime,
    first_row_number: int = 1,
    on_progress: Callable[[int], None] | None = None,
    chunks: Chunks | None = None,
    staging: TherapistStaging | None = None,
    row_numbers: Iterable[int] | None = None,
) -> Outcome[BulkReport]:
    """Create or update therapists from operator rows, one transaction per row so a bad row
    never undoes good ones. Rows are numbered from `first_row_number` in the report (or by
    `row_numbers`: a part of a file, split by `bulk_partition_keys`).
    Events go to the outbox (the unit of work's hook, if any, publishes them; else the
    scheduled relay). The report lists their ids; the outcome does not repeat the events (a
    load may write tens of thousands). With `chunks` (the unit of work joining that shared
    transaction), rows commit a chunk at a time, each row still in its own savepoint. With
    `staging` as well, each chunk is matched with one read and written with one statement per
    table; only a chunk the database refuses runs row by row (platform/bulk_load.load_rows)."""
    staged = None if staging is None or chunks is None else _BulkStaging(staging)
    return Outcome(
        load_rows(
            rows,
            lambda _, raw: _upsert_row(
                uow,
                geocoder,
                raw,
                actor=actor,
                now=now,
                validated=None if staged is None else staged.validated(raw),
            ),
            first_row_number=first_row_number,
            on_progress=on_progress,
            chunks=chunks,
            staging=staged,
            row_numbers=row_numbers,
        )
    )


def bulk_partition_keys(raw: object) -> tuple[str, ...]:
    """What two operator rows describing the same therapist share (`_match_existing`): the
    directory id, or else the last name (with email and postcode), so rows with neither key in
    common may load side by side (platform/bulk_load.partition_rows)."""
    if not isinstance(raw, Mapping):
        return ()
    keys = [f"directory:{text}" for text in [loose_text(raw.get("directory_id"))] if text]
    keys += [f"name:{text}" for text in [loose_text(raw.get("last_name"))] if text]
    return tuple(keys)


class _BulkStaging:
    """A chunk of operator rows staged by what they may match: directory ids and practices."""

    def __init__(self, staging: TherapistStaging) -> None:
        self._staging = staging
        self._valid: dict[int, tuple[object, TherapistImportRow]] = {}

    def validated(self, raw: object) -> TherapistImportRow | None:
        """The row as `begin` validated it (None: invalid, or not of this chunk)."""
        found = self._valid.get(id(raw))
        return found[1] if found is not None and found[0] is raw else None

    def begin(self, rows: Sequence[object]) -> None:
        directory_ids: set[str] = set()
        practices: set[str] = set()
        self._valid = {}
        for raw in rows:
            if not isinstance(raw, Mapping):
                continue  # rejected when its turn comes
            try:
                row = validate_as(TherapistImportRow, raw, TherapistValidationError)
            except TherapistValidationError:
                continue  # rejected (validated again for the report) when its turn comes
            self._valid[id(raw)] = (raw, row)
            if row.directory_id is not None:
                directory_ids.add(row.directory_id)
            key = practice_key(row.email)
            if key is not None:
                practices.add(key)
        self._staging.begin_keys(directory_ids=directory_ids, practice_keys=practices)

    def flush(self) -> None:
        self._staging.flush()

    def end(self) -> None:
        self._valid = {}
        self._staging.end()


# ---------------------------------------------------------------------------------------------
# Events from the matching service
# ---------------------------------------------------------------------------------------------


def apply_matching_cooling(
    uow: TherapistUnitOfWork, therapist_id: uuid.UUID, until: date, *, cause: str, now: datetime
) -> Outcome[Therapist | None]:
    """`cooling.period_started`: the therapist answered (or ignored) a bundle, so no contact
    before `until`. A later date staff set by hand stays (cooling only ever grows here); a
    redelivery changes nothing. The value is None when the therapist no longer exists."""
    with uow:
        current = uow.therapists.get_for_update(therapist_id)
        if current is None:
            return Outcome(None)
        if current.next_contact_allowed_on is not None and current.next_contact_allowed_on >= until:
            return Outcome(current)
        updated = current.with_cooling_period(until, now=now)
        event = _store_change(
            uow,
            current,
            updated,
            ["next_contact_allowed_on"],
            action="set_cooling_period",
            actor="system:matching",
            now=now,
            reason=f"cooling period after bundle {cause}",
        )
        uow.commit()
    return Outcome(updated, (event,))


def export_therapist(
    unit_of_work: Callable[[], TherapistUnitOfWork],
    parts: PersonalDataParts,
    therapist_id: uuid.UUID,
    *,
    actor: str,
    clock: Callable[[], datetime],
) -> Outcome[PersonalDataExport]:
    """Everything the platform holds about one therapist, from every service (GDPR Art. 15/20):
    the therapist service's part (the record and its audit trail), then every other service's
    part. Only a complete export is answered and audited (action `export`); a failing part fails
    it (InternalCallError, 502) and writes nothing. Unknown therapist: NotFoundError."""
    request = PersonalDataRequest(
        subject=DataSubject.THERAPIST, subject_id=therapist_id, request_id=uuid.uuid4()
    )
    with unit_of_work() as uow:
        therapist = uow.therapists.get(therapist_id)
        if therapist is None:
            raise NotFoundError(f"therapist {therapist_id} does not exist")
        own = PersonalDataPart(
            service="therapists",
            request_id=request.request_id,
            subject=request.subject,
            subject_id=therapist_id,
            records={
                "therapists": [therapist.model_dump(mode="json")],
                "audit_log": uow.audit.entries_of(therapist_id),
            },
        )
    others = parts.collect(request)
    now = clock()
    with unit_of_work() as uow:
        services = [own.service, *(part.service for part in others)]
        detail = {"request_id": str(request.request_id), "services": services}
        uow.audit.add(
            TherapistAuditEntry(
                actor=actor, action="export", entity_id=therapist_id, before=None, after=detail, at=now
            )
        )
        uow.commit()
    export = PersonalDataExport(
        request_id=request.request_id,
        subject=request.subject,
        subject_id=therapist_id,
        exported_at=now,
        parts=[own, *others],
    )
    return Outcome(export)


def contact_card(uow: TherapistUnitOfWork, therapist_id: uuid.UUID) -> TherapistContactCard:
    """What the communication service may know of a therapist when it writes, calls or names
    them to a placed patient (contracts/contacts.py); `unknown` for an id never stored. Events
    carry none of it."""
    with uow:
        therapist = uow.therapists.get(therapist_id)
    if therapist is None:
        return TherapistContactCard(id=therapist_id, state=ContactState.UNKNOWN)
    return TherapistContactCard.model_validate(
        {
            **therapist.model_dump(
                mode="json",
                include={
                    "salutation",
                    "gender",
                    "title",
                    "first_name",
                    "last_name",
                    "street",
                    "postcode",
                    "city",
                    "phone",
                    "email",
                    "website",
                    "phone_windows",
                },
            ),
            "id": therapist.id,
            "state": ContactState.FOUND,
        }
    )
