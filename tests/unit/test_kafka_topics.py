"""The Kafka topics declared in code: one declaration per topic the bridge writes, their configs
as Kafka spells them, and applying them (create if missing, set configs that differ, leave the
rest alone, report partition differences) idempotently. Against the real broker (Tansu):
tests/integration/test_kafka_topics_runtime.py."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

import pytest

from support import FakeLambdaContext, load_function
from therapy_platform.platform.events import TOPIC_BY_PREFIX
from therapy_platform.platform.kafka import KafkaTopicAdmin
from therapy_platform.platform.kafka_topics import (
    INBOUND_TOPICS,
    TOPICS,
    ExistingTopic,
    KafkaTopic,
    apply_topics,
    plan_topics,
)
from therapy_platform.platform.settings import KafkaSettings


@dataclass
class FakeCluster:
    """A cluster as the topic admin sees it; `raced` topics appear between describe and create."""

    topics: dict[str, ExistingTopic] = field(default_factory=dict)
    raced: dict[str, ExistingTopic] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)

    def existing(self, names: Sequence[str]) -> dict[str, ExistingTopic]:
        self.calls.append("existing")
        return {name: self.topics[name] for name in names if name in self.topics}

    def create(self, topics: Sequence[KafkaTopic]) -> list[str]:
        self.calls.append("create")
        already = []
        for topic in topics:
            if topic.name in self.raced:
                self.topics[topic.name] = self.raced.pop(topic.name)
                already.append(topic.name)
            else:
                self.topics[topic.name] = ExistingTopic(topic.partitions, topic.configs())
        return already

    def set_configs(self, changes: Mapping[str, Mapping[str, str]]) -> None:
        self.calls.append("set_configs")
        for name, configs in changes.items():
            found = self.topics[name]
            self.topics[name] = ExistingTopic(found.partitions, {**found.configs, **configs})


def test_every_topic_the_bridge_writes_is_declared_once() -> None:
    names = [topic.name for topic in TOPICS]
    assert len(names) == len(set(names))
    assert set(names) == set(TOPIC_BY_PREFIX.values()) | INBOUND_TOPICS
    assert not INBOUND_TOPICS & set(TOPIC_BY_PREFIX.values())  # inbound topics are never bridged


def test_every_topic_keeps_events_for_a_bounded_time() -> None:
    for topic in TOPICS:
        assert "delete" in topic.cleanup_policy and topic.retention is not None, topic.name
        assert timedelta(days=1) <= topic.retention <= timedelta(days=30), topic.name
        assert topic.configs()["retention.ms"] == str(7 * 24 * 3600 * 1000)


def test_the_patient_topic_is_compacted_by_patient_id_so_an_erasure_tombstone_removes_the_patient() -> None:
    """Issue 12: after `patient.deleted` the bridge writes a tombstone keyed by the patient id;
    compaction drops the patient's earlier records, the tombstone itself after a day."""
    [patients] = [topic for topic in TOPICS if topic.name == "patient-events"]
    assert patients.key == "patient id"
    assert patients.configs() == {
        "cleanup.policy": "compact,delete",
        "retention.ms": str(7 * 24 * 3600 * 1000),
        "delete.retention.ms": str(24 * 3600 * 1000),
    }
    others = [topic for topic in TOPICS if topic.name != "patient-events"]
    assert all(
        topic.configs() == {"cleanup.policy": "delete", "retention.ms": "604800000"} for topic in others
    )


def test_a_declaration_can_say_compacted_by_key_with_tombstones() -> None:
    """What issue 12 needs for patient events: the newest record per patient id, an erased
    patient's tombstone kept a day for consumers to see, then the key is gone."""
    compacted = KafkaTopic(
        "patient-state",
        partitions=3,
        retention=None,
        key="patient id",
        cleanup_policy="compact",
        tombstone_retention=timedelta(days=1),
    )
    assert compacted.configs() == {
        "cleanup.policy": "compact",
        "retention.ms": "-1",
        "delete.retention.ms": "86400000",
    }


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"name": "Patient_Events"}, "lower-case"),
        ({"partitions": 0}, "at least one partition"),
        ({"retention": None}, "only a compacted topic"),
        ({"retention": timedelta(0)}, "positive"),
        ({"tombstone_retention": timedelta(days=1)}, "compacted topics only"),
    ],
)
def test_an_impossible_declaration_is_refused(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        replace(TOPICS[1], **changes)  # a plain delete-policy topic


def test_missing_topics_are_created_with_their_configs_and_a_second_run_changes_nothing() -> None:
    cluster = FakeCluster()
    first = apply_topics(cluster, TOPICS)
    assert set(first.created) == {topic.name for topic in TOPICS}
    assert first.reconfigured == {} and first.warnings == ()
    assert {name: found.configs for name, found in cluster.topics.items()} == {
        topic.name: topic.configs() for topic in TOPICS
    }
    cluster.calls.clear()
    again = apply_topics(cluster, TOPICS)
    assert again.created == () and again.reconfigured == {}
    assert set(again.unchanged) == {topic.name for topic in TOPICS}
    assert cluster.calls == ["existing"]


def test_only_the_configs_that_differ_are_set_and_undeclared_ones_stay() -> None:
    topic = TOPICS[0]
    drifted = {**topic.configs(), "retention.ms": "1000", "max.message.bytes": "2097152"}
    cluster = FakeCluster(topics={topic.name: ExistingTopic(topic.partitions, drifted)})
    report = apply_topics(cluster, [topic])
    assert report.reconfigured == {topic.name: {"retention.ms": topic.configs()["retention.ms"]}}
    assert cluster.topics[topic.name].configs == {**topic.configs(), "max.message.bytes": "2097152"}


def test_a_topic_that_reports_no_configs_gets_them_all() -> None:
    """Tansu reports nothing for a topic created without configs."""
    topic = TOPICS[1]
    cluster = FakeCluster(topics={topic.name: ExistingTopic(topic.partitions, {})})
    assert apply_topics(cluster, [topic]).reconfigured == {topic.name: topic.configs()}


def test_partition_counts_are_reported_never_changed() -> None:
    topic = TOPICS[2]
    plan = plan_topics([topic], {topic.name: ExistingTopic(1, topic.configs())})
    [warning] = plan.partition_warnings
    assert warning.startswith(f"{topic.name} has 1 partitions, {topic.partitions} are declared")
    assert plan.create == () and plan.set_configs == {}
    assert plan.unchanged == (topic.name,)


def test_a_topic_created_meanwhile_by_someone_else_gets_the_declared_configs() -> None:
    topic = TOPICS[3]
    cluster = FakeCluster(raced={topic.name: ExistingTopic(1, {"cleanup.policy": "compact"})})
    report = apply_topics(cluster, [topic])
    assert report.created == ()
    assert report.reconfigured == {topic.name: topic.configs()}
    assert cluster.topics[topic.name].configs == topic.configs()


def test_a_topic_declared_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="declared twice"):
        apply_topics(FakeCluster(), [TOPICS[0], TOPICS[0]])


