"""The service schemas and their database roles.

Each service owns one schema. A NOLOGIN group role `<schema>_access` holds the privileges on
that schema only; each service's functions log in as `<schema>_app`, a member of that group.
"""

from __future__ import annotations

from typing import Final

SERVICE_SCHEMAS: Final = (
    "patient_service",
    "therapist_service",
    "matching_service",
    "communication_service",
    "geocoding_service",
    "scraping_service",
)

HEALTH_ROLE: Final = "platform_health"


def access_role(schema: str) -> str:
    return f"{schema}_access"


def login_role(schema: str) -> str:
    return f"{schema}_app"
