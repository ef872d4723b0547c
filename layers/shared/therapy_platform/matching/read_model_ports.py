"""Port of the matching service's read models."""

from __future__ import annotations

from typing import Protocol

from therapy_platform.matching.domain.read_models import ProfileChange


class ProfileStore(Protocol):
    def apply(self, change: ProfileChange) -> bool:
        """Apply the change unless it was seen before or is older than what is stored.
        Returns True when the row changed."""
        ...
