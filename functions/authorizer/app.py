"""The API's Lambda TOKEN authorizer (SAM `DefaultAuthorizer`): verifies the OIDC bearer token of
the organisation's identity provider and hands the caller (user id, display name, the roles the
access policy knows) to every function in its context. Which role a route needs is enforced by
the functions' shared resolver (contracts/access.py), so the policy returned here allows the
whole API: API Gateway caches it per token for every route.

A token that cannot be trusted gets 401 ("Unauthorized" is the message API Gateway maps to it);
why is logged (expired, wrong audience, ...), never the token or its claims.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.data_classes.api_gateway_authorizer_event import (
    APIGatewayAuthorizerResponse,
    APIGatewayAuthorizerTokenEvent,
)
from aws_lambda_powertools.utilities.typing import LambdaContext

from therapy_platform.contracts.access import API_ACCESS_POLICY
from therapy_platform.platform.bearer_tokens import (
    AuthorizerSettings,
    InvalidTokenError,
    KeySourceError,
    build_verifier,
)
from therapy_platform.platform.rest.access import Identity

logger = Logger(service="authorizer")
verifier = build_verifier(AuthorizerSettings.from_env())  # keys are fetched on first use, then cached


class Unauthorized(Exception):  # noqa: N818 - API Gateway answers 401 only to exactly this message
    def __init__(self) -> None:
        super().__init__("Unauthorized")


def bearer_token(header: str | None) -> str:
    scheme, _, token = (header or "").strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise InvalidTokenError("no bearer token")
    return token.strip()


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = APIGatewayAuthorizerTokenEvent(event)
    try:
        verified = verifier.verify(bearer_token(request.get("authorizationToken")))
    except InvalidTokenError as error:
        logger.info("token refused", extra={"reason": error.reason})
        raise Unauthorized from None
    except KeySourceError as error:
        logger.error("the identity provider's keys are unavailable", extra={"reason": str(error)})
        raise Unauthorized from None
    caller = Identity(verified.user_id, verified.display_name, API_ACCESS_POLICY.known_roles(verified.roles))
    arn = request.parsed_arn
    response = APIGatewayAuthorizerResponse(
        principal_id=caller.user_id,
        region=arn.region,
        aws_account_id=arn.aws_account_id,
        api_id=arn.api_id,
        stage=arn.stage,
        context=caller.context(),
    )
    response.allow_all_routes()
    logger.info("token accepted", extra={"roles": sorted(caller.roles)})
    return response.asdict()
