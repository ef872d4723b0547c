"""Expiry of unanswered bundles (scheduled daily, invokable by operators): sent bundles without
an answer for EXPIRE_AFTER_DAYS expire, their members become no_response and the therapist's
cooling period starts. Works in batches until nothing is due."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from therapy_platform.matching.adapters.store import SqlMatchingUnitOfWork
from therapy_platform.matching.use_cases.bundles import expire_bundles
from therapy_platform.matching.use_cases.jobs import bundle_timings, matching_config
from therapy_platform.platform.database import default_engine
from therapy_platform.platform.settings import MatchingSettings

logger = Logger(service="bundle-expiry")


@cache
def settings() -> MatchingSettings:
    return MatchingSettings.from_env()


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    now = datetime.now(UTC)
    expired: list[str] = []
    while True:
        result = expire_bundles(
            SqlMatchingUnitOfWork(default_engine()),
            now=now,
            timings=bundle_timings(settings()),
            config=matching_config(settings()),
        )
        expired += [str(bundle_id) for bundle_id in result.value]
        if not result.value:
            break
    logger.info("bundles expired", extra={"count": len(expired)})
    return {"expired": len(expired), "bundle_ids": expired[:100]}
