"""Encryption through the deployed local stack (GDPR Art. 32, docs/privacy.md#encryption): the
patient API, running as deployed with FIELD_ENCRYPTION_KEY_ID (the stack's PatientFieldKey in
LocalStack KMS), stores sealed email, phone, street and notes, which a raw SQL read cannot read
and the API reads back; the stack's queues and topics name its customer-managed keys.

Not checked here because LocalStack does not show them (tests/unit/test_template_encryption.py
checks the template instead): S3 reports AES256 whatever BucketEncryption says, the bus does not
report its KmsKeyIdentifier, bucket policies are not enforced, and the SES configuration set
exists only in AWS (Condition IsAws)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from cloud_support import ApiCaller
from localcloud import postgres, stack
from localcloud.aws import client

pytestmark = pytest.mark.e2e

STAFF = ApiCaller("staff", user="e2e-encryption@praxisvermittlung.example.de")
PREFIX = "enc1:"


def _physical_ids(info: stack.StackInfo) -> dict[str, dict[str, str]]:
    """Logical id -> {type, physical id} of the deployed stack's resources."""
    cloudformation = client("cloudformation")
    resources: dict[str, dict[str, str]] = {}
    token: str | None = None
    while True:
        page = cloudformation.list_stack_resources(
            StackName=info.stack_name, **({"NextToken": token} if token else {})
        )
        for summary in page["StackResourceSummaries"]:
            resources[summary["LogicalResourceId"]] = {
                "type": summary["ResourceType"],
                "id": summary.get("PhysicalResourceId", ""),
            }
        token = page.get("NextToken")
        if not token:
            return resources


def _raw(sql: str, patient_id: str) -> list[dict[str, Any]]:
    engine = create_engine(postgres.admin_url())
    try:
        with engine.connect() as connection:
            return [dict(row) for row in connection.execute(text(sql), {"id": patient_id}).mappings()]
    finally:
        engine.dispose()


def test_the_deployed_api_seals_patient_fields(base_url: str) -> None:
    tag = uuid.uuid4().hex[:10]
    canaries = {
        "email": f"e2e.kanarie.{tag}@example.org",
        "phone": f"+49 341 {int(tag[:6], 16) % 10**7:07d}",
        "street": f"Kanariengasse {tag}",
        "notes": f"E2E vertraulich {tag}",
    }
    created = STAFF.post(
        f"{base_url}/api/v2/patients",
        json={
            "first_name": "Kira",
            "last_name": f"Kanarie{tag[:4]}",
            "postcode": "04109",
            "symptoms": ["anxiety"],
        }
        | canaries,
        timeout=60,
    )
    assert created.status_code == 201, created.text
    patient_id = created.json()["id"]

    (row,) = _raw("SELECT * FROM patient_service.patients WHERE id = :id", patient_id)
    for field in canaries:
        assert str(row[field]).startswith(PREFIX), f"{field} stored in plaintext"
    dump = str(row) + str(_raw("SELECT * FROM patient_service.audit_log WHERE entity_id = :id", patient_id))
    for field, value in canaries.items():
        assert value not in dump, f"{field} readable in a raw SQL read"

    read = STAFF.get(f"{base_url}/api/v2/patients/{patient_id}", timeout=60)
    assert read.status_code == 200, read.text
    assert {field: read.json()[field] for field in canaries} == canaries


def test_the_stack_encrypts_its_stores_with_its_own_keys(deployed: stack.StackInfo) -> None:
    resources = _physical_ids(deployed)
    keys = {name for name, resource in resources.items() if resource["type"] == "AWS::KMS::Key"}
    assert {"PatientFieldKey", "MessagingKey", "StorageKey", "LogsKey"} <= keys
    kms = client("kms")
    key_arns = {name: kms.describe_key(KeyId=resources[name]["id"])["KeyMetadata"]["Arn"] for name in keys}
    key_ids = {value for name in keys for value in (resources[name]["id"], key_arns[name])}

    sqs = client("sqs")
    queues = [resource["id"] for resource in resources.values() if resource["type"] == "AWS::SQS::Queue"]
    assert queues
    for queue_url in queues:
        attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["KmsMasterKeyId"])[
            "Attributes"
        ]
        assert attributes.get("KmsMasterKeyId") in key_ids, queue_url

    sns = client("sns")
    topics = [resource["id"] for resource in resources.values() if resource["type"] == "AWS::SNS::Topic"]
    assert topics
    for topic_arn in topics:
        attributes = sns.get_topic_attributes(TopicArn=topic_arn)["Attributes"]
        assert attributes.get("KmsMasterKeyId") in key_ids, topic_arn
