"""Where replies arrive (port `ReplyInbox`):

- `MaildirInbox`: a Maildir (locally the SMTP server's, `.state/smtp/maildir`). New messages
  are the files in `new/`; a message taken in is moved to `cur/` with the Seen flag (`:2,S`),
  which is what a mail client does. Nothing is deleted, so the local mailbox still shows
  every message.
- `S3Inbox`: SES receiving with an S3 action stores each message as an object under a prefix
  (`inbound/`); a message taken in is copied to `processed/` and deleted from `inbound/`.

Both list first (key, size, arrival) and read one message at a time, at most the cap plus one
byte, so a huge message never sits in memory and is never parsed.

bootstrap.py picks one by REPLY_INBOX.
"""

from __future__ import annotations

import contextlib
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from therapy_platform.communication.ports import InboxEntry


class MaildirInbox:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def pending(self, limit: int) -> list[InboxEntry]:
        new = self.path / "new"
        if not new.is_dir():
            return []
        # Maildir file names start with the delivery time: name order is arrival order.
        names = sorted(name for name in os.listdir(new) if not name.startswith("."))[:limit]
        entries: list[InboxEntry] = []
        for name in names:
            try:
                stat = (new / name).stat()
            except FileNotFoundError:  # taken by a concurrent intake meanwhile
                continue
            received = datetime.fromtimestamp(stat.st_mtime, tz=UTC)
            entries.append(InboxEntry(key=name, size=stat.st_size, received_at=received))
        return entries

    def read(self, key: str, max_bytes: int) -> bytes | None:
        try:
            with (self.path / "new" / key).open("rb") as file:
                return file.read(max_bytes + 1)
        except FileNotFoundError:
            return None

    def done(self, key: str, *, stored: bool) -> None:
        (self.path / "cur").mkdir(parents=True, exist_ok=True)
        base = key.split(":", 1)[0]
        # Moved by a concurrent intake meanwhile: done either way.
        with contextlib.suppress(FileNotFoundError):
            os.replace(self.path / "new" / key, self.path / "cur" / f"{base}:2,S")


class S3Inbox:
    def __init__(
        self, client: Any, bucket: str, *, prefix: str = "inbound/", processed_prefix: str = "processed/"
    ) -> None:
        self._client = client
        self.bucket = bucket
        self.prefix = prefix
        self.processed_prefix = processed_prefix

    def pending(self, limit: int) -> list[InboxEntry]:
        listing = self._client.list_objects_v2(Bucket=self.bucket, Prefix=self.prefix, MaxKeys=limit)
        objects = sorted(listing.get("Contents", []), key=lambda item: (item["LastModified"], item["Key"]))
        entries: list[InboxEntry] = []
        for item in objects:
            if item["Key"].endswith("/"):
                continue
            modified = item["LastModified"]
            received = modified if modified.tzinfo else modified.replace(tzinfo=UTC)
            entries.append(InboxEntry(key=item["Key"], size=int(item.get("Size", 0)), received_at=received))
        return entries

    def read(self, key: str, max_bytes: int) -> bytes | None:
        try:
            # A range: an object larger than the listing said still costs no more than the cap.
            answer = self._client.get_object(Bucket=self.bucket, Key=key, Range=f"bytes=0-{max_bytes}")
        except self._client.exceptions.NoSuchKey:
            return None
        body: bytes = answer["Body"].read(max_bytes + 1)
        return body

    def done(self, key: str, *, stored: bool) -> None:
        target = self.processed_prefix + key.removeprefix(self.prefix)
        self._client.copy_object(
            Bucket=self.bucket, Key=target, CopySource={"Bucket": self.bucket, "Key": key}
        )
        self._client.delete_object(Bucket=self.bucket, Key=key)
