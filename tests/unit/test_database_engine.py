"""The engine's connection arguments: SSL is verified when asked for and not negotiated at all
otherwise (pg8000's default would ask the server and build an unverified context first)."""

from __future__ import annotations

import ssl
from typing import Any

import pytest
import sqlalchemy

from therapy_platform.platform import database


@pytest.fixture
def connect_args(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    captured: dict[str, Any] = {}

    def create_engine(url: Any, **options: Any) -> Any:
        captured.update(options["connect_args"])
        return sqlalchemy.create_engine(url, **options)

    monkeypatch.setattr(database, "create_engine", create_engine)
    return captured


def test_without_ssl_none_is_negotiated(connect_args: dict[str, Any]) -> None:
    database.make_engine("postgresql+pg8000://user:secret@127.0.0.1:5432/db")
    assert connect_args["ssl_context"] is False


def test_with_ssl_the_server_certificate_is_verified(connect_args: dict[str, Any]) -> None:
    database.make_engine("postgresql+pg8000://user:secret@db.example:5432/db", use_ssl=True)
    context = connect_args["ssl_context"]
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
