"""Realistic synthetic data on the real German postcode geography, deterministic per seed.

Used by the benchmarks (and later by the matching engine's national-scale benchmark):
- `therapists(n, practices=...)`: therapist drafts grouped into practices (shared email),
  mixes of procedures, genders, titles, languages, age preferences, group offers, phone windows;
- `patients(n)`: patient drafts with symptoms, procedures, availability, travel limits;
- `therapist_state(today)`, `search_state(today, ...)`: the operational side matching reads
  (status, cooling dates, open bundles, waiting time, contact budgets, exclusions, practices
  contacted before), kept apart from the drafts so the drafts stay valid API input.
Postcodes are drawn from the shipped table weighted towards cities (postcodes sharing a
2-digit region), never from the 94 unlocatable placeholders unless asked.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

from therapy_platform.contracts.symptoms import Symptom
from therapy_platform.platform.geography.postcodes import postcode_directory

FIRST_NAMES_F = [
    "Anna",
    "Änne",
    "Julia",
    "Katharina",
    "Lea",
    "Marie",
    "Sophie",
    "Hannah",
    "Jülide",
    "Özlem",
    "Sabine",
    "Ursula",
    "Birgit",
    "Franziska",
    "Zoë",
    "Lena",
    "Maja",
    "Mira",
    "Renée",
    "Gül",
]
FIRST_NAMES_M = [
    "Jürgen",
    "Lukas",
    "Jonas",
    "Felix",
    "Maximilian",
    "Paul",
    "Søren",
    "Mehmet",
    "Björn",
    "Jörg",
    "Thomas",
    "Stefan",
    "Andreas",
    "Michael",
    "Niklas",
    "Elias",
    "Noah",
    "Karl",
    "Ömer",
    "René",
]
LAST_NAMES = [
    "Müller",
    "Schmidt",
    "Schneider",
    "Fischer",
    "Weber",
    "Meyer",
    "Wagner",
    "Becker",
    "Schulz",
    "Hoffmann",
    "Schäfer",
    "Koch",
    "Bauer",
    "Richter",
    "Klein",
    "Wolf",
    "Schröder",
    "Neumann",
    "Schwarz",
    "Zimmermann",
    "Braun",
    "Krüger",
    "Hofmann",
    "Hartmann",
    "Lange",
    "Schmitt",
    "Werner",
    "Krause",
    "Meier",
    "Lehmann",
    "Groß",
    "Weiß",
    "Yılmaz",
    "Kaya",
    "Nowak",
    "Kowalski",
    "Öztürk",
    "Großmann",
    "Böhm",
    "Kühn",
    "Jäger",
    "Förster",
    "Möller",
    "Köhler",
    "Fuchs",
    "Vogel",
]
STREETS = [
    "Hauptstraße",
    "Schulstraße",
    "Gartenstraße",
    "Bahnhofstraße",
    "Dorfstraße",
    "Bergstraße",
    "Lindenstraße",
    "Kirchstraße",
    "Weißdornweg",
    "Am Mühlbach",
    "Goethestraße",
    "Schillerstraße",
]
INSURERS = [
    "AOK Nordost",
    "AOK Bayern",
    "Techniker Krankenkasse",
    "Barmer",
    "DAK-Gesundheit",
    "IKK classic",
    "KKH",
    "hkk",
    "BKK firmus",
    "Knappschaft",
]
TITLES = [None, None, None, "Dr.", "Dr.", "Dipl.-Psych.", "Prof. Dr."]
LANGUAGES = [["de"]] * 14 + [["de", "en"]] * 4 + [["de", "tr"], ["de", "ru"], ["de", "ar"], ["de", "pl"]]
PROCEDURE_MIX = [["VT"]] * 9 + [["TP"]] * 5 + [["VT", "TP"]] * 2 + [["AP", "TP"]] * 2 + [["ST"], ["AP"]]
WEEKDAYS = ["mon", "tue", "wed", "thu", "fri"]


class DataGenerator:
    def __init__(self, seed: int = 20261122, *, include_unknown_locations: bool = False) -> None:
        self.random = random.Random(seed)
        directory = postcode_directory()
        self.postcodes = [
            postcode
            for postcode in sorted(directory._centroids)
            if include_unknown_locations or directory.centroid(postcode).is_known
        ]

    def _postcode(self) -> str:
        return self.random.choice(self.postcodes)

    def _person(self) -> tuple[str, str, str, str]:
        gender = self.random.choices(["female", "male", "diverse"], weights=[62, 37, 1])[0]
        pool = FIRST_NAMES_F if gender == "female" else FIRST_NAMES_M
        salutation = {"female": "Frau", "male": "Herr"}.get(gender, "Hallo")
        return gender, salutation, self.random.choice(pool), self.random.choice(LAST_NAMES)

    def _window(self, earliest: int, latest: int, length_h: int) -> str:
        start = self.random.randint(earliest, latest - length_h)
        return f"{start:02d}:00-{start + length_h:02d}:00"

    def therapist(self, practice_email: str | None, postcode: str) -> dict[str, Any]:
        gender, salutation, first, last = self._person()
        offers_group = self.random.random() < 0.25
        age_min = self.random.choice([None, None, None, 18, 21, 25])
        age_max = self.random.choice([None, None, 65, 70, 80]) if age_min is not None else None
        return {
            "salutation": salutation if gender != "diverse" else None,
            "gender": gender,
            "title": self.random.choice(TITLES),
            "first_name": first,
            "last_name": last,
            "street": f"{self.random.choice(STREETS)} {self.random.randint(1, 120)}",
            "postcode": postcode,
            "phone": f"0{self.random.randint(200, 9999)} {self.random.randint(100000, 9999999)}",
            "email": practice_email,
            "statutory_seat": self.random.random() < 0.85,
            "procedures": self.random.choice(PROCEDURE_MIX),
            "languages": self.random.choice(LANGUAGES),
            "phone_windows": {day: [self._window(8, 13, 1)] for day in self.random.sample(WEEKDAYS, 3)},
            "working_hours": {day: [self._window(8, 19, 6)] for day in WEEKDAYS},
            "preferred_age_min": age_min,
            "preferred_age_max": age_max,
            "preferred_patient_gender": self.random.choice([None] * 9 + ["female"]),
            "offers_group_therapy": offers_group,
            "group_only": offers_group and self.random.random() < 0.1,
            "symptom_preferences": [
                s.value for s in self.random.sample(list(Symptom), self.random.randint(0, 3))
            ],
            "potentially_available": self.random.random() < 0.3,
        }

    def therapists(self, count: int, *, practices: int | None = None) -> Iterator[dict[str, Any]]:
        """`count` therapists in about `practices` practices (default: count * 4 / 7)."""
        practices = practices or max(1, count * 4 // 7)
        members = [1] * practices
        for _ in range(count - practices):
            members[self.random.randrange(practices)] += 1
        serial = 0
        for practice, size in enumerate(members):
            postcode = self._postcode()
            # About 8 % of practices list no email: they are reached by phone.
            email = (
                None
                if self.random.random() < 0.08
                else f"praxis{practice}@psychotherapie-{postcode}.example.de"
            )
            for _ in range(size):
                serial += 1
                yield self.therapist(email, postcode)

    def patient(self, today: date | None = None) -> dict[str, Any]:
        today = today or date.today()
        gender, salutation, first, last = self._person()
        age = self.random.randint(19, 80)
        birth = today - timedelta(days=age * 365 + self.random.randint(0, 364))
        previous = self.random.random() < 0.35
        group_open = self.random.random() < 0.3
        return {
            "salutation": salutation if gender != "diverse" else None,
            "gender": gender,
            "first_name": first,
            "last_name": last,
            "birth_date": birth.isoformat(),
            "street": f"{self.random.choice(STREETS)} {self.random.randint(1, 120)}",
            "postcode": self._postcode(),
            "email": f"{first.lower()}.{last.lower()}.{self.random.randint(1, 10**6)}@example.org".encode(
                "ascii", "ignore"
            ).decode(),
            "health_insurer": self.random.choice(INSURERS),
            "symptoms": [s.value for s in self.random.sample(list(Symptom), self.random.randint(1, 4))],
            "previous_therapy": previous,
            "last_therapy_session": (today - timedelta(days=self.random.randint(200, 3000))).isoformat()
            if previous
            else None,
            "therapy_procedures": self.random.choice(
                [["VT"], ["VT", "TP"], ["TP"], ["VT", "TP", "AP", "ST"]]
            ),
            "preferred_therapist_gender": self.random.choice(["any"] * 6 + ["female"] * 3 + ["male"]),
            "open_to_group_therapy": group_open,
            "group_only": group_open and self.random.random() < 0.05,
            "languages": self.random.choice(LANGUAGES),
            "max_travel_km": self.random.choice([10, 15, 20, 25, 25, 25, 30, 40, 50]),
            "travel_mode": self.random.choice(["car", "transit", "transit"]),
            "availability": {day: [self._window(8, 20, 4)] for day in self.random.sample(WEEKDAYS, 3)},
        }

    def patients(self, count: int, today: date | None = None) -> Iterator[dict[str, Any]]:
        for _ in range(count):
            yield self.patient(today)

    # ------------------------------------------------------------ operational state (matching)

    def therapist_state(self, today: date) -> dict[str, Any]:
        """Status, cooling and open bundle of one therapist on `today`: 3 % blocked or inactive,
        about 18 % answered a bundle in the last 28 days (in cooling), 6 % have a draft or sent
        bundle waiting for an answer."""
        roll = self.random.random()
        status = "blocked" if roll < 0.01 else "inactive" if roll < 0.03 else "active"
        cooling = self.random.random()
        if cooling < 0.18:
            next_contact: date | None = today + timedelta(days=self.random.randint(1, 28))
        elif cooling < 0.45:
            next_contact = today - timedelta(days=self.random.randint(0, 400))  # cooling over
        else:
            next_contact = None
        return {
            "status": status,
            "next_contact_allowed_on": next_contact.isoformat() if next_contact else None,
            "has_open_bundle": self.random.random() < 0.06,
        }

    def search_state(self, today: date, *, therapist_count: int) -> dict[str, Any]:
        """One search of a patient on `today`: waiting up to 18 months (recent searches more
        common), 94 % active, a contact budget of 3 to 12 partly used, 0 to 3 open bundles,
        1 to 3 practices contacted before when contacts were used, rarely (2 %) a therapist
        excluded; therapists as indexes into the generated therapists, so a caller can map
        them to its own ids and practice keys.
        `needs_shared_language` is the patient's override of the derived language rule
        (None: derived), set for 4 % who want therapy in their other language."""
        waited_days = min(540, int(self.random.expovariate(1 / 120)))
        created = datetime(today.year, today.month, today.day, 7, tzinfo=UTC) - timedelta(
            days=waited_days, minutes=self.random.randint(1, 24 * 60 - 1)
        )
        roll = self.random.random()
        status = "active" if roll < 0.94 else "paused" if roll < 0.97 else "placed"
        budget = self.random.choice([3, 6, 6, 6, 9, 12])
        used = min(budget, int(self.random.expovariate(1 / 2))) if waited_days > 14 else 0
        open_bundles = self.random.choice([0, 0, 0, 0, 1, 1, 2, 3]) if waited_days > 7 else 0
        contacted = (
            [self.random.randrange(therapist_count) for _ in range(self.random.randint(1, 3))]
            if used and therapist_count
            else []
        )
        excluded = (
            [self.random.randrange(therapist_count)]
            if therapist_count and self.random.random() < 0.02
            else []
        )
        return {
            "created_at": created.isoformat(),
            "status": status,
            "total_requested_contacts": budget,
            "contacts_used": used,
            "open_bundle_count": open_bundles,
            "needs_shared_language": True if self.random.random() < 0.04 else None,
            "excluded_therapist_indexes": excluded,
            "contacted_therapist_indexes": contacted,
        }
