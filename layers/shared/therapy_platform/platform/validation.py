"""Field-level validation: pydantic's errors as the platform's `errors` entries (a stable code and
a German message per field, from ONE table: `PYDANTIC_ERRORS`), rules of the domain that fail a
field (`FieldRuleError`, raised inside validators), and `FieldValidationError`, the 422 for
failures found after the request schema passed (a merged PATCH, a bulk-load row, a query built
by hand). Request validation, domain rules, bulk loads and the CLIs all produce the same entries.

Messages never repeat the value that was sent (it may be a name or an email address); the
allowed values or limits they name come from the schema."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Final, Self, TypeVar, cast

from pydantic import BaseModel, ValidationError

from therapy_platform.platform.errors import InvalidInputError
from therapy_platform.platform.problems import (
    FIELD_ERROR_CODES,
    LOCATIONS,
    FieldError,
    Location,
    describe_field_errors,
)

Model = TypeVar("Model", bound=BaseModel)


class FieldRuleError(ValueError):
    """A domain rule a field breaks, raised inside a pydantic validator (or handed to
    `FieldValidationError.for_fields`): a code from FIELD_ERROR_CODES and the German message staff
    read next to the field. A ValueError, so pydantic reports it on the field being validated."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _number(value: Any) -> str:
    # German decimal comma; integers stay integers.
    text = str(value)
    return text.replace(".", ",") if isinstance(value, float) else text


def _choices(ctx: Mapping[str, Any]) -> str:
    # pydantic: "'a', 'b' or 'c'"
    return str(ctx.get("expected", "")).replace(" or ", " oder ")


def _too_short(ctx: Mapping[str, Any]) -> str:
    minimum = ctx.get("min_length", 1)
    return "darf nicht leer sein" if minimum == 1 else f"mindestens {minimum} Zeichen"


def _few_items(ctx: Mapping[str, Any]) -> str:
    minimum = ctx.get("min_length", 1)
    return "mindestens ein Eintrag" if minimum == 1 else f"mindestens {minimum} Einträge"


def _many_items(ctx: Mapping[str, Any]) -> str:
    maximum = ctx.get("max_length", 0)
    return "höchstens ein Eintrag" if maximum == 1 else f"höchstens {maximum} Einträge"


Message = str | Callable[[Mapping[str, Any]], str]

