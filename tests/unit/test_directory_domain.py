"""Pure rules of the scraping side of the 116117 directory and of the raw-file contract between
the scraping and the therapist service: regions and tiling, raw object keys, unusable files."""

from __future__ import annotations

import json
import math
from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from therapy_platform.contracts.directory_files import (
    Region,
    RegionKind,
    UnusableFileError,
    is_raw_object_key,
    raw_object_key,
    read_raw_document,
)
from therapy_platform.directory.domain.regions import tile_points
from therapy_platform.therapists.imports.domain.listings import approx_km

# ---------------------------------------------------------------------------------------------
# Regions and tiling
# ---------------------------------------------------------------------------------------------


def test_regions_parse_from_prefix_postcode_radius_and_objects() -> None:
    assert Region.parse("52").kind is RegionKind.PREFIX
    assert Region.parse("52").key == "52"
    radius = Region.parse("52062-r25")
    assert (radius.kind, radius.postcode, radius.radius_km, radius.key) == (
        RegionKind.RADIUS,
        "52062",
        25,
        "52062-r25",
    )
    assert Region.parse({"postcode": "10115", "radius_km": 5}).key == "10115-r5"
    assert Region.parse({"prefix": "10", "radius_km": 3}).radius_km == 3
    assert raw_object_key(date(2026, 11, 22), Region.parse("52")) == "raw/2026-11-22/52.json"
    assert is_raw_object_key("raw/2026-11-22/52062-r25.json")
    assert not is_raw_object_key("raw/2026-11-22/../x.json")


@pytest.mark.parametrize(
    "value", ["5", "520", "5206A", "52062-r", {"postcode": "52062", "radius_km": 500}, 52, {}]
)
def test_bad_regions_are_refused_naming_the_problem(value: object) -> None:
    with pytest.raises(ValueError, match="region"):
        Region.parse(value)


points_in_germany = st.lists(st.tuples(st.floats(47.3, 55.0), st.floats(5.9, 15.0)), min_size=1, max_size=60)


@given(points=points_in_germany, radius=st.floats(1.0, 30.0))
def test_tiles_cover_every_point_with_slack(points: list[tuple[float, float]], radius: float) -> None:
    tiles = tile_points(points, radius)
    assert len(tiles) <= len(points)
    for point in points:
        nearest = min(approx_km((tile.latitude, tile.longitude), point) for tile in tiles)
        # A cell's centre lies within r/sqrt(2) of the cell; a little rounding allowed.
        assert nearest <= radius / math.sqrt(2) + 0.01


# ---------------------------------------------------------------------------------------------
# Reading files
# ---------------------------------------------------------------------------------------------


def test_unusable_files_are_refused_with_the_reason() -> None:
    with pytest.raises(UnusableFileError, match="not JSON"):
        read_raw_document(b"{nope")
    with pytest.raises(UnusableFileError, match="arztPraxisDatas"):
        read_raw_document(b'{"hello": 1}')
    with pytest.raises(UnusableFileError, match="run file"):
        read_raw_document(json.dumps({"format": "116117-raw/1", "pages": "x"}))