# ---------------------------------------------------------------- the kafka-python admin adapter


class FakeAdminClient:
    """kafka-python's KafkaAdminClient as far as KafkaTopicAdmin uses it."""

    instances: list[FakeAdminClient] = []

    def __init__(self, **config: Any) -> None:
        self.config = config
        self.calls: list[tuple[str, Any, dict[str, Any]]] = []
        FakeAdminClient.instances.append(self)

    def describe_topics(self, names: list[str]) -> list[dict[str, Any]]:
        self.calls.append(("describe_topics", names, {}))
        return [
            {"name": "patient-events", "error_code": 0, "partitions": [{}, {}, {}]},
            {"name": "search-events", "error_code": 3, "partitions": []},
        ]

    def describe_configs(self, resources: list[Any], **options: Any) -> dict[str, Any]:
        self.calls.append(("describe_configs", [(r.name, r.configs) for r in resources], options))
        return {"topic": {"patient-events": {"retention.ms": {"value": "1000"}}}}

    def create_topics(self, topics: dict[str, Any], **options: Any) -> dict[str, Any]:
        self.calls.append(("create_topics", topics, options))
        return {"topics": [{"name": name, "error_code": 0} for name in topics]}

    def alter_configs(self, resources: list[Any], **options: Any) -> dict[str, Any]:
        self.calls.append(("alter_configs", [(r.name, r.configs) for r in resources], options))
        return {"topic": {r.name: "OK" for r in resources}}

    def close(self) -> None:
        self.calls.append(("close", None, {}))


def test_the_admin_describes_whole_topics_and_alters_incrementally(monkeypatch: pytest.MonkeyPatch) -> None:
    import kafka.admin

    FakeAdminClient.instances = []
    monkeypatch.setattr(kafka.admin, "KafkaAdminClient", FakeAdminClient)
    settings = KafkaSettings.model_validate(
        {
            "KAFKA_BOOTSTRAP_SERVERS": "b-1:9098",
            "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "KAFKA_SASL_MECHANISM": "AWS_MSK_IAM",
        }
    )
    admin = KafkaTopicAdmin(settings)
    declared = [topic for topic in TOPICS if topic.name in ("patient-events", "search-events")]
    report = apply_topics(admin, declared)
    assert report.created == ("search-events",)
    assert report.reconfigured == {
        "patient-events": {
            "cleanup.policy": "compact,delete",
            "retention.ms": "604800000",
            "delete.retention.ms": "86400000",
        }
    }
    calls = [call for client in FakeAdminClient.instances for call in client.calls]
    assert all(client.config["sasl_mechanism"] == "AWS_MSK_IAM" for client in FakeAdminClient.instances)
    assert all(client.calls[-1][0] == "close" for client in FakeAdminClient.instances)
    [describe] = [call for call in calls if call[0] == "describe_configs"]
    assert describe[1] == [("patient-events", None)] and describe[2] == {"config_filter": "all"}
    [create] = [call for call in calls if call[0] == "create_topics"]
    assert create[1]["search-events"]["replication_factor"] == -1  # the cluster's default
    assert create[1]["search-events"]["num_partitions"] == 3
    [alter] = [call for call in calls if call[0] == "alter_configs"]
    assert alter[2]["incremental"] is True


def test_the_function_applies_the_declarations_and_returns_the_report(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app = load_function("kafka_topics")
    cluster = FakeCluster()
    monkeypatch.setattr(app, "admin", cluster)
    report = app.lambda_handler({}, FakeLambdaContext())
    assert sorted(report["created"]) == sorted(topic.name for topic in TOPICS)
    assert app.lambda_handler({}, FakeLambdaContext())["created"] == []
