"""Terms patients and therapists share, so that matching compares the same values on both
sides: a person's gender (a patient's wish about the therapist, a therapist's about patients)
and the therapy procedures (wanted by the patient, offered by the therapist)."""

from __future__ import annotations

from enum import StrEnum


class Gender(StrEnum):
    MALE = "male"
    FEMALE = "female"
    DIVERSE = "diverse"
    UNSPECIFIED = "unspecified"


class TherapyProcedure(StrEnum):
    """Therapy procedures under German statutory insurance."""

    BEHAVIOURAL = "VT"  # Verhaltenstherapie
    DEPTH_PSYCHOLOGICAL = "TP"  # tiefenpsychologisch fundierte Psychotherapie
    ANALYTIC = "AP"  # analytische Psychotherapie
    SYSTEMIC = "ST"  # systemische Therapie
