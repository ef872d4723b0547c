"""How an imported directory entry meets the stored therapist (therapist service): which fields
an import may set, and that it never touches a field staff edited, an operational field or a
preference, and never blanks a known value; and when the directory's own coordinates locate
the therapist. Pure rules.
"""

from __future__ import annotations

from typing import Any, Final

from therapy_platform.contracts.therapy import Gender
from therapy_platform.platform.geography.locations import Location, LocationPrecision
from therapy_platform.therapists.domain.therapist import Therapist, TherapistDraft
from therapy_platform.therapists.imports.domain.entries import DirectoryRecord

# Fields an import may set. Everything else (status, block reason, cooling period, working
# hours and every preference) belongs to staff or to the platform's own processes.
DIRECTORY_FIELDS: Final = (
    "salutation",
    "gender",
    "title",
    "first_name",
    "last_name",
    "street",
    "postcode",
    "city",
    "phone",
    "fax",
    "email",
    "website",
    "statutory_seat",
    "procedures",
    "languages",
    "phone_windows",
)


def is_blank(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {} or value == Gender.UNSPECIFIED.value


def merged_values(current: Therapist | None, record: DirectoryRecord) -> dict[str, Any]:
    """The editable fields after importing `record`.

    New therapist: the record's values (the draft's defaults for the rest). Known therapist:
    its current values, with each directory-owned field the record states replaced, except
    fields staff edited by hand; a missing or empty value never blanks a known one (so a known
    email is never lost); operational fields and preferences are not editable fields of the
    draft's directory part and are never touched."""
    stated = {name: value for name, value in record.values.items() if name in DIRECTORY_FIELDS}
    if current is None:
        return {name: value for name, value in stated.items() if not is_blank(value)}
    values = current.editable_values()
    for name, value in stated.items():
        if name in current.staff_edited_fields or is_blank(value):
            continue
        values[name] = value
    return values


def directory_location(record: DirectoryRecord, draft: TherapistDraft) -> Location | None:
    """The directory's coordinates, while the draft's address is still the directory's."""
    if record.latitude is None or record.longitude is None:
        return None
    if draft.postcode != record.values.get("postcode"):
        return None
    if "street" in record.values and draft.street != record.values["street"]:
        return None
    return Location.at(record.latitude, record.longitude, LocationPrecision.ADDRESS)
