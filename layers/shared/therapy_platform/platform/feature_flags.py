"""Feature flags: the catalogue of flags, the subject a flag is evaluated for, and the
`FlagEvaluator` port the use cases ask. Pure: no store, no boto3 (the Powertools adapter over
AppConfig or SSM is `platform/feature_flag_store.py`).

A flag is evaluated for a *subject*: an opaque id (a staff user, a therapist, a search; never a
name or contact), the caller's roles and a *region* (the first two digits of a postcode, the
German postal "Leitregion", the same prefixes the directory scraper works through). The rules
live in the flags document (template.yaml, `FeatureFlagsParameter`); docs/feature-flags.md.

Percentage rollout: the adapter puts `subject_bucket` (0-99, a stable hash of the flag's name
and the subject) into the context, and a rule with a `MODULO_RANGE` condition (BASE 100,
START 0, END 49 = 50 %) picks a fixed half of all subjects. Hashing the name with the subject
makes each flag choose its own half, so two 10 % flags do not reach the same 10 % of users.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final, Protocol

BUCKETS: Final = 100  # subject_bucket lies in 0..BUCKETS-1: MODULO_RANGE conditions use BASE 100
_REGION: Final = re.compile(r"^\d{2}")


class Flag(StrEnum):
    AUTOMATIC_ROUNDS = "automatic_rounds"
    PREFERENCE_AWARE_ORDERING = "preference_aware_ordering"
    REMINDER_EMAILS = "reminder_emails"
    TRAVEL_TIME_REACH = "travel_time_reach"
    SELF_REGISTRATION_INTAKE = "self_registration_intake"


@dataclass(frozen=True)
class FlagInfo:
    description: str
    wired: bool  # False: defined in the document, but the feature it switches is not built yet
    fallback: bool  # the answer when the store cannot be read (or does not define the flag)


CATALOG: Final[dict[Flag, FlagInfo]] = {
    Flag.AUTOMATIC_ROUNDS: FlagInfo(
        "the scheduled bundle round sends inquiries to therapists of the region (context: region)",
        wired=True,
        # A store outage must not stop placements: rounds ran before flags existed.
        fallback=True,
    ),
    Flag.REMINDER_EMAILS: FlagInfo(
        "the daily reminder job emails therapists whose bundle is unanswered for 7 days "
        "(call-task reminders are not affected)",
        wired=True,
        fallback=True,
    ),
    Flag.PREFERENCE_AWARE_ORDERING: FlagInfo(
        "the learned soft filter in a therapist's bundles: searches the therapist's learned "
        "acceptance is low for are left out, never past 60 days of waiting (context: subject = "
        "therapist id, region); off by default: the simulator measured no gain",
        wired=True,
        fallback=False,
    ),
    Flag.TRAVEL_TIME_REACH: FlagInfo(
        "a patient's reach in minutes by car or public transport (off: the km limit applies)",
        wired=True,
        fallback=False,
    ),
    Flag.SELF_REGISTRATION_INTAKE: FlagInfo(
        "patients' self-registrations from the website over Kafka become patients; off, each is "
        "parked as intake_paused for staff (RegistrationIntakeFunction)",
        wired=True,
        # Off until the website goes live; a store outage parks registrations, it creates nobody unchecked.
        fallback=False,
    ),
}


def region_of(postcode: str | None) -> str | None:
    """The two-digit postcode region of a postcode (None: no postcode, or not digits)."""
    match = _REGION.match(postcode or "")
    return match.group(0) if match else None


def subject_bucket(flag: str, subject: str) -> int:
    """A stable bucket 0..99 for a subject and a flag: the same on every machine and run
    (SHA-256, not Python's salted `hash`)."""
    digest = hashlib.sha256(f"{flag}\x00{subject}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


@dataclass(frozen=True)
class FlagSubject:
    """Whom a flag is asked for. Every part is optional: a rule whose key is missing from the
    context does not match (Powertools), so a region rule never matches a subject without one."""

    subject: str | None = None
    roles: tuple[str, ...] = ()
    region: str | None = None

    def context(self, flag: str) -> dict[str, object]:
        values: dict[str, object] = {"roles": list(self.roles)}
        if self.subject is not None:
            values["subject"] = self.subject
            values["subject_bucket"] = subject_bucket(flag, self.subject)
        if self.region is not None:
            values["region"] = self.region
        return values


NOBODY: Final = FlagSubject()  # no subject, no roles, no region: a flag's default and global rules


class FlagEvaluator(Protocol):
    """The port use cases take decisions from."""

    def enabled(self, flag: Flag, subject: FlagSubject = ...) -> bool: ...


@dataclass
class FixedFlags:
    """An evaluator with fixed answers (tests, tools): `off` lists (flag, region) pairs that are
    off, region None meaning everywhere; everything else is on."""

    off: set[tuple[Flag, str | None]] = field(default_factory=set)
    asked: list[tuple[Flag, FlagSubject]] = field(default_factory=list)

    def enabled(self, flag: Flag, subject: FlagSubject = NOBODY) -> bool:
        self.asked.append((flag, subject))
        return (flag, None) not in self.off and (flag, subject.region) not in self.off
