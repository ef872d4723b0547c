"""How a 116117 directory entry becomes a therapist record (therapist service). Pure rules: no
HTTP, S3 or SQL. The raw file the entries come from is the scraping service's contract
(contracts/directory_files.py).

What lives here:
- every entry of a file in order (`entries_of`), with its position for the report; a page that
  is not a directory answer is one skip;
- normalising one entry (`arztPraxisDatas[]` item) to the product's vocabulary: procedures,
  languages, phone windows, gender; every entry is either a `DirectoryRecord` or an `EntrySkip`
  naming the reason; values a practice website added fill gaps only;
- the content hash that lets an unchanged entry cost no write.

The directory's field names (German) are documented in docs/directory-import.md.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from functools import cached_property, lru_cache
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError

from therapy_platform.contracts.directory_files import Enrichment, RawRun
from therapy_platform.contracts.languages import ISO_639_1, LANGUAGE_LABELS
from therapy_platform.contracts.schedule import (
    MINUTES_PER_DAY,
    Weekday,
    Window,
    parse_window,
    schedule_from_windows,
    weekday_from_german,
)
from therapy_platform.contracts.therapy import Gender, TherapyProcedure
from therapy_platform.therapists.domain.therapist import (
    Email,
    Name,
    Phone,
    Postcode,
    ShortText,
    Street,
    TherapistDraft,
    Website,
)

# Bump when a normalisation rule changes: every stored content hash then differs once, so the
# next import re-applies the entries under the new rules (and after that writes nothing again).
RULES_VERSION: Final = "2026-11-22.1"
DIRECTORY_ACTOR: Final = "directory-import"

# Germany's bounding box with a little margin: coordinates outside are the directory's mistake.
_GERMANY: Final = (47.0, 55.3, 5.5, 15.3)  # south, north, west, east
_WEEKDAYS: Final = tuple(Weekday)


# ---------------------------------------------------------------------------------------------
# Skips
# ---------------------------------------------------------------------------------------------


class SkipReason(StrEnum):
    MALFORMED_PAGE = "malformed_page"  # an answer that is not a directory answer
    MALFORMED_ENTRY = "malformed_entry"  # an entry that is not an object
    MISSING_FIELD = "missing_field"  # id, vorname, name or plz absent
    INVALID_VALUE = "invalid_value"  # a value the product cannot store (postcode with letters, 25:00)
    NOT_FOR_ADULTS = "not_for_adults"  # the directory does not say the therapist treats adults
    DUPLICATE = "duplicate"  # the same id again in the file, with different data
    AMBIGUOUS_MATCH = "ambiguous_match"  # name + postcode match several stored therapists
    CONFLICT = "conflict"  # the stored record refuses the values (e.g. after staff edits)


@dataclass(frozen=True)
class EntrySkip:
    reason: SkipReason
    message: str
    position: str
    directory_id: str | None = None
    name: str | None = None


@dataclass(frozen=True)
class PositionedEntry:
    position: str  # "page 3, entry 12": where the operator finds it in the file
    raw: Any


def entries_of(run: RawRun) -> Iterator[PositionedEntry | EntrySkip]:
    """Every entry of every page in file order; a page that is not a directory answer yields
    one skip for the whole page."""
    for page_index, page in enumerate(run.pages, start=1):
        answer = page.answer
        items = answer.get("arztPraxisDatas") if isinstance(answer, Mapping) else None
        if not isinstance(items, list):
            problem = page.error or (
                "the answer has no arztPraxisDatas list"
                if page.raw_text is None
                else "the answer is not JSON"
            )
            yield EntrySkip(SkipReason.MALFORMED_PAGE, problem, f"page {page_index}")
            continue
        for entry_index, raw in enumerate(items, start=1):
            yield PositionedEntry(f"page {page_index}, entry {entry_index}", raw)


# ---------------------------------------------------------------------------------------------
# Vocabulary
# ---------------------------------------------------------------------------------------------

# Therapy offers (psy[]) -> procedures. Matched on the case-folded text, first hit wins.
_PROCEDURE_WORDS: Final = (
    ("tiefenpsycholog", TherapyProcedure.DEPTH_PSYCHOLOGICAL),
    ("analytisch", TherapyProcedure.ANALYTIC),
    ("psychoanaly", TherapyProcedure.ANALYTIC),
    ("verhaltenstherap", TherapyProcedure.BEHAVIOURAL),
    ("systemisch", TherapyProcedure.SYSTEMIC),
)
_PROCEDURE_CODES: Final = {procedure.value.casefold(): procedure for procedure in TherapyProcedure}

_ADULT_WORDS: Final = ("erwachsen",)
_MINOR_WORDS: Final = ("kinder", "jugendlich")

# German language names (fs[]) -> ISO 639-1. The shared labels plus the other names the
# directory uses; ISO codes themselves are accepted as well.
_LANGUAGE_NAMES: Final[dict[str, str]] = {
    **{label.casefold(): code for code, label in LANGUAGE_LABELS.items()},
    "persisch": "fa",
    "farsi": "fa",
    "dari": "fa",
    "englisch (amerikanisch)": "en",
    "niederländisch (flämisch)": "nl",
    "schwedisch": "sv",
    "dänisch": "da",
    "norwegisch": "no",
    "finnisch": "fi",
    "slowakisch": "sk",
    "slowenisch": "sl",
    "litauisch": "lt",
    "lettisch": "lv",
    "estnisch": "et",
    "mazedonisch": "mk",
    "armenisch": "hy",
    "georgisch": "ka",
    "amharisch": "am",
    "kasachisch": "kk",
    "thailändisch": "th",
    "indonesisch": "id",
    "tamil": "ta",
    "bengalisch": "bn",
    "punjabi": "pa",
    "jiddisch": "yi",
    "latein": "la",
}

_GENDER_WORDS: Final = {
    "w": Gender.FEMALE,
    "weiblich": Gender.FEMALE,
    "f": Gender.FEMALE,
    "frau": Gender.FEMALE,
    "m": Gender.MALE,
    "männlich": Gender.MALE,
    "maennlich": Gender.MALE,
    "herr": Gender.MALE,
    "d": Gender.DIVERSE,
    "divers": Gender.DIVERSE,
    "x": Gender.DIVERSE,
}


def procedures_of(offer_text: str) -> TherapyProcedure | None:
    text = offer_text.strip().casefold()
    if text in _PROCEDURE_CODES:
        return _PROCEDURE_CODES[text]
    for word, procedure in _PROCEDURE_WORDS:
        if word in text:
            return procedure
    return None


def language_code(name: str) -> str | None:
    """A directory language name ("Türkisch", "englisch", "TR") as ISO 639-1, or None."""
    text = name.strip().casefold()
    if text in _LANGUAGE_NAMES:
        return _LANGUAGE_NAMES[text]
    if text in ISO_639_1:
        return text
    return None


def gender_of(geschlecht: object, anrede: object) -> Gender:
    for value in (geschlecht, anrede):
        if isinstance(value, str) and value.strip().casefold() in _GENDER_WORDS:
            return _GENDER_WORDS[value.strip().casefold()]
    return Gender.UNSPECIFIED


# ---------------------------------------------------------------------------------------------
# Phone windows
# ---------------------------------------------------------------------------------------------


class WindowError(ValueError):
    pass


def _window_texts(value: object) -> list[str]:
    """The windows of a typed block: strings, or objects with `zeit` / `von`+`bis`."""
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    texts: list[str] = []
    for item in items:
        if isinstance(item, str):
            texts.append(item)
        elif isinstance(item, Mapping) and isinstance(item.get("zeit"), str):
            texts.append(item["zeit"])
        elif (
            isinstance(item, Mapping)
            and isinstance(item.get("von"), str)
            and isinstance(item.get("bis"), str)
        ):
            texts.append(f"{item['von']}-{item['bis']}")
        else:
            raise WindowError(f"{item!r} is not a time window")
    return texts


@lru_cache(maxsize=4096)
def _weekday_of_date(datum: str) -> Weekday | None:
    # A national file repeats the same few weeks' dates ~100,000 times; strptime is slow.
    try:
        return _WEEKDAYS[datetime.strptime(datum.strip(), "%d.%m.%Y").weekday()]
    except ValueError:
        return None


def _day_of(day: Mapping[str, Any]) -> Weekday | None:
    datum = day.get("datum") or day.get("d")
    if isinstance(datum, str):
        weekday = _weekday_of_date(datum)
        if weekday is not None:
            return weekday
    name = day.get("tag") or day.get("t")
    return weekday_from_german(name) if isinstance(name, str) else None


def phone_windows_of(tsz: object) -> dict[str, list[str]]:
    """The weekly phone windows from the directory's calendar (`tsz[]`: dated days, each with
    typed blocks of windows). Only blocks whose type mentions the telephone count; consultation
    hours are not phone hours. Raises WindowError on a window the product cannot store."""
    if tsz is None:
        return {}
    if not isinstance(tsz, list):
        raise WindowError("tsz is not a list of days")
    days: dict[Weekday, list[Window]] = {}
    for day in tsz:
        if not isinstance(day, Mapping):
            raise WindowError(f"{day!r} is not a day of the calendar")
        blocks = day.get("typen") or day.get("tszDesTyps") or []
        if not isinstance(blocks, list):
            raise WindowError("typen is not a list")
        for block in blocks:
            if not isinstance(block, Mapping):
                raise WindowError(f"{block!r} is not a typed block")
            kind = str(block.get("typ") or "").casefold()
            if "telefon" not in kind:
                continue
            weekday = _day_of(day)
            if weekday is None:
                raise WindowError(
                    f"day {day.get('datum') or day.get('tag')!r} has no readable date or weekday"
                )
            for text in _window_texts(block.get("zeiten", block.get("sprechzeiten"))):
                try:
                    span = parse_window(text)
                except ValueError as error:
                    raise WindowError(str(error)) from error
                if not 0 <= span[0] < span[1] <= MINUTES_PER_DAY:
                    raise WindowError(f"{text!r} lies outside the day")
                days.setdefault(weekday, []).append(span)
    return schedule_from_windows(days)


# ---------------------------------------------------------------------------------------------
# Normalising one entry
# ---------------------------------------------------------------------------------------------

ValueSource = str  # "directory" or "website:<url>"
DIRECTORY_SOURCE: Final = "directory"


class DirectoryRecord(BaseModel):
    """One usable directory entry in the product's vocabulary. `values` holds only the
    directory-owned fields the entry states (never blanks); `provenance` says where each came
    from; `content_hash` identifies the record as imported (same hash: nothing to do)."""

    model_config = ConfigDict(frozen=True)

    directory_id: str
    values: dict[str, Any]
    provenance: dict[str, ValueSource]
    latitude: float | None = None
    longitude: float | None = None
    warnings: tuple[str, ...] = ()

    @property
    def display_name(self) -> str:
        return f"{self.values.get('first_name', '')} {self.values.get('last_name', '')}".strip()

    @cached_property
    def content_hash(self) -> str:
        return content_hash(self)  # the record is frozen: computed once


def content_hash(record: DirectoryRecord) -> str:
    """SHA-256 over the canonical JSON of what the import would write (and the rules version)."""
    canonical = json.dumps(
        {
            "rules": RULES_VERSION,
            "id": record.directory_id,
            "values": record.values,
            "provenance": record.provenance,
            "position": [record.latitude, record.longitude],
        },
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _text(raw: Mapping[str, Any], key: str) -> str | None:
    value = raw.get(key)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        return None
    value = " ".join(value.split())
    return value or None


# Field checks reuse the therapist record's own types, so an imported value is always storable.
_CHECKS: Final[dict[str, TypeAdapter[Any]]] = {
    "salutation": TypeAdapter(ShortText),
    "title": TypeAdapter(ShortText),
    "first_name": TypeAdapter(Name),
    "last_name": TypeAdapter(Name),
    "street": TypeAdapter(Street),
    "postcode": TypeAdapter(Postcode),
    "city": TypeAdapter(Name),
    "phone": TypeAdapter(Phone),
    "fax": TypeAdapter(Phone),
    "email": TypeAdapter(Email),
    "website": TypeAdapter(Website),
}
_DIRECTORY_KEY: Final = {
    "salutation": "anrede",
    "title": "titel",
    "first_name": "vorname",
    "last_name": "name",
    "street": "strasse",
    "postcode": "plz",
    "city": "ort",
    "phone": "tel",
    "fax": "fax",
    "email": "email",
    "website": "web",
}


class _RefusedError(Exception):
    def __init__(self, reason: SkipReason, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def _checked(name: str, value: str) -> Any:
    try:
        return _CHECKS[name].validate_python(value)
    except ValidationError as error:
        problem = error.errors()[0]["msg"]
        if name == "postcode":
            problem = "not a 5-digit German postcode"
        raise _RefusedError(
            SkipReason.INVALID_VALUE, f"{_DIRECTORY_KEY[name]} ({name}): {value!r}: {problem}"
        ) from error


def _offers(psy: object) -> list[tuple[str, list[str]]]:
    """(offer text, audiences) per therapy offer; offers as objects or plain strings."""
    if psy is None:
        return []
    if not isinstance(psy, list):
        raise _RefusedError(SkipReason.INVALID_VALUE, "psy (therapy offers) is not a list")
    offers: list[tuple[str, list[str]]] = []
    for item in psy:
        if isinstance(item, str):
            offers.append((item, [item]))  # "Verhaltenstherapie (Erwachsene)"
        elif isinstance(item, Mapping):
            text = item.get("verfahren") or item.get("bez") or item.get("text") or ""
            groups = item.get("altersgruppen", item.get("zielgruppe"))
            if isinstance(groups, str):
                groups = [groups]
            if not isinstance(text, str) or not (groups is None or isinstance(groups, list)):
                raise _RefusedError(SkipReason.INVALID_VALUE, f"psy: {item!r} is not a therapy offer")
            offers.append((text, [str(group) for group in groups or []]))
        else:
            raise _RefusedError(SkipReason.INVALID_VALUE, f"psy: {item!r} is not a therapy offer")
    return offers


def _for_adults(audiences: list[str]) -> bool:
    return any(word in audience.casefold() for audience in audiences for word in _ADULT_WORDS)


def _coordinates(raw: Mapping[str, Any]) -> tuple[float | None, float | None, str | None]:
    lat, lon = raw.get("lat"), raw.get("lon")
    if lat is None and lon is None:
        return None, None, None
    try:
        latitude, longitude = float(lat), float(lon)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None, None, f"lat/lon {lat!r}/{lon!r} are not numbers: located by postcode instead"
    south, north, west, east = _GERMANY
    if not (south <= latitude <= north and west <= longitude <= east):
        return None, None, f"lat/lon {latitude}/{longitude} lie outside Germany: located by postcode instead"
    return round(latitude, 6), round(longitude, 6), None


def normalise_entry(
    raw: object, position: str, enrichment: Enrichment | None = None
) -> DirectoryRecord | EntrySkip:
    """One `arztPraxisDatas[]` item as a DirectoryRecord, or the reason it cannot be imported.

    Rules: `id`, `vorname`, `name` and `plz` are required; every stated value must be storable
    (else the entry is skipped naming the field); only therapists with a therapy offer for
    adults (`Erwachsene`) are imported, and only adult offers give procedures; languages are
    German plus the mapped `fs[]` names; phone windows come from `tsz[]` blocks typed as
    telephone hours. The practice website fills in email and phone windows the entry lacks."""
    if not isinstance(raw, Mapping):
        return EntrySkip(
            SkipReason.MALFORMED_ENTRY, f"expected an object, got {type(raw).__name__}", position
        )
    directory_id = _text(raw, "id")
    name = " ".join(part for part in (_text(raw, "vorname"), _text(raw, "name")) if part) or None
    try:
        return _normalise(raw, directory_id, enrichment)
    except _RefusedError as refusal:
        return EntrySkip(refusal.reason, refusal.message, position, directory_id, name)


def _normalise(
    raw: Mapping[str, Any], directory_id: str | None, enrichment: Enrichment | None
) -> DirectoryRecord:
    missing = [key for key in ("id", "vorname", "name", "plz") if _text(raw, key) is None]
    if missing:
        raise _RefusedError(SkipReason.MISSING_FIELD, f"required field(s) missing: {', '.join(missing)}")
    assert directory_id is not None
    if len(directory_id) > 100:
        raise _RefusedError(SkipReason.INVALID_VALUE, "id: longer than 100 characters")

    offers = _offers(raw.get("psy"))
    adult_offers = [text for text, audiences in offers if _for_adults(audiences)]
    if not adult_offers:
        stated = "; ".join(text for text, _ in offers) or "no therapy offers"
        raise _RefusedError(SkipReason.NOT_FOR_ADULTS, f"no therapy offer for adults ({stated})")

    values: dict[str, Any] = {}
    provenance: dict[str, ValueSource] = {}
    warnings: list[str] = []

    def put(name: str, value: Any, source: ValueSource = DIRECTORY_SOURCE) -> None:
        values[name] = value
        provenance[name] = source

    # A house number without its street locates nothing.
    street_name = _text(raw, "strasse")
    street = (
        " ".join(part for part in (street_name, _text(raw, "hausnummer")) if part) if street_name else None
    )
    texts = {
        "salutation": _text(raw, "anrede"),
        "title": _text(raw, "titel"),
        "first_name": _text(raw, "vorname"),
        "last_name": _text(raw, "name"),
        "street": street,
        "postcode": _text(raw, "plz"),
        "city": _text(raw, "ort"),
        "phone": _text(raw, "tel") or _text(raw, "handy"),
        "fax": _text(raw, "fax"),
        "email": _text(raw, "email"),
        "website": _text(raw, "web"),
    }
    for name, text in texts.items():
        if text is not None:
            put(name, _checked(name, text))

    gender = gender_of(raw.get("geschlecht"), raw.get("anrede"))
    if gender is not Gender.UNSPECIFIED:
        put("gender", gender.value)
    put("statutory_seat", True)  # the directory lists those admitted to statutory care

    procedures = sorted({p.value for p in map(procedures_of, adult_offers) if p is not None})
    if procedures:
        put("procedures", procedures)
    unknown_offers = [text for text in adult_offers if procedures_of(text) is None]
    if unknown_offers:
        warnings.append(f"psy: offers outside the product's procedures ignored: {'; '.join(unknown_offers)}")

    languages = {"de"}
    fs = raw.get("fs")
    for item in fs if isinstance(fs, list) else []:
        code = language_code(item) if isinstance(item, str) else None
        if code is None:
            warnings.append(f"fs: unknown language {item!r} ignored")
        else:
            languages.add(code)
    put("languages", sorted(languages))

    try:
        windows = {} if raw.get("keineSprechzeiten") is True else phone_windows_of(raw.get("tsz"))
    except WindowError as error:
        raise _RefusedError(SkipReason.INVALID_VALUE, f"tsz (phone_windows): {error}") from error
    if windows:
        put("phone_windows", windows)

    if enrichment is not None:
        _enrich(enrichment, values, put, warnings)

    latitude, longitude, warning = _coordinates(raw)
    if warning:
        warnings.append(warning)
    # The draft's own rules (e.g. website length after adding the scheme) have the last word.
    try:
        TherapistDraft.model_validate(values)
    except ValidationError as error:
        first = error.errors()[0]
        raise _RefusedError(
            SkipReason.INVALID_VALUE, f"{'.'.join(map(str, first['loc']))}: {first['msg']}"
        ) from error
    return DirectoryRecord(
        directory_id=directory_id,
        values=values,
        provenance=provenance,
        latitude=latitude,
        longitude=longitude,
        warnings=tuple(warnings),
    )


def _enrich(enrichment: Enrichment, values: dict[str, Any], put: Any, warnings: list[str]) -> None:
    """Website values fill gaps only: the directory's own statement always wins."""
    if "email" not in values and enrichment.email is not None:
        try:
            put(
                "email",
                _CHECKS["email"].validate_python(enrichment.email.value),
                f"website:{enrichment.email.source}",
            )
        except ValidationError:
            warnings.append(f"website email {enrichment.email.value!r} is not an address: ignored")
    if "phone_windows" not in values and enrichment.phone_windows is not None:
        found = enrichment.phone_windows.value
        try:
            days: dict[Weekday, list[Window]] = {}
            for day, windows in (found or {}).items():
                days[Weekday(day)] = [parse_window(window) for window in windows]
            schedule = schedule_from_windows(days)
        except (ValueError, AttributeError, TypeError):
            warnings.append(f"website phone windows {found!r} are not readable: ignored")
            return
        if schedule:
            put("phone_windows", schedule, f"website:{enrichment.phone_windows.source}")
