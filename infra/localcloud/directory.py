"""Local stand-in for the 116117 directory on 127.0.0.1:${DIRECTORY_PORT:-8117}
(localcloud/directory_server.py), started and stopped by PID like the other local servers.

Point the scraper at it with DIRECTORY_BASE_URL=`url()`. Its dataset comes from
`localcloud.directory_data` (a file given to `start(data=...)`, or generated at start), and the
control helpers below script faults (429, 5xx, slow or broken answers), set robots.txt, swap
the dataset and read the request log.
"""

from __future__ import annotations

import json
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import localcloud
from localcloud.paths import service_dir
from localcloud.process import start_daemon, stop_daemon

SERVICE = "directory"
DEFAULT_PORT = 8117
HOST = "127.0.0.1"


def port() -> int:
    return int(os.environ.get("DIRECTORY_PORT", str(DEFAULT_PORT)))


def url() -> str:
    return f"http://{HOST}:{port()}"


def _call(method: str, path: str, body: bytes | None = None, *, timeout_s: float = 5.0) -> Any:
    request = urllib.request.Request(f"{url()}{path}", data=body, method=method)  # noqa: S310 - loopback only
    with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310
        return json.loads(response.read() or b"null")


def is_healthy(timeout_s: float = 2.0) -> bool:
    try:
        return bool(_call("GET", "/_control/health", timeout_s=timeout_s).get("status") == "ok")
    except (OSError, urllib.error.URLError, ValueError):
        return False


# `localcloud up`: a Berlin directory (postcodes 10xxx), where the demo's patients live.
DEFAULT_PREFIXES = ("10",)
DEFAULT_ENTRIES = 400
DEFAULT_SEED = 116117


def start(
    *,
    data: Path | None = None,
    entries: int = DEFAULT_ENTRIES,
    seed: int = DEFAULT_SEED,
    prefixes: tuple[str, ...] = DEFAULT_PREFIXES,
    timeout_s: float = 30.0,
) -> None:
    """Start the server as a separate Python process. A no-op when ours is already healthy."""
    infra_dir = Path(localcloud.__file__).resolve().parents[1]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(infra_dir), env.get("PYTHONPATH", "")) if p)
    env["PYTHONUNBUFFERED"] = "1"
    argv = [sys.executable, "-m", "localcloud.directory_server", "--host", HOST, "--port", str(port())]
    argv += (
        ["--data", str(data)]
        if data is not None
        else ["--entries", str(entries), "--seed", str(seed), "--prefixes", ",".join(prefixes)]
    )
    start_daemon(SERVICE, argv, env=env, cwd=service_dir(SERVICE), healthy=is_healthy, timeout_s=timeout_s)


def stop() -> bool:
    """Stop the server. False if it was not running."""
    return stop_daemon(SERVICE)


# ---------------------------------------------------------------------------------------------
# Control (tests, demo)
# ---------------------------------------------------------------------------------------------


def load_dataset(dataset: dict[str, Any]) -> None:
    _call("POST", "/_control/data", json.dumps(dataset, ensure_ascii=False).encode("utf-8"), timeout_s=60)


def load_default_dataset() -> None:
    """Back to what `localcloud up` serves (tests that load their own data restore this)."""
    from localcloud.directory_data import DirectoryDataGenerator

    load_dataset(
        DirectoryDataGenerator(DEFAULT_SEED, prefixes=list(DEFAULT_PREFIXES)).dataset(DEFAULT_ENTRIES)
    )


def add_faults(*faults: dict[str, Any]) -> None:
    """E.g. `{"status": 429, "retry_after": "1"}`, `{"status": 503}`, `{"delay": 3}`,
    `{"status": 200, "body": "<html>"}`, `{"status": 302, "headers": {"Location": "..."}}`;
    optional `path` (prefix) and `times`."""
    _call("POST", "/_control/faults", json.dumps(list(faults)).encode("utf-8"))


def set_robots(text: str) -> None:
    _call("POST", "/_control/robots", text.encode("utf-8"))


def requests_log() -> list[dict[str, Any]]:
    return list(_call("GET", "/_control/requests"))


def reset() -> None:
    _call("POST", "/_control/reset", b"")
