"""The API's code catalogue: every enumeration a request or response uses, each code with a
German and an English label (`GET /api/v2/catalog`), so a frontend never copies labels.

This is the one source of these labels: the server's own German wording (bundle emails, the
staff email list, weekday abbreviations) reads them from here, and `symptoms.py` and
`languages.py` keep theirs beside their lists. Vocabularies are named like their schema in the
OpenAPI document (`Symptom`, `BundleStatus`, ...); `tests/unit/test_code_catalog.py` fails when
an enumeration of the API has a value without both labels.

Codes are stable (stored, sent in events); labels may be reworded.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final, NamedTuple

from pydantic import BaseModel, ConfigDict, Field

from therapy_platform.contracts.languages import LANGUAGE_LABELS, LANGUAGE_LABELS_EN
from therapy_platform.contracts.symptoms import SYMPTOM_LABELS, SYMPTOM_LABELS_EN
from therapy_platform.platform.problems import (
    FIELD_ERROR_CODES,
    FIELD_ERROR_CODES_EN,
    LOCATION_LABELS,
    PROBLEM_TYPES,
)


class Label(NamedTuple):
    de: str
    en: str


class Vocabulary(NamedTuple):
    description: str
    labels: Mapping[str, Label]  # code -> labels, in the order a UI lists them


def _paired(german: Mapping[str, str], english: Mapping[str, str]) -> dict[str, Label]:
    if set(german) != set(english):
        raise ValueError(f"German and English labels differ in codes: {set(german) ^ set(english)}")
    return {str(code): Label(german[code], english[code]) for code in german}


_L = Label

VOCABULARIES: Final[dict[str, Vocabulary]] = {
    # ------------------------------------------------------------------ people and therapy
    "Symptom": Vocabulary(
        "Presenting problems staff pick for a patient (1 to 6)",
        _paired(
            {str(k): v for k, v in SYMPTOM_LABELS.items()}, {str(k): v for k, v in SYMPTOM_LABELS_EN.items()}
        ),
    ),
    "Language": Vocabulary(
        "Languages staff record most often (ISO 639-1); any other ISO 639-1 code is accepted too",
        _paired(LANGUAGE_LABELS, LANGUAGE_LABELS_EN),
    ),
    "Gender": Vocabulary(
        "A person's gender",
        {
            "male": _L("männlich", "male"),
            "female": _L("weiblich", "female"),
            "diverse": _L("divers", "diverse"),
            "unspecified": _L("keine Angabe", "not specified"),
        },
    ),
    "DataSubject": Vocabulary(
        "Whose personal data an export holds",
        {
            "patient": _L("Patient/in", "patient"),
            "therapist": _L("Therapeut/in", "therapist"),
        },
    ),
    "TherapistGenderPreference": Vocabulary(
        "The patient's wish about the therapist's gender",
        {
            "male": _L("Therapeut", "male therapist"),
            "female": _L("Therapeutin", "female therapist"),
            "diverse": _L("Therapeut*in diversen Geschlechts", "diverse therapist"),
            "any": _L("egal", "no preference"),
        },
    ),
    "InsuranceType": Vocabulary(
        "How the patient's therapy is paid",
        {
            "statutory": _L("gesetzlich versichert", "statutory health insurance"),
            "private": _L("privat versichert", "private health insurance"),
            "self_pay": _L("Selbstzahlung", "self-pay"),
        },
    ),
    "TherapyProcedure": Vocabulary(
        "Therapy procedures under German statutory insurance",
        {
            "VT": _L("Verhaltenstherapie", "cognitive behavioural therapy"),
            "TP": _L("Tiefenpsychologisch fundierte Psychotherapie", "psychodynamic psychotherapy"),
            "AP": _L("Analytische Psychotherapie", "psychoanalytic psychotherapy"),
            "ST": _L("Systemische Therapie", "systemic therapy"),
        },
    ),
    "Weekday": Vocabulary(
        "Days of a weekly schedule",
        {
            "mon": _L("Montag", "Monday"),
            "tue": _L("Dienstag", "Tuesday"),
            "wed": _L("Mittwoch", "Wednesday"),
            "thu": _L("Donnerstag", "Thursday"),
            "fri": _L("Freitag", "Friday"),
            "sat": _L("Samstag", "Saturday"),
            "sun": _L("Sonntag", "Sunday"),
        },
    ),
    "PatientStatus": Vocabulary(
        "Where a patient stands (follows the search)",
        {
            "open": _L("offen", "open"),
            "searching": _L("auf der Suche", "searching"),
            "in_therapy": _L("in Therapie", "in therapy"),
            "therapy_finished": _L("Therapie beendet", "therapy finished"),
            "search_cancelled": _L("Suche abgebrochen", "search cancelled"),
            "therapy_cancelled": _L("Therapie abgebrochen", "therapy cancelled"),
        },
    ),
    "TherapistStatus": Vocabulary(
        "Whether a therapist may receive bundles",
        {
            "active": _L("aktiv", "active"),
            "blocked": _L("gesperrt", "blocked"),
            "inactive": _L("inaktiv", "inactive"),
        },
    ),
    "ContactOptOutReason": Vocabulary(
        "How a therapist objected to further inquiries (GDPR Art. 21)",
        {
            "reply": _L("per Antwort auf eine Anfrage", "by replying to an inquiry"),
            "phone": _L("telefonisch", "by phone"),
            "email": _L("per E-Mail an das Team", "by email to staff"),
            "letter": _L("per Brief", "by letter"),
            "other": _L("auf anderem Weg", "another way"),
        },
    ),
    "PersonType": Vocabulary(
        "Whose communication history",
        {"patient": _L("Patient*in", "patient"), "therapist": _L("Therapeut*in", "therapist")},
    ),
    # ------------------------------------------------------------------ searches and bundles
    "SearchStatus": Vocabulary(
        "A patient search's status",
        {
            "active": _L("aktiv", "active"),
            "paused": _L("pausiert", "paused"),
            "placed": _L("vermittelt", "placed"),
            "cancelled": _L("abgebrochen", "cancelled"),
        },
    ),
    "BundleStatus": Vocabulary(
        "A bundle's status",
        {
            "draft": _L("Entwurf", "draft"),
            "sent": _L("versendet", "sent"),
            "answered": _L("beantwortet", "answered"),
            "expired": _L("abgelaufen", "expired"),
            "discarded": _L("verworfen", "discarded"),
        },
    ),
    "BundleKind": Vocabulary(
        "How a bundle came about",
        {
            "round": _L("Runde", "round"),
            "staff": _L("vom Team zusammengestellt", "built by staff"),
            "follow_up": _L("Folgeanfrage", "follow-up"),
        },
    ),
    "Channel": Vocabulary(
        "How a therapist is contacted",
        {"email": _L("E-Mail", "email"), "phone": _L("Telefon", "phone")},
    ),
    "MemberStatus": Vocabulary(
        "A patient's place in a bundle",
        {
            "pending": _L("offen", "pending"),
            "accepted": _L("angenommen", "accepted"),
            "rejected": _L("abgelehnt", "rejected"),
            "no_response": _L("keine Antwort", "no response"),
            "withdrawn": _L("zurückgezogen", "withdrawn"),
            "conflict": _L("Konflikt (schon vermittelt)", "conflict (placed already)"),
        },
    ),
    "MemberOutcome": Vocabulary(
        "A therapist's answer about one patient of a bundle",
        {
            "accepted": _L("angenommen", "accepted"),
            "rejected_capacity": _L("abgelehnt: keine Kapazität", "rejected: no capacity"),
            "rejected_unsuitable": _L("abgelehnt: passt nicht", "rejected: not suitable"),
            "rejected_other": _L("abgelehnt: anderer Grund", "rejected: other reason"),
            "no_response": _L("keine Antwort", "no response"),
        },
    ),
    "ResponseType": Vocabulary(
        "A therapist's answer to a whole bundle",
        {
            "full_acceptance": _L("alle angenommen", "all accepted"),
            "partial_acceptance": _L("teilweise angenommen", "some accepted"),
            "full_rejection": _L("alle abgelehnt", "all rejected"),
            "no_response": _L("keine Antwort", "no response"),
        },
    ),
    "SoftFilter": Vocabulary(
        "Soft preferences a round may relax, most specific first",
        {
            "availability": _L("zeitliche Verfügbarkeit", "availability"),
            "symptom_preferences": _L("bevorzugte Beschwerden", "symptom preferences"),
            "age_band": _L("Altersgruppe", "age band"),
            "group_preference": _L("Gruppentherapie-Wunsch", "group therapy preference"),
            "learned_preferences": _L("gelernte Vorlieben", "learned preferences"),
        },
    ),
    "Reason": Vocabulary(
        "Why a round left out a therapist, a search or a pair (skip reasons)",
        {
            "therapist_not_active": _L("Therapeut*in nicht aktiv", "therapist not active"),
            "in_cooling_period": _L("in der Karenzzeit", "in the cooling period"),
            "open_bundle": _L("hat schon eine offene Anfrage", "has an open bundle"),
            "practice_open_bundle": _L("Praxis hat eine offene Anfrage", "practice has an open bundle"),
            "practice_in_cooling_period": _L("Praxis in der Karenzzeit", "practice in the cooling period"),
            "therapist_location_unknown": _L("Standort der Praxis unbekannt", "therapist location unknown"),
            "contact_opt_out": _L("hat weiteren Anfragen widersprochen", "objected to further inquiries"),
            "practice_contact_opt_out": _L(
                "jemand aus der Praxis hat weiteren Anfragen widersprochen",
                "someone in the practice objected to further inquiries",
            ),
            "not_practice_owner": _L(
                "Anfrage geht an eine Kollegin oder einen Kollegen der Praxis",
                "a colleague gets the practice's bundle",
            ),
            "too_few_candidates": _L("zu wenige passende Personen", "too few candidates"),
            "search_not_active": _L("Suche nicht aktiv", "search not active"),
            "contact_budget_used": _L("Kontaktkontingent verbraucht", "contact budget used up"),
            "open_bundle_limit": _L("Höchstzahl offener Anfragen erreicht", "open bundle limit reached"),
            "patient_location_unknown": _L("Wohnort der Person unbekannt", "patient location unknown"),
            "no_therapist_in_reach": _L("keine Praxis in Reichweite", "no therapist in reach"),
            "no_matching_therapist": _L("keine passende Praxis", "no matching therapist"),
            "not_chosen": _L(
                "nicht ausgewählt (länger Wartende gingen vor)", "not chosen (longer waiters first)"
            ),
            "not_chosen_availability": _L(
                "nicht ausgewählt: Zeiten passen nicht zu den Arbeitszeiten",
                "not chosen: availability does not fit the working hours",
            ),
            "not_chosen_symptom_preferences": _L(
                "nicht ausgewählt: Beschwerden nicht unter den bevorzugten",
                "not chosen: symptoms not among the therapist's preferences",
            ),
            "not_chosen_age_band": _L(
                "nicht ausgewählt: Alter außerhalb der bevorzugten Altersgruppe",
                "not chosen: age outside the preferred age band",
            ),
            "not_chosen_group_preference": _L(
                "nicht ausgewählt: nicht offen für Gruppentherapie",
                "not chosen: not open to group therapy",
            ),
            "not_chosen_learned_preferences": _L(
                "nicht ausgewählt: passt nicht zu den erlernten Vorlieben",
                "not chosen: does not fit the learned preferences",
            ),
            "out_of_reach": _L("außer Reichweite", "out of reach"),
            "excluded_by_patient": _L("von der Person ausgeschlossen", "excluded by the patient"),
            "excluded_by_search": _L("für diese Suche ausgeschlossen", "excluded for this search"),
            "therapist_gender_not_wanted": _L(
                "Geschlecht der Therapeut*in nicht gewünscht", "therapist's gender not wanted"
            ),
            "patient_gender_not_wanted": _L(
                "Geschlecht der Person nicht gewünscht", "patient's gender not wanted"
            ),
            "birth_date_unknown": _L("Geburtsdatum unbekannt", "birth date unknown"),
            "age_out_of_range": _L("Alter außerhalb des Bereichs", "age out of range"),
            "no_shared_procedure": _L("kein gemeinsames Verfahren", "no shared procedure"),
            "group_only_patient": _L("Person will nur Gruppentherapie", "patient wants group therapy only"),
            "group_only_therapist": _L(
                "Praxis bietet nur Gruppentherapie", "therapist offers group therapy only"
            ),
            "no_shared_language": _L("keine gemeinsame Sprache", "no shared language"),
            "already_sent_to_practice": _L("schon an diese Praxis gesendet", "already sent to this practice"),
            "soft_filter": _L("durch eine weiche Vorgabe aussortiert", "left out by a soft preference"),
            "bundle_full": _L("Anfrage schon voll", "bundle full"),
            "search_limit_reached": _L("Grenze der Suche in dieser Runde erreicht", "search limit reached"),
            "patient_already_in_bundle": _L(
                "Person schon in dieser Anfrage", "patient already in the bundle"
            ),
            "not_in_selection": _L("nicht ausgewählt", "not in the selection"),
        },
    ),
    "SkipReason": Vocabulary(
        "Why the directory import skipped an entry",
        {
            "malformed_page": _L("unlesbare Seite", "malformed page"),
            "malformed_entry": _L("unlesbarer Eintrag", "malformed entry"),
            "missing_field": _L("Pflichtangabe fehlt", "required field missing"),
            "invalid_value": _L("ungültiger Wert", "invalid value"),
            "not_for_adults": _L("behandelt keine Erwachsenen", "does not treat adults"),
            "duplicate": _L("doppelter Eintrag", "duplicate"),
            "ambiguous_match": _L("mehrdeutige Zuordnung", "ambiguous match"),
            "conflict": _L("Widerspruch zu gespeicherten Daten", "conflict with the stored record"),
        },
    ),
    "ImportItemOutcome": Vocabulary(
        "An item of a directory import report",
        {
            "skipped": _L("übersprungen", "skipped"),
            "vanished": _L("aus dem Verzeichnis verschwunden", "vanished from the directory"),
            "reappeared": _L("wieder im Verzeichnis", "back in the directory"),
        },
    ),
    "ImportStatus": Vocabulary(
        "A directory import's status",
        {
            "running": _L("läuft", "running"),
            "finished": _L("abgeschlossen", "finished"),
            "failed": _L("fehlgeschlagen", "failed"),
        },
    ),
    # ------------------------------------------------------------------ self-registration intake
    "ParkReason": Vocabulary(
        "Why a registration from the website did not become a patient",
        {
            "unsigned": _L("ohne Signatur", "unsigned"),
            "bad_signature": _L(
                "Signatur ungültig (gefälscht oder verändert)", "bad signature (forged or altered)"
            ),
            "malformed": _L("unlesbar (kein JSON-Objekt)", "malformed (no JSON object)"),
            "invalid": _L("Angaben ungültig", "invalid fields"),
            "intake_paused": _L("Annahme pausiert", "intake paused"),
        },
    ),
    # ------------------------------------------------------------------ communication
    "EmailKind": Vocabulary(
        "What an email is (its template)",
        {
            "bundle_inquiry": _L("Anfrage an Therapeut*in", "inquiry to a therapist"),
            "bundle_reminder": _L("Erinnerung an Therapeut*in", "reminder to a therapist"),
            "withdrawal_notice": _L("Rückzug einer Person aus einer Anfrage", "withdrawal notice"),
            "patient_search_started": _L("Patient*in: Suche begonnen", "patient: search started"),
            "patient_place_found": _L("Patient*in: Platz gefunden", "patient: place found"),
            "patient_registration_confirmed": _L(
                "Patient*in: Anmeldung bestätigt", "patient: registration confirmed"
            ),
            "staff_conflict_alert": _L("Hinweis an das Team: Konflikt", "staff alert: conflict"),
            "staff_unknown_location_alert": _L(
                "Hinweis an das Team: Standort unbekannt", "staff alert: location unknown"
            ),
            "staff_send_failed_alert": _L(
                "Hinweis an das Team: Versand fehlgeschlagen", "staff alert: sending failed"
            ),
            "ad_hoc": _L("Einzelnachricht", "ad-hoc message"),
        },
    ),
    "EmailStatus": Vocabulary(
        "Where an email is in its life cycle",
        {
            "draft": _L("Entwurf", "draft"),
            "queued": _L("in der Warteschlange", "queued"),
            "sending": _L("wird gesendet", "sending"),
            "sent": _L("gesendet", "sent"),
            "failed": _L("fehlgeschlagen", "failed"),
        },
    ),
    "RecipientType": Vocabulary(
        "Who receives an email",
        {
            "therapist": _L("Therapeut*in", "therapist"),
            "patient": _L("Patient*in", "patient"),
            "staff": _L("Team", "staff"),
        },
    ),
    "PhoneCallPurpose": Vocabulary(
        "Why a call is made",
        {
            "inquiry": _L("Anfrage", "inquiry"),
            "reminder": _L("Erinnerung", "reminder"),
            "withdrawal": _L("Rückzug", "withdrawal"),
            "follow_up": _L("Nachfassen", "follow-up"),
        },
    ),
    "PhoneCallStatus": Vocabulary(
        "A phone call task's status",
        {
            "scheduled": _L("geplant", "scheduled"),
            "completed": _L("erledigt", "completed"),
            "cancelled": _L("abgesagt", "cancelled"),
        },
    ),
    "PhoneCallOutcome": Vocabulary(
        "How a call went",
        {
            "reached": _L("erreicht", "reached"),
            "no_answer": _L("nicht erreicht", "no answer"),
            "voicemail": _L("Anrufbeantworter", "voicemail"),
            "call_back_requested": _L("Rückruf erbeten", "call back requested"),
            "wrong_number": _L("falsche Nummer", "wrong number"),
        },
    ),
    "SlotRule": Vocabulary(
        "How a call's slot was chosen",
        {
            "phone_window": _L("in der Telefonzeit der Praxis", "in the practice's phone hours"),
            "fallback": _L("Ersatztermin (keine Telefonzeit bekannt)", "fallback (no phone hours known)"),
        },
    ),
    "ReviewReason": Vocabulary(
        "Why a reply went to the staff review list",
        {
            "too_large": _L("zu groß", "too large"),
            "unreadable": _L("unlesbar", "unreadable"),
            "verdicts_missing": _L("Prüfergebnisse fehlen", "verdicts missing"),
            "spam": _L("Spam", "spam"),
            "virus": _L("Virus", "virus"),
            "not_authenticated": _L("Absender nicht bestätigt", "sender not authenticated"),
            "unknown_bundle": _L("unbekannte Anfrage", "unknown bundle"),
            "sender_not_addressee": _L("Absender ist nicht die Empfänger*in", "sender is not the addressee"),
            "unmatched": _L("keiner Anfrage zuzuordnen", "unmatched"),
        },
    ),
    # ------------------------------------------------------------------ places and health
    "LocationPrecision": Vocabulary(
        "How precisely a place is known",
        {
            "address": _L("Adresse", "address"),
            "postcode": _L("Postleitzahl", "postcode"),
            "unknown": _L("unbekannt", "unknown"),
        },
    ),
    "LocationSource": Vocabulary(
        "Where a location came from",
        {
            "cache": _L("Zwischenspeicher", "cache"),
            "nominatim": _L("Nominatim", "Nominatim"),
            "postcode": _L("Postleitzahlentabelle", "postcode table"),
            "point": _L("angegebene Koordinaten", "given coordinates"),
            "none": _L("nicht gefunden", "not located"),
        },
    ),
    "PlaceKind": Vocabulary(
        "What a resolved place is",
        {
            "address": _L("Adresse", "address"),
            "postcode": _L("Postleitzahl", "postcode"),
            "point": _L("Koordinaten", "coordinates"),
        },
    ),
    "AddressLookup": Vocabulary(
        "The answer of a reverse address lookup",
        {
            "found": _L("gefunden", "found"),
            "not_found": _L("nicht gefunden", "not found"),
            "disabled": _L("abgeschaltet", "disabled"),
            "unavailable": _L("nicht erreichbar", "unavailable"),
        },
    ),
    "TravelMode": Vocabulary(
        "How travel time is estimated",
        {"car": _L("Auto", "car"), "transit": _L("öffentliche Verkehrsmittel", "public transport")},
    ),
    "AreaDensity": Vocabulary(
        "How built-up the area a trip starts in is (travel-time estimates)",
        {
            "urban": _L("Großstadt", "urban"),
            "suburban": _L("Stadt und Umland", "suburban"),
            "rural": _L("ländlich", "rural"),
        },
    ),
    "HealthStatus": Vocabulary(
        "The platform's health",
        {"ok": _L("in Ordnung", "ok"), "degraded": _L("eingeschränkt", "degraded")},
    ),
    "ComponentStatus": Vocabulary(
        "One backing service's health",
        {
            "ok": _L("in Ordnung", "ok"),
            "timeout": _L("Zeitüberschreitung", "timeout"),
            "unavailable": _L("nicht erreichbar", "unavailable"),
            "access_denied": _L("Zugriff verweigert", "access denied"),
            "error": _L("Fehler", "error"),
        },
    ),
    # ------------------------------------------------------------------ access (contracts/access.py)
    "Role": Vocabulary(
        "A caller's role (each includes the ones before it); the feature-flag view takes one",
        {
            "auditor": _L("Prüfung (nur lesen)", "auditor (reads only)"),
            "staff": _L("Mitarbeitende", "staff"),
            "admin": _L("Administration", "administrator"),
        },
    ),
    # ------------------------------------------------------------------ analytics (docs/analytics.md)
    "AnalyticsFormat": Vocabulary(
        "The form of an analytics answer",
        {"json": _L("JSON", "JSON"), "csv": _L("CSV (Tabelle)", "CSV (spreadsheet)")},
    ),
    "PreferenceGrouping": Vocabulary(
        "What therapist preferences are grouped by",
        {
            "therapist": _L("Therapeut/in", "therapist"),
            "region": _L("Region (PLZ-Bereich)", "region (postcode area)"),
        },
    ),
    "Dimension": Vocabulary(
        "What a therapist's answers are broken down by",
        {
            "symptom": _L("Symptom", "symptom"),
            "age_band": _L("Altersgruppe", "age band"),
            "distance_band": _L("Entfernung", "distance band"),
            "procedure": _L("Verfahren", "procedure"),
            "insurance_type": _L("Versicherungsart", "insurance type"),
            "language": _L("Sprache", "language"),
        },
    ),
    # ------------------------------------------------------------------ errors (platform/problems.py)
    "ProblemCode": Vocabulary(
        "An error answer's `code` (problem details); its title in both languages",
        {kind.code: _L(kind.title_de, kind.title) for kind in PROBLEM_TYPES.values() if kind.api},
    ),
    "FieldErrorCode": Vocabulary(
        "Why a field was refused (`errors[].code` of an error answer)",
        _paired(FIELD_ERROR_CODES, FIELD_ERROR_CODES_EN),
    ),
    "FieldErrorLocation": Vocabulary(
        "Where a refused field was sent (`errors[].location`)",
        {location: _L(de, en) for location, (de, en) in LOCATION_LABELS.items()},
    ),
}


def german(vocabulary: str, code: str) -> str:
    """The German label of a code (KeyError for an unknown vocabulary or code)."""
    return VOCABULARIES[vocabulary].labels[str(code)].de


def german_labels(vocabulary: str) -> dict[str, str]:
    """code -> German label: the server's own wording (emails) reads it from here."""
    return {code: label.de for code, label in VOCABULARIES[vocabulary].labels.items()}


# ---------------------------------------------------------------------- the API's answer


class CodeLabel(BaseModel):
    model_config = ConfigDict(frozen=True)

    code: str
    de: str = Field(description="German label (what staff and therapists see)")
    en: str = Field(description="English label")


class CodeVocabulary(BaseModel):
    model_config = ConfigDict(frozen=True)

    description: str
    codes: list[CodeLabel] = Field(description="In the order a form lists them")


class CodeCatalog(BaseModel):
    """GET /api/v2/catalog: every enumeration of the API, named like its schema."""

    model_config = ConfigDict(frozen=True)

    vocabularies: dict[str, CodeVocabulary]


def code_catalog() -> CodeCatalog:
    return CodeCatalog(
        vocabularies={
            name: CodeVocabulary(
                description=vocabulary.description,
                codes=[
                    CodeLabel(code=code, de=label.de, en=label.en)
                    for code, label in vocabulary.labels.items()
                ],
            )
            for name, vocabulary in VOCABULARIES.items()
        }
    )
