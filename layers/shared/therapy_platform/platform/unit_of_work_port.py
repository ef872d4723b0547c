"""What every service's unit of work offers: one transaction, and the outbox written in it."""

from __future__ import annotations

from types import TracebackType
from typing import Protocol, Self

from therapy_platform.platform.ports import Outbox


class UnitOfWork(Protocol):
    """`with uow:` opens the transaction; leaving it without `commit()` rolls everything back.
    A service's unit of work adds its repositories and audit log."""

    @property
    def outbox(self) -> Outbox: ...

    def __enter__(self) -> Self: ...

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...

    def commit(self) -> None: ...
