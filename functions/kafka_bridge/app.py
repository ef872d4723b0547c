"""Kafka bridge: consumes the bus's SQS queue and produces each event to its Kafka topic.

The batch goes to the broker in one round trip (platform/kafka_bridge.py); the consumer runtime
reports the messages the broker did not take, which come back after an exponential backoff, and
sends poison (unreadable, or an event type without a topic) to the dead-letter queue at once.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from therapy_platform.platform import kafka_bridge

logger = Logger(service="kafka-bridge")
consumer = kafka_bridge.build_consumer(logger)


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return consumer.handle(event)
