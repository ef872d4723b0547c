"""Bundle use cases: rounds (scheduled and on demand), staff bundles for a chosen therapist,
sending, recording a response (placements, conflicts, withdrawals, cooling), expiry of
unanswered bundles and the reaction to a blocked therapist.

Every bundle-creating use case takes the store's bundle-creation lock before it reads what it
plans from, so concurrent rounds never give a practice two open bundles nor push a search over
its limits. Everything a use case changes, audits and emits commits in one transaction.
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Final

from therapy_platform.matching.domain.bundles import (
    Bundle,
    BundleKind,
    BundleQuery,
    BundleResponseRequest,
    BundleSent,
    BundleStatus,
    Channel,
    Conflict,
    CoolingPeriodStarted,
    EligibleTherapist,
    LeftOutSearch,
    LeftOutTherapist,
    MemberStatus,
    PairReason,
    PatientSummary,
    Placement,
    ProposedBundle,
    ProposedMember,
    ResponseRecorded,
    RoundRequest,
    RoundResult,
    StaffAlert,
    StaffBundleRequest,
    StaffBundleResult,
    TherapistContact,
    Withdrawal,
    check_bundle_transition,
    distance_band,
)
from therapy_platform.matching.domain.candidates import location_of
from therapy_platform.matching.domain.models import DEFAULT_CONFIG, MatchingConfig, SearchStatus
from therapy_platform.matching.domain.responses import (
    MemberMismatchError,
    MemberOutcome,
    check_member_outcomes,
    cooling_until,
    count_outcomes,
    response_type,
)
from therapy_platform.matching.domain.round import PairDecision, PlannedBundle, plan_round, plan_staff_bundle
from therapy_platform.matching.domain.rules import age_on, decide_practice, group_into_practices
from therapy_platform.matching.ports import MatchingStore, MatchingUnitOfWork
from therapy_platform.matching.use_cases.searches import (
    Changes,
    Result,
    discard_draft,
    status_changed,
    withdraw_pending,
)
from therapy_platform.platform.errors import BadRequestError, ConflictError, NotFoundError
from therapy_platform.platform.geography.locations import distance_km
from therapy_platform.therapists.domain.therapist import platform_today


@dataclass(frozen=True)
class BundleTimings:
    reminder_after_days: int = 7  # a sent bundle unanswered this long needs follow-up (reminder)
    expire_after_days: int = 14  # ... and this long expires


DEFAULT_TIMINGS: Final = BundleTimings()
MAX_EXPLAINED_PAIRS: Final = 5_000  # keeps a dry run's answer well under the 6 MB Lambda response limit


# ------------------------------------------------------------------ helpers


class _PhaseClock:
    def __init__(self, phases: dict[str, float] | None) -> None:
        self._phases = phases
        self._last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        if self._phases is not None:
            self._phases[name] = round(now - self._last, 3)
        self._last = now


def _proposed(plan: PlannedBundle, stored: Bundle | None = None) -> ProposedBundle:
    # Built without validation: the values come from the planner and the store (a national
    # round returns 20,000 of these).
    return ProposedBundle.model_construct(
        therapist_id=plan.therapist_id,
        practice_key=plan.practice_key,
        members=[
            ProposedMember.model_construct(
                search_id=m.search_id, patient_id=m.patient_id, position=m.position
            )
            for m in plan.members
        ],
        applied_filters=list(plan.applied_filters),
        skipped_filters=list(plan.skipped_filters),
        bundle_id=stored.id if stored else None,
        reference=stored.reference if stored else None,
        status=stored.status if stored else None,
    )


def _pairs(pairs: Sequence[PairDecision]) -> list[PairReason]:
    return [
        PairReason(
            therapist_id=p.therapist_id, search_id=p.search_id, reason=p.reason, soft_filter=p.soft_filter
        )
        for p in pairs
    ]


def _bundle_payload(bundle: Bundle) -> dict[str, Any]:
    return bundle.model_dump(mode="json")


def _created(changes: Changes, bundles: Sequence[Bundle]) -> None:
    for bundle in bundles:
        payload = _bundle_payload(bundle)
        changes.event("bundle.created", bundle.id, payload)
        changes.record("bundle.created", "bundle", bundle.id, after=payload)


def patient_summary(
    profile: dict[str, Any], therapist: dict[str, Any] | None, reference: str, today: date
) -> PatientSummary:
    """What the therapist may learn about one listed patient (domain: data protection)."""
    birth = profile.get("birth_date")
    km = None
    if therapist is not None:
        patient_at, therapist_at = location_of(profile), location_of(therapist)
        if patient_at.is_known and therapist_at.is_known:
            km = distance_km(patient_at, therapist_at)
    return PatientSummary(
        reference=reference,
        age=age_on(date.fromisoformat(birth), today) if birth else None,
        gender=profile.get("gender") or "unspecified",
        symptoms=list(profile.get("symptoms") or []),
        health_insurer=profile.get("health_insurer"),
        insurance_type=profile.get("insurance_type"),
        previous_therapy=bool(profile.get("previous_therapy")),
        open_to_group_therapy=bool(profile.get("open_to_group_therapy")),
        group_only=bool(profile.get("group_only")),
        availability=profile.get("availability") or {},
        distance_band=distance_band(km),
    )


def with_summaries(store: MatchingStore, bundle: Bundle, today: date) -> Bundle:
    patients = store.patient_profiles(m.patient_id for m in bundle.members)
    therapist = store.therapist_profiles([bundle.therapist_id]).get(bundle.therapist_id)
    members = []
    for member in bundle.members:
        profile = patients.get(member.patient_id)
        summary = patient_summary(profile, therapist, member.reference, today) if profile else None
        members.append(member.model_copy(update={"patient": summary}))
    return bundle.model_copy(update={"members": members})


def _send(store: MatchingStore, changes: Changes, bundle: Bundle) -> Bundle:
    """draft -> sent: email when the therapist has an address, else a phone call task."""
    check_bundle_transition(bundle.status, BundleStatus.SENT)
    pending = [m for m in bundle.members if m.status == MemberStatus.PENDING]
    if not pending:
        raise ConflictError(
            f"bundle {bundle.reference} has no pending member left; discard it instead",
            details={"bundle_id": str(bundle.id)},
        )
    therapist = store.therapist_profiles([bundle.therapist_id]).get(bundle.therapist_id)
    if therapist is None or therapist.get("status") != "active":
        state = "unknown" if therapist is None else therapist.get("status")
        raise ConflictError(
            f"bundle {bundle.reference} cannot be sent: its therapist is {state}",
            details={"therapist_id": str(bundle.therapist_id), "therapist_status": state},
        )
    channel = Channel.EMAIL if therapist.get("email") else Channel.PHONE
    store.update_bundle(
        bundle.id,
        {
            "status": BundleStatus.SENT.value,
            "sent_at": changes.now,
            "channel": channel.value,
            "updated_at": changes.now,
        },
    )
    sent = bundle.model_copy(
        update={
            "status": BundleStatus.SENT,
            "sent_at": changes.now,
            "channel": channel,
            "updated_at": changes.now,
        }
    )
    sent = with_summaries(store, sent, platform_today(changes.now))
    payload = BundleSent(
        **sent.model_dump(),
        therapist=TherapistContact(
            id=bundle.therapist_id,
            salutation=therapist.get("salutation"),
            gender=therapist.get("gender") or "unspecified",
            title=therapist.get("title"),
            first_name=therapist.get("first_name") or "",
            last_name=therapist.get("last_name") or "",
            email=therapist.get("email"),
            phone=therapist.get("phone"),
            phone_windows=therapist.get("phone_windows") or {},
        ),
    )
    changes.event("bundle.sent", bundle.id, payload.model_dump(mode="json"))
    changes.record(
        "bundle.sent",
        "bundle",
        bundle.id,
        before={"status": "draft"},
        after={"status": "sent", "channel": channel.value},
    )
    return sent


# ------------------------------------------------------------------ rounds


def run_round(
    uow: MatchingUnitOfWork,
    request: RoundRequest,
    *,
    actor: str,
    trigger: str,
    now: datetime,
    config: MatchingConfig = DEFAULT_CONFIG,
    phases: dict[str, float] | None = None,
) -> Result[RoundResult]:
    """`phases`, when given, receives the seconds spent reading, planning and writing (for the
    function's log and the benchmark)."""
    today = platform_today(now)
    clock = _PhaseClock(phases)
    with uow:
        store = uow.store
        if not request.dry_run:
            store.lock_bundle_creation()
        therapists, searches = store.round_inputs(
            therapist_ids=request.therapist_ids, postcode_prefix=request.postcode_prefix
        )
        clock.lap("read")
        # Explaining every pair of a national round would be tens of millions of decisions: only
        # rounds limited to therapists or a region explain theirs.
        limited = request.therapist_ids is not None or request.postcode_prefix is not None
        explain = request.dry_run and limited
        plan = plan_round(therapists, searches, today, config, explain=explain)
        clock.lap("plan")
        result = RoundResult(
            run_date=today,
            dry_run=request.dry_run,
            bundles=[_proposed(b) for b in plan.bundles],
            therapists_left_out=[
                LeftOutTherapist(therapist_id=d.therapist_id, reason=d.reason)
                for d in plan.therapists_left_out
            ],
            searches_left_out=[
                LeftOutSearch(search_id=d.search_id, reason=d.reason) for d in plan.searches_left_out
            ],
            pairs=_pairs(plan.pairs[:MAX_EXPLAINED_PAIRS]),
            pairs_explained=explain,
            pairs_truncated=len(plan.pairs) > MAX_EXPLAINED_PAIRS,
            therapists_considered=len(therapists),
            searches_considered=len(searches),
        )
        if request.dry_run:
            return Result(result)  # nothing written: leaving the block rolls back
        round_id = uuid.uuid4()
        changes = Changes(now, actor)
        parameters = request.model_dump(mode="json")
        store.add_round(
            {
                "id": round_id,
                "run_date": today,
                "started_at": now,
                "trigger": trigger,
                "actor": actor,
                "parameters": parameters,
            }
        )
        stored = store.insert_bundles(
            plan.bundles, kind=BundleKind.ROUND, round_id=round_id, actor=actor, now=now
        )
        _created(changes, stored)
        if request.send_immediately:
            stored = [_send(store, changes, bundle) for bundle in stored]
        summary = {
            "bundles": len(stored),
            "members": sum(b.size for b in stored),
            "therapists_considered": len(therapists),
            "searches_considered": len(searches),
            "sent": request.send_immediately,
        }
        store.finish_round(round_id, finished_at=now, summary=summary)
        changes.record("round.completed", "round", round_id, after={**summary, "parameters": parameters})
        result = result.model_copy(
            update={
                "round_id": round_id,
                "bundles": [_proposed(p, s) for p, s in zip(plan.bundles, stored, strict=True)],
            }
        )
        events = changes.commit(uow)
        clock.lap("write")
        return Result(result, events)


def staff_bundle(
    uow: MatchingUnitOfWork,
    therapist_id: uuid.UUID,
    request: StaffBundleRequest,
    *,
    actor: str,
    now: datetime,
    config: MatchingConfig = DEFAULT_CONFIG,
) -> Result[StaffBundleResult]:
    today = platform_today(now)
    with uow:
        store = uow.store
        if not request.dry_run:
            store.lock_bundle_creation()
        therapists, searches = store.round_inputs(therapist_ids=[therapist_id], search_ids=request.search_ids)
        members = [t for t in therapists if t.id == therapist_id]
        if not members:
            raise NotFoundError(f"therapist {therapist_id} is not known to the matching service")
        practice = [t for t in therapists if t.practice == members[0].practice]
        if request.search_ids is not None:
            found = {s.id for s in searches}
            missing = [str(s) for s in request.search_ids if s not in found]
            if missing:
                raise ConflictError(
                    "these searches are not active or not within reach of the therapist: "
                    + ", ".join(missing),
                    details={"search_ids": missing},
                )
        plan = plan_staff_bundle(
            therapist_id, practice, searches, today, config, size=request.size, search_ids=request.search_ids
        )
        if plan.bundle is None:
            if request.dry_run:
                return Result(
                    StaffBundleResult(
                        dry_run=True,
                        bundle=None,
                        therapist_reason=plan.therapist_reason,
                        pairs=_pairs(plan.pairs),
                    )
                )
            reason = plan.therapist_reason
            raise ConflictError(
                f"no bundle can be built for therapist {therapist_id}: {reason}",
                details={"reason": str(reason), "left_out": len(plan.pairs)},
            )
        if request.dry_run:
            return Result(
                StaffBundleResult(dry_run=True, bundle=_proposed(plan.bundle), pairs=_pairs(plan.pairs))
            )
        changes = Changes(now, actor)
        stored = store.insert_bundles(
            [plan.bundle], kind=BundleKind.STAFF, round_id=None, actor=actor, now=now
        )
        if request.notes:
            store.update_bundle(stored[0].id, {"notes": request.notes})
            stored = [stored[0].model_copy(update={"notes": request.notes})]
        _created(changes, stored)
        if request.send_immediately:
            stored = [_send(store, changes, stored[0])]
        result = StaffBundleResult(
            dry_run=False, bundle=_proposed(plan.bundle, stored[0]), pairs=_pairs(plan.pairs)
        )
        return Result(result, changes.commit(uow))


# ------------------------------------------------------------------ reading


def get_bundle(
    uow: MatchingUnitOfWork, bundle_id: uuid.UUID, *, now: datetime, timings: BundleTimings = DEFAULT_TIMINGS
) -> Bundle:
    with uow:
        bundle = uow.store.bundle(bundle_id, now=now, follow_up_after_days=timings.reminder_after_days)
        if bundle is None:
            raise NotFoundError(f"bundle {bundle_id} does not exist")
        return with_summaries(uow.store, bundle, platform_today(now))


def list_bundles(
    uow: MatchingUnitOfWork, query: BundleQuery, *, now: datetime, timings: BundleTimings = DEFAULT_TIMINGS
) -> tuple[list[Bundle], int]:
    with uow:
        return uow.store.list_bundles(query, now=now, follow_up_after_days=timings.reminder_after_days)


def eligible_therapists(
    uow: MatchingUnitOfWork, postcode_prefix: str, *, now: datetime
) -> list[EligibleTherapist]:
    """The staff selection list: one row per eligible practice (its owner), potentially available
    first, then with email before without, then by name."""
    today = platform_today(now)
    with uow:
        therapists, _ = uow.store.round_inputs(postcode_prefix=postcode_prefix, search_ids=[])
        profiles = uow.store.therapist_profiles(t.id for t in therapists)
    rows = []
    for key, members in group_into_practices(therapists).items():
        decision = decide_practice(members, today)
        if decision.practice is None:
            continue
        owner = decision.practice.owner
        data = profiles[owner.id]
        if not str(data.get("postcode", "")).startswith(postcode_prefix):
            continue
        rows.append(
            EligibleTherapist(
                therapist_id=owner.id,
                title=data.get("title"),
                first_name=data.get("first_name") or "",
                last_name=data.get("last_name") or "",
                postcode=data.get("postcode") or "",
                city=data.get("city"),
                has_email=bool(data.get("email")),
                potentially_available=owner.potentially_available,
                practice_key=key,
                practice_size=len(members),
            )
        )
    rows.sort(
        key=lambda r: (
            not r.potentially_available,
            not r.has_email,
            r.last_name.casefold(),
            r.first_name.casefold(),
            str(r.therapist_id),
        )
    )
    return rows


# ------------------------------------------------------------------ sending


def send_bundle(
    uow: MatchingUnitOfWork, bundle_id: uuid.UUID, *, actor: str, now: datetime
) -> Result[Bundle]:
    with uow:
        store = uow.store
        bundle = store.bundle(bundle_id, now=now, for_update=True)
        if bundle is None:
            raise NotFoundError(f"bundle {bundle_id} does not exist")
        changes = Changes(now, actor)
        sent = _send(store, changes, bundle)
        return Result(sent, changes.commit(uow))


# ------------------------------------------------------------------ responses


def _stored_response(bundle: Bundle) -> dict[str, str]:
    return {str(m.search_id): m.outcome.value for m in bundle.members if m.outcome is not None}


def record_response(
    uow: MatchingUnitOfWork,
    bundle_id: uuid.UUID,
    request: BundleResponseRequest,
    *,
    actor: str,
    now: datetime,
    config: MatchingConfig = DEFAULT_CONFIG,
) -> Result[ResponseRecorded]:
    with uow:
        store = uow.store
        bundle = store.bundle(bundle_id, now=now, for_update=True)
        if bundle is None:
            raise NotFoundError(f"bundle {bundle_id} does not exist")
        outcomes = request.outcomes()
        try:
            check_member_outcomes([m.search_id for m in bundle.members], outcomes)
        except MemberMismatchError as error:
            raise BadRequestError(
                f"the response must list exactly the members of bundle {bundle.reference}: {error}",
                details={"missing": [str(m) for m in error.missing], "extra": [str(e) for e in error.extra]},
            ) from error
        wanted = {str(k): v.value for k, v in outcomes.items()}
        if bundle.status == BundleStatus.ANSWERED:
            if _stored_response(bundle) == wanted:
                return Result(_repeat(store, bundle, now, config))
            raise ConflictError(
                f"bundle {bundle.reference} was already answered "
                f"on {bundle.answered_at:%Y-%m-%d %H:%M} with a different response",
                details={"recorded": _stored_response(bundle)},
            )
        if bundle.status != BundleStatus.SENT:
            raise ConflictError(
                f"bundle {bundle.reference} is {bundle.status.value}: only a sent bundle takes a response",
                details={"current_status": bundle.status.value},
            )
        responded_at = request.responded_at or now
        changes = Changes(now, actor)
        placements: list[Placement] = []
        conflicts: list[Conflict] = []
        withdrawals: list[Withdrawal] = []
        exclusions: list[uuid.UUID] = []
        needs_follow_up: list[tuple[uuid.UUID, uuid.UUID]] = []  # (therapist, conflict alert)
        notes_by_search = {m.search_id: m.notes for m in request.members}
        for member in bundle.members:
            outcome = outcomes[member.search_id]
            values: dict[str, Any] = {
                "outcome": outcome.value,
                "responded_at": responded_at,
                "notes": notes_by_search.get(member.search_id) or member.notes,
            }
            if outcome is MemberOutcome.ACCEPTED:
                status, placed, conflict, withdrawn = _accept(
                    store, changes, bundle, member.search_id, member.patient_id, responded_at
                )
                values["status"] = status.value
                placements += placed
                withdrawals += withdrawn
                if conflict is not None:
                    conflicts.append(conflict)
                    needs_follow_up.append((conflict.therapist_id, conflict.alert_id))
            elif outcome is MemberOutcome.NO_RESPONSE:
                values["status"] = MemberStatus.NO_RESPONSE.value
            else:
                values["status"] = MemberStatus.REJECTED.value
                if outcome is MemberOutcome.REJECTED_UNSUITABLE:
                    reason = f"rejected as unsuitable in bundle {bundle.reference}"
                    if store.add_exclusion(
                        member.search_id, bundle.therapist_id, reason=reason, at=now, actor=actor
                    ):
                        exclusions.append(member.search_id)
            if member.status == MemberStatus.WITHDRAWN and outcome is not MemberOutcome.ACCEPTED:
                values["status"] = (
                    MemberStatus.WITHDRAWN.value
                )  # withdrawn stays withdrawn; the outcome is kept
            store.update_member(member.id, values)
        counts = count_outcomes(outcomes.values())
        kind = response_type(counts)
        until = cooling_until(platform_today(responded_at), config)
        store.set_cooling(bundle.therapist_id, until, at=now, bundle_id=bundle.id)
        store.update_bundle(
            bundle.id,
            {
                "status": BundleStatus.ANSWERED.value,
                "answered_at": responded_at,
                "updated_at": now,
                "response_type": kind.value,
                "accepted_count": counts.accepted,
                "rejected_count": counts.rejected,
                "no_response_count": counts.no_response,
                "response": wanted,
                "notes": request.notes or bundle.notes,
            },
        )
        for therapist_id, alert_id in needs_follow_up:
            follow_up = _follow_up(store, changes, therapist_id, config)
            conflicts = [
                c.model_copy(update={"follow_up_bundle_id": follow_up}) if c.alert_id == alert_id else c
                for c in conflicts
            ]
        answered = store.bundle(bundle.id, now=now)
        assert answered is not None
        recorded = ResponseRecorded(
            bundle=answered,
            placements=placements,
            conflicts=conflicts,
            withdrawals=withdrawals,
            exclusions_added=exclusions,
            next_contact_allowed_on=until,
        )
        changes.event("bundle.response_received", bundle.id, recorded.model_dump(mode="json"))
        cooling = CoolingPeriodStarted(
            therapist_id=bundle.therapist_id,
            next_contact_allowed_on=until,
            bundle_id=bundle.id,
            cause="response",
            started_at=now,
        )
        changes.event("cooling.period_started", bundle.therapist_id, cooling.model_dump(mode="json"))
        changes.record(
            "bundle.response_recorded",
            "bundle",
            bundle.id,
            before=_bundle_payload(bundle),
            after=_bundle_payload(answered),
        )
        return Result(recorded, changes.commit(uow))


def _repeat(store: MatchingStore, bundle: Bundle, now: datetime, config: MatchingConfig) -> ResponseRecorded:
    """The answer to an identical repeat: the bundle as recorded, nothing changed."""
    assert bundle.answered_at is not None
    return ResponseRecorded(
        bundle=bundle,
        next_contact_allowed_on=cooling_until(platform_today(bundle.answered_at), config),
        repeated=True,
    )


def _accept(
    store: MatchingStore,
    changes: Changes,
    bundle: Bundle,
    search_id: uuid.UUID,
    patient_id: uuid.UUID,
    responded_at: datetime,
) -> tuple[MemberStatus, list[Placement], Conflict | None, list[Withdrawal]]:
    """One acceptance. The earliest acceptance (by response time) places the patient; a later
    one becomes a conflict with a staff alert."""
    search = store.search_row(search_id, for_update=True)
    assert search is not None
    status = SearchStatus(search["status"])
    if status in (SearchStatus.ACTIVE, SearchStatus.PAUSED):
        placements, withdrawals = _place(store, changes, bundle, search, responded_at)
        return MemberStatus.ACCEPTED, placements, None, withdrawals
    placed_with = search["placed_therapist_id"]
    if (
        status is SearchStatus.PLACED
        and search["placed_at"] is not None
        and responded_at < search["placed_at"]
    ):
        # Recorded later but answered earlier: this therapist wins; the earlier placement is the conflict.
        earlier = store.accepted_member_of(search_id, placed_with) if placed_with else None
        if earlier is not None:
            store.update_member(earlier["id"], {"status": MemberStatus.CONFLICT.value})
        placements, withdrawals = _place(store, changes, bundle, search, responded_at)
        conflict = (
            _conflict(
                store,
                changes,
                earlier["bundle_id"] if earlier else bundle.id,
                search_id,
                patient_id,
                loser=placed_with,
                winner=bundle.therapist_id,
            )
            if placed_with
            else None
        )
        return MemberStatus.ACCEPTED, placements, conflict, withdrawals
    conflict = _conflict(
        store, changes, bundle.id, search_id, patient_id, loser=bundle.therapist_id, winner=placed_with
    )
    return MemberStatus.CONFLICT, [], conflict, []


def _place(
    store: MatchingStore, changes: Changes, bundle: Bundle, search: dict[str, Any], responded_at: datetime
) -> tuple[list[Placement], list[Withdrawal]]:
    search_id = search["id"]
    previous = SearchStatus(search["status"])
    store.update_search(
        search_id,
        {
            "status": SearchStatus.PLACED.value,
            "placed_therapist_id": bundle.therapist_id,
            "placed_at": responded_at,
            "status_reason": f"accepted in bundle {bundle.reference}",
            "updated_at": changes.now,
        },
    )
    withdrawals = withdraw_pending(
        store, changes, search_id, keep_bundle=bundle.id, reason=f"placed through bundle {bundle.reference}"
    )
    view = store.search_view(search_id, changes.now)
    assert view is not None
    if previous is not SearchStatus.PLACED:
        status_changed(
            changes, view, previous, reason=f"accepted in bundle {bundle.reference}", withdrawals=withdrawals
        )
    else:
        changes.event("search.updated", search_id, view.model_dump(mode="json"))
    changes.record(
        "search.placed",
        "search",
        search_id,
        before={"status": previous.value},
        after={"status": "placed", "placed_therapist_id": str(bundle.therapist_id)},
    )
    placement = Placement(
        search_id=search_id,
        patient_id=search["patient_id"],
        therapist_id=bundle.therapist_id,
        placed_at=responded_at,
    )
    return [placement], withdrawals


def _conflict(
    store: MatchingStore,
    changes: Changes,
    bundle_id: uuid.UUID,
    search_id: uuid.UUID,
    patient_id: uuid.UUID,
    *,
    loser: uuid.UUID,
    winner: uuid.UUID | None,
) -> Conflict:
    alert = StaffAlert(
        id=uuid.uuid4(),
        kind="conflict",
        created_at=changes.now,
        bundle_id=bundle_id,
        search_id=search_id,
        therapist_id=loser,
        message=(
            f"Therapist {loser} accepted patient search {search_id}, which is already placed with therapist "
            f"{winner}. Please tell the therapist; the freed place is offered to the next waiting patient."
        ),
    )
    store.add_alert(alert)
    changes.record("alert.raised", "search", search_id, after=alert.model_dump(mode="json"))
    return Conflict(
        search_id=search_id,
        patient_id=patient_id,
        therapist_id=loser,
        placed_with_therapist_id=winner or loser,
        alert_id=alert.id,
    )


def _follow_up(
    store: MatchingStore, changes: Changes, therapist_id: uuid.UUID, config: MatchingConfig
) -> uuid.UUID | None:
    """Offer the place a conflict freed to the next eligible waiting patient of that therapist:
    a one-patient bundle, sent at once, outside the cooling period the response just started."""
    store.lock_bundle_creation()
    therapists, searches = store.round_inputs(therapist_ids=[therapist_id])
    chosen = [t for t in therapists if t.id == therapist_id]
    if not chosen:
        return None
    practice = [
        dataclasses.replace(t, next_contact_allowed_on=None)
        for t in therapists
        if t.practice == chosen[0].practice
    ]
    plan = plan_staff_bundle(therapist_id, practice, searches, platform_today(changes.now), config, size=1)
    if plan.bundle is None:
        return None
    stored = store.insert_bundles(
        [plan.bundle], kind=BundleKind.FOLLOW_UP, round_id=None, actor=changes.actor, now=changes.now
    )
    _created(changes, stored)
    sent = _send(store, changes, stored[0])
    return sent.id


# ------------------------------------------------------------------ expiry and reactions


def expire_bundles(
    uow: MatchingUnitOfWork,
    *,
    now: datetime,
    timings: BundleTimings = DEFAULT_TIMINGS,
    config: MatchingConfig = DEFAULT_CONFIG,
    batch: int = 500,
) -> Result[list[uuid.UUID]]:
    """Sent bundles unanswered for `expire_after_days` expire: members become no_response and
    the therapist's cooling period starts. Re-running finds nothing more to do."""
    with uow:
        store = uow.store
        changes = Changes(now, "system:bundle-expiry")
        expired: list[uuid.UUID] = []
        until = cooling_until(platform_today(now), config)
        for bundle_id in store.sent_before(now - timedelta(days=timings.expire_after_days), limit=batch):
            bundle = store.bundle(bundle_id, now=now, for_update=True)
            if bundle is None or bundle.status != BundleStatus.SENT:
                continue
            for member in bundle.members:
                if member.status == MemberStatus.PENDING:
                    store.update_member(
                        member.id,
                        {
                            "status": MemberStatus.NO_RESPONSE.value,
                            "outcome": MemberOutcome.NO_RESPONSE.value,
                        },
                    )
            store.update_bundle(
                bundle_id,
                {
                    "status": BundleStatus.EXPIRED.value,
                    "expired_at": now,
                    "response_type": "no_response",
                    "updated_at": now,
                },
            )
            store.set_cooling(bundle.therapist_id, until, at=now, bundle_id=bundle_id)
            after = store.bundle(bundle_id, now=now)
            assert after is not None
            changes.event("bundle.expired", bundle_id, _bundle_payload(after))
            cooling = CoolingPeriodStarted(
                therapist_id=bundle.therapist_id,
                next_contact_allowed_on=until,
                bundle_id=bundle_id,
                cause="expiry",
                started_at=now,
            )
            changes.event("cooling.period_started", bundle.therapist_id, cooling.model_dump(mode="json"))
            changes.record(
                "bundle.expired", "bundle", bundle_id, before={"status": "sent"}, after={"status": "expired"}
            )
            expired.append(bundle_id)
        return Result(expired, changes.commit(uow))


def discard_drafts_of_blocked_therapist(
    uow: MatchingUnitOfWork, therapist_id: uuid.UUID, *, now: datetime, reason: str
) -> Result[list[uuid.UUID]]:
    """`therapist.blocked` (or deactivated): their draft bundles are discarded and the patients
    freed (contacts given back). Sent bundles stay: the therapist has them already."""
    with uow:
        store = uow.store
        changes = Changes(now, "system:therapist-blocked")
        discarded = store.open_bundle_ids(therapist_id=therapist_id, status=BundleStatus.DRAFT)
        for bundle_id in discarded:
            if store.bundle(bundle_id, now=now, for_update=True) is not None:
                discard_draft(store, changes, bundle_id, reason=reason)
        if not discarded:
            return Result([])
        return Result(discarded, changes.commit(uow))


def open_alerts(uow: MatchingUnitOfWork, *, limit: int = 100) -> list[StaffAlert]:
    with uow:
        return uow.store.alerts(open_only=True, limit=limit)
