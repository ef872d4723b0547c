"""Opening Swagger UI (/api/v2/docs) in headless Chromium (Debian's `chromium`) with no
internet: every host name but 127.0.0.1 and the API's own fails to resolve, so the page renders
only from files its own origin serves. Shared by the integration test (the handler behind a
local HTTP server) and the e2e test (the deployed stack)."""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from support import chromium

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--enable-logging=stderr",
    "--v=0",
    # Enough virtual time for the bundle to fetch and render the document (no wall-clock wait).
    "--virtual-time-budget=30000",
)
OPERATION_ID = re.compile(r'opblock-summary-operation-id">([A-Za-z0-9]+)<')
TAG = re.compile(r'data-tag="([A-Za-z]+)"')


@dataclass(frozen=True)
class RenderedDocs:
    dom: str
    log: str

    @property
    def operation_ids(self) -> list[str]:
        return OPERATION_ID.findall(self.dom)

    @property
    def tags(self) -> set[str]:
        return set(TAG.findall(self.dom))


def _offline_rules(url: str) -> str:
    """Resolve nothing but the loopback address and the page's own host: no internet."""
    host = urlsplit(url).hostname or "127.0.0.1"
    return f"MAP * ~NOTFOUND , EXCLUDE 127.0.0.1 , EXCLUDE {host}"


def render_docs(url: str, profile: Path) -> RenderedDocs:
    """The DOM Swagger UI built at `url`, and Chromium's log (console messages, CSP reports)."""
    done = subprocess.run(
        [
            chromium(),
            *CHROMIUM_FLAGS,
            f"--user-data-dir={profile}",
            f"--host-resolver-rules={_offline_rules(url)}",
            "--dump-dom",
            url,
        ],
        capture_output=True,
        timeout=120,
        check=True,
    )
    return RenderedDocs(done.stdout.decode("utf-8", "replace"), done.stderr.decode("utf-8", "replace"))


def screenshot(url: str, profile: Path, target: Path) -> bytes:
    subprocess.run(
        [
            chromium(),
            *CHROMIUM_FLAGS,
            f"--user-data-dir={profile}",
            f"--host-resolver-rules={_offline_rules(url)}",
            "--window-size=1280,2000",
            f"--screenshot={target}",
            url,
        ],
        capture_output=True,
        timeout=120,
        check=True,
    )
    return target.read_bytes()
