"""The raw directory file: what the scraping service stores in S3 and the therapist service's
import reads back. The contract between the two services (neither imports the other).

- where a file lives: `raw/YYYY-MM-DD/<region key>.json` (`raw_object_key`), the day being the
  German calendar day the run started;
- what a file holds (`RawRun`, format `116117-raw/1`): the region and search points the run
  covered, every directory answer as received (`RawPage`), what practice websites added to
  entries lacking an email or phone hours (`Enrichment`, each value with its source), and
  whether the run saw its whole region (`complete`: only then may the import mark listings
  missing from it as vanished);
- reading a file back (`read_raw_document`), which also accepts a bare directory answer
  (`{"arztPraxisDatas": [...]}`) or a list of them, as operators may have one.

Regions: a 2-digit postcode prefix tiled into search points (key `52`), or one postcode with a
radius (key `52062-r25`). The directory's own field names (German) are documented in
docs/directory-import.md. Pure models: no HTTP, S3 or SQL.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

RAW_FORMAT: Final = "116117-raw/1"
DEFAULT_TILE_RADIUS_KM: Final = 10.0
MAX_RADIUS_KM: Final = 50.0

_Postcode = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^\d{5}$")]


class RegionKind(StrEnum):
    PREFIX = "prefix"  # every postcode starting with two digits, searched from tiled points
    RADIUS = "radius"  # one search point: a postcode's centre and a radius


class Region(BaseModel):
    """What one scraping run covers. `key` names the raw file: `52` or `52062-r25`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: RegionKind
    prefix: Annotated[str, StringConstraints(pattern=r"^\d{2}$")] | None = None
    postcode: _Postcode | None = None
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
    """The centre of one directory search (its circle has the run's `radius_km`)."""

    model_config = ConfigDict(frozen=True)

    latitude: float = Field(ge=-90, le=90)
    longitude: float = Field(ge=-180, le=180)


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
    """What a practice's own website said (only what the directory entry lacked): a contact
    email, and phone windows in the stored schedule form (`{"mon": ["08:00-09:00"]}`)."""

    model_config = ConfigDict(extra="ignore")

    email: Provenanced | None = None
    phone_windows: Provenanced | None = None


class RawRun(BaseModel):
    """The file a scraping run stores: every answer, what enrichment found (by directory entry
    id), and whether the run saw the whole region (`complete`); only a complete run may mark
    listings as vanished."""

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
