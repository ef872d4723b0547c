"""Local SMTP sink on 127.0.0.1:${SMTP_PORT:-2525}; every message lands in `.state/smtp/maildir`.

Read the mail with `read_messages()` (tests) or any Maildir-capable client, e.g. `mutt -f <maildir>`.
"""

from __future__ import annotations

import mailbox
import os
import re
import smtplib
import sys
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default as default_policy
from pathlib import Path

import localcloud
from localcloud.paths import service_dir
from localcloud.process import start_daemon, stop_daemon

SERVICE = "smtp"
DEFAULT_PORT = 2525
HOST = "127.0.0.1"

# Maildir keys made by mailbox.Maildir start with "<seconds>.M<microseconds>P<pid>Q<counter>".
_KEY_ORDER = re.compile(r"^(\d+)\.M(\d+)P\d+Q(\d+)")


def port() -> int:
    return int(os.environ.get("SMTP_PORT", str(DEFAULT_PORT)))


def maildir_path() -> Path:
    return service_dir(SERVICE) / "maildir"


def is_healthy(timeout_s: float = 2.0) -> bool:
    """True when the server answers an SMTP NOOP."""
    try:
        with smtplib.SMTP(HOST, port(), timeout=timeout_s) as client:
            code, _ = client.noop()
            return code == 250
    except (OSError, smtplib.SMTPException):
        return False


def start(timeout_s: float = 30.0) -> None:
    """Start the SMTP sink as a separate Python process. A no-op when ours is already healthy."""
    infra_dir = Path(localcloud.__file__).resolve().parents[1]
    env = dict(os.environ)
    # The child must import localcloud however the caller found it.
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(infra_dir), env.get("PYTHONPATH", "")) if p)
    env["PYTHONUNBUFFERED"] = "1"
    argv = [
        sys.executable,
        "-m",
        "localcloud.smtp_server",
        "--host",
        HOST,
        "--port",
        str(port()),
        "--maildir",
        str(maildir_path()),
    ]
    start_daemon(SERVICE, argv, env=env, cwd=service_dir(SERVICE), healthy=is_healthy, timeout_s=timeout_s)


def stop() -> bool:
    """Stop the SMTP sink (the Maildir is kept). False if it was not running."""
    return stop_daemon(SERVICE)


def _order(key: str) -> tuple[int, int, int, str]:
    match = _KEY_ORDER.match(key)
    if match is None:
        return (0, 0, 0, key)
    return (int(match[1]), int(match[2]), int(match[3]), key)


def read_messages() -> list[EmailMessage]:
    """All stored messages, oldest first, parsed with the modern email API (decoded headers)."""
    box = mailbox.Maildir(maildir_path(), factory=None, create=True)
    parser = BytesParser(_class=EmailMessage, policy=default_policy)
    messages: list[EmailMessage] = []
    for key in sorted(box.keys(), key=_order):
        try:
            raw = box.get_bytes(key)
        except KeyError:  # removed by clear() meanwhile
            continue
        messages.append(parser.parsebytes(raw))
    return messages


def clear() -> int:
    """Delete every stored message; returns how many were deleted."""
    box = mailbox.Maildir(maildir_path(), factory=None, create=True)
    keys = box.keys()
    for key in keys:
        box.discard(key)
    return len(keys)
