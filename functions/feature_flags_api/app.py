"""GET /api/v2/admin/feature-flags (admin): every feature flag evaluated for a subject, a role
and a postcode region, read from the store the environment names (AppConfig in AWS, the SSM
parameter locally). Changes are deploys, not requests (docs/feature-flags.md)."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.utilities.typing import LambdaContext

from therapy_platform.contracts.access import API_ACCESS_POLICY
from therapy_platform.platform.feature_flag_api import EvaluatedFlags, Role, evaluate_for, roles_up_to
from therapy_platform.platform.feature_flag_store import PowertoolsFlags, flags_from_env
from therapy_platform.platform.feature_flags import FlagSubject
from therapy_platform.platform.rest.operations import Tag, operation
from therapy_platform.platform.rest.resolver import create_resolver

logger = Logger(service="feature-flags")
app = create_resolver(logger, access=API_ACCESS_POLICY)
flags: PowertoolsFlags = flags_from_env()


@app.get(
    "/api/v2/admin/feature-flags",
    **operation(
        "getFeatureFlags",
        Tag.ADMIN,
        "The feature flags evaluated for a subject",
        "Every feature flag of the platform as the functions would evaluate it for the given "
        "subject (an opaque id: a staff user, a therapist or search id), role and two-digit "
        "postcode region, with whether the feature behind it is built yet. Percentage rollouts "
        "hash the subject, so the same subject always gets the same answer. Flags change only "
        "through a deploy of the template (the audit trail); there is no write route.",
        ok="The evaluated flags",
        errors={503: "The flags store cannot be read or holds an invalid document"},
    ),
)
def read_feature_flags(
    subject: Annotated[
        str | None,
        Query(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9@._:+-]+$", description="Opaque subject id"),
    ] = None,
    role: Annotated[Role | None, Query(description="The subject's role (includes the lower ones)")] = None,
    region: Annotated[str | None, Query(pattern=r"^\d{2}$", description="Two-digit postcode region")] = None,
) -> EvaluatedFlags:
    return evaluate_for(flags, FlagSubject(subject=subject, roles=roles_up_to(role), region=region))


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
