"""Bundle round (scheduled on weekday mornings, and invokable by operators with a sample event
from events/bundle_round/). A scheduled EventBridge event runs a full round; an operator's
event may carry the fields of POST /api/v2/bundles/create (dry_run, therapist_ids,
postcode_prefix, send_immediately)."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from typing import Any, Final

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError

from therapy_platform.matching.adapters.store import SqlMatchingUnitOfWork
from therapy_platform.matching.domain.bundles import RoundRequest
from therapy_platform.matching.use_cases.bundles import run_round
from therapy_platform.matching.use_cases.jobs import matching_config
from therapy_platform.platform.database import default_engine
from therapy_platform.platform.eventbridge import default_publisher
from therapy_platform.platform.outbox import SqlOutboxStore
from therapy_platform.platform.outbox_relay import relay_outbox
from therapy_platform.platform.settings import MatchingSettings

logger = Logger(service="bundle-round")
# Publishing more than this right away would hold the function; the relay sweeps the rest.
PUBLISH_NOW_LIMIT: Final = 500


@cache
def settings() -> MatchingSettings:
    return MatchingSettings.from_env()


def _request(event: dict[str, Any]) -> RoundRequest:
    if event.get("source") == "aws.events":  # the schedule
        return RoundRequest(send_immediately=settings().send_round_immediately)
    return RoundRequest.model_validate(event)


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        request = _request(event or {})
    except ValidationError as error:
        # An operator's typo: say which field, do not retry.
        problems = [{"field": ".".join(map(str, e["loc"])), "message": e["msg"]} for e in error.errors()]
        logger.warning("invalid round request", extra={"problems": problems})
        return {"error": "validation_failed", "fields": problems}
    trigger = "schedule" if event.get("source") == "aws.events" else "operator"
    started = datetime.now(UTC)
    phases: dict[str, float] = {}
    result = run_round(
        SqlMatchingUnitOfWork(default_engine()),
        request,
        actor=f"system:{trigger}",
        trigger=trigger,
        now=started,
        config=matching_config(settings()),
        phases=phases,
    )
    published = 0
    if 0 < len(result.events) <= PUBLISH_NOW_LIMIT:
        try:
            report = relay_outbox(
                SqlOutboxStore(default_engine(), "matching_service"),
                default_publisher(),
                event_ids=[e.event_id for e in result.events],
            )
            published = report.published
        except Exception:
            logger.warning("immediate publish failed; the scheduled relay will retry", exc_info=True)
    round_result = result.value
    summary: dict[str, Any] = {
        "round_id": str(round_result.round_id) if round_result.round_id else None,
        "dry_run": round_result.dry_run,
        "run_date": round_result.run_date.isoformat(),
        "bundles": len(round_result.bundles),
        "members": sum(len(b.members) for b in round_result.bundles),
        "therapists_considered": round_result.therapists_considered,
        "searches_considered": round_result.searches_considered,
        "events_written": len(result.events),
        "events_published_now": published,
        "seconds": round((datetime.now(UTC) - started).total_seconds(), 3),
        "phases": phases,
    }
    logger.info("bundle round finished", extra=summary)
    if round_result.dry_run:
        summary["result"] = round_result.model_dump(mode="json")
    return summary
