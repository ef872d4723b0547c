"""The therapist service's REST routes (/api/v2/therapists; the API function's resolver
registers them): create, list, read, replace, patch, delete, block/unblock/reactivate and the
cooling period. Each route parses, calls one use case with the service the function built, and
answers; domain errors map to HTTP in the platform resolver. Logs carry ids only.

Deleting a therapist is a soft delete: the status becomes `inactive` and every field is kept.
Bundles, responses, cooling periods and the matching service's history refer to the therapist,
and staff may still need the contact data to close open bundles; an inactive therapist simply
never receives new bundles. `POST .../reactivate` undoes it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Final

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.openapi.params import Path, Query

from therapy_platform.contracts.languages import LanguageCode
from therapy_platform.contracts.personal_data import PersonalDataExport
from therapy_platform.contracts.therapy import TherapyProcedure
from therapy_platform.platform.preconditions import entity_tag, require_if_match
from therapy_platform.platform.rest.operations import Tag, operation
from therapy_platform.platform.rest.pagination import DEFAULT_LIMIT, MAX_LIMIT, MAX_PAGE, Page
from therapy_platform.platform.rest.resolver import (
    IdempotencyKeyHeader,
    IfMatchHeader,
    created,
    current_actor,
    tagged,
)
from therapy_platform.therapists import erasure as erase
from therapy_platform.therapists import use_cases
from therapy_platform.therapists.domain.erasure import ErasureResult
from therapy_platform.therapists.domain.therapist import (
    ContactOptIn,
    ContactOptOut,
    CoolingPeriod,
    CoolingPeriodChange,
    SortKey,
    StatusChange,
    Therapist,
    TherapistAction,
    TherapistDraft,
    TherapistPatch,
    TherapistStatus,
)

if TYPE_CHECKING:
    from therapy_platform.therapists.bootstrap import TherapistService

BASE: Final = "/api/v2/therapists"
TherapistId = Annotated[uuid.UUID, Path(description="Therapist id (UUID)")]
Flag = Annotated[bool | None, Query()]
NOT_FOUND: Final = {404: "No therapist with this id"}


def register_routes(
    app: APIGatewayRestResolver, service: Callable[[], TherapistService], logger: Logger
) -> None:
    """`service` is asked on every request, so tests can swap the function's service; `logger`
    is the function's, so these routes log like the rest of it."""

    def actor() -> str:
        return current_actor(app)

    @app.post(
        BASE,
        **operation(
            "createTherapist",
            Tag.THERAPISTS,
            "Add a therapist",
            "Stores a therapist entered by staff (most arrive through the directory import) and "
            "locates the practice address. Emits `therapist.created`.",
            ok="The new therapist",
            status=201,
            location="The new therapist: /api/v2/therapists/{id}",
        ),
    )
    def create_therapist(
        draft: TherapistDraft, idempotency_key: IdempotencyKeyHeader = None
    ) -> Response[Therapist]:
        del idempotency_key  # the resolver answers a repeated key (platform/idempotency.py)
        s = service()
        therapist = use_cases.create_therapist(
            s.unit_of_work(), s.geocoder(), draft, actor=actor(), now=s.clock()
        ).value
        logger.info("therapist created", extra={"therapist_id": str(therapist.id)})
        return created(therapist, f"{BASE}/{therapist.id}")

    @app.get(
        BASE,
        **operation(
            "listTherapists",
            Tag.THERAPISTS,
            "List therapists",
            "One page of therapists matching every filter given, with the total over all pages. "
            "`q` searches name, city and email.",
            ok="One page of therapists",
        ),
    )
    def list_therapists(
        status: Annotated[TherapistStatus | None, Query(description="active, blocked or inactive")] = None,
        postcode_prefix: Annotated[
            str | None, Query(pattern=r"^\d{1,5}$", description="1-5 leading digits of the postcode")
        ] = None,
        procedure: Annotated[TherapyProcedure | None, Query(description="Offers this procedure")] = None,
        language: Annotated[LanguageCode | None, Query(description="Speaks this ISO 639-1 language")] = None,
        offers_group_therapy: Flag = None,
        potentially_available: Flag = None,
        in_cooling_period: Annotated[
            bool | None,
            Query(description="true: cooling period ends after today; false: contactable today"),
        ] = None,
        q: Annotated[
            str | None, Query(max_length=100, description="Free text in name, city or email")
        ] = None,
        page: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 1,
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
        sort: Annotated[SortKey, Query(description="Sort key; a leading - sorts descending")] = "created_at",
    ) -> Page[Therapist]:
        filters = {
            "status": status,
            "postcode_prefix": postcode_prefix,
            "procedure": procedure,
            "language": language,
            "offers_group_therapy": offers_group_therapy,
            "potentially_available": potentially_available,
            "in_cooling_period": in_cooling_period,
            "q": q,
            "page": page,
            "limit": limit,
            "sort": sort,
        }
        s = service()
        items, total = use_cases.list_therapists(s.unit_of_work(), filters, now=s.clock()).value
        return Page[Therapist](items=list(items), total=total, page=page, limit=limit)

    @app.get(
        f"{BASE}/<therapist_id>",
        **operation(
            "getTherapist",
            Tag.THERAPISTS,
            "Read one therapist",
            "The full record, including the cooling period and which fields staff edited.",
            ok="The therapist",
            errors=NOT_FOUND,
        ),
    )
    def read_therapist(therapist_id: TherapistId) -> Response[Therapist]:
        therapist = use_cases.get_therapist(service().unit_of_work(), therapist_id).value
        return tagged(therapist, entity_tag(therapist))

    @app.put(
        f"{BASE}/<therapist_id>",
        **operation(
            "replaceTherapist",
            Tag.THERAPISTS,
            "Replace a therapist's record",
            "Full update of the editable fields; the fields staff change are kept by later directory "
            "imports. Relocates the address when it changed. Emits `therapist.updated`.",
            ok="The therapist as stored",
            errors=NOT_FOUND,
        ),
    )
    def replace_therapist(
        therapist_id: TherapistId, draft: TherapistDraft, if_match: IfMatchHeader = None
    ) -> Response[Therapist]:
        expected = require_if_match(if_match, what="therapist")
        s = service()
        therapist = use_cases.replace_therapist(
            s.unit_of_work(),
            s.geocoder(),
            therapist_id,
            draft,
            actor=actor(),
            now=s.clock(),
            if_match=expected,
        ).value
        return tagged(therapist, entity_tag(therapist))

    @app.patch(
        f"{BASE}/<therapist_id>",
        **operation(
            "updateTherapist",
            Tag.THERAPISTS,
            "Change some of a therapist's fields",
            "Partial update: only the fields sent change; `null` clears an optional field. The "
            "fields staff change are kept by later directory imports. Emits `therapist.updated`.",
            ok="The therapist as stored",
            errors=NOT_FOUND,
        ),
    )
    def patch_therapist(
        therapist_id: TherapistId, patch: TherapistPatch, if_match: IfMatchHeader = None
    ) -> Response[Therapist]:
        expected = require_if_match(if_match, what="therapist")
        s = service()
        therapist = use_cases.patch_therapist(
            s.unit_of_work(),
            s.geocoder(),
            therapist_id,
            patch,
            actor=actor(),
            now=s.clock(),
            if_match=expected,
        ).value
        return tagged(therapist, entity_tag(therapist))

    @app.get(
        f"{BASE}/<therapist_id>/export",
        **operation(
            "exportTherapist",
            Tag.THERAPISTS,
            "Export everything about a therapist (GDPR)",
            "Every datum the platform holds about the therapist, from every service, as one JSON "
            "document (right of access, Art. 15; portability, Art. 20): the therapist service's "
            "record and audit trail, then each other service's part (matching: bundles addressed to "
            "them without their members, cooling period, exclusions; communication: contact copy, "
            "emails, delivery attempts, phone-call tasks, replies). The export is audited. When a "
            "service cannot answer, nothing is returned (502) rather than an incomplete export.",
            ok="The therapist's data from every service",
            errors={**NOT_FOUND, 502: "A service could not contribute its part; retry later"},
        ),
    )
    def export_therapist(therapist_id: TherapistId) -> PersonalDataExport:
        s = service()
        exported = use_cases.export_therapist(
            s.unit_of_work, s.personal_data_parts, therapist_id, actor=actor(), clock=s.clock
        ).value
        logger.info(
            "therapist exported",
            extra={"therapist_id": str(therapist_id), "services": [part.service for part in exported.parts]},
        )
        return exported

    @app.post(
        f"{BASE}/<therapist_id>/erase",
        **operation(
            "eraseTherapist",
            Tag.THERAPISTS,
            "Erase a therapist (GDPR)",
            "Right to erasure (Art. 17), for a therapist who asks to be removed; cannot be undone. "
            "Deletes the therapist's record, directory listings and import-report entries; the audit "
            "trail keeps who did what when, without values. Emits `therapist.deleted` (the id only): "
            "the matching service withdraws open bundles to the therapist and drops them from its "
            "read model, the communication service scrubs emails, replies and phone-call tasks and "
            "cancels queued emails. Directory imports never re-create the therapist (suppression "
            "keys: SHA-256 digests, no clear data). Repeating it answers 200 with `erased_now` false.",
            ok="The erasure: when, and whether this call did it",
            errors={404: "No therapist with this id was ever known"},
        ),
    )
    def erase_therapist(therapist_id: TherapistId) -> ErasureResult:
        s = service()
        result = erase.erase_therapist(s.unit_of_work(), therapist_id, actor=actor(), now=s.clock()).value
        logger.info(
            "therapist erased", extra={"therapist_id": str(therapist_id), "erased_now": result.erased_now}
        )
        return result

    @app.delete(
        f"{BASE}/<therapist_id>",
        **operation(
            "deleteTherapist",
            Tag.THERAPISTS,
            "Deactivate a therapist",
            "Soft delete: the status becomes `inactive` and every field is kept (bundles and "
            "histories refer to the therapist); an inactive therapist gets no new bundles. Repeating it "
            "is harmless; `reactivateTherapist` undoes it.",
            ok="The therapist, now inactive",
            errors=NOT_FOUND,
        ),
    )
    def delete_therapist(
        therapist_id: TherapistId,
        reason: Annotated[
            str | None, Query(max_length=500, description="Why (kept in the audit log)")
        ] = None,
    ) -> Therapist:
        """Soft delete: status inactive, data kept (see the module docstring). Repeating it is harmless."""
        return change_status(
            therapist_id, TherapistAction.DEACTIVATE, (reason or "").strip() or "deleted by staff"
        )

    @app.post(
        f"{BASE}/<therapist_id>/block",
        **operation(
            "blockTherapist",
            Tag.THERAPISTS,
            "Block a therapist",
            "A blocked therapist gets no bundles until unblocked; their draft bundles are discarded. "
            "Emits `therapist.blocked`.",
            ok="The therapist, now blocked",
            errors={**NOT_FOUND, 409: "The therapist is not active (`current_status`)"},
        ),
    )
    def block_therapist(therapist_id: TherapistId, change: StatusChange) -> Therapist:
        return change_status(therapist_id, TherapistAction.BLOCK, change.reason)

    @app.post(
        f"{BASE}/<therapist_id>/unblock",
        **operation(
            "unblockTherapist",
            Tag.THERAPISTS,
            "Unblock a therapist",
            "The therapist may get bundles again. Emits `therapist.unblocked`.",
            ok="The therapist, now active",
            errors={**NOT_FOUND, 409: "The therapist is not blocked (`current_status`)"},
        ),
    )
    def unblock_therapist(therapist_id: TherapistId, change: StatusChange) -> Therapist:
        return change_status(therapist_id, TherapistAction.UNBLOCK, change.reason)

    @app.post(
        f"{BASE}/<therapist_id>/reactivate",
        **operation(
            "reactivateTherapist",
            Tag.THERAPISTS,
            "Reactivate an inactive therapist",
            "Undoes `deleteTherapist`: the therapist may get bundles again.",
            ok="The therapist, now active",
            errors={**NOT_FOUND, 409: "The therapist is not inactive (`current_status`)"},
        ),
    )
    def reactivate_therapist(therapist_id: TherapistId, change: StatusChange) -> Therapist:
        return change_status(therapist_id, TherapistAction.REACTIVATE, change.reason)

    def change_status(therapist_id: uuid.UUID, action: TherapistAction, reason: str) -> Therapist:
        s = service()
        therapist = use_cases.change_status(
            s.unit_of_work(), therapist_id, action, reason=reason, actor=actor(), now=s.clock()
        ).value
        logger.info(
            "therapist status changed", extra={"therapist_id": str(therapist_id), "action": str(action)}
        )
        return therapist

    @app.post(
        f"{BASE}/<therapist_id>/opt-out",
        **operation(
            "optOutTherapist",
            Tag.THERAPISTS,
            "Record a therapist's objection to further inquiries",
            "The therapist objected (GDPR Art. 21) on the phone, by email or letter: from now on "
            "matching sends them no bundle, nor their practice's shared mailbox, and no directory "
            "import undoes it. The reason is a code (no free text). Repeating it changes nothing. "
            'Replies saying "keine weiteren Anfragen" are recorded automatically (reason '
            "`reply`). Emits `therapist.updated` with `contact_opt_out: true`.",
            ok="The therapist, opted out",
            errors=NOT_FOUND,
        ),
    )
    def opt_out_therapist(therapist_id: TherapistId, change: ContactOptOut) -> Response[Therapist]:
        s = service()
        therapist = use_cases.opt_out(
            s.unit_of_work(), therapist_id, change.reason, actor=actor(), now=s.clock()
        ).value
        logger.info(
            "therapist opted out", extra={"therapist_id": str(therapist_id), "reason": str(change.reason)}
        )
        return tagged(therapist, entity_tag(therapist))

    @app.post(
        f"{BASE}/<therapist_id>/opt-in",
        **operation(
            "optInTherapist",
            Tag.THERAPISTS,
            "Allow inquiries to a therapist again",
            "Undoes an objection, only when the therapist asked for it (keep the reason). Needs "
            "`If-Match` with the ETag read from `getTherapist` (412 when the record changed since, "
            "428 without). Emits `therapist.updated` with `contact_opt_out: false`.",
            ok="The therapist, contactable again",
            errors=NOT_FOUND,
        ),
    )
    def opt_in_therapist(
        therapist_id: TherapistId, change: ContactOptIn, if_match: IfMatchHeader = None
    ) -> Response[Therapist]:
        expected = require_if_match(if_match, what="therapist")
        s = service()
        therapist = use_cases.opt_in(
            s.unit_of_work(),
            therapist_id,
            reason=change.reason,
            actor=actor(),
            now=s.clock(),
            if_match=expected,
        ).value
        logger.info("therapist opted in", extra={"therapist_id": str(therapist_id)})
        return tagged(therapist, entity_tag(therapist))

    @app.get(
        f"{BASE}/<therapist_id>/cooling-period",
        **operation(
            "getCoolingPeriod",
            Tag.THERAPISTS,
            "Read a therapist's cooling period",
            "After answering a bundle a therapist is not contacted again until `next_contact_allowed_on`.",
            ok="The cooling period",
            errors=NOT_FOUND,
        ),
    )
    def read_cooling_period(therapist_id: TherapistId) -> CoolingPeriod:
        s = service()
        return use_cases.get_cooling_period(s.unit_of_work(), therapist_id, now=s.clock()).value

    @app.put(
        f"{BASE}/<therapist_id>/cooling-period",
        **operation(
            "setCoolingPeriod",
            Tag.THERAPISTS,
            "Set or end a therapist's cooling period",
            "Sets the first day the therapist may be contacted again; `null` ends the cooling period. "
            "The reason is kept in the audit log.",
            ok="The cooling period as stored",
            errors=NOT_FOUND,
        ),
    )
    def set_cooling_period(therapist_id: TherapistId, change: CoolingPeriodChange) -> CoolingPeriod:
        s = service()
        return use_cases.set_cooling_period(
            s.unit_of_work(), therapist_id, change, actor=actor(), now=s.clock()
        ).value
