"""Therapist service: imports a raw directory file when the scraper stores it in S3.

S3 (EventBridge notifications) -> rule `Object Created` on `raw/` -> SQS (DLQ after 5
receives) -> this function, one object per message. The import is idempotent: a redelivered
event of an object version imported before does nothing, and any re-import of unchanged
entries writes nothing (content hashes). A message that names no file goes to the dead-letter
queue with the reason; a file that cannot be read at all gets a failed report and is not
retried; storage or a database outage: the message is offered again after a backoff. Entries
commit 500 at a time, set-based (as the operators' command imports); each chunk's events are
published right after it commits (the scheduled relay sends whatever that misses). Operators
may invoke the function with `{"bucket": ..., "key": ...}` and get the report back.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from therapy_platform.platform.metrics_emf import flushed
from therapy_platform.therapists.bootstrap import (
    build_directory_import,
    directory_import_consumer,
    import_requested_file,
)

logger = Logger(service="therapist-service")
service = build_directory_import()
# The consumer asks for the service per message, so tests may replace `service`.
consumer = directory_import_consumer(lambda: service, logger=logger)


@logger.inject_lambda_context
@flushed(service.metrics)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if "Records" in event:
        return consumer.handle(event)
    return import_requested_file(service, event)
