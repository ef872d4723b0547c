"""Encryption at rest and in transit as the template declares it (GDPR Art. 32,
docs/privacy.md#encryption): every store has a customer-managed key, buckets refuse plain HTTP,
mail leaves over TLS, and every function that reads or writes the patient store can seal and open
its fields. Resources another branch adds are held to the same rules when merged."""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path
from typing import Any

import grimp
import pytest
from samtranslator.yaml_helper import yaml_parse

ROOT = Path(__file__).resolve().parents[2]
PATIENT_STORE = "therapy_platform.patients.adapters.store"
CMKS = {"PatientFieldKey", "MessagingKey", "StorageKey", "LogsKey", "DatabaseKey"}


@cache
def _template() -> dict[str, Any]:
    return yaml_parse((ROOT / "template.yaml").read_text())  # type: ignore[no-any-return]


def _resources(kind: str) -> dict[str, dict[str, Any]]:
    return {name: body for name, body in _template()["Resources"].items() if body["Type"] == kind}


def _key_of(reference: Any) -> str | None:
    """The template key a !Ref / !GetAtt X.Arn names (None: anything else, e.g. an AWS-managed alias)."""
    if isinstance(reference, dict):
        if "Ref" in reference:
            return str(reference["Ref"])
        if "Fn::GetAtt" in reference:
            target = reference["Fn::GetAtt"]
            return str(target[0] if isinstance(target, list) else target.split(".")[0])
    return None


def test_every_key_is_customer_managed_and_rotated() -> None:
    keys = _resources("AWS::KMS::Key")
    assert set(keys) >= CMKS
    for name, body in keys.items():
        assert body["Properties"]["EnableKeyRotation"] is True, name
        statements = body["Properties"]["KeyPolicy"]["Statement"]
        assert any(s.get("Sid") == "AccountAdministersAndIamGrantsUse" for s in statements), name
    for name in ("PatientFieldKey", "DatabaseKey"):  # losing them loses data: kept on stack deletion
        assert keys[name]["DeletionPolicy"] == "Retain", name


@pytest.mark.parametrize("queue", sorted(_resources("AWS::SQS::Queue")))
def test_every_queue_is_encrypted_with_the_messaging_key(queue: str) -> None:
    properties = _resources("AWS::SQS::Queue")[queue]["Properties"]
    assert _key_of(properties.get("KmsMasterKeyId")) == "MessagingKey"
    assert "SqsManagedSseEnabled" not in properties  # SQS-owned keys are not customer-managed


@pytest.mark.parametrize("topic", sorted(_resources("AWS::SNS::Topic")))
def test_every_topic_is_encrypted_with_the_messaging_key(topic: str) -> None:
    assert _key_of(_resources("AWS::SNS::Topic")[topic]["Properties"].get("KmsMasterKeyId")) == "MessagingKey"


def test_the_event_bus_is_encrypted_with_the_messaging_key() -> None:
    for name, body in _resources("AWS::Events::EventBus").items():
        assert _key_of(body["Properties"].get("KmsKeyIdentifier")) == "MessagingKey", name


def test_the_messaging_key_lets_eventbridge_and_cloudwatch_deliver() -> None:
    statements = _template()["Resources"]["MessagingKey"]["Properties"]["KeyPolicy"]["Statement"]
    services = {s["Principal"].get("Service") for s in statements if isinstance(s["Principal"], dict)}
    assert {"events.amazonaws.com", "cloudwatch.amazonaws.com"} <= services


@pytest.mark.parametrize("bucket", sorted(_resources("AWS::S3::Bucket")))
def test_every_bucket_uses_the_storage_key_and_refuses_plain_http(bucket: str) -> None:
    properties = _resources("AWS::S3::Bucket")[bucket]["Properties"]
    (rule,) = properties["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    default = rule["ServerSideEncryptionByDefault"]
    assert default["SSEAlgorithm"] == "aws:kms" and _key_of(default["KMSMasterKeyID"]) == "StorageKey"
    assert rule.get("BucketKeyEnabled") is True
    policies = [
        body["Properties"]["PolicyDocument"]["Statement"]
        for body in _resources("AWS::S3::BucketPolicy").values()
        if body["Properties"]["Bucket"] == {"Ref": bucket}
    ]
    assert len(policies) == 1, f"{bucket} needs exactly one bucket policy"
    denies = [
        s
        for s in policies[0]
        if s["Effect"] == "Deny"
        and s["Principal"] == "*"
        and s["Action"] == "s3:*"
        and s.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}
    ]
    assert len(denies) == 1, f"{bucket} must deny aws:SecureTransport=false"
    resources = denies[0]["Resource"]
    assert {"Fn::GetAtt": [bucket, "Arn"]} in resources or {"Fn::GetAtt": f"{bucket}.Arn"} in resources
    assert any("/*" in str(resource) for resource in resources), "objects too, not only the bucket"


