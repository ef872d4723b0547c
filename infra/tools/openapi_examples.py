"""Request and response examples of the OpenAPI document, by operationId: what a frontend
developer sees first in Swagger UI. infra/tools/openapi.py attaches them; a unit test
(tests/unit/test_openapi_document.py) validates every one against its schema, so an example
cannot drift from the model it shows. Fictitious people only."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final


@dataclass(frozen=True)
class Examples:
    """`request`: named examples of the JSON body; `responses`: named examples per status."""

    request: dict[str, Any] | None = None
    responses: dict[int, dict[str, Any]] = field(default_factory=dict)


def named(summary: str, value: Any) -> dict[str, Any]:
    """One OpenAPI Example Object."""
    return {"summary": summary, "value": value}


PATIENT_ID: Final = "3f2b8c1e-5d4a-4e2b-9c7d-1a2b3c4d5e6f"
SEARCH_ID: Final = "7c9e6679-7425-40de-944b-e07fc1f90ae7"
OTHER_SEARCH_ID: Final = "9b2f4d3a-1c5e-4a7b-8d6f-2e3a4b5c6d7e"
THERAPIST_ID: Final = "0d6f1c2b-3a4e-4f5d-8b9c-7e6d5c4b3a21"
BUNDLE_ID: Final = "5a1b2c3d-4e5f-4a6b-9c8d-7e6f5a4b3c2d"
ROUND_ID: Final = "e4d3c2b1-a0f9-4e8d-b7c6-a5b4c3d2e1f0"

PATIENT_DRAFT: Final[dict[str, Any]] = {
    "salutation": "Frau",
    "first_name": "Erika",
    "last_name": "Mustermann",
    "birth_date": "1987-04-12",
    "gender": "female",
    "email": "erika.mustermann@example.org",
    "phone": "+49 30 1234567",
    "street": "Heidestraße 17",
    "postcode": "51147",
    "city": "Köln",
    "insurance_type": "statutory",
    "health_insurer": "AOK Rheinland/Hamburg",
    "symptoms": ["depression", "sleep"],
    "languages": ["de", "en"],
    "therapy_procedures": ["VT", "TP"],
    "preferred_therapist_gender": "any",
    "max_travel_km": 20,
    "travel_mode": "transit",
    "availability": {"mon": ["08:00-12:00"], "thu": ["14:00-18:00"]},
}
PATIENT: Final[dict[str, Any]] = {
    **PATIENT_DRAFT,
    "id": PATIENT_ID,
    "status": "open",
    "location": {"latitude": 50.8786, "longitude": 7.1224, "precision": "address"},
    "location_flagged": False,
    "shared_language_required": False,
    "needs_shared_language": None,
    "previous_therapy": False,
    "open_to_group_therapy": False,
    "group_only": False,
    "excluded_therapist_ids": [],
    "notes": None,
    "last_therapy_session": None,
    "created_at": "2025-03-03T08:15:00Z",
    "updated_at": "2025-03-03T08:15:00Z",
}
SEARCH: Final[dict[str, Any]] = {
    "id": SEARCH_ID,
    "patient_id": PATIENT_ID,
    "status": "active",
    "status_reason": None,
    "total_requested_contacts": 10,
    "contacts_used": 0,
    "open_bundles": 0,
    "waiting_days": 0,
    "exclusions": [],
    "notes": None,
    "placed_at": None,
    "placed_therapist_id": None,
    "created_at": "2025-03-03T08:20:00Z",
    "updated_at": "2025-03-03T08:20:00Z",
}


def _member(position: int, search_id: str, outcome: str | None, status: str) -> dict[str, Any]:
    return {
        "id": f"11111111-2222-4333-8444-55555555555{position}",
        "search_id": search_id,
        "patient_id": PATIENT_ID if search_id == SEARCH_ID else "2c3d4e5f-6a7b-4c8d-9e0f-1a2b3c4d5e6f",
        "position": position,
        "reference": f"B1042-{position}",
        "status": status,
        "outcome": outcome,
        "responded_at": "2025-03-06T10:30:00Z" if outcome else None,
        "notes": None,
    }


ANSWERED_BUNDLE: Final[dict[str, Any]] = {
    "id": BUNDLE_ID,
    "number": 1042,
    "reference": "B1042",
    "therapist_id": THERAPIST_ID,
    "practice_key": "praxis@example.org",
    "kind": "round",
    "status": "answered",
    "channel": "email",
    "size": 2,
    "members": [
        _member(1, SEARCH_ID, "accepted", "accepted"),
        _member(2, OTHER_SEARCH_ID, "rejected_capacity", "rejected"),
    ],
    "response_type": "partial_acceptance",
    "accepted_count": 1,
    "rejected_count": 1,
    "no_response_count": 0,
    "round_id": ROUND_ID,
    "applied_filters": [],
    "skipped_filters": [],
    "needs_follow_up": False,
    "notes": None,
    "created_by": "system:round",
    "created_at": "2025-03-04T07:00:00Z",
    "sent_at": "2025-03-04T07:00:05Z",
    "answered_at": "2025-03-06T10:30:00Z",
    "reminder_sent_at": None,
    "expired_at": None,
    "discarded_at": None,
    "discard_reason": None,
    "updated_at": "2025-03-06T10:30:00Z",
}

OPERATION_EXAMPLES: Final[dict[str, Examples]] = {
    "createPatient": Examples(
        request={"complete": named("A patient with an address and preferences", PATIENT_DRAFT)},
        responses={201: {"registered": named("The registered patient, located by address", PATIENT)}},
    ),
    "getPatient": Examples(responses={200: {"patient": named("A patient waiting for a place", PATIENT)}}),
    "startSearch": Examples(
        request={
            "search": named(
                "Search for up to 10 therapists",
                {"patient_id": PATIENT_ID, "total_requested_contacts": 10},
            )
        },
        responses={201: {"started": named("The new, active search", SEARCH)}},
    ),
    "createBundles": Examples(
        request={
            "region": named("A round for one region, drafts only", {"postcode_prefix": "51"}),
            "dry_run": named("Explain what a round would do", {"dry_run": True}),
        },
        responses={
            201: {
                "created": named(
                    "One draft bundle created",
                    {
                        "run_date": "2025-03-04",
                        "dry_run": False,
                        "round_id": ROUND_ID,
                        "therapists_considered": 12,
                        "searches_considered": 30,
                        "bundles": [
                            {
                                "bundle_id": BUNDLE_ID,
                                "reference": "B1042",
                                "status": "draft",
                                "therapist_id": THERAPIST_ID,
                                "practice_key": "praxis@example.org",
                                "members": [],
                                "applied_filters": [],
                                "skipped_filters": [],
                            }
                        ],
                        "therapists_left_out": [],
                        "searches_left_out": [],
                    },
                )
            }
        },
    ),
    "recordBundleResponse": Examples(
        request={
            "partial": named(
                "One patient accepted, one declined for lack of capacity",
                {
                    "members": [
                        {"search_id": SEARCH_ID, "outcome": "accepted"},
                        {"search_id": OTHER_SEARCH_ID, "outcome": "rejected_capacity"},
                    ],
                    "responded_at": "2025-03-06T10:30:00Z",
                },
            )
        },
        responses={
            200: {
                "placed": named(
                    "The accepted patient is placed; the cooling period starts",
                    {
                        "bundle": ANSWERED_BUNDLE,
                        "placements": [
                            {
                                "search_id": SEARCH_ID,
                                "patient_id": PATIENT_ID,
                                "therapist_id": THERAPIST_ID,
                                "placed_at": "2025-03-06T10:30:00Z",
                            }
                        ],
                        "conflicts": [],
                        "withdrawals": [],
                        "exclusions_added": [OTHER_SEARCH_ID],
                        "next_contact_allowed_on": "2025-04-03",
                        "repeated": False,
                    },
                )
            }
        },
    ),
    "createTherapist": Examples(
        request={
            "practice": named(
                "A therapist with an email address and phone hours",
                {
                    "title": "Dr.",
                    "first_name": "Max",
                    "last_name": "Beispiel",
                    "gender": "male",
                    "email": "praxis@example.org",
                    "phone": "+49 221 7654321",
                    "street": "Domstraße 1",
                    "postcode": "50667",
                    "city": "Köln",
                    "procedures": ["VT"],
                    "languages": ["de", "en"],
                    "statutory_seat": True,
                    "phone_windows": {"tue": ["08:00-09:00"]},
                },
            )
        }
    ),
    "geocodeAddress": Examples(
        request={
            "address": named(
                "A street address",
                {"street": "Domkloster 4", "postcode": "50667", "city": "Köln"},
            ),
            "postcode_only": named("Only a postcode: its centroid", {"postcode": "50667"}),
        }
    ),
    "getDistance": Examples(
        request={
            "postcodes": named(
                "From one postcode to another by public transport",
                {"from": {"postcode": "50667"}, "to": {"postcode": "51147"}, "mode": "transit"},
            )
        }
    ),
    "sendEmail": Examples(
        request={
            "reminder": named(
                "A short note to a patient",
                {
                    "recipient_type": "patient",
                    "recipient_id": PATIENT_ID,
                    "subject": "Ihre Therapieplatzsuche",
                    "body": "wir haben Ihre Anfrage erhalten und melden uns, sobald es Neuigkeiten gibt.",
                },
            )
        }
    ),
}
