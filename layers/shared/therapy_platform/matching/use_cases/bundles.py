"""Bundle use cases: rounds (scheduled and on demand), staff bundles for a chosen therapist,
reading and listing, sending, recording a response (placements, conflicts, withdrawals,
cooling), expiry of unanswered bundles and the reaction to a blocked therapist.

Every bundle-creating use case takes the bundle-creation lock before it reads what it plans
from, so concurrent rounds never give a practice two open bundles nor push a search over its
limits. Everything a use case changes, audits and emits commits in one transaction.
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Final

from therapy_platform.matching.domain.bundle import BundleRecord
from therapy_platform.matching.domain.bundles import (
    Bundle,
    BundleKind,
    BundleQuery,
    BundleResponseRequest,
    BundleSent,
    BundleStatus,
    BundleTherapist,
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
    Withdrawal,
    distance_band,
)
from therapy_platform.matching.domain.models import (
    DEFAULT_CONFIG,
    MatchingConfig,
    SearchCandidate,
    TherapistCandidate,
)
from therapy_platform.matching.domain.monitoring import round_measurements
from therapy_platform.matching.domain.profiles import PatientProfile, TherapistProfile
from therapy_platform.matching.domain.records import RoundRecord
from therapy_platform.matching.domain.regions import gate_regions
from therapy_platform.matching.domain.responses import (
    MemberMismatchError,
    MemberOutcome,
    check_responded_at,
    cooling_until,
    count_outcomes,
    response_type,
)
from therapy_platform.matching.domain.round import PairDecision, PlannedBundle, plan_round, plan_staff_bundle
from therapy_platform.matching.domain.rules import (
    LearnedPreference,
    age_on,
    decide_practice,
    group_into_practices,
)
from therapy_platform.matching.domain.search import Acceptance, Search
from therapy_platform.matching.domain.searches import Exclusion
from therapy_platform.matching.domain.travel import apply_travel_time_reach, reach_detail
from therapy_platform.matching.ports import MatchingUnitOfWork, PreferenceAnswers, ProfileRepository
from therapy_platform.matching.use_cases.changes import (
    Changes,
    discard_draft,
    search_view,
    status_changed,
    withdraw_pending,
)
from therapy_platform.matching.use_cases.preferences import learned_for_round
from therapy_platform.platform.clock import platform_today
from therapy_platform.platform.collector import collector_paused
from therapy_platform.platform.errors import BadRequestError, ConflictError, NotFoundError
from therapy_platform.platform.events import EventEnvelope
from therapy_platform.platform.feature_flags import Flag, FlagEvaluator, FlagSubject
from therapy_platform.platform.geography.locations import distance_km
from therapy_platform.platform.metrics import MetricsSink, Unit, add_all
from therapy_platform.platform.outcome import Outcome
from therapy_platform.platform.rest.pagination import Page

EXPIRY_ACTOR: Final = "system:bundle-expiry"
BLOCKED_ACTOR: Final = "system:therapist-blocked"
OPT_OUT_ACTOR: Final = "system:therapist-objected"
SCHEDULED: Final = "schedule"  # the trigger of the automatic round (the only one regions' flags gate)


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


class _Reach:
    """The dry run's travel-time words per (therapist, search) pair (domain/travel.py): only
    for searches whose minutes limit is in force, so a round without any costs nothing."""

    def __init__(self, therapists: Sequence[TherapistCandidate], searches: Sequence[SearchCandidate]) -> None:
        self._searches = {s.id: s for s in searches if s.max_travel_minutes is not None}
        self._therapists = {t.id: t for t in therapists} if self._searches else {}

    def __call__(self, therapist_id: uuid.UUID, search_id: uuid.UUID) -> str | None:
        search = self._searches.get(search_id)
        therapist = self._therapists.get(therapist_id)
        return None if search is None or therapist is None else reach_detail(therapist, search)


_NO_REACH: Final = _Reach((), ())


def _travel_time_reach(
    searches: Sequence[SearchCandidate], flags: FlagEvaluator | None
) -> list[SearchCandidate]:
    """The feature flag `travel_time_reach` per search with a minutes limit (subject: the search,
    region: the patient's); without an evaluator the flag's fallback (off) holds."""
    if flags is None:
        return apply_travel_time_reach(searches, lambda search: False)
    evaluator = flags
    return apply_travel_time_reach(
        searches,
        lambda search: evaluator.enabled(
            Flag.TRAVEL_TIME_REACH, FlagSubject(subject=str(search.id), region=search.region)
        ),
    )


def _proposed(
    plan: PlannedBundle, stored: BundleRecord | None = None, reach: _Reach = _NO_REACH
) -> ProposedBundle:
    # Built without validation: the values come from the planner and the store (a national
    # round returns 20,000 of these).
    return ProposedBundle.model_construct(
        therapist_id=plan.therapist_id,
        practice_key=plan.practice_key,
        members=[
            ProposedMember.model_construct(
                search_id=m.search_id,
                patient_id=m.patient_id,
                position=m.position,
                reach=reach(plan.therapist_id, m.search_id),
            )
            for m in plan.members
        ],
        applied_filters=list(plan.applied_filters),
        skipped_filters=list(plan.skipped_filters),
        bundle_id=stored.id if stored else None,
        reference=stored.reference if stored else None,
        status=stored.status if stored else None,
    )


def _pairs(pairs: Sequence[PairDecision], reach: _Reach = _NO_REACH) -> list[PairReason]:
    return [
        PairReason(
            therapist_id=p.therapist_id,
            search_id=p.search_id,
            reason=p.reason,
            soft_filter=p.soft_filter,
            reach=reach(p.therapist_id, p.search_id),
        )
        for p in pairs
    ]


def _payload(bundle: BundleRecord, now: datetime) -> dict[str, Any]:
    return bundle.view(needs_follow_up=bundle.needs_follow_up(now)).model_dump(mode="json")


def _created(changes: Changes, bundles: Sequence[BundleRecord]) -> None:
    for bundle in bundles:
        payload = bundle.view().model_dump(mode="json")
        changes.event("bundle.created", bundle.id, payload)
        changes.record("bundle.created", "bundle", bundle.id, after=payload)


def _create_drafts(
    uow: MatchingUnitOfWork,
    changes: Changes,
    planned: Sequence[PlannedBundle],
    *,
    kind: BundleKind,
    round_id: uuid.UUID | None = None,
    notes: str | None = None,
) -> list[BundleRecord]:
    drafts = [
        BundleRecord.draft(plan, kind=kind, round_id=round_id, actor=changes.actor, now=changes.now)
        for plan in planned
    ]
    uow.bundles.add(drafts)
    if notes:
        for draft in drafts:
            draft.notes = notes
            uow.bundles.save(draft)
    _created(changes, drafts)
    return drafts


def patient_summary(
    profile: PatientProfile, therapist: TherapistProfile | None, reference: str, today: date
) -> PatientSummary:
    """What the therapist may learn about one listed patient (domain: data protection)."""
    km = None
    if therapist is not None and profile.location.is_known and therapist.location.is_known:
        km = distance_km(profile.location, therapist.location)
    return PatientSummary(
        reference=reference,
        age=age_on(profile.birth_date, today) if profile.birth_date else None,
        gender=profile.gender or "unspecified",
        symptoms=list(profile.symptoms),
        insurance_type=profile.insurance_type,
        previous_therapy=profile.previous_therapy,
        open_to_group_therapy=profile.open_to_group_therapy,
        group_only=profile.group_only,
        availability=profile.availability,
        distance_band=distance_band(km),
        # A patient limited in minutes was matched by the travel-time estimate (or, with the
        # feature flag off, by km): the card claims nothing rather than compare the wrong limit.
        within_reach=None
        if km is None or profile.max_travel_km is None or profile.max_travel_minutes is not None
        else km <= profile.max_travel_km,
    )


def with_summaries(profiles: ProfileRepository, bundle: Bundle, today: date) -> Bundle:
    patients = profiles.patients(m.patient_id for m in bundle.members)
    therapist = profiles.therapists([bundle.therapist_id]).get(bundle.therapist_id)
    members = []
    for member in bundle.members:
        profile = patients.get(member.patient_id)
        summary = patient_summary(profile, therapist, member.reference, today) if profile else None
        members.append(member.model_copy(update={"patient": summary}))
    return bundle.model_copy(update={"members": members})


def _addressee(therapist: TherapistProfile) -> BundleTherapist:
    return BundleTherapist(
        id=therapist.id,
        reachable_by_email=therapist.reachable_by_email,
        reachable_by_phone=therapist.reachable_by_phone,
        phone_windows=therapist.phone_windows,
        listed_in_directory=therapist.listed_in_directory,
    )


def _send(uow: MatchingUnitOfWork, changes: Changes, bundle: BundleRecord) -> Bundle:
    """draft -> sent: email when the therapist has an address, else a phone call task."""
    bundle.check_sendable()
    therapist = uow.profiles.therapists([bundle.therapist_id]).get(bundle.therapist_id)
    if therapist is None or not therapist.contactable:
        state = "unknown" if therapist is None else therapist.status
        raise ConflictError(
            f"bundle {bundle.reference} cannot be sent: its therapist is {state}",
            details={"therapist_id": str(bundle.therapist_id), "therapist_status": state},
        )
    channel = Channel.EMAIL if therapist.reachable_by_email else Channel.PHONE
    bundle.send(channel, now=changes.now)
    uow.bundles.save(bundle)
    sent = with_summaries(uow.profiles, bundle.view(), platform_today(changes.now))
    payload = BundleSent(**sent.model_dump(), therapist=_addressee(therapist))
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
    metrics: MetricsSink | None = None,
    flags: FlagEvaluator | None = None,
    learned: LearnedPreference | None = None,
    preferences: PreferenceAnswers | None = None,
) -> Outcome[RoundResult]:
    """`phases`, when given, receives the seconds spent reading, planning and writing (for the
    function's log and the benchmark); `metrics` the measurements of a written round once it
    has committed (docs/metrics.md). `flags`: a scheduled round (trigger `schedule`) leaves out
    the therapists of every region whose `automatic_rounds` flag is off (matching/domain/regions.py);
    rounds staff or operators start are not automatic and are never gated. `learned`: the learned
    soft preference given by the caller (the simulator's). `preferences`: the answers the deployed
    rounds learn from; with it, the therapists whose `preference_aware_ordering` flag is on get
    the learned soft filter, computed from the current answers (use_cases/preferences.py)."""
    today = platform_today(now)
    started = time.perf_counter()
    clock = _PhaseClock(phases)
    # The round's objects live until it ends: scanning them over and over cost more than the
    # round's work at national scale (platform/collector.py).
    with collector_paused(), uow:
        if not request.dry_run:
            uow.lock_bundle_creation()
        therapists, searches = uow.queries.round_inputs(
            therapist_ids=request.therapist_ids, postcode_prefix=request.postcode_prefix
        )
        paused: tuple[str, ...] = ()
        if flags is not None and trigger == SCHEDULED:
            evaluator = flags
            gate = gate_regions(
                therapists,
                lambda region: evaluator.enabled(Flag.AUTOMATIC_ROUNDS, FlagSubject(region=region)),
            )
            therapists, paused = gate.therapists, gate.paused_regions
        searches = _travel_time_reach(searches, flags)
        reach = _Reach(therapists, searches) if request.dry_run else _NO_REACH
        learned_for = 0
        if learned is None:
            chosen = learned_for_round(preferences, therapists, flags, now)
            learned, learned_for = chosen.preference, len(chosen.therapist_ids)
        clock.lap("read")
        # Explaining every pair of a national round would be tens of millions of decisions: only
        # rounds limited to therapists or a region explain theirs.
        limited = request.therapist_ids is not None or request.postcode_prefix is not None
        explain = request.dry_run and limited
        plan = plan_round(therapists, searches, today, config, learned=learned, explain=explain)
        clock.lap("plan")
        result = RoundResult(
            run_date=today,
            dry_run=request.dry_run,
            # A written round answers with the stored bundles (below): built once, not twice.
            bundles=[_proposed(b, reach=reach) for b in plan.bundles] if request.dry_run else [],
            therapists_left_out=[
                LeftOutTherapist(therapist_id=d.therapist_id, reason=d.reason)
                for d in plan.therapists_left_out
            ],
            searches_left_out=[
                LeftOutSearch(search_id=d.search_id, reason=d.reason) for d in plan.searches_left_out
            ],
            pairs=_pairs(plan.pairs[:MAX_EXPLAINED_PAIRS], reach),
            pairs_explained=explain,
            pairs_truncated=len(plan.pairs) > MAX_EXPLAINED_PAIRS,
            therapists_considered=len(therapists),
            searches_considered=len(searches),
            regions_paused=list(paused),
            learned_preferences_therapists=learned_for,
        )
        if request.dry_run:
            return Outcome(result)  # nothing written: leaving the block rolls back
        changes = Changes(now, actor)
        parameters = request.model_dump(mode="json")
        record = RoundRecord(
            id=uuid.uuid4(),
            run_date=today,
            started_at=now,
            trigger=trigger,
            actor=actor,
            parameters=parameters,
        )
        uow.rounds.add(record)
        stored = _create_drafts(uow, changes, plan.bundles, kind=BundleKind.ROUND, round_id=record.id)
        if request.send_immediately:
            for bundle in stored:
                _send(uow, changes, bundle)
        record.finished_at = now
        record.summary = {
            "bundles": len(stored),
            "members": sum(len(b.members) for b in stored),
            "therapists_considered": len(therapists),
            "searches_considered": len(searches),
            "sent": request.send_immediately,
            "regions_paused": list(paused),
        }
        if learned_for:  # preference_aware_ordering was on for these therapists
            record.summary["learned_preferences_therapists"] = learned_for
        uow.rounds.finish(record)
        changes.record(
            "round.completed", "round", record.id, after={**record.summary, "parameters": parameters}
        )
        result = result.model_copy(
            update={
                "round_id": record.id,
                "bundles": [_proposed(p, s) for p, s in zip(plan.bundles, stored, strict=True)],
            }
        )
        events = changes.commit(uow)
        clock.lap("write")
    if metrics is not None:
        measured = round_measurements(
            plan.bundles,
            therapists,
            (search.id for search in searches),
            today,
            duration_ms=round((time.perf_counter() - started) * 1000, 1),
        )
        add_all(metrics, measured)
        if paused:
            metrics.add("RoundRegionsPaused", Unit.COUNT, len(paused))
    return Outcome(result, events)


def staff_bundle(
    uow: MatchingUnitOfWork,
    therapist_id: uuid.UUID,
    request: StaffBundleRequest,
    *,
    actor: str,
    now: datetime,
    config: MatchingConfig = DEFAULT_CONFIG,
    flags: FlagEvaluator | None = None,
) -> Outcome[StaffBundleResult]:
    """`flags`: the feature flag `travel_time_reach` (domain/travel.py), as in a round."""
    today = platform_today(now)
    with uow:
        if not request.dry_run:
            uow.lock_bundle_creation()
        therapists, searches = uow.queries.round_inputs(
            therapist_ids=[therapist_id], search_ids=request.search_ids
        )
        chosen = [t for t in therapists if t.id == therapist_id]
        if not chosen:
            raise NotFoundError(f"therapist {therapist_id} is not known to the matching service")
        practice = [t for t in therapists if t.practice == chosen[0].practice]
        searches = _travel_time_reach(searches, flags)
        reach = _Reach(practice, searches)
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
                return Outcome(
                    StaffBundleResult(
                        dry_run=True,
                        bundle=None,
                        therapist_reason=plan.therapist_reason,
                        pairs=_pairs(plan.pairs, reach),
                    )
                )
            reason = plan.therapist_reason
            raise ConflictError(
                f"no bundle can be built for therapist {therapist_id}: {reason}",
                details={"reason": str(reason), "left_out": len(plan.pairs)},
            )
        if request.dry_run:
            return Outcome(
                StaffBundleResult(
                    dry_run=True, bundle=_proposed(plan.bundle, reach=reach), pairs=_pairs(plan.pairs, reach)
                )
            )
        changes = Changes(now, actor)
        [stored] = _create_drafts(uow, changes, [plan.bundle], kind=BundleKind.STAFF, notes=request.notes)
        if request.send_immediately:
            _send(uow, changes, stored)
        result = StaffBundleResult(
            dry_run=False, bundle=_proposed(plan.bundle, stored), pairs=_pairs(plan.pairs)
        )
        return Outcome(result, changes.commit(uow))


# ------------------------------------------------------------------ reading


def get_bundle(
    uow: MatchingUnitOfWork, bundle_id: uuid.UUID, *, now: datetime, timings: BundleTimings = DEFAULT_TIMINGS
) -> Outcome[Bundle]:
    with uow:
        bundle = uow.queries.bundle(bundle_id, now=now, follow_up_after_days=timings.reminder_after_days)
        if bundle is None:
            raise NotFoundError(f"bundle {bundle_id} does not exist")
        return Outcome(with_summaries(uow.profiles, bundle, platform_today(now)))


def list_bundles(
    uow: MatchingUnitOfWork, query: BundleQuery, *, now: datetime, timings: BundleTimings = DEFAULT_TIMINGS
) -> Outcome[Page[Bundle]]:
    with uow:
        items, total = uow.queries.bundles(query, now=now, follow_up_after_days=timings.reminder_after_days)
    return Outcome(Page[Bundle](items=items, total=total, page=query.page, limit=query.limit))


def eligible_therapists(
    uow: MatchingUnitOfWork, postcode_prefix: str, *, now: datetime, page: int = 1, limit: int = 50
) -> Outcome[Page[EligibleTherapist]]:
    """The staff selection list: one row per eligible practice (its owner), potentially available
    first, then with email before without, then by postcode."""
    today = platform_today(now)
    with uow:
        therapists, _ = uow.queries.round_inputs(postcode_prefix=postcode_prefix, search_ids=[])
        profiles = uow.profiles.therapists(t.id for t in therapists)
    rows = []
    for key, members in group_into_practices(therapists).items():
        decision = decide_practice(members, today)
        if decision.practice is None:
            continue
        owner = decision.practice.owner
        profile = profiles[owner.id]
        if not (profile.postcode or "").startswith(postcode_prefix):
            continue
        rows.append(
            EligibleTherapist(
                therapist_id=owner.id,
                postcode=profile.postcode or "",
                has_email=profile.reachable_by_email,
                potentially_available=owner.potentially_available,
                practice_key=key,
                practice_size=len(members),
            )
        )
    rows.sort(
        key=lambda r: (
            not r.potentially_available,
            not r.has_email,
            r.postcode,
            str(r.therapist_id),
        )
    )
    start = (page - 1) * limit
    return Outcome(
        Page[EligibleTherapist](items=rows[start : start + limit], total=len(rows), page=page, limit=limit)
    )


def open_alerts(uow: MatchingUnitOfWork, *, limit: int = 100) -> Outcome[list[StaffAlert]]:
    with uow:
        return Outcome(uow.queries.alerts(open_only=True, limit=limit))


# ------------------------------------------------------------------ sending


def _locked(uow: MatchingUnitOfWork, bundle_id: uuid.UUID) -> BundleRecord:
    bundle = uow.bundles.get(bundle_id, for_update=True)
    if bundle is None:
        raise NotFoundError(f"bundle {bundle_id} does not exist")
    return bundle


def send_bundle(
    uow: MatchingUnitOfWork, bundle_id: uuid.UUID, *, actor: str, now: datetime
) -> Outcome[Bundle]:
    with uow:
        bundle = _locked(uow, bundle_id)
        changes = Changes(now, actor)
        sent = _send(uow, changes, bundle)
        return Outcome(sent, changes.commit(uow))


# ------------------------------------------------------------------ responses


@dataclass
class _Answer:
    """What recording one response found, beyond the bundle itself."""

    placements: list[Placement] = dataclasses.field(default_factory=list)
    conflicts: list[Conflict] = dataclasses.field(default_factory=list)
    withdrawals: list[Withdrawal] = dataclasses.field(default_factory=list)
    exclusions: list[uuid.UUID] = dataclasses.field(default_factory=list)


def record_response(
    uow: MatchingUnitOfWork,
    bundle_id: uuid.UUID,
    request: BundleResponseRequest,
    *,
    actor: str,
    now: datetime,
    config: MatchingConfig = DEFAULT_CONFIG,
) -> Outcome[ResponseRecorded]:
    with uow:
        bundle = _locked(uow, bundle_id)
        outcomes = request.outcomes()
        try:
            bundle.check_response(outcomes)
        except MemberMismatchError as error:
            raise BadRequestError(
                f"the response must list exactly the members of bundle {bundle.reference}: {error}",
                details={"missing": [str(m) for m in error.missing], "extra": [str(e) for e in error.extra]},
            ) from error
        responded_at = request.responded_at or now
        check_responded_at(responded_at, sent_at=bundle.sent_at, now=now)
        wanted = {str(k): v.value for k, v in outcomes.items()}
        if bundle.status == BundleStatus.ANSWERED:
            if bundle.recorded_response() == wanted:
                return Outcome(_repeat(bundle, now, config))
            raise ConflictError(
                f"bundle {bundle.reference} was already answered "
                f"on {bundle.answered_at:%Y-%m-%d %H:%M} with a different response",
                details={"recorded": bundle.recorded_response()},
            )
        if bundle.status != BundleStatus.SENT:
            raise ConflictError(
                f"bundle {bundle.reference} is {bundle.status.value}: only a sent bundle takes a response",
                details={"current_status": bundle.status.value},
            )
        before = _payload(bundle, now)
        changes = Changes(now, actor)
        answer = _Answer()
        needs_follow_up: list[tuple[uuid.UUID, uuid.UUID]] = []  # (therapist, conflict alert)
        notes_by_search = {m.search_id: m.notes for m in request.members}
        for member in bundle.members:
            outcome = outcomes[member.search_id]
            if outcome is MemberOutcome.ACCEPTED:
                status, conflict = _accept(
                    uow, changes, bundle, member.search_id, member.patient_id, responded_at, answer
                )
                if conflict is not None:
                    answer.conflicts.append(conflict)
                    needs_follow_up.append((conflict.therapist_id, conflict.alert_id))
            elif outcome is MemberOutcome.NO_RESPONSE:
                status = MemberStatus.NO_RESPONSE
            else:
                status = MemberStatus.REJECTED
                if outcome is MemberOutcome.REJECTED_UNSUITABLE:
                    exclusion = Exclusion(
                        therapist_id=bundle.therapist_id,
                        reason=f"rejected as unsuitable in bundle {bundle.reference}",
                        excluded_at=now,
                        excluded_by=actor,
                    )
                    if uow.searches.add_exclusion(member.search_id, exclusion):
                        answer.exclusions.append(member.search_id)
            member.answer(outcome, status, at=responded_at, notes=notes_by_search.get(member.search_id))
            uow.bundles.save(bundle)
        counts = count_outcomes(outcomes.values())
        until = cooling_until(platform_today(responded_at), config)
        uow.cooling.extend(bundle.therapist_id, until, at=now, bundle_id=bundle.id)
        bundle.answered(
            counts, response_type(counts), outcomes, at=responded_at, now=now, notes=request.notes
        )
        uow.bundles.save(bundle)
        for therapist_id, alert_id in needs_follow_up:
            follow_up = _follow_up(uow, changes, therapist_id, config)
            answer.conflicts = [
                c.model_copy(update={"follow_up_bundle_id": follow_up}) if c.alert_id == alert_id else c
                for c in answer.conflicts
            ]
        recorded = ResponseRecorded(
            bundle=bundle.view(needs_follow_up=bundle.needs_follow_up(now)),
            placements=answer.placements,
            conflicts=answer.conflicts,
            withdrawals=answer.withdrawals,
            exclusions_added=answer.exclusions,
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
            before=before,
            after=recorded.bundle.model_dump(mode="json"),
        )
        return Outcome(recorded, changes.commit(uow))


def _repeat(bundle: BundleRecord, now: datetime, config: MatchingConfig) -> ResponseRecorded:
    """The answer to an identical repeat: the bundle as recorded, nothing changed."""
    assert bundle.answered_at is not None
    return ResponseRecorded(
        bundle=bundle.view(needs_follow_up=bundle.needs_follow_up(now)),
        next_contact_allowed_on=cooling_until(platform_today(bundle.answered_at), config),
        repeated=True,
    )


def _accept(
    uow: MatchingUnitOfWork,
    changes: Changes,
    bundle: BundleRecord,
    search_id: uuid.UUID,
    patient_id: uuid.UUID,
    responded_at: datetime,
    answer: _Answer,
) -> tuple[MemberStatus, Conflict | None]:
    """One acceptance. The earliest acceptance (by response time) places the patient; a later
    one becomes a conflict with a staff alert."""
    search = uow.searches.get(search_id, for_update=True)
    assert search is not None
    acceptance = search.acceptance(responded_at)
    if acceptance is Acceptance.PLACE:
        _place(uow, changes, bundle, search, responded_at, answer)
        return MemberStatus.ACCEPTED, None
    placed_with = search.placed_therapist_id
    if acceptance is Acceptance.OVERRIDE:
        # Recorded later but answered earlier: this therapist wins; the earlier placement is the conflict.
        earlier = uow.bundles.with_accepted_member(search_id, placed_with) if placed_with else None
        if earlier is not None:
            member = earlier.member_of(search_id)
            assert member is not None
            member.status = MemberStatus.CONFLICT
            uow.bundles.save(earlier)
        _place(uow, changes, bundle, search, responded_at, answer)
        conflict = None
        if placed_with:
            conflict = _conflict(
                uow,
                changes,
                earlier.id if earlier else bundle.id,
                search_id,
                patient_id,
                loser=placed_with,
                winner=bundle.therapist_id,
            )
        return MemberStatus.ACCEPTED, conflict
    conflict = _conflict(
        uow, changes, bundle.id, search_id, patient_id, loser=bundle.therapist_id, winner=placed_with
    )
    return MemberStatus.CONFLICT, conflict


def _place(
    uow: MatchingUnitOfWork,
    changes: Changes,
    bundle: BundleRecord,
    search: Search,
    responded_at: datetime,
    answer: _Answer,
) -> None:
    previous = search.status
    reason = f"accepted in bundle {bundle.reference}"
    search.place(bundle.therapist_id, at=responded_at, reason=reason, now=changes.now)
    uow.searches.save(search)
    withdrawals = withdraw_pending(
        uow, changes, search.id, keep_bundle=bundle.id, reason=f"placed through bundle {bundle.reference}"
    )
    view = search_view(uow, search.id, changes.now)
    if previous is not search.status:
        status_changed(changes, view, previous, reason=reason, withdrawals=withdrawals)
    else:
        changes.event("search.updated", search.id, view.model_dump(mode="json"))
    changes.record(
        "search.placed",
        "search",
        search.id,
        before={"status": previous.value},
        after={"status": "placed", "placed_therapist_id": str(bundle.therapist_id)},
    )
    answer.placements.append(
        Placement(
            search_id=search.id,
            patient_id=search.patient_id,
            therapist_id=bundle.therapist_id,
            placed_at=responded_at,
        )
    )
    answer.withdrawals += withdrawals


def _conflict(
    uow: MatchingUnitOfWork,
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
    uow.alerts.add(alert)
    changes.record("alert.raised", "search", search_id, after=alert.model_dump(mode="json"))
    return Conflict(
        search_id=search_id,
        patient_id=patient_id,
        therapist_id=loser,
        placed_with_therapist_id=winner or loser,
        alert_id=alert.id,
    )


def _follow_up(
    uow: MatchingUnitOfWork, changes: Changes, therapist_id: uuid.UUID, config: MatchingConfig
) -> uuid.UUID | None:
    """Offer the place a conflict freed to the next eligible waiting patient of that therapist:
    a one-patient bundle, sent at once, outside the cooling period the response just started."""
    uow.lock_bundle_creation()
    therapists, searches = uow.queries.round_inputs(therapist_ids=[therapist_id])
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
    [stored] = _create_drafts(uow, changes, [plan.bundle], kind=BundleKind.FOLLOW_UP)
    _send(uow, changes, stored)
    return stored.id


# ------------------------------------------------------------------ expiry and reactions


def expire_bundles(
    uow: MatchingUnitOfWork,
    *,
    now: datetime,
    timings: BundleTimings = DEFAULT_TIMINGS,
    config: MatchingConfig = DEFAULT_CONFIG,
    batch: int = 500,
) -> Outcome[list[uuid.UUID]]:
    """Sent bundles unanswered for `expire_after_days` expire (at most `batch` per call):
    members become no_response and the therapist's cooling period starts. Re-running finds
    nothing more to do."""
    with uow:
        changes = Changes(now, EXPIRY_ACTOR)
        expired: list[uuid.UUID] = []
        until = cooling_until(platform_today(now), config)
        for bundle_id in uow.bundles.sent_before(
            now - timedelta(days=timings.expire_after_days), limit=batch
        ):
            bundle = uow.bundles.get(bundle_id, for_update=True)
            if bundle is None or bundle.status != BundleStatus.SENT:
                continue
            bundle.expire(now=now)
            uow.bundles.save(bundle)
            uow.cooling.extend(bundle.therapist_id, until, at=now, bundle_id=bundle_id)
            changes.event("bundle.expired", bundle_id, _payload(bundle, now))
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
        return Outcome(expired, changes.commit(uow))


def expire_all_due(
    uow: MatchingUnitOfWork,
    *,
    now: datetime,
    timings: BundleTimings = DEFAULT_TIMINGS,
    config: MatchingConfig = DEFAULT_CONFIG,
) -> Outcome[list[uuid.UUID]]:
    """Expire in batches (one transaction each) until nothing is due."""
    expired: list[uuid.UUID] = []
    events: tuple[EventEnvelope, ...] = ()
    while True:
        batch = expire_bundles(uow, now=now, timings=timings, config=config)
        if not batch.value:
            return Outcome(expired, events)
        expired += batch.value
        events += batch.events


def discard_drafts_of_blocked_therapist(
    uow: MatchingUnitOfWork, therapist_id: uuid.UUID, *, now: datetime, reason: str
) -> Outcome[list[uuid.UUID]]:
    """`therapist.blocked` (or deactivated), inside the consumer's open transaction (the caller
    commits): their draft bundles are discarded and the patients freed (contacts given back).
    Sent bundles stay: the therapist has them already."""
    changes = Changes(now, BLOCKED_ACTOR)
    drafts = uow.bundles.drafts_of(therapist_id)
    for bundle in drafts:
        discard_draft(changes, bundle, reason=reason)
        uow.bundles.save(bundle)
    return Outcome([bundle.id for bundle in drafts], changes.write(uow))


def discard_drafts_after_objection(
    uow: MatchingUnitOfWork, therapist_id: uuid.UUID, practice_key: str | None, *, now: datetime
) -> Outcome[list[uuid.UUID]]:
    """A therapist objected to inquiries (`contact_opt_out`, GDPR Art. 21), inside the consumer's
    open transaction (the caller commits): every draft bundle to them or to their practice's
    shared mailbox is discarded and the patients freed, so a draft made before the objection
    arrived is never sent. Sent bundles stay (the therapist has them already); a redelivery
    finds no drafts."""
    changes = Changes(now, OPT_OUT_ACTOR)
    drafts = {bundle.id: bundle for bundle in uow.bundles.drafts_of(therapist_id)}
    if practice_key:
        drafts.update((bundle.id, bundle) for bundle in uow.bundles.drafts_of_practice(practice_key))
    ordered = sorted(drafts.values(), key=lambda bundle: bundle.number)
    for bundle in ordered:
        discard_draft(changes, bundle, reason="therapist objected to further inquiries")
        uow.bundles.save(bundle)
    return Outcome([bundle.id for bundle in ordered], changes.write(uow))
