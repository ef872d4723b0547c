"""SMTP sink: German mail with umlauts goes through smtplib and comes back intact from the Maildir."""

from __future__ import annotations

import mailbox
import smtplib
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from email.headerregistry import Address
from email.message import EmailMessage
from pathlib import Path

import pytest
from cloud_fixtures import service_running

from localcloud import smtp
from localcloud.process import is_alive, read_pid

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module", autouse=True)
def running_smtp() -> Iterator[bool]:
    with service_running(smtp) as already_running:
        yield already_running


def german_message(token: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = Address("Praxis Dr. Jäger", addr_spec="praxis@example.de")
    msg["To"] = Address("Jürgen Größe", addr_spec="juergen@example.de")
    msg["Subject"] = f"Ihr Therapieplatz: Bestätigung für Jürgen Größe [{token}]"
    msg.set_content("Sehr geehrter Herr Größe,\n\nIhr Erstgespräch in München ist bestätigt.\n\nGrüße\n")
    return msg


def find(token: str) -> list[EmailMessage]:
    return [m for m in smtp.read_messages() if token in str(m["Subject"])]


def test_german_mail_round_trip_without_auth() -> None:
    token = uuid.uuid4().hex
    with smtplib.SMTP("127.0.0.1", smtp.port(), timeout=5) as client:
        client.send_message(german_message(token), to_addrs=["juergen@example.de", "akte@example.de"])

    [stored] = find(token)
    assert stored["Subject"] == f"Ihr Therapieplatz: Bestätigung für Jürgen Größe [{token}]"
    assert stored["From"].addresses == (Address("Praxis Dr. Jäger", addr_spec="praxis@example.de"),)
    assert stored["To"].addresses == (Address("Jürgen Größe", addr_spec="juergen@example.de"),)
    assert "Erstgespräch in München" in stored.get_content()
    # Envelope recipients are kept too (Bcc is not in the headers).
    assert stored["X-Original-To"] == "juergen@example.de, akte@example.de"
    assert stored["Return-Path"] == "<praxis@example.de>"
    assert smtp.maildir_path().is_dir()


def test_concurrent_sessions_each_store_every_message() -> None:
    # Messages are written to disk off the event loop, several sessions at once: none may be
    # lost or stored twice (mailbox's unique names are drawn again on a clash).
    tokens = [uuid.uuid4().hex for _ in range(8)]

    def deliver(token: str) -> None:
        with smtplib.SMTP("127.0.0.1", smtp.port(), timeout=10) as client:
            for number in range(5):
                client.send_message(german_message(f"{token}-{number}"))

    with ThreadPoolExecutor(max_workers=len(tokens)) as pool:
        list(pool.map(deliver, tokens))
    for token in tokens:
        for number in range(5):
            assert len(find(f"{token}-{number}")) == 1


def test_any_login_is_accepted() -> None:
    token = uuid.uuid4().hex
    with smtplib.SMTP("127.0.0.1", smtp.port(), timeout=5) as client:
        client.login("ses-user", "whatever")
        client.send_message(german_message(token))
    assert len(find(token)) == 1


def test_clear_empties_the_maildir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A private Maildir: clearing must never delete the mail of a stack a developer is running.
    monkeypatch.setattr(smtp, "maildir_path", lambda: tmp_path / "maildir")
    box = mailbox.Maildir(tmp_path / "maildir", create=True)
    for _ in range(2):
        box.add(german_message(uuid.uuid4().hex))
    assert len(smtp.read_messages()) == 2
    assert smtp.clear() == 2
    assert smtp.read_messages() == []


def test_stop_refuses_connections_and_keeps_mail() -> None:
    token = uuid.uuid4().hex
    with smtplib.SMTP("127.0.0.1", smtp.port(), timeout=5) as client:
        client.send_message(german_message(token))
    pid = read_pid(smtp.SERVICE)
    assert pid is not None

    assert smtp.stop() is True
    assert not is_alive(pid)
    assert not smtp.is_healthy()
    with pytest.raises(ConnectionRefusedError):
        smtplib.SMTP("127.0.0.1", smtp.port(), timeout=5)

    smtp.start()
    assert smtp.is_healthy()
    assert len(find(token)) == 1
