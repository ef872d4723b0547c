"""The Kafka topics, declared in code: one declaration per topic (name, partitions, retention,
cleanup policy, what the key is), and the plan that brings a cluster to them.

Applying the declarations is idempotent: a missing topic is created with its configuration, an
existing topic whose managed configs differ gets exactly those configs set (incrementally, so
configs nobody declared are left alone), and a topic already as declared is left untouched.
Partition counts are never changed automatically: adding partitions moves keys to other
partitions and so breaks the per-entity order consumers rely on; a difference is reported.

The bridge writes every event family to its topic (platform/events.py TOPIC_BY_PREFIX, kept equal
to these declarations by tests/unit/test_kafka_topics.py). `functions/kafka_topics` applies them
after a deploy in AWS; `localcloud` applies them to the local broker.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Final, Literal, Protocol

CleanupPolicy = Literal["delete", "compact", "compact,delete"]
NAME: Final = re.compile(r"^[a-z][a-z0-9-]*$")
KEEP_FOREVER: Final = "-1"


@dataclass(frozen=True)
class KafkaTopic:
    """One topic as the platform wants it.

    retention: how long a record is kept (None: forever, only for a compacted topic).
    cleanup_policy: "delete" drops records older than the retention; "compact" keeps the newest
    record per key (and drops a key entirely after its tombstone, a null value, has been kept for
    tombstone_retention); "compact,delete" does both.
    """

    name: str
    partitions: int
    retention: timedelta | None
    key: str
    cleanup_policy: CleanupPolicy = "delete"
    tombstone_retention: timedelta | None = None

    def __post_init__(self) -> None:
        if not NAME.match(self.name):
            raise ValueError(f"topic name {self.name!r}: lower-case letters, digits and '-' only")
        if self.partitions < 1:
            raise ValueError(f"topic {self.name}: at least one partition")
        if self.retention is None and self.cleanup_policy != "compact":
            raise ValueError(f"topic {self.name}: only a compacted topic may keep records forever")
        if self.retention is not None and self.retention <= timedelta(0):
            raise ValueError(f"topic {self.name}: retention must be positive")
        if self.tombstone_retention is not None and "compact" not in self.cleanup_policy:
            raise ValueError(f"topic {self.name}: tombstone retention applies to compacted topics only")

    def configs(self) -> dict[str, str]:
        """The topic configs this declaration manages, as Kafka spells them."""
        configs = {
            "cleanup.policy": self.cleanup_policy,
            "retention.ms": KEEP_FOREVER if self.retention is None else _ms(self.retention),
        }
        if self.tombstone_retention is not None:
            configs["delete.retention.ms"] = _ms(self.tombstone_retention)
        return configs


def _ms(duration: timedelta) -> str:
    return str(int(duration.total_seconds() * 1000))


# Every family's events for a week: long enough for a consumer to catch up after an outage over a
# long weekend (they deduplicate by eventId), short enough that personal data does not linger.
# Three partitions: a consumer group can read in parallel, and every key's events stay in order.
WEEK: Final = timedelta(days=7)
# patient-events is also compacted by patient id: after `patient.deleted` the bridge writes a
# tombstone (null value, the patient id as key), compaction drops every earlier record of the
# patient, and the tombstone itself is dropped a day later (GDPR Art. 17 on Kafka).
TOMBSTONE_RETENTION: Final = timedelta(days=1)
TOPICS: Final[tuple[KafkaTopic, ...]] = (
    KafkaTopic(
        "patient-events",
        partitions=3,
        retention=WEEK,
        key="patient id",
        cleanup_policy="compact,delete",
        tombstone_retention=TOMBSTONE_RETENTION,
    ),
    KafkaTopic("therapist-events", partitions=3, retention=WEEK, key="therapist id"),
    KafkaTopic("search-events", partitions=3, retention=WEEK, key="search id"),
    KafkaTopic("bundle-events", partitions=3, retention=WEEK, key="bundle id (cooling: therapist id)"),
    KafkaTopic("communication-events", partitions=3, retention=WEEK, key="email or phone call id"),
    # Inbound: the public website's self-registrations (RegistrationIntakeFunction consumes them;
    # docs/registration-intake.md). A week: parked records can be found again by their offset.
    KafkaTopic("patient-registrations", partitions=3, retention=WEEK, key="registration id"),
)
# Topics the platform reads but the bridge never writes (declared above all the same).
INBOUND_TOPICS: Final = frozenset({"patient-registrations"})


@dataclass(frozen=True)
class ExistingTopic:
    """What the cluster says of a topic: its partition count and its configs (as strings)."""

    partitions: int
    configs: Mapping[str, str]


class TopicAdmin(Protocol):
    """The cluster operations the plan needs (platform/kafka.py KafkaTopicAdmin for kafka-python)."""

    def existing(self, names: Sequence[str]) -> dict[str, ExistingTopic]:
        """The named topics that exist (absent ones are left out)."""
        ...

    def create(self, topics: Sequence[KafkaTopic]) -> list[str]:
        """Creates the topics with their configs; returns those that already existed."""
        ...

    def set_configs(self, changes: Mapping[str, Mapping[str, str]]) -> None:
        """Sets (incrementally) the given configs of each named topic."""
        ...


@dataclass(frozen=True)
class TopicPlan:
    create: tuple[KafkaTopic, ...] = ()
    set_configs: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    unchanged: tuple[str, ...] = ()
    partition_warnings: tuple[str, ...] = ()


def plan_topics(declared: Iterable[KafkaTopic], existing: Mapping[str, ExistingTopic]) -> TopicPlan:
    """What to do so the cluster holds the declared topics (pure: decided from what exists)."""
    create: list[KafkaTopic] = []
    changes: dict[str, dict[str, str]] = {}
    unchanged: list[str] = []
    warnings: list[str] = []
    for topic in declared:
        found = existing.get(topic.name)
        if found is None:
            create.append(topic)
            continue
        differing = {key: value for key, value in topic.configs().items() if found.configs.get(key) != value}
        if differing:
            changes[topic.name] = differing
        else:
            unchanged.append(topic.name)
        if found.partitions != topic.partitions:
            warnings.append(
                f"{topic.name} has {found.partitions} partitions, {topic.partitions} are declared: "
                "not changed (more partitions move keys to other partitions; do it by hand, "
                "fewer are impossible)"
            )
    return TopicPlan(tuple(create), changes, tuple(unchanged), tuple(warnings))


@dataclass(frozen=True)
class TopicReport:
    created: tuple[str, ...]
    reconfigured: Mapping[str, Mapping[str, str]]
    unchanged: tuple[str, ...]
    warnings: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "created": list(self.created),
            "reconfigured": {name: dict(configs) for name, configs in self.reconfigured.items()},
            "unchanged": list(self.unchanged),
            "warnings": list(self.warnings),
        }


def apply_topics(admin: TopicAdmin, declared: Sequence[KafkaTopic] = TOPICS) -> TopicReport:
    """Brings the cluster to the declarations; running it again changes nothing."""
    names = [topic.name for topic in declared]
    if len(set(names)) != len(names):
        raise ValueError("a topic is declared twice")
    plan = plan_topics(declared, admin.existing(names))
    changes = {name: dict(configs) for name, configs in plan.set_configs.items()}
    created = set(names)
    if plan.create:
        # Someone else may create the same topic meanwhile: then set its configs instead.
        for name in admin.create(plan.create):
            created.discard(name)
            changes[name] = next(topic for topic in plan.create if topic.name == name).configs()
    if changes:
        admin.set_configs(changes)
    return TopicReport(
        created=tuple(topic.name for topic in plan.create if topic.name in created),
        reconfigured=changes,
        unchanged=plan.unchanged,
        warnings=plan.partition_warnings,
    )
