"""`sam deploy` alone brings the database and the Kafka topics up to date: the deployed stack's
custom resources ran the migration and topics functions (localcloud deploy invokes neither)."""

from __future__ import annotations

import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, text

from localcloud import postgres, stack
from localcloud.aws import client
from localcloud.paths import PROJECT_ROOT

pytestmark = pytest.mark.e2e


def test_the_deploy_ran_the_migrations_and_the_topics_by_itself(deployed: stack.StackInfo) -> None:
    cloudformation = client("cloudformation")
    for logical_id in ("DatabaseMigration", "KafkaTopicDeclarations"):
        detail = cloudformation.describe_stack_resource(
            StackName=deployed.stack_name, LogicalResourceId=logical_id
        )["StackResourceDetail"]
        assert detail["ResourceStatus"] in {"CREATE_COMPLETE", "UPDATE_COMPLETE"}, (logical_id, detail)

    config = Config()
    config.set_main_option("script_location", str(PROJECT_ROOT / "infra" / "migrations"))
    head = ScriptDirectory.from_config(config).get_current_head()
    engine = create_engine(postgres.admin_url())
    try:
        with engine.connect() as connection:
            current = connection.execute(text("SELECT version_num FROM public.alembic_version")).scalar_one()
    finally:
        engine.dispose()
    assert current == head
