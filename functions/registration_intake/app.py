"""Patient service: patients' self-registrations from the website, consumed from the Kafka topic
`patient-registrations` (Lambda's Kafka event source in AWS; locally the localcloud stand-in that
delivers the same event shape). Each record is verified (HMAC-SHA256), validated and becomes a
patient once per registration id, or is parked for staff with its reason
(patients/registration_intake.py, docs/registration-intake.md). A database failure fails the
batch, which the event source delivers again (replays create nothing new)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from therapy_platform.patients.bootstrap import build, parked_registrations, registration_secret
from therapy_platform.patients.intake_settings import IntakeSettings
from therapy_platform.patients.registration_intake import IntakeStatus, take_in_registration
from therapy_platform.platform.feature_flag_store import flags_from_env
from therapy_platform.platform.feature_flags import Flag
from therapy_platform.platform.kafka_records import records_of
from therapy_platform.platform.metrics import Unit
from therapy_platform.platform.metrics_emf import EmfMetrics, flushed

logger = Logger(service="registration-intake")
service = build()
parked = parked_registrations()
secret = registration_secret(IntakeSettings.from_env())
flags = flags_from_env()
metrics = EmfMetrics("patient_service")  # RegistrationsCreated|Replayed|Parked (docs/metrics.md)
MEASURED = {
    IntakeStatus.CREATED: "RegistrationsCreated",
    IntakeStatus.REPLAYED: "RegistrationsReplayed",
    IntakeStatus.PARKED: "RegistrationsParked",
}


@logger.inject_lambda_context
@flushed(metrics)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    records = records_of(event)
    enabled = flags.enabled(Flag.SELF_REGISTRATION_INTAKE)  # once per batch
    key = secret() if records else b""
    counts = dict.fromkeys(IntakeStatus, 0)
    for record in records:
        result = take_in_registration(
            service, parked, record, secret=key, intake_enabled=lambda: enabled
        ).value
        counts[result.status] += 1
        metrics.add(MEASURED[result.status], Unit.COUNT, 1)
        extra = {
            "record": result.position,
            "status": result.status.value,
            "registration_id": str(result.registration_id) if result.registration_id else None,
            "patient_id": str(result.patient_id) if result.patient_id else None,
        }
        if result.status is IntakeStatus.PARKED:
            logger.warning(
                "registration parked",
                extra={**extra, "reason": str(result.reason), "problems": list(result.problems)},
            )
        else:
            logger.info("registration taken in", extra=extra)
    return {"records": len(records), **{status.value: count for status, count in counts.items()}}
