"""Migration function: runs Alembic to head and provisions the services' login roles with the
passwords kept in Secrets Manager (idempotent). The migrations themselves (infra/migrations:
runner.py, the revisions) come in MigrationsLayer.

It runs by itself during every `sam deploy` that changes it: template.yaml's
`DatabaseMigration` custom resource calls it with CloudFormation's request, and it answers on
the request's ResponseURL (a failed migration fails the deploy, which rolls back). Delete does
nothing: removing the stack never touches the data. Operators may also invoke it directly
(`{}` or `{"revision": "<id>"}`).
"""

from __future__ import annotations

import json
import os
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities import parameters
from aws_lambda_powertools.utilities.typing import LambdaContext

from runner import provision_service_roles, upgrade
from therapy_platform.platform.database import database_url, make_engine
from therapy_platform.platform.deploy_hooks import answer_cloudformation, is_cloudformation_request
from therapy_platform.platform.settings import DatabaseSettings

logger = Logger(service="db-migrate")


def _role_credentials() -> dict[str, tuple[str, str]]:
    arns: dict[str, str] = json.loads(os.environ["SERVICE_SECRET_ARNS"])
    credentials = {}
    for owner, arn in arns.items():
        secret = parameters.get_secret(arn, transform="json", force_fetch=True)
        if not isinstance(secret, dict):
            raise ValueError(f"secret for {owner} is not a JSON object")
        credentials[owner] = (str(secret["username"]), str(secret["password"]))
    return credentials


def migrate(revision: str = "head") -> dict[str, Any]:
    settings = DatabaseSettings.from_env()  # DB_SECRET_ARN is the admin secret here
    engine = make_engine(database_url(settings), use_ssl=settings.ssl)
    try:
        reached = upgrade(engine, revision)
        roles = provision_service_roles(engine, _role_credentials())
    finally:
        engine.dispose()
    logger.info("database migrated", extra={"revision": reached, "roles": roles})
    return {"revision": reached, "roles": roles}


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    event = event or {}
    if is_cloudformation_request(event):
        answer = answer_cloudformation(
            event,
            migrate,
            physical_id="database-migration",
            on_failure=lambda error: logger.exception("migration failed during the deploy"),
        )
        logger.info(
            "answered CloudFormation", extra={"request": event["RequestType"], "status": answer["Status"]}
        )
        return answer
    return migrate(str(event.get("revision", "head")))
