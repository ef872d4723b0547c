"""Expiry of unanswered bundles (scheduled daily, invokable by operators): sent bundles without
an answer for EXPIRE_AFTER_DAYS expire, their members become no_response and the therapist's
cooling period starts. Works in batches until nothing is due."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from therapy_platform.matching import bootstrap
from therapy_platform.matching.use_cases.bundles import expire_all_due
from therapy_platform.platform.metrics_emf import flushed

logger = Logger(service="bundle-expiry")
service = bootstrap.build()


@logger.inject_lambda_context
@flushed(service.metrics)  # BundlesExpired, counted from the committed events
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    outcome = expire_all_due(
        service.unit_of_work(), now=service.clock(), timings=service.timings, config=service.config
    )
    expired = [str(bundle_id) for bundle_id in outcome.value]
    logger.info("bundles expired", extra={"count": len(expired)})
    return {"expired": len(expired), "bundle_ids": expired[:100]}
