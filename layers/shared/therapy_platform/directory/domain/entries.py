"""The 116117 therapist directory (Arztsuche): regions, raw answers, and how a directory entry
becomes a therapist record. Pure rules: no HTTP, S3 or SQL.

What lives here:
- regions a scraping run covers (a postcode + radius, or a 2-digit postcode prefix tiled into
  search points) and the tiling itself;
- the raw file a run stores (`raw/YYYY-MM-DD/<region>.json`) and reading it back (also a bare
  directory answer, as operators may have one);
- normalising one entry (`arztPraxisDatas[]` item) to the product's vocabulary: procedures,
  languages, phone windows, gender; every entry is either a `DirectoryRecord` or an `EntrySkip`
  naming the reason;
- the content hash that lets an unchanged entry cost no write;
- how an entry is merged into a stored therapist: only directory-owned fields, never a field
  staff edited, never an operational field, never blanking a known value.

The directory's field names (German) are documented in docs/directory-import.md.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, TypeAdapter, ValidationError

from therapy_platform.contracts.languages import ISO_639_1, LANGUAGE_LABELS
from therapy_platform.contracts.schedule import MINUTES_PER_DAY, Weekday, format_window, parse_window
from therapy_platform.contracts.therapy import Gender, TherapyProcedure
from therapy_platform.therapists.domain.therapist import (
    Email,
    Name,
    Phone,
    Postcode,
    ShortText,
    Street,
    Therapist,
    TherapistDraft,
    Website,
)

RAW_FORMAT: Final = "116117-raw/1"
# Bump when a normalisation rule changes: every stored content hash then differs once, so the
# next import re-applies the entries under the new rules (and after that writes nothing again).
RULES_VERSION: Final = "2026-11-22.1"
DIRECTORY_ACTOR: Final = "directory-import"

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
ADDRESS_FIELDS: Final = ("street", "postcode", "city")

# Germany's bounding box with a little margin: coordinates outside are the directory's mistake.
_GERMANY: Final = (47.0, 55.3, 5.5, 15.3)  # south, north, west, east

# ---------------------------------------------------------------------------------------------
# Regions and tiling
# ---------------------------------------------------------------------------------------------

DEFAULT_TILE_RADIUS_KM: Final = 10.0
MAX_RADIUS_KM: Final = 50.0
_KM_PER_DEG_LAT: Final = 111.32


class RegionKind(StrEnum):
    PREFIX = "prefix"  # every postcode starting with two digits, searched from tiled points
    RADIUS = "radius"  # one search point: a postcode's centre and a radius


RegionKey = Annotated[str, StringConstraints(pattern=r"^(\d{2}|\d{5}-r\d{1,2})$")]


class Region(BaseModel):
    """What one scraping run covers. `key` names the raw file: `52` or `52062-r25`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: RegionKind
    prefix: Annotated[str, StringConstraints(pattern=r"^\d{2}$")] | None = None
    postcode: Postcode | None = None
    radius_km: float = Field(default=DEFAULT_TILE_RADIUS_KM, gt=0, le=MAX_RADIUS_KM)

    @property
    def key(self) -> str:
        if self.kind is RegionKind.PREFIX:
            return str(self.prefix)
        return f"{self.postcode}-r{round(self.radius_km)}"

    @classmethod
    def parse(cls, value: object) -> Region:
        """`"52"` (prefix), `"52062-r25"` or `{"postcode": "52062", "radius_km": 25}` (radius),
        `{"prefix": "52", "radius_km": 5}` (prefix tiled with 5 km searches).
        Raises ValueError naming the problem."""
        if isinstance(value, Region):
            return value
        if isinstance(value, str):
            text = value.strip()
            if re.fullmatch(r"\d{2}", text):
                return cls(kind=RegionKind.PREFIX, prefix=text)
            match = re.fullmatch(r"(\d{5})(?:-r(\d{1,2}))?", text)
            if match:
                radius = float(match[2]) if match[2] else DEFAULT_TILE_RADIUS_KM
                return cls._checked(kind=RegionKind.RADIUS, postcode=match[1], radius_km=radius)
            raise ValueError(
                f"{value!r} is not a region: use a 2-digit postcode prefix (52) or postcode-rKM (52062-r25)"
            )
        if isinstance(value, Mapping):
            data = dict(value)
            if "kind" not in data:
                data["kind"] = RegionKind.PREFIX if "prefix" in data else RegionKind.RADIUS
            return cls._checked(**data)
        raise ValueError("a region is a string such as 52 or 52062-r25, or an object")

    @classmethod
    def _checked(cls, **data: Any) -> Region:
        try:
            region = cls.model_validate(data)
        except ValidationError as error:
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc'])) or 'region'}: {e['msg']}" for e in error.errors()
            )
            raise ValueError(f"invalid region: {problems}") from error
        if region.kind is RegionKind.PREFIX and region.prefix is None:
            raise ValueError("invalid region: a prefix region needs prefix (2 digits)")
        if region.kind is RegionKind.RADIUS and region.postcode is None:
            raise ValueError("invalid region: a radius region needs postcode (5 digits)")
        return region


