"""Port through which patient and therapist services locate an address when they write it."""

from __future__ import annotations

from typing import Protocol

from therapy_platform.domain.geo import Location


class Geocoder(Protocol):
    def locate(self, *, postcode: str, street: str | None = None, city: str | None = None) -> Location:
        """Best known location: the address when it can be geocoded, else the postcode centroid,
        else unknown. Never raises for an unlocatable address."""
        ...