def test_the_template_declares_its_log_groups() -> None:
    # One per function (tools/log_groups.py): an empty list would make the test below vacuous.
    assert len(_resources("AWS::Logs::LogGroup")) >= len(_resources("AWS::Serverless::Function"))


@pytest.mark.parametrize("group", sorted(_resources("AWS::Logs::LogGroup")))
def test_every_log_group_uses_the_logs_key(group: str) -> None:
    assert _key_of(_resources("AWS::Logs::LogGroup")[group]["Properties"].get("KmsKeyId")) == "LogsKey"


def test_aurora_storage_uses_the_database_key() -> None:
    for name, body in _resources("AWS::RDS::DBCluster").items():
        assert body["Properties"]["StorageEncrypted"] is True, name
        assert _key_of(body["Properties"]["KmsKeyId"]) == "DatabaseKey", name
    assert _template()["Resources"]["DatabaseKey"]["Condition"] == "UseAurora"


def test_mail_leaves_over_tls_outside_local() -> None:
    (config_set,) = _resources("AWS::SES::ConfigurationSet").values()
    assert config_set["Properties"]["DeliveryOptions"]["TlsPolicy"] == "REQUIRE"
    assert config_set["Condition"] == "IsAws"  # LocalStack's CloudFormation does not create it
    for name, body in _resources("AWS::Serverless::Function").items():
        variables = body["Properties"].get("Environment", {}).get("Variables", {})
        if "SMTP_HOST" in variables:
            assert variables["SMTP_STARTTLS"] == {"Fn::If": ["IsLocal", "false", "true"]}, name
            assert variables["SES_CONFIGURATION_SET"] == {
                "Fn::If": ["IsAws", {"Ref": "EmailConfigurationSet"}, {"Ref": "AWS::NoValue"}]
            }, name


# ------------------------------------------------------------------ the patient store's functions
@cache
def _graph() -> grimp.ImportGraph:
    return grimp.build_graph("therapy_platform")


def _imports(code_dir: Path) -> set[str]:
    imported: set[str] = set()
    for path in code_dir.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                imported.add(node.module)
                imported.update(f"{node.module}.{alias.name}" for alias in node.names)
    return imported


def _uses_patient_store(code_dir: Path) -> bool:
    graph = _graph()
    modules = {module for module in _imports(code_dir) if module in graph.modules}
    return PATIENT_STORE in modules or any(graph.chain_exists(module, PATIENT_STORE) for module in modules)


def _patient_store_functions() -> list[str]:
    return sorted(
        name
        for name, body in _resources("AWS::Serverless::Function").items()
        if _uses_patient_store(ROOT / body["Properties"]["CodeUri"])
    )


def test_the_patient_store_functions_are_found() -> None:
    assert {"PatientsApiFunction", "PatientSearchEventsFunction"} <= set(_patient_store_functions())


@pytest.mark.parametrize("function", _patient_store_functions())
def test_a_function_of_the_patient_store_can_seal_and_open_patient_fields(function: str) -> None:
    properties = _resources("AWS::Serverless::Function")[function]["Properties"]
    variables = properties["Environment"]["Variables"]
    assert variables.get("FIELD_ENCRYPTION_KEY_ID") == {
        "Fn::GetAtt": ["PatientFieldKey", "Arn"]
    } or variables.get("FIELD_ENCRYPTION_KEY_ID") == {"Fn::GetAtt": "PatientFieldKey.Arn"}, (
        f"{function} writes patient fields in plaintext without it"
    )
    assert {"Ref": "PatientFieldKeyUsePolicy"} in properties["Policies"], f"{function} may not use the key"
    assert {"Ref": "CryptoLayer"} in properties.get("Layers", []), f"{function} needs cryptography"


def test_only_the_patient_store_functions_may_use_the_patient_field_key() -> None:
    users = sorted(
        name
        for name, body in _resources("AWS::Serverless::Function").items()
        if {"Ref": "PatientFieldKeyUsePolicy"} in body["Properties"].get("Policies", [])
        or "FIELD_ENCRYPTION_KEY_ID" in body["Properties"].get("Environment", {}).get("Variables", {})
    )
    assert users == _patient_store_functions()


def test_the_patient_field_key_is_used_only_for_patient_fields() -> None:
    (statement,) = _template()["Resources"]["PatientFieldKeyUsePolicy"]["Properties"]["PolicyDocument"][
        "Statement"
    ]
    assert sorted(statement["Action"]) == ["kms:Decrypt", "kms:GenerateDataKey"]
    from therapy_platform.patients.adapters.field_cipher import ENCRYPTION_CONTEXT

    expected = {f"kms:EncryptionContext:{name}": value for name, value in ENCRYPTION_CONTEXT.items()}
    assert statement["Condition"]["StringEquals"] == expected
