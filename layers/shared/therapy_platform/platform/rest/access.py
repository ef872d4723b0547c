"""Who may call which route: the shape of an access policy and the verified caller.

The API gateway's authorizer (functions/authorizer) verifies the bearer token and hands the
caller to every function in `requestContext.authorizer`; the shared resolver reads it here and
enforces the role the route needs. The policy itself (the route-to-role table) is published in
`contracts/access.py`; `platform` cannot import it, so every API function passes it to
`create_resolver`.

Roles form a ladder: each role may do everything the roles below it may (an admin is also
staff, staff may read what an auditor may).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

# A route anyone may call without a token (the gateway lets it through without the authorizer).
PUBLIC: Final = "public"

# The keys the authorizer puts into its context (API Gateway allows only flat string values).
CONTEXT_USER_ID: Final = "user_id"
CONTEXT_DISPLAY_NAME: Final = "display_name"
CONTEXT_ROLES: Final = "roles"
ROLE_SEPARATOR: Final = ","

_POWERTOOLS_PARAMETER = re.compile(r"<([^>]+)>")


def openapi_path(route_path: str) -> str:
    """`/api/v2/patients/<patient_id>` (how routes are declared) -> `/api/v2/patients/{patient_id}`
    (how the gateway, the template and the OpenAPI document name them)."""
    return _POWERTOOLS_PARAMETER.sub(r"{\1}", route_path)


@dataclass(frozen=True)
class Identity:
    """The caller as the authorizer verified them."""

    user_id: str
    display_name: str
    roles: frozenset[str]

    @classmethod
    def from_authorizer_context(cls, context: Mapping[str, Any] | None) -> Identity | None:
        """None when no authorizer vouched for the caller (no user id in its context)."""
        if not context:
            return None
        user_id = str(context.get(CONTEXT_USER_ID) or "").strip()
        if not user_id:
            return None
        raw_roles = str(context.get(CONTEXT_ROLES) or "")
        roles = frozenset(role.strip() for role in raw_roles.split(ROLE_SEPARATOR) if role.strip())
        display_name = str(context.get(CONTEXT_DISPLAY_NAME) or "").strip() or user_id
        return cls(user_id=user_id, display_name=display_name, roles=roles)

    def context(self) -> dict[str, str]:
        """What the authorizer returns as its context for this identity."""
        return {
            CONTEXT_USER_ID: self.user_id,
            CONTEXT_DISPLAY_NAME: self.display_name,
            CONTEXT_ROLES: ROLE_SEPARATOR.join(sorted(self.roles)),
        }


@dataclass(frozen=True)
class AccessPolicy:
    """`roles`: the ladder, lowest first. `routes`: (METHOD, /openapi/path) -> the lowest role that
    may call it, or PUBLIC."""

    roles: tuple[str, ...]
    routes: Mapping[tuple[str, str], str]
    descriptions: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        known = {*self.roles, PUBLIC}
        unknown = {role for role in self.routes.values() if role not in known}
        if unknown:
            raise ValueError(f"routes name roles the ladder does not have: {sorted(unknown)}")
        if PUBLIC in self.roles or ROLE_SEPARATOR in "".join(self.roles):
            raise ValueError("role names may not be 'public' or contain a comma")

    def required_role(self, method: str, path: str) -> str | None:
        """The role the route needs, PUBLIC, or None when the policy does not know the route."""
        return self.routes.get((method.upper(), path))

    def rank(self, role: str) -> int:
        return self.roles.index(role)

    def allows(self, held: Iterable[str], required: str) -> bool:
        if required == PUBLIC:
            return True
        needed = self.rank(required)
        return any(role in self.roles and self.rank(role) >= needed for role in held)

    def roles_granting(self, required: str) -> tuple[str, ...]:
        """Every role that may call a route needing `required` (the role and those above it)."""
        if required == PUBLIC:
            return ()
        return self.roles[self.rank(required) :]

    def known_roles(self, roles: Iterable[str]) -> frozenset[str]:
        return frozenset(role for role in roles if role in self.roles)
