"""The matching service's part of a personal-data export: every record of `matching_service`
about one patient or one therapist (read in one transaction, so the part is consistent).

What is in whose part (and what is left out on purpose):
- patient: the read-model copy, the searches with their exclusions, staff alerts and audit
  entries, and the patient's bundle memberships;
- therapist: the read-model copy, the bundles addressed to them (without their members: those
  are other people's data), the cooling period, the searches' exclusions of them (without the
  search, which belongs to a patient), staff alerts naming them, and the audit entries of
  their bundles.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine, or_, select

from therapy_platform.contracts.personal_data import DataSubject
from therapy_platform.matching.adapters.tables import (
    bundle_members,
    bundles,
    matching_audit_log,
    patient_profiles,
    search_exclusions,
    searches,
    staff_alerts,
    therapist_cooling,
    therapist_profiles,
)
from therapy_platform.platform.sql_records import json_records

Records = dict[str, list[dict[str, Any]]]


class SqlMatchingPersonalData:
    def __init__(self, engine: Callable[[], Engine]) -> None:
        self._engine = engine

    def records_of(self, subject: DataSubject, subject_id: uuid.UUID) -> Records:
        with self._engine().connect() as connection, connection.begin():
            if subject is DataSubject.PATIENT:
                return self._patient(connection, subject_id)
            return self._therapist(connection, subject_id)

    @staticmethod
    def _patient(connection: Any, patient_id: uuid.UUID) -> Records:
        search_rows = json_records(
            connection,
            select(searches).where(searches.c.patient_id == patient_id).order_by(searches.c.created_at),
        )
        search_ids = [uuid.UUID(row["id"]) for row in search_rows]
        return {
            "patient_profiles": json_records(
                connection, select(patient_profiles).where(patient_profiles.c.id == patient_id)
            ),
            "searches": search_rows,
            "search_exclusions": json_records(
                connection,
                select(search_exclusions)
                .where(search_exclusions.c.search_id.in_(search_ids))
                .order_by(search_exclusions.c.excluded_at),
            ),
            "bundle_members": json_records(
                connection,
                select(bundle_members, bundles.c.therapist_id, bundles.c.sent_at)
                .join(bundles, bundles.c.id == bundle_members.c.bundle_id)
                .where(bundle_members.c.patient_id == patient_id)
                .order_by(bundles.c.created_at),
            ),
            "staff_alerts": json_records(
                connection,
                select(staff_alerts)
                .where(staff_alerts.c.search_id.in_(search_ids))
                .order_by(staff_alerts.c.created_at),
            ),
            "audit_log": json_records(
                connection,
                select(matching_audit_log)
                .where(matching_audit_log.c.entity_id.in_([patient_id, *search_ids]))
                .order_by(matching_audit_log.c.id),
            ),
        }

    @staticmethod
    def _therapist(connection: Any, therapist_id: uuid.UUID) -> Records:
        bundle_rows = json_records(
            connection,
            select(bundles).where(bundles.c.therapist_id == therapist_id).order_by(bundles.c.created_at),
        )
        bundle_ids = [uuid.UUID(row["id"]) for row in bundle_rows]
        return {
            "therapist_profiles": json_records(
                connection, select(therapist_profiles).where(therapist_profiles.c.id == therapist_id)
            ),
            "bundles": bundle_rows,
            "therapist_cooling": json_records(
                connection, select(therapist_cooling).where(therapist_cooling.c.therapist_id == therapist_id)
            ),
            "search_exclusions": json_records(
                connection,
                select(
                    search_exclusions.c.therapist_id,
                    search_exclusions.c.reason,
                    search_exclusions.c.excluded_at,
                    search_exclusions.c.excluded_by,
                )
                .where(search_exclusions.c.therapist_id == therapist_id)
                .order_by(search_exclusions.c.excluded_at),
            ),
            "staff_alerts": json_records(
                connection,
                select(
                    staff_alerts.c.id,
                    staff_alerts.c.kind,
                    staff_alerts.c.created_at,
                    staff_alerts.c.bundle_id,
                    staff_alerts.c.therapist_id,
                    staff_alerts.c.resolved_at,
                )
                .where(
                    or_(staff_alerts.c.therapist_id == therapist_id, staff_alerts.c.bundle_id.in_(bundle_ids))
                )
                .order_by(staff_alerts.c.created_at),
            ),
            "audit_log": json_records(
                connection,
                select(matching_audit_log)
                .where(matching_audit_log.c.entity_id.in_([therapist_id, *bundle_ids]))
                .order_by(matching_audit_log.c.id),
            ),
        }