# pydantic error type -> (our field code, German message or a function of the error's ctx).
# Every type pydantic-core can raise is listed (tests/unit/test_problems.py fails for one that is
# not, e.g. after an upgrade); anything else gets FALLBACK. Messages come from the schema's limits
# (ctx), never from the value sent.
PYDANTIC_ERRORS: Final[Mapping[str, tuple[str, Message]]] = {
    "missing": ("missing", "Pflichtfeld fehlt"),
    "missing_argument": ("missing", "Pflichtfeld fehlt"),
    "missing_keyword_only_argument": ("missing", "Pflichtfeld fehlt"),
    "missing_positional_only_argument": ("missing", "Pflichtfeld fehlt"),
    "extra_forbidden": ("unknown_field", "unbekanntes Feld"),
    "unexpected_keyword_argument": ("unknown_field", "unbekanntes Feld"),
    "string_too_short": ("too_short", _too_short),
    "string_too_long": ("too_long", lambda ctx: f"höchstens {ctx.get('max_length')} Zeichen"),
    "bytes_too_short": ("too_short", _too_short),
    "bytes_too_long": ("too_long", lambda ctx: f"höchstens {ctx.get('max_length')} Bytes"),
    "too_short": ("too_few_items", _few_items),
    "too_long": ("too_many_items", _many_items),
    "string_pattern_mismatch": ("pattern_mismatch", "hat nicht das erwartete Format"),
    "enum": ("not_allowed", lambda ctx: f"erlaubt: {_choices(ctx)}"),
    "literal_error": ("not_allowed", lambda ctx: f"erlaubt: {_choices(ctx)}"),
    "greater_than": ("too_small", lambda ctx: f"muss größer als {_number(ctx.get('gt'))} sein"),
    "greater_than_equal": ("too_small", lambda ctx: f"muss mindestens {_number(ctx.get('ge'))} sein"),
    "less_than": ("too_large", lambda ctx: f"muss kleiner als {_number(ctx.get('lt'))} sein"),
    "less_than_equal": ("too_large", lambda ctx: f"darf höchstens {_number(ctx.get('le'))} sein"),
    "multiple_of": ("invalid", lambda ctx: f"muss ein Vielfaches von {_number(ctx.get('multiple_of'))} sein"),
    "finite_number": ("not_a_number", "muss eine endliche Zahl sein"),
    "string_type": ("not_a_string", "muss Text sein"),
    "string_sub_type": ("not_a_string", "muss Text sein"),
    "string_unicode": ("invalid_text", "muss gültiger Unicode-Text sein"),
    "int_type": ("not_an_integer", "muss eine ganze Zahl sein"),
    "int_parsing": ("not_an_integer", "muss eine ganze Zahl sein"),
    "int_parsing_size": ("too_large", "Zahl ist zu groß"),
    "int_from_float": ("not_an_integer", "muss eine ganze Zahl sein"),
    "float_type": ("not_a_number", "muss eine Zahl sein"),
    "float_parsing": ("not_a_number", "muss eine Zahl sein"),
    "decimal_type": ("not_a_number", "muss eine Zahl sein"),
    "decimal_parsing": ("not_a_number", "muss eine Zahl sein"),
    "bool_type": ("not_a_boolean", "muss true oder false sein"),
    "bool_parsing": ("not_a_boolean", "muss true oder false sein"),
    "dict_type": ("not_an_object", "muss ein Objekt sein"),
    "model_type": ("not_an_object", "muss ein Objekt sein"),
    "model_attributes_type": ("not_an_object", "muss ein Objekt sein"),
    "dataclass_type": ("not_an_object", "muss ein Objekt sein"),
    "list_type": ("not_a_list", "muss eine Liste sein"),
    "tuple_type": ("not_a_list", "muss eine Liste sein"),
    "set_type": ("not_a_list", "muss eine Liste sein"),
    "frozen_set_type": ("not_a_list", "muss eine Liste sein"),
    "iterable_type": ("not_a_list", "muss eine Liste sein"),
    "set_item_not_hashable": ("invalid", "Eintrag nicht erlaubt"),
    "date_type": ("invalid_date", "muss ein Datum sein (JJJJ-MM-TT)"),
    "date_parsing": ("invalid_date", "muss ein Datum sein (JJJJ-MM-TT)"),
    "date_from_datetime_parsing": ("invalid_date", "muss ein Datum sein (JJJJ-MM-TT)"),
    "date_from_datetime_inexact": ("invalid_date", "muss ein Datum ohne Uhrzeit sein (JJJJ-MM-TT)"),
    "date_past": ("in_future", "muss in der Vergangenheit liegen"),
    "date_future": ("in_past", "muss in der Zukunft liegen"),
    "datetime_type": ("invalid_datetime", "muss ein Zeitpunkt sein (z. B. 2026-11-20T10:15:00+01:00)"),
    "datetime_parsing": ("invalid_datetime", "muss ein Zeitpunkt sein (z. B. 2026-11-20T10:15:00+01:00)"),
    "datetime_from_date_parsing": (
        "invalid_datetime",
        "muss ein Zeitpunkt sein (z. B. 2026-11-20T10:15:00+01:00)",
    ),
    "datetime_object_invalid": ("invalid_datetime", "kein gültiger Zeitpunkt"),
    "datetime_past": ("in_future", "muss in der Vergangenheit liegen"),
    "datetime_future": ("in_past", "muss in der Zukunft liegen"),
    "timezone_aware": ("timezone_missing", "braucht eine Zeitzone (z. B. +01:00)"),
    "timezone_naive": ("invalid_datetime", "ohne Zeitzone angeben"),
    "timezone_offset": ("invalid_datetime", "hat die falsche Zeitzone"),
    "time_type": ("invalid_time", "muss eine Uhrzeit sein (HH:MM)"),
    "time_parsing": ("invalid_time", "muss eine Uhrzeit sein (HH:MM)"),
    "time_delta_type": ("invalid", "muss eine Dauer sein"),
    "time_delta_parsing": ("invalid", "muss eine Dauer sein"),
    "uuid_type": ("invalid_uuid", "muss eine UUID sein"),
    "uuid_parsing": ("invalid_uuid", "muss eine UUID sein"),
    "uuid_version": ("invalid_uuid", "hat die falsche UUID-Version"),
    "url_type": ("invalid_url", "muss eine Adresse (URL) sein"),
    "url_parsing": ("invalid_url", "muss eine gültige Adresse (URL) sein"),
    "url_syntax_violation": ("invalid_url", "muss eine gültige Adresse (URL) sein"),
    "url_too_long": ("too_long", lambda ctx: f"höchstens {ctx.get('max_length')} Zeichen"),
    "url_scheme": ("invalid_url", lambda ctx: f"erlaubt: {_choices(ctx)}"),
    "json_invalid": ("invalid_json", "kein gültiges JSON"),
    "json_type": ("invalid_json", "muss JSON-Text sein"),
    "union_tag_invalid": ("not_allowed", lambda ctx: f"erlaubt: {_choices(ctx)}"),
    "union_tag_not_found": ("missing", "Pflichtfeld fehlt"),
    "is_instance_of": ("invalid", "ungültiger Wert"),
    "none_required": ("invalid", "muss leer (null) sein"),
    "frozen_field": ("invalid", "kann nicht geändert werden"),
    "frozen_instance": ("invalid", "kann nicht geändert werden"),
    # A rule not written as a FieldRuleError: its own words may quote the value, so they stay out.
    "value_error": ("invalid", "ungültiger Wert"),
    "assertion_error": ("invalid", "ungültiger Wert"),
    # Types the API's models do not use today; listed so a new model never answers in English.
    "string_not_ascii": ("invalid_characters", "nur ASCII-Zeichen erlaubt"),
    "bytes_type": ("not_a_string", "muss Text sein"),
    "bytes_invalid_encoding": ("invalid_text", "ungültige Kodierung"),
    "decimal_max_digits": ("too_large", lambda ctx: f"höchstens {ctx.get('max_digits')} Ziffern"),
    "decimal_max_places": (
        "too_large",
        lambda ctx: f"höchstens {ctx.get('decimal_places')} Nachkommastellen",
    ),
    "decimal_whole_digits": (
        "too_large",
        lambda ctx: f"höchstens {ctx.get('whole_digits')} Stellen vor dem Komma",
    ),
    "complex_type": ("not_a_number", "muss eine Zahl sein"),
    "complex_str_parsing": ("not_a_number", "muss eine Zahl sein"),
    "fraction_type": ("not_a_number", "muss eine Zahl sein"),
    "fraction_parsing": ("not_a_number", "muss eine Zahl sein"),
    "mapping_type": ("not_an_object", "muss ein Objekt sein"),
    "frozen_dict_type": ("not_an_object", "muss ein Objekt sein"),
    "ordered_dict_type": ("not_an_object", "muss ein Objekt sein"),
    "counter_type": ("not_an_object", "muss ein Objekt sein"),
    "dataclass_exact_type": ("not_an_object", "muss ein Objekt sein"),
    "named_tuple_type": ("not_a_list", "muss eine Liste sein"),
    "deque_type": ("not_a_list", "muss eine Liste sein"),
    "arguments_type": ("not_an_object", "muss ein Objekt sein"),
    "invalid_key": ("invalid", "ungültiger Schlüssel"),
    "multiple_argument_values": ("duplicate", "doppelt angegeben"),
    "unexpected_positional_argument": ("unknown_field", "unbekanntes Feld"),
    "iteration_error": ("invalid", "ungültige Liste"),
    "recursion_loop": ("invalid", "zu tief verschachtelt"),
    "recursion_depth_exceeded": ("invalid", "zu tief verschachtelt"),
    "callable_type": ("invalid", "ungültiger Wert"),
    "is_subclass_of": ("invalid", "ungültiger Wert"),
    "get_attribute_error": ("invalid", "ungültiger Wert"),
    "no_such_attribute": ("unknown_field", "unbekanntes Feld"),
    "needs_python_object": ("invalid", "ungültiger Wert"),
    "default_factory_not_called": ("invalid", "ungültiger Wert"),
    "ellipsis_error": ("invalid", "ungültiger Wert"),
    "missing_sentinel_error": ("invalid", "ungültiger Wert"),
}
FALLBACK: Final = ("invalid", "ungültiger Wert")


