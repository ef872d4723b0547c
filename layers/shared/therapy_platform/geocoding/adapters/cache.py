"""Cache of Nominatim answers in the `geocoding_service` schema (table `geocode_cache`).

One row per (kind, key): kind `address` keys are AddressQuery.cache_key(), kind `reverse` keys
are Point.cache_key() (5 decimals, about 1 m). `found` false records that Nominatim found
nothing, so an unknown address is not asked for again until the row expires. Expired rows are
ignored on read, replaced on write and deleted by `purge_expired`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, Final, TypeVar

from pydantic import BaseModel, ValidationError
from sqlalchemy import Boolean, Column, DateTime, Engine, String, Table, Text, delete, select
from sqlalchemy.dialects.postgresql import JSONB, insert

from therapy_platform.platform.database import transaction
from therapy_platform.platform.geography.addresses import AddressMatch, ReverseAddress
from therapy_platform.platform.geography.ports import CacheHit
from therapy_platform.platform.tables import metadata

GEOCODING_SCHEMA: Final = "geocoding_service"
ADDRESS: Final = "address"
REVERSE: Final = "reverse"

geocode_cache = Table(
    "geocode_cache",
    metadata,
    Column("kind", String(16), primary_key=True),
    Column("key", Text, primary_key=True),
    Column("found", Boolean, nullable=False),
    Column("payload", JSONB(none_as_null=True)),
    Column("fetched_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    schema=GEOCODING_SCHEMA,
)

Model = TypeVar("Model", bound=BaseModel)


class SqlGeocodingCache:
    """GeocodingCache port on PostgreSQL. Each call is its own short transaction: a cache entry
    belongs to no business change, and a failed write must never undo one. Takes the engine or
    a function giving it, so that wiring the service connects to nothing yet."""

    def __init__(self, engine: Engine | Callable[[], Engine]) -> None:
        self._engine_or_factory = engine

    @property
    def _engine(self) -> Engine:
        if isinstance(self._engine_or_factory, Engine):
            return self._engine_or_factory
        return self._engine_or_factory()

    def _get(self, kind: str, key: str, model: type[Model], now: datetime) -> CacheHit[Model] | None:
        query = select(geocode_cache.c.found, geocode_cache.c.payload, geocode_cache.c.fetched_at).where(
            geocode_cache.c.kind == kind, geocode_cache.c.key == key, geocode_cache.c.expires_at > now
        )
        with transaction(self._engine) as connection:
            row = connection.execute(query).first()
        if row is None:
            return None
        if not row.found:
            return CacheHit(value=None, fetched_at=row.fetched_at)
        try:
            return CacheHit(value=model.model_validate(row.payload), fetched_at=row.fetched_at)
        except ValidationError:
            return None  # written by an older shape of the model: ask again

    def _put(self, kind: str, key: str, value: BaseModel | None, now: datetime, ttl: timedelta) -> None:
        values: dict[str, Any] = {
            "kind": kind,
            "key": key,
            "found": value is not None,
            "payload": value.model_dump(mode="json") if value is not None else None,
            "fetched_at": now,
            "expires_at": now + ttl,
        }
        statement = insert(geocode_cache).values(**values)
        statement = statement.on_conflict_do_update(
            index_elements=[geocode_cache.c.kind, geocode_cache.c.key],
            set_={
                name: statement.excluded[name] for name in ("found", "payload", "fetched_at", "expires_at")
            },
        )
        with transaction(self._engine) as connection:
            connection.execute(statement)

    def get_address(self, key: str, *, now: datetime) -> CacheHit[AddressMatch] | None:
        return self._get(ADDRESS, key, AddressMatch, now)

    def put_address(self, key: str, value: AddressMatch | None, *, now: datetime, ttl: timedelta) -> None:
        self._put(ADDRESS, key, value, now, ttl)

    def get_reverse(self, key: str, *, now: datetime) -> CacheHit[ReverseAddress] | None:
        return self._get(REVERSE, key, ReverseAddress, now)

    def put_reverse(self, key: str, value: ReverseAddress | None, *, now: datetime, ttl: timedelta) -> None:
        self._put(REVERSE, key, value, now, ttl)

    def purge_expired(self, *, now: datetime) -> int:
        with transaction(self._engine) as connection:
            result = connection.execute(delete(geocode_cache).where(geocode_cache.c.expires_at <= now))
        return int(result.rowcount)
