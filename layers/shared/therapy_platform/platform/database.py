"""PostgreSQL connections (SQLAlchemy 2 + pg8000).

One engine per warm Lambda environment, with a pool of one connection: Lambda runs one
invocation at a time per environment, and RDS Proxy pools connections in front of Aurora.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from typing import Any

from sqlalchemy import URL, Connection, Engine, create_engine, event, make_url
from sqlalchemy.exc import InterfaceError, OperationalError

from therapy_platform.platform.errors import DependencyUnavailableError
from therapy_platform.platform.settings import DatabaseSettings, SettingsError, database_settings

CONNECT_TIMEOUT_S = 5


def _secret_values(secret_arn: str) -> dict[str, Any]:
    # Imported lazily: Powertools parameters pulls in boto3, which unit tests never need here.
    from aws_lambda_powertools.utilities import parameters

    value = parameters.get_secret(secret_arn, transform="json", max_age=300)
    if not isinstance(value, dict):
        raise SettingsError(f"secret {secret_arn} does not hold a JSON object")
    return value


def database_url(settings: DatabaseSettings) -> URL:
    if settings.database_url:
        return make_url(settings.database_url)
    if not settings.secret_arn:
        raise SettingsError("set DATABASE_URL or DB_SECRET_ARN (with DB_HOST) to reach PostgreSQL")
    secret = _secret_values(settings.secret_arn)
    host = secret.get("host") or settings.host
    if not host:
        raise SettingsError(f"secret {settings.secret_arn} has no host and DB_HOST is not set")
    return URL.create(
        "postgresql+pg8000",
        username=str(secret["username"]),
        password=str(secret["password"]),
        host=str(host),
        port=int(secret.get("port") or settings.port),
        database=str(secret.get("dbname") or settings.name),
    )


def make_engine(url: URL | str, *, use_ssl: bool = False, pool_size: int = 1) -> Engine:
    # Without SSL, none is negotiated: pg8000's default (None) asks the server first and builds
    # an unverified default context each time it connects (~15-45 ms of a cold function's first
    # statement, for a server that answers no: the local stack's).
    connect_args: dict[str, Any] = {
        "timeout": CONNECT_TIMEOUT_S,
        "ssl_context": ssl.create_default_context() if use_ssl else False,
    }
    engine = create_engine(
        url,
        pool_size=pool_size,
        max_overflow=0,
        pool_pre_ping=True,
        pool_recycle=300,
        connect_args=connect_args,
    )
    event.listen(engine, "connect", _no_delay)
    return engine


def _no_delay(dbapi_connection: Any, _record: Any) -> None:
    """pg8000 leaves Nagle's algorithm on: a statement with a large parameter (a bulk insert, an
    email body) then waits ~40 ms for the server's delayed ACK. Send small writes at once."""
    sock = getattr(dbapi_connection, "_usock", None)
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


@cache
def default_engine(pool_size: int = 1) -> Engine:
    """The function's engine from its settings, one per pool size (a directory import needs 2)."""
    settings = database_settings()
    return make_engine(database_url(settings), use_ssl=settings.ssl, pool_size=pool_size)


def connect(engine: Engine) -> Connection:
    """A pooled connection; failure to connect becomes DependencyUnavailableError (HTTP 503)."""
    try:
        return engine.connect()
    except (OperationalError, InterfaceError) as error:
        raise DependencyUnavailableError("the database cannot be reached right now") from error


@contextmanager
def transaction(engine: Engine) -> Iterator[Connection]:
    """A connection inside one transaction; connection failures become DependencyUnavailableError."""
    connection = connect(engine)
    try:
        with connection.begin():
            yield connection
    except (OperationalError, InterfaceError) as error:
        if getattr(error, "connection_invalidated", False) or isinstance(error, InterfaceError):
            raise DependencyUnavailableError("the database connection was lost") from error
        raise
    finally:
        connection.close()
