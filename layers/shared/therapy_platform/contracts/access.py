"""The API's published access policy: which role each route needs. The one place it is written;
the shared resolver enforces it on every route (403 naming the missing role), the OpenAPI
document carries it per operation (`x-required-role`), docs/access.md explains it, and
`tests/unit/test_access_policy.py` fails when a route of the template or of a function is not in
this table (no route is unprotected by omission).

Roles (lowest first; each may do everything the ones before it may):
- auditor: reads the records of the work (patients, therapists, searches, bundles, emails, calls,
  alerts, import reports) and changes nothing.
- staff: daily work: registers and edits patients, therapists and searches, runs and sends
  bundles, records responses and calls, uses the geocoding and eligibility tools.
- admin: what cannot be undone or reaches anyone: GDPR erasure, blocking and unblocking a
  therapist, editing a cooling period, ad-hoc emails to any patient or therapist.

Only /health and the API description (OpenAPI document and Swagger UI) are public: they hold no
personal data, and Swagger UI must load the document before anyone can enter a token.
"""

from __future__ import annotations

from typing import Final

from therapy_platform.platform.rest.access import PUBLIC, AccessPolicy

AUDITOR: Final = "auditor"
STAFF: Final = "staff"
ADMIN: Final = "admin"

ROLES: Final = (AUDITOR, STAFF, ADMIN)

ROLE_DESCRIPTIONS: Final = {
    AUDITOR: "reads the records of the work; changes nothing",
    STAFF: "daily work with patients, therapists, searches, bundles and calls",
    ADMIN: "erasure, blocking, cooling-period edits, ad-hoc emails to anyone",
}

P = "/api/v2"

ROUTES: Final[dict[tuple[str, str], str]] = {
    # public: no personal data
    ("GET", "/health"): PUBLIC,
    ("GET", f"{P}/openapi.json"): PUBLIC,
    ("GET", f"{P}/docs"): PUBLIC,
    ("GET", f"{P}/docs/{{asset}}"): PUBLIC,  # Swagger UI's own files
    # The code catalogue: labels only, but part of the staff application, so any role may read
    # it and nobody without a token (a shared cache must not hand it out either: private).
    ("GET", f"{P}/catalog"): AUDITOR,
    # Feature flags evaluated for a subject: how the platform behaves for whom (docs/feature-flags.md).
    ("GET", f"{P}/admin/feature-flags"): ADMIN,
    # patients
    ("POST", f"{P}/patients"): STAFF,
    ("GET", f"{P}/patients"): AUDITOR,
    ("GET", f"{P}/patients/{{patient_id}}"): AUDITOR,
    ("PUT", f"{P}/patients/{{patient_id}}"): STAFF,
    ("PATCH", f"{P}/patients/{{patient_id}}"): STAFF,
    ("DELETE", f"{P}/patients/{{patient_id}}"): ADMIN,  # GDPR erasure: cannot be undone
    ("GET", f"{P}/patients/{{patient_id}}/export"): ADMIN,  # GDPR export: everything, every service
    ("GET", f"{P}/registration-intake/parked"): STAFF,  # website registrations that became no patient
    # therapists
    ("POST", f"{P}/therapists"): STAFF,
    ("GET", f"{P}/therapists"): AUDITOR,
    ("GET", f"{P}/therapists/{{therapist_id}}"): AUDITOR,
    ("GET", f"{P}/therapists/{{therapist_id}}/export"): ADMIN,  # GDPR export: everything, every service
    ("POST", f"{P}/therapists/{{therapist_id}}/erase"): ADMIN,  # GDPR erasure: cannot be undone
    ("PUT", f"{P}/therapists/{{therapist_id}}"): STAFF,
    ("PATCH", f"{P}/therapists/{{therapist_id}}"): STAFF,
    ("DELETE", f"{P}/therapists/{{therapist_id}}"): STAFF,  # deactivation, undone by reactivate
    ("POST", f"{P}/therapists/{{therapist_id}}/reactivate"): STAFF,
    ("POST", f"{P}/therapists/{{therapist_id}}/block"): ADMIN,
    ("POST", f"{P}/therapists/{{therapist_id}}/unblock"): ADMIN,
    ("GET", f"{P}/therapists/{{therapist_id}}/cooling-period"): AUDITOR,
    ("PUT", f"{P}/therapists/{{therapist_id}}/cooling-period"): ADMIN,
    ("POST", f"{P}/therapists/{{therapist_id}}/opt-out"): STAFF,  # the therapist objects (Art. 21)
    ("POST", f"{P}/therapists/{{therapist_id}}/opt-in"): ADMIN,  # only when the therapist asks
    # geocoding: staff tools (reverse geocoding may call Nominatim)
    ("POST", f"{P}/geocoding/geocode"): STAFF,
    ("GET", f"{P}/geocoding/reverse"): STAFF,
    ("GET", f"{P}/geocoding/postcodes/{{postcode}}"): STAFF,
    ("POST", f"{P}/geocoding/distance"): STAFF,
    # matching
    ("POST", f"{P}/patient-searches"): STAFF,
    ("GET", f"{P}/patient-searches"): AUDITOR,
    ("GET", f"{P}/patient-searches/{{search_id}}"): AUDITOR,
    ("PATCH", f"{P}/patient-searches/{{search_id}}"): STAFF,
    ("POST", f"{P}/patient-searches/{{search_id}}/contact-requests"): STAFF,
    ("GET", f"{P}/bundles"): AUDITOR,
    ("POST", f"{P}/bundles/create"): STAFF,
    ("GET", f"{P}/bundles/{{bundle_id}}"): AUDITOR,
    ("POST", f"{P}/bundles/{{bundle_id}}/send"): STAFF,
    ("PUT", f"{P}/bundles/{{bundle_id}}/response"): STAFF,
    ("GET", f"{P}/therapists/eligible"): STAFF,  # a matching tool, not a record
    ("POST", f"{P}/therapists/{{therapist_id}}/bundles"): STAFF,
    ("GET", f"{P}/alerts"): AUDITOR,
    # communication
    ("GET", f"{P}/emails"): AUDITOR,
    ("POST", f"{P}/emails"): ADMIN,  # an ad-hoc email to any patient or therapist
    ("GET", f"{P}/emails/{{email_id}}"): AUDITOR,
    ("GET", f"{P}/patients/{{patient_id}}/communications"): AUDITOR,
    ("GET", f"{P}/therapists/{{therapist_id}}/communications"): AUDITOR,
    ("GET", f"{P}/communications"): AUDITOR,
    ("GET", f"{P}/phone-calls"): AUDITOR,
    ("GET", f"{P}/phone-calls/{{call_id}}"): AUDITOR,
    ("POST", f"{P}/phone-calls/{{call_id}}/complete"): STAFF,
    # Replies refused for a bundle (forged, unverified, oversized): staff decide what they are.
    ("GET", f"{P}/reply-reviews"): STAFF,
    # analytics (the matching service's figures): staff plan with them; aggregates, no personal data
    ("GET", f"{P}/analytics/bundle-efficiency"): STAFF,
    ("GET", f"{P}/analytics/therapist-preferences"): STAFF,
    ("GET", f"{P}/analytics/placements"): STAFF,
    # directory imports
    ("GET", f"{P}/imports"): AUDITOR,
    ("GET", f"{P}/imports/{{import_id}}"): AUDITOR,
}

API_ACCESS_POLICY: Final = AccessPolicy(roles=ROLES, routes=ROUTES, descriptions=ROLE_DESCRIPTIONS)
