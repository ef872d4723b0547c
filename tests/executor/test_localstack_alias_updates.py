"""The project's in-place update of Lambda aliases for LocalStack's CloudFormation
(localstack_subprocess_executor/alias_updates.py): which Lambda calls turn the deployed alias into
the template's. The local redeploy of a changed API function shows it working in LocalStack."""

from __future__ import annotations

# Loaded from infra/localstack_executor (see conftest.py); outside mypy_path on purpose.
from localstack_subprocess_executor.alias_updates import (  # type: ignore[import-not-found]
    alias_update_calls,
)

FUNCTION = "therapy-platform-local-HealthFunction-9d252ac1"
LIVE = {"FunctionName": FUNCTION, "Name": "live", "FunctionVersion": "1", "Id": f"arn:...:{FUNCTION}:live"}


def test_a_new_version_of_the_same_function_updates_the_alias_in_place() -> None:
    assert alias_update_calls(LIVE, {**LIVE, "FunctionVersion": "2"}) == [
        (
            "update_alias",
            {"FunctionName": FUNCTION, "Name": "live", "FunctionVersion": "2", "Description": ""},
        )
    ]


def test_a_weighted_routing_is_set_and_cleared_again() -> None:
    routing = {"AdditionalVersionWeights": [{"FunctionVersion": "2", "FunctionWeight": 0.1}]}
    weighted = {**LIVE, "RoutingConfig": routing}
    assert alias_update_calls(LIVE, weighted)[0][1]["RoutingConfig"] == routing
    assert alias_update_calls(weighted, LIVE)[0][1]["RoutingConfig"] == {"AdditionalVersionWeights": {}}


def test_an_alias_of_a_replaced_function_is_created_on_the_new_one_and_deleted_on_the_old() -> None:
    moved = {**LIVE, "FunctionName": "therapy-platform-local-HealthFunction-0000", "Description": "d"}
    assert alias_update_calls(LIVE, moved) == [
        (
            "create_alias",
            {
                "FunctionName": moved["FunctionName"],
                "Name": "live",
                "FunctionVersion": "1",
                "Description": "d",
            },
        ),
        ("delete_alias", {"FunctionName": FUNCTION, "Name": "live"}),
    ]
