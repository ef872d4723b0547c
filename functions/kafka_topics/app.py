"""Kafka topics: creates the topics declared in platform/kafka_topics.py that are missing and sets
the declared retention and cleanup policy on those that differ. Idempotent; partition counts it
only reports (see kafka_topics.py). It runs by itself during every deploy that changes the
declarations (template.yaml's `KafkaTopicDeclarations` custom resource, platform/deploy_hooks.py);
operators may invoke it directly with `{}`."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from therapy_platform.platform.deploy_hooks import answer_cloudformation, is_cloudformation_request
from therapy_platform.platform.kafka import KafkaTopicAdmin
from therapy_platform.platform.kafka_topics import TOPICS, apply_topics
from therapy_platform.platform.settings import KafkaSettings

logger = Logger(service="kafka-topics")
admin = KafkaTopicAdmin(KafkaSettings.from_env())  # connects per invocation, not at cold start


def apply() -> dict[str, Any]:
    report = apply_topics(admin, TOPICS).as_dict()
    for warning in report["warnings"]:
        logger.warning(warning)
    logger.info(
        "kafka topics applied",
        extra={"topics_created": report["created"], "topics_reconfigured": report["reconfigured"]},
    )
    return report


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if is_cloudformation_request(event or {}):
        return answer_cloudformation(
            event,
            lambda: {name: len(value) for name, value in apply().items()},  # counts as attributes
            physical_id="kafka-topic-declarations",
            on_failure=lambda error: logger.exception("applying the topics failed during the deploy"),
        )
    return apply()
