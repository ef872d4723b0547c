"""The matching service's unit of work in PostgreSQL: its repositories and queries bound to
one transaction, and the bundle-creation lock.

Concurrency: every operation that creates bundles first takes one transaction-scoped advisory
lock (`lock_bundle_creation`) and only then reads what it plans from. Two rounds started at the
same moment therefore run one after the other, and the second sees the first one's open
bundles and used contacts. The partial unique index `bundles_one_open_per_practice` is the
database's own guarantee on top.
"""

from __future__ import annotations

from typing import Final

from sqlalchemy import Connection, func, select

from therapy_platform.matching.adapters.bundles import SqlBundleRepository
from therapy_platform.matching.adapters.patient_erasure import SqlPatientErasure
from therapy_platform.matching.adapters.profiles import SqlProfileRepository
from therapy_platform.matching.adapters.queries import SqlMatchingQueries
from therapy_platform.matching.adapters.records import (
    SqlAlertRepository,
    SqlAuditLog,
    SqlCoolingRepository,
    SqlRoundRepository,
)
from therapy_platform.matching.adapters.searches import SqlSearchRepository
from therapy_platform.matching.adapters.tables import MATCHING_SCHEMA
from therapy_platform.matching.adapters.therapist_erasure import SqlTherapistErasure
from therapy_platform.platform.unit_of_work import SqlUnitOfWork

# Any constant works as long as every bundle-creating code path uses the same one.
BUNDLE_CREATION_LOCK: Final = 7_270_001


class SqlMatchingUnitOfWork(SqlUnitOfWork):
    schema = MATCHING_SCHEMA
    searches: SqlSearchRepository
    bundles: SqlBundleRepository
    rounds: SqlRoundRepository
    cooling: SqlCoolingRepository
    alerts: SqlAlertRepository
    audit: SqlAuditLog
    profiles: SqlProfileRepository
    queries: SqlMatchingQueries
    patient_erasure: SqlPatientErasure

    def _bind(self, connection: Connection) -> None:
        self._bound = connection
        self.searches = SqlSearchRepository(connection)
        self.bundles = SqlBundleRepository(connection)
        self.rounds = SqlRoundRepository(connection)
        self.cooling = SqlCoolingRepository(connection)
        self.alerts = SqlAlertRepository(connection)
        self.audit = SqlAuditLog(connection)
        self.profiles = SqlProfileRepository(connection)
        self.queries = SqlMatchingQueries(connection)
        self.therapist_erasure = SqlTherapistErasure(connection)
        self.patient_erasure = SqlPatientErasure(connection)

    def lock_bundle_creation(self) -> None:
        """Serialise bundle creation until this transaction ends (see module docstring)."""
        self._bound.execute(select(func.pg_advisory_xact_lock(BUNDLE_CREATION_LOCK)))
