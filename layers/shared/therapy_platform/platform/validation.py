"""Validation failures found after the request schema passed (a merged PATCH, a bulk-load row, a
query built by hand), reported with the same 422 body as request validation: `fields` names
every offending field, so clients handle one shape."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self, TypeVar

from pydantic import BaseModel, ValidationError

from therapy_platform.platform.errors import InvalidInputError

Model = TypeVar("Model", bound=BaseModel)


class FieldValidationError(InvalidInputError):
    code = "validation_failed"

    @classmethod
    def from_validation_error(cls, error: ValidationError, *, location: str = "body") -> Self:
        fields = [
            {
                "field": ".".join(str(part) for part in detail["loc"]) or location,
                "location": location,
                "message": str(detail["msg"]),
                "type": str(detail["type"]),
            }
            for detail in error.errors()
        ]
        return cls._with_fields(fields)

    @classmethod
    def for_fields(
        cls, problems: Mapping[str, str], *, location: str = "body", kind: str = "value_error"
    ) -> Self:
        fields = [
            {"field": name, "location": location, "message": message, "type": kind}
            for name, message in problems.items()
        ]
        return cls._with_fields(fields)

    @classmethod
    def _with_fields(cls, fields: list[dict[str, str]]) -> Self:
        names = ", ".join(sorted({field["field"] for field in fields}))
        return cls(f"invalid or missing fields: {names}", details={"fields": fields})

    def summary(self) -> str:
        """One line naming each field and its problem (bulk-load reports)."""
        fields = self.details.get("fields")
        if not isinstance(fields, list):
            return self.message
        return "; ".join(f"{field['field']}: {field['message']}" for field in fields)


def validate_as(
    model: type[Model],
    data: Mapping[str, Any],
    error: type[FieldValidationError] = FieldValidationError,
    *,
    location: str = "body",
) -> Model:
    """`data` as `model`; pydantic's errors become `error` naming each field."""
    try:
        return model.model_validate(data)
    except ValidationError as failure:
        raise error.from_validation_error(failure, location=location) from failure
