"""The communication service's contact directory (ports.ContactDirectory): contact data looked
up at the moment it is needed, in the services that own it (contracts/contacts.py: the patient
and therapist services' contacts functions, invoked directly), never kept from events. One
directory per unit of work remembers its answers, so one reaction asks once per person."""

from __future__ import annotations

import os
import uuid

from therapy_platform.communication.domain.email_content import TherapistContact
from therapy_platform.communication.domain.tracking import PatientContact, PatientContactState
from therapy_platform.contracts.contacts import (
    ContactState,
    InvokedContacts,
    PatientContactCard,
    TherapistContactCard,
)
from therapy_platform.platform.lambda_invoke import default_functions


def patient_state(card: PatientContactCard) -> PatientContactState:
    if card.state is ContactState.UNKNOWN:
        return PatientContactState(known=False)
    if card.state is ContactState.ERASED:
        return PatientContactState(known=True, contact=None)
    return PatientContactState(
        known=True,
        contact=PatientContact(
            id=card.id,
            salutation=card.salutation,
            gender=card.gender,
            first_name=card.first_name,
            last_name=card.last_name or "",
            email=card.email,
            max_travel_km=card.max_travel_km,
            location_flagged=card.location_flagged,
        ),
    )


def therapist_contact(card: TherapistContactCard) -> TherapistContact | None:
    if card.state is not ContactState.FOUND:
        return None
    return TherapistContact.model_validate(
        {
            "gender": card.gender,
            "salutation": (card.salutation or "").strip() or None,
            "title": (card.title or "").strip() or None,
            "first_name": (card.first_name or "").strip() or None,
            "last_name": (card.last_name or "").strip() or "Praxis",
            "street": card.street or None,
            "postcode": card.postcode or None,
            "city": card.city or None,
            "phone": card.phone or None,
            "email": card.email or None,
            "website": card.website or None,
            "phone_windows": card.phone_windows,
        }
    )


class LookupContactDirectory:
    """ports.ContactDirectory over the owning services' contacts functions."""

    def __init__(self, contacts: InvokedContacts) -> None:
        self._contacts = contacts
        self._patients: dict[uuid.UUID, PatientContactCard] = {}
        self._therapists: dict[uuid.UUID, TherapistContactCard] = {}

    def _therapist_card(self, therapist_id: uuid.UUID) -> TherapistContactCard:
        if therapist_id not in self._therapists:
            self._therapists[therapist_id] = self._contacts.therapist(therapist_id)
        return self._therapists[therapist_id]

    def patient(self, patient_id: uuid.UUID) -> PatientContactState:
        if patient_id not in self._patients:
            self._patients[patient_id] = self._contacts.patient(patient_id)
        return patient_state(self._patients[patient_id])

    def therapist(self, therapist_id: uuid.UUID) -> TherapistContact | None:
        return therapist_contact(self._therapist_card(therapist_id))

    def knows_therapist(self, therapist_id: uuid.UUID) -> bool:
        return self._therapist_card(therapist_id).state is not ContactState.UNKNOWN


def deployed_contact_directory() -> LookupContactDirectory:
    """The directory of a deployed function: the contacts functions the template names
    (PATIENT_CONTACTS_FUNCTION, THERAPIST_CONTACTS_FUNCTION; read when a unit of work starts,
    a function without them fails on its first look-up, naming the variable)."""
    return LookupContactDirectory(
        InvokedContacts(
            lambda name, payload: default_functions().invoke(name, payload),
            patient_function=os.environ.get("PATIENT_CONTACTS_FUNCTION"),
            therapist_function=os.environ.get("THERAPIST_CONTACTS_FUNCTION"),
        )
    )
