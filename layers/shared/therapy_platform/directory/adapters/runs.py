"""The scraping service's run records (`scraping_service.runs`)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine

from therapy_platform.directory.adapters.tables import scrape_runs
from therapy_platform.directory.domain.runs import MAX_RUN_ERRORS, ScrapeRun
from therapy_platform.platform.database import transaction


def _values(run: ScrapeRun) -> dict[str, Any]:
    values = run.model_dump(mode="json", exclude={"id", "started_at", "finished_at"})
    values["error_messages"] = values["error_messages"][:MAX_RUN_ERRORS]
    return {**values, "started_at": run.started_at, "finished_at": run.finished_at}


class SqlScrapeRunStore:
    """Each write is its own short transaction: a run's start is recorded even if it dies."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def start(self, run: ScrapeRun) -> None:
        with transaction(self._engine) as connection:
            connection.execute(scrape_runs.insert().values(id=run.id, **_values(run)))

    def finish(self, run: ScrapeRun) -> None:
        with transaction(self._engine) as connection:
            connection.execute(scrape_runs.update().where(scrape_runs.c.id == run.id).values(**_values(run)))
