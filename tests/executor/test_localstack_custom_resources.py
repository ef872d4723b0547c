"""The project's provider of Lambda-backed CloudFormation custom resources for LocalStack's
community edition (localstack_subprocess_executor/custom_resources.py): the request it sends and
how it reads the function's answer. The e2e test tests/e2e/test_deploy_migrates.py shows it
running the migrations during a deploy."""

from __future__ import annotations

from typing import Any

# Loaded from infra/localstack_executor (see conftest.py); outside mypy_path on purpose.
from localstack_subprocess_executor.custom_resources import (  # type: ignore[import-not-found]
    custom_resource_request,
    outcome,
)

PROPERTIES = {
    "ServiceToken": "arn:aws:lambda:eu-central-1:000000000000:function:migrate",
    "MigrationsVersion": "2",
}


def request(kind: str, **kwargs: Any) -> dict[str, Any]:
    arguments: dict[str, Any] = {
        "properties": PROPERTIES,
        "old_properties": {**PROPERTIES, "MigrationsVersion": "1"},
        "physical_id": "database-migration",
        "response_url": "http://localhost:4566/bucket/key?X-Amz-Signature=x",
        "stack_id": "arn:aws:cloudformation:eu-central-1:000000000000:stack/s/1",
        "logical_id": "DatabaseMigration",
        "resource_type": "Custom::DatabaseMigration",
    }
    result: dict[str, Any] = custom_resource_request(kind, **{**arguments, **kwargs})
    return result


def test_create_carries_no_physical_id_and_update_carries_the_old_properties() -> None:
    create = request("Create")
    assert create["RequestType"] == "Create" and "PhysicalResourceId" not in create
    assert create["ResourceProperties"] == PROPERTIES and create["ServiceToken"] == PROPERTIES["ServiceToken"]
    update = request("Update")
    assert update["PhysicalResourceId"] == "database-migration"
    assert update["OldResourceProperties"]["MigrationsVersion"] == "1"
    delete = request("Delete", physical_id=None)
    assert delete["PhysicalResourceId"] == "DatabaseMigration" and "OldResourceProperties" not in delete
    assert create["RequestId"] != update["RequestId"]


def test_the_answer_decides() -> None:
    ok, model, _ = outcome(
        {"Status": "SUCCESS", "PhysicalResourceId": "database-migration", "Data": {"revision": "0015"}},
        PROPERTIES,
    )
    assert ok and model["Id"] == "database-migration" and model["revision"] == "0015"
    failed, _, reason = outcome({"Status": "FAILED", "Reason": "ProgrammingError; see the log"}, PROPERTIES)
    assert not failed and reason.startswith("ProgrammingError")
    silent, _, reason = outcome(None, PROPERTIES)
    assert not silent and "answered nothing" in reason
