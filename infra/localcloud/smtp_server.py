"""A local SMTP server that delivers every message into one Maildir instead of sending it.

Run: python -m localcloud.smtp_server --host 127.0.0.1 --port 2525 --maildir .state/smtp/maildir

Plain SMTP without TLS. AUTH is optional and any user/password is accepted, so applications
configured with SMTP credentials (as for SES) work unchanged. Nothing is ever relayed.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import mailbox
import signal
from email.parser import BytesHeaderParser
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, Session

log = logging.getLogger("localcloud.smtp_server")


class MaildirHandler:
    """aiosmtpd handler: store each message in a Maildir and log who sent what to whom."""

    def __init__(self, maildir: Path) -> None:
        self.maildir = mailbox.Maildir(maildir, create=True)

    def _store(self, message: bytes) -> None:
        # Two threads may draw the same unique name (mailbox's counter is not thread-safe); the
        # exclusive create refuses the second, which simply draws again.
        for attempt in range(5):
            try:
                self.maildir.add(message)
                return
            except mailbox.ExternalClashError:
                if attempt == 4:
                    raise

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        # Maildir files use plain LF line endings; SMTP delivers CRLF.
        content = (envelope.original_content or b"").replace(b"\r\n", b"\n")
        # The envelope is not in the headers (Bcc!), so keep it the way local MTAs do.
        recipients = ", ".join(envelope.rcpt_tos)
        trace = f"Return-Path: <{envelope.mail_from or ''}>\nX-Original-To: {recipients}\n".encode()
        # Stored (and fsynced by mailbox) before the 250, like a real MTA; in a thread, so that
        # one session's disk write does not hold up every other session on the event loop.
        await asyncio.to_thread(self._store, trace + content)
        headers = BytesHeaderParser(policy=default_policy).parsebytes(content)
        log.info(
            "received from=%s to=%s subject=%r",
            envelope.mail_from,
            recipients,
            str(headers.get("Subject", "")),
        )
        return "250 Message accepted for delivery"


def accept_any_login(
    server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
) -> AuthResult:
    """Local development only: every AUTH succeeds."""
    return AuthResult(success=True)


async def serve(host: str, port: int, maildir: Path) -> None:
    loop = asyncio.get_running_loop()
    handler = MaildirHandler(maildir)

    def protocol() -> SMTP:
        return SMTP(
            handler,
            hostname="localcloud-smtp",
            enable_SMTPUTF8=True,
            auth_required=False,
            auth_require_tls=False,
            authenticator=accept_any_login,
            loop=loop,
        )

    server = await loop.create_server(protocol, host=host, port=port)
    stopped = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopped.set)
    log.info("listening on %s:%d, delivering to %s", host, port, maildir)
    async with server:
        await stopped.wait()
    log.info("stopped")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Local SMTP sink that stores mail in a Maildir")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=2525)
    parser.add_argument("--maildir", type=Path, default=Path(".state/smtp/maildir"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # aiosmtpd logs every SMTP command at INFO; our one line per message is enough.
    mail_log = logging.getLogger("mail.log")
    mail_log.setLevel(logging.WARNING)
    # aiosmtpd warns about its own deprecated attribute on every successful AUTH.
    mail_log.addFilter(lambda record: "login_data is deprecated" not in record.getMessage())
    asyncio.run(serve(args.host, args.port, args.maildir.resolve()))


if __name__ == "__main__":
    main()