def _field_name(location: Sequence[Any], where: str) -> str:
    """("body", "postcode") -> "postcode"; nested -> "a.b.0"; nothing left -> the location."""
    parts = [str(part) for part in location]
    if parts and parts[0] in LOCATIONS:
        parts = parts[1:]
    return ".".join(parts) or where


def field_error_from_pydantic(detail: Mapping[str, Any], *, location: Location = "body") -> FieldError:
    """One pydantic (or Powertools) error entry as the platform's entry. The location is the
    entry's own first `loc` part when it names one (request validation), else `location`."""
    loc = tuple(detail.get("loc") or ())
    where = cast(Location, str(loc[0])) if loc and str(loc[0]) in LOCATIONS else location
    field = _field_name(loc, where)
    kind = str(detail.get("type", ""))
    ctx = detail.get("ctx") or {}
    cause = ctx.get("error") if isinstance(ctx, Mapping) else None
    if isinstance(cause, FieldRuleError):
        return FieldError(field, where, cause.code, cause.message)
    if kind in FIELD_ERROR_CODES and kind not in PYDANTIC_ERRORS:
        # A PydanticCustomError raised with one of our codes: its message is already German.
        return FieldError(field, where, kind, str(detail.get("msg", FIELD_ERROR_CODES[kind])))
    code, message = PYDANTIC_ERRORS.get(kind, FALLBACK)
    text = message(ctx if isinstance(ctx, Mapping) else {}) if callable(message) else message
    return FieldError(field, where, code, text)