class SearchPoint(BaseModel):
    model_config = ConfigDict(frozen=True)

    latitude: float = Field(ge=-90, le=90)
    longitude: float = Field(ge=-180, le=180)


def approx_km(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Equirectangular distance in km; within a fraction of a percent over tens of km."""
    x = (b[1] - a[1]) * math.cos(math.radians((a[0] + b[0]) / 2))
    return math.hypot(x, b[0] - a[0]) * _KM_PER_DEG_LAT


def tile_points(points: Iterable[tuple[float, float]], radius_km: float) -> list[SearchPoint]:
    """Search points whose circles of `radius_km` cover every given point with slack.

    A square grid of side `radius_km`: the centre of a cell lies within radius/sqrt(2) (~0.71 r)
    of everything in the cell, so a practice up to ~0.29 r beyond its postcode's centroid is
    still inside the search circle. Only cells holding a point get a search point; the result
    is sorted (north to south, west to east) so runs are reproducible."""
    if radius_km <= 0:
        raise ValueError("the tile radius must be positive")
    lat_step = radius_km / _KM_PER_DEG_LAT
    cells: dict[tuple[int, int], float] = {}
    for latitude, longitude in points:
        row = math.floor(latitude / lat_step)
        # Longitude degrees shrink with latitude: size the column by the cell's own latitude.
        centre_lat = (row + 0.5) * lat_step
        lon_step = radius_km / (_KM_PER_DEG_LAT * math.cos(math.radians(centre_lat)))
        column = math.floor(longitude / lon_step)
        cells[(row, column)] = lon_step
    tiles = []
    for (row, column), lon_step in cells.items():
        tiles.append(
            SearchPoint(
                latitude=round((row + 0.5) * lat_step, 6), longitude=round((column + 0.5) * lon_step, 6)
            )
        )
    return sorted(tiles, key=lambda p: (-p.latitude, p.longitude))


def in_scope(
    region: Region,
    points: Sequence[SearchPoint],
    radius_km: float,
    *,
    postcode: str | None,
    latitude: float | None,
    longitude: float | None,
) -> bool:
    """Whether a complete run of `region` must have seen a listing stored with this postcode and
    position: only then may its absence mean it left the directory. Listings near the edge of
    every search circle (last 10 %, at least 1 km) are out of scope: positions are imprecise."""
    if region.kind is RegionKind.PREFIX and not (postcode or "").startswith(region.prefix or "-"):
        return False
    if latitude is None or longitude is None:
        return False
    inner = radius_km - max(1.0, radius_km * 0.1)
    return any(approx_km((p.latitude, p.longitude), (latitude, longitude)) <= inner for p in points)


# ---------------------------------------------------------------------------------------------
# Raw files
# ---------------------------------------------------------------------------------------------


class RawPage(BaseModel):
    """One answer of the directory as received. `answer` is the parsed JSON; an answer that
    was not JSON is kept as `raw_text` (cut) with `error`, so the import can report it."""

    model_config = ConfigDict(extra="ignore")

    point: SearchPoint | None = None
    page: int = 0
    fetched_at: datetime | None = None
    answer: Any = None
    raw_text: str | None = None
    error: str | None = None


class Provenanced(BaseModel):
    """A value found outside the directory, and where."""

    model_config = ConfigDict(extra="ignore")

    value: Any
    source: str = Field(min_length=1, max_length=500)
    fetched_at: datetime | None = None


class Enrichment(BaseModel):
    """What a practice's own website said (only what the directory entry lacked)."""

    model_config = ConfigDict(extra="ignore")

    email: Provenanced | None = None
    phone_windows: Provenanced | None = None


class RawRun(BaseModel):
    """The file a scraping run stores: every answer, what enrichment found, and whether the run
    saw the whole region (`complete`); only a complete run may mark listings as vanished."""

    model_config = ConfigDict(extra="ignore")

    format: Literal["116117-raw/1"] = RAW_FORMAT
    run_id: str | None = None
    region: Region | None = None
    radius_km: float = Field(default=DEFAULT_TILE_RADIUS_KM, gt=0, le=MAX_RADIUS_KM)
    points: list[SearchPoint] = Field(default_factory=list)
    started_at: datetime | None = None
    finished_at: datetime | None = None
    complete: bool = False
    source: str | None = None
    pages: list[RawPage] = Field(default_factory=list)
    enrichment: dict[str, Enrichment] = Field(default_factory=dict)
    errors: list[str] = Field(default_factory=list)

    def to_json_bytes(self) -> bytes:
        return self.model_dump_json(exclude_none=True).encode("utf-8")


def raw_object_key(day: date, region: Region) -> str:
    return f"raw/{day.isoformat()}/{region.key}.json"


_RAW_KEY = re.compile(r"^raw/(\d{4}-\d{2}-\d{2})/([0-9a-z-]+)\.json$")


def is_raw_object_key(key: str) -> bool:
    return _RAW_KEY.fullmatch(key) is not None


class UnusableFileError(ValueError):
    """A file the import cannot read at all (not JSON, not a directory answer)."""


def read_raw_document(data: bytes | str) -> RawRun:
    """A stored run file, a bare directory answer (`{"arztPraxisDatas": [...]}`) or a list of
    answers, as a RawRun. Bare answers carry no region, so they never mark anything vanished."""
    try:
        document = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise UnusableFileError(f"the file is not JSON: {error}") from error
    if isinstance(document, Mapping) and document.get("format") == RAW_FORMAT:
        try:
            return RawRun.model_validate(document)
        except ValidationError as error:
            first = error.errors()[0]
            where = ".".join(map(str, first["loc"]))
            raise UnusableFileError(f"not a valid run file: {where}: {first['msg']}") from error
    if isinstance(document, Mapping) and "arztPraxisDatas" in document:
        return RawRun(pages=[RawPage(answer=document)])
    if (
        isinstance(document, list)
        and document
        and all(isinstance(item, Mapping) and "arztPraxisDatas" in item for item in document)
    ):
        return RawRun(pages=[RawPage(page=index, answer=item) for index, item in enumerate(document)])
    raise UnusableFileError(
        f'expected a run file (format "{RAW_FORMAT}") or a directory answer with arztPraxisDatas'
    )


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

_WEEKDAY_WORDS: Final = {
    "mo": Weekday.MON,
    "montag": Weekday.MON,
    "di": Weekday.TUE,
    "dienstag": Weekday.TUE,
    "mi": Weekday.WED,
    "mittwoch": Weekday.WED,
    "do": Weekday.THU,
    "donnerstag": Weekday.THU,
    "fr": Weekday.FRI,
    "freitag": Weekday.FRI,
    "sa": Weekday.SAT,
    "samstag": Weekday.SAT,
    "sonnabend": Weekday.SAT,
    "so": Weekday.SUN,
    "sonntag": Weekday.SUN,
}
WEEKDAYS_IN_ORDER: Final = tuple(Weekday)


def weekday_from_word(word: str) -> Weekday | None:
    return _WEEKDAY_WORDS.get(word.strip().rstrip(".").casefold())


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

Span = tuple[int, int]


def merge_spans(spans: Iterable[Span]) -> list[Span]:
    """Overlapping or touching windows of one day joined: the same weekday on several dated days
    of the directory's calendar must give one disjoint list (the schedule rule)."""
    merged: list[Span] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def schedule_from_spans(days: Mapping[Weekday, Iterable[Span]]) -> dict[str, list[str]]:
    """Stored form: days in week order, windows `HH:MM-HH:MM`, empty days dropped."""
    result: dict[str, list[str]] = {}
    for day in WEEKDAYS_IN_ORDER:
        spans = merge_spans(days.get(day, ()))
        if spans:
            result[day.value] = [format_window(start, end) for start, end in spans]
    return result


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


def _day_of(day: Mapping[str, Any]) -> Weekday | None:
    datum = day.get("datum") or day.get("d")
    if isinstance(datum, str):
        try:
            return WEEKDAYS_IN_ORDER[datetime.strptime(datum.strip(), "%d.%m.%Y").weekday()]
        except ValueError:
            pass
    name = day.get("tag") or day.get("t")
    return weekday_from_word(name) if isinstance(name, str) else None


def phone_windows_of(tsz: object) -> dict[str, list[str]]:
    """The weekly phone windows from the directory's calendar (`tsz[]`: dated days, each with
    typed blocks of windows). Only blocks whose type mentions the telephone count; consultation
    hours are not phone hours. Raises WindowError on a window the product cannot store."""
    if tsz is None:
        return {}
    if not isinstance(tsz, list):
        raise WindowError("tsz is not a list of days")
    days: dict[Weekday, list[Span]] = {}
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
    return schedule_from_spans(days)


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

    @property
    def content_hash(self) -> str:
        return content_hash(self)


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
            days: dict[Weekday, list[Span]] = {}
            for day, windows in (found or {}).items():
                days[Weekday(day)] = [parse_window(window) for window in windows]
            schedule = schedule_from_spans(days)
        except (ValueError, AttributeError, TypeError):
            warnings.append(f"website phone windows {found!r} are not readable: ignored")
            return
        if schedule:
            put("phone_windows", schedule, f"website:{enrichment.phone_windows.source}")


# ---------------------------------------------------------------------------------------------
# Merging into a stored therapist
# ---------------------------------------------------------------------------------------------


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


def directory_address(record: DirectoryRecord) -> tuple[Any, Any, Any]:
    return tuple(record.values.get(name) for name in ADDRESS_FIELDS)  # type: ignore[return-value]
