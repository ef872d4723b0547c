"""What GET /api/v2/admin/feature-flags answers: every catalogued flag evaluated for one subject
(functions/feature_flags_api). Read-only by design: the flags document is part of the template,
so a change is a reviewed commit and a deploy (docs/feature-flags.md, "Changing a flag")."""

from __future__ import annotations

from typing import Final, Literal

from pydantic import BaseModel, Field

from therapy_platform.platform.errors import DependencyUnavailableError
from therapy_platform.platform.feature_flag_store import PowertoolsFlags
from therapy_platform.platform.feature_flags import CATALOG, FlagSubject

Role = Literal["auditor", "staff", "admin"]
# The role ladder: each role may do what the ones before it may (contracts/access.py), so a
# subject with a role holds the lower ones as well, as the resolver's check does.
LADDER: Final[tuple[Role, ...]] = ("auditor", "staff", "admin")


class EvaluatedFlag(BaseModel):
    name: str
    enabled: bool
    wired: bool = Field(
        description="false: the flag is defined, but the feature it switches is not built yet"
    )
    description: str


class EvaluatedFlags(BaseModel):
    subject: str | None = Field(description="The subject the flags were evaluated for (an opaque id)")
    region: str | None = Field(description="Two-digit postcode region of the context")
    roles: list[Role]
    store: str = Field(
        description="Where the document was read: ssm:<parameter> or appconfig:<app/env/profile>"
    )
    flags: list[EvaluatedFlag]


def roles_up_to(role: Role | None) -> tuple[Role, ...]:
    return () if role is None else LADDER[: LADDER.index(role) + 1]


def evaluate_for(flags: PowertoolsFlags, subject: FlagSubject) -> EvaluatedFlags:
    """Every flag of the catalogue for `subject`; 503 when the store cannot be read or its
    document is invalid (an admin must see that, not the fallbacks a function would use)."""
    try:
        flags.document()
    except Exception as error:
        raise DependencyUnavailableError(
            f"the feature flags store cannot be read: {type(error).__name__}"
        ) from error
    return EvaluatedFlags(
        subject=subject.subject,
        region=subject.region,
        roles=[role for role in LADDER if role in subject.roles],
        store=flags.source,
        flags=[
            EvaluatedFlag(
                name=flag.value,
                enabled=flags.enabled(flag, subject),
                wired=info.wired,
                description=info.description,
            )
            for flag, info in CATALOG.items()
        ],
    )