def field_errors_from_pydantic(
    details: Iterable[Mapping[str, Any]], *, location: Location = "body"
) -> list[FieldError]:
    return [field_error_from_pydantic(detail, location=location) for detail in details]


def field_names(errors: Iterable[FieldError]) -> str:
    return ", ".join(sorted({error.field for error in errors}))


class FieldValidationError(InvalidInputError):
    """422 naming every offending field in `errors`, the same entries as request validation."""

    code = "validation_failed"

    @classmethod
    def for_errors(cls, errors: Sequence[FieldError], **details: object) -> Self:
        return cls(
            f"invalid or missing fields: {field_names(errors)}", errors=errors, details=details or None
        )

    @classmethod
    def from_validation_error(cls, error: ValidationError, *, location: Location = "body") -> Self:
        return cls.for_errors(field_errors_from_pydantic(error.errors(), location=location))

    @classmethod
    def for_fields(cls, problems: Mapping[str, FieldRuleError], *, location: Location = "body") -> Self:
        """`{"responded_at": FieldRuleError("in_future", "liegt in der Zukunft")}`."""
        return cls.for_errors(
            [FieldError(name, location, rule.code, rule.message) for name, rule in problems.items()]
        )

    def summary(self) -> str:
        """One line naming each field and its German message (bulk-load reports)."""
        return describe_field_errors(self.errors) if self.errors else self.message


def validate_as(
    model: type[Model],
    data: Mapping[str, Any],
    error: type[FieldValidationError] = FieldValidationError,
    *,
    location: Location = "body",
) -> Model:
    """`data` as `model`; pydantic's errors become `error` naming each field."""
    try:
        return model.model_validate(data)
    except ValidationError as failure:
        raise error.from_validation_error(failure, location=location) from failure
