"""Bundle round (scheduled on weekday mornings, and invokable by operators with a sample event
from events/bundle_round/). A scheduled EventBridge event runs a full round; an operator's
event may carry the fields of POST /api/v2/bundles/create (dry_run, therapist_ids,
postcode_prefix, send_immediately). The round's unit of work publishes its events after the
commit (up to 500; the scheduled relay sweeps a national round's). A scheduled round skips the
regions whose `automatic_rounds` feature flag is off and names them; therapists whose
`preference_aware_ordering` flag is on get the learned soft filter (docs/feature-flags.md)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError

from therapy_platform.matching import bootstrap
from therapy_platform.matching.domain.bundles import RoundRequest
from therapy_platform.matching.domain.round import numpy_pair_search
from therapy_platform.matching.use_cases.bundles import SCHEDULED, run_round
from therapy_platform.platform.feature_flag_store import flags_from_env
from therapy_platform.platform.feature_flags import FlagEvaluator
from therapy_platform.platform.metrics_emf import flushed

logger = Logger(service="bundle-round")
service = bootstrap.build(pool_size=2)  # a national round reads its searches on a second connection
flags: FlagEvaluator = flags_from_env()
numpy_pair_search()  # NumPy imported at init, not by the first round planned (~0.1 s of it)


@logger.inject_lambda_context
@flushed(service.metrics)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    event = event or {}
    scheduled = event.get("source") == "aws.events"
    try:
        request = (
            RoundRequest(send_immediately=service.send_round_immediately)
            if scheduled
            else RoundRequest.model_validate(event)
        )
    except ValidationError as error:
        # An operator's typo: say which field, do not retry.
        problems = [{"field": ".".join(map(str, e["loc"])), "message": e["msg"]} for e in error.errors()]
        logger.warning("invalid round request", extra={"problems": problems})
        return {"error": "validation_failed", "fields": problems}
    trigger = SCHEDULED if scheduled else "operator"
    started, phases = service.clock(), dict[str, float]()
    outcome = run_round(
        service.unit_of_work(),
        request,
        actor=f"system:{trigger}",
        trigger=trigger,
        now=started,
        config=service.config,
        phases=phases,
        metrics=service.metrics,
        flags=flags,
        preferences=service.preferences,
    )
    result = outcome.value
    summary: dict[str, Any] = {
        "round_id": str(result.round_id) if result.round_id else None,
        "dry_run": result.dry_run,
        "run_date": result.run_date.isoformat(),
        "bundles": len(result.bundles),
        "members": sum(len(b.members) for b in result.bundles),
        "therapists_considered": result.therapists_considered,
        "searches_considered": result.searches_considered,
        "events_written": len(outcome.events),
        "regions_paused": result.regions_paused,  # automatic_rounds off: no inquiries there
        "learned_preferences_therapists": result.learned_preferences_therapists,
        "seconds": round((service.clock() - started).total_seconds(), 3),
        "phases": phases,
    }
    logger.info("bundle round finished", extra=summary)
    if result.dry_run:
        summary["result"] = result.model_dump(mode="json")
    return summary
