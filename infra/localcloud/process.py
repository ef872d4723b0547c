"""Start background servers with a PID file and a log file; stop them by their PID.

Every local server (LocalStack, PostgreSQL, Tansu, SMTP) is started through `start_daemon`
so that `down` can stop exactly the processes the project started, and nothing else.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from localcloud.paths import LOG_DIR, PID_DIR


class ServiceStartError(RuntimeError):
    """A local server did not become healthy in time."""


@dataclass(frozen=True)
class DaemonInfo:
    name: str
    pid: int
    log_file: Path


def pid_file(name: str) -> Path:
    return PID_DIR / f"{name}.pid"


def log_file(name: str) -> Path:
    return LOG_DIR / f"{name}.log"


def read_pid(name: str) -> int | None:
    """PID of a running server started by us, or None (stale PID files are removed)."""
    path = pid_file(name)
    if not path.exists():
        return None
    try:
        pid = int(path.read_text().strip())
    except ValueError:
        path.unlink(missing_ok=True)
        return None
    if not is_alive(pid):
        path.unlink(missing_ok=True)
        return None
    return pid


def is_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child still answers kill(0); treat it as gone.
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split()[2] != "Z"
    except OSError:
        return True


def start_daemon(
    name: str,
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    healthy: Callable[[], bool],
    timeout_s: float = 60.0,
) -> DaemonInfo:
    """Start `argv` detached (own session), record its PID, wait until `healthy()` is true.

    Idempotent: if the server is already running and healthy, nothing is started.
    """
    PID_DIR.mkdir(parents=True, exist_ok=True)
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    existing = read_pid(name)
    if existing is not None and healthy():
        return DaemonInfo(name, existing, log_file(name))
    if existing is not None:
        stop_daemon(name)
    log_path = log_file(name)
    with open(log_path, "ab") as log:
        process = subprocess.Popen(  # noqa: S603 - argv is built by the project, never from user input
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=dict(env) if env is not None else None,
            start_new_session=True,
        )
    pid_file(name).write_text(str(process.pid))
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pid_file(name).unlink(missing_ok=True)
            raise ServiceStartError(
                f"{name} exited with code {process.returncode} during start-up; see {log_path}"
            )
        if healthy():
            return DaemonInfo(name, process.pid, log_path)
        time.sleep(0.2)
    stop_daemon(name)
    raise ServiceStartError(f"{name} was not healthy after {timeout_s:.0f} s; see {log_path}")


def stop_daemon(name: str, *, grace_s: float = 10.0) -> bool:
    """Stop a server by the PID we recorded: SIGTERM to its process group, then SIGKILL."""
    pid = read_pid(name)
    if pid is None:
        return False
    for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline and is_alive(pid):
            time.sleep(0.1)
        if not is_alive(pid):
            break
    pid_file(name).unlink(missing_ok=True)
    return True
