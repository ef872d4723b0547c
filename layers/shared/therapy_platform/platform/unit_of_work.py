"""The transaction every service's SQL unit of work runs in."""

from __future__ import annotations

from types import TracebackType
from typing import ClassVar, Self

from sqlalchemy import Connection, Engine

from therapy_platform.platform.database import connect
from therapy_platform.platform.outbox import SqlOutbox


class SqlUnitOfWork:
    """One transaction per `with` block: the change, its audit rows and its outbox events commit
    together or not at all. Leaving the block without commit() rolls everything back.

    A service's subclass names its schema (whose outbox it writes) and binds its repositories
    to the block's connection in `_bind`."""

    schema: ClassVar[str]
    outbox: SqlOutbox

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def _bind(self, connection: Connection) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        self._connection = connect(self._engine)
        self._transaction = self._connection.begin()
        self.outbox = SqlOutbox(self._connection, self.schema)
        self._bind(self._connection)
        return self

    def commit(self) -> None:
        self._transaction.commit()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            if self._transaction.is_active:
                self._transaction.rollback()
        finally:
            self._connection.close()
