"""A sender that dies mid-batch (run as a subprocess by test_email_delivery.py).

    python email_sender_child.py KILL_AT {after_claim|after_send} EMAIL_ID...

Runs the real sender function (functions/email_sender/app.py) on one SQS batch holding the given
email ids, configured from the environment (DATABASE_URL, SMTP_PORT, MAIL_FROM, ...). When it
reaches the KILL_AT-th email (1-based) it kills itself with SIGKILL, no clean-up at all:
- after_claim: the email is claimed (committed `sending`) but not yet handed to SMTP;
- after_send:  the SMTP server accepted it, but `sent` is not yet committed.
"""

from __future__ import annotations

import os
import signal
import sys
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
for path in (ROOT / "tests", ROOT / "tests" / "unit", ROOT / "layers" / "shared", ROOT / "infra"):
    sys.path.insert(0, str(path))

from communication_fakes import sqs_event  # noqa: E402
from support import FakeLambdaContext, load_function  # noqa: E402
from therapy_platform.communication.domain.emails import Email  # noqa: E402
from therapy_platform.communication.use_cases.emails import SenderContext  # noqa: E402


class DyingTransport:
    def __init__(self, inner: object, kill_at: int, when: str) -> None:
        self._inner = inner
        self._kill_at = kill_at
        self._when = when
        self._count = 0

    def send(self, email: Email) -> str | None:
        self._count += 1
        if self._count == self._kill_at and self._when == "after_claim":
            os.kill(os.getpid(), signal.SIGKILL)
        result = self._inner.send(email)  # type: ignore[attr-defined]
        if self._count == self._kill_at and self._when == "after_send":
            os.kill(os.getpid(), signal.SIGKILL)
        return result  # type: ignore[no-any-return]

    def close(self) -> None:
        self._inner.close()  # type: ignore[attr-defined]


def main() -> None:
    kill_at, when, *ids = sys.argv[1:]
    app = load_function("email_sender")  # the deployed sender, built from the environment
    real: SenderContext = app.service
    real.transport = DyingTransport(real.transport, int(kill_at), when)
    app.consumer.queues = None  # no per-message backoff outside SQS
    response = app.lambda_handler(sqs_event([uuid.UUID(value) for value in ids]), FakeLambdaContext())
    print(response)


if __name__ == "__main__":
    main()
