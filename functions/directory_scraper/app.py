"""Scraping service: one region of the 116117 directory per invocation.

Invoked by EventBridge Scheduler every 20 minutes of the night with its scheduled time
(`{"scheduled_time": ..., "trigger": "schedule"}`; the week plan in directory/domain/week_plan.py
says which region that slot reads, or none), or by operators naming the region:
`{"region": "52"}` (a 2-digit postcode prefix, tiled into search points),
`{"region": "52062-r25"}` or `{"region": {"postcode": "52062", "radius_km": 25}}`.
Stores the raw answers in S3 (`raw/YYYY-MM-DD/<region>.json`, which
triggers the therapist service's import) and records the run in `scraping_service.runs`.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from therapy_platform.directory.bootstrap import build
from therapy_platform.directory.use_cases import plan_scrape, scrape_region
from therapy_platform.platform.errors import InvalidInputError

logger = Logger(service="scraping-service")
service = build()


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        plan = plan_scrape(
            event or {}, service.postcodes(), tile_radius_km=service.settings.tile_radius_km
        ).value
    except InvalidInputError as error:
        # Retrying cannot fix a bad schedule input: say so and end (no retry storm).
        logger.error("scrape request rejected", extra={"error": error.message, "input": event})
        return {"status": "rejected", "error": error.message}
    if plan is None:
        logger.info(
            "no region is planned for this slot", extra={"scheduled_time": event.get("scheduled_time")}
        )
        return {"status": "idle", "scheduled_time": event.get("scheduled_time")}
    search, enricher = service.readers(
        max_requests=plan.max_requests, remaining_seconds=context.get_remaining_time_in_millis() / 1000
    )
    logger.info("scraping region", extra={"region": plan.region.key, "points": len(plan.points)})
    run = scrape_region(
        plan.region,
        plan.points,
        search=search,
        enricher=enricher,
        raw_store=service.raw_store(),
        runs=service.runs(),
        limits=service.limits,
        clock=service.clock,
        trigger=plan.trigger,
        source=service.settings.search_url,
    ).value
    result = run.model_dump(mode="json")
    logger.info("scrape run finished", extra={key: result[key] for key in result if key != "error_messages"})
    return result
