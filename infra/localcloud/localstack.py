"""LocalStack on the host, without Docker: install into its own virtualenv, start, stop, health.

LocalStack needs a few dependency pins of its own, so it lives in `.state/localstack-venv`,
apart from the project's venv. Lambda functions run through the project's `subprocess` runtime
executor plugin (infra/localstack_executor) in `.state/lambda-runtime-python3.13`, a Python 3.13
venv holding only what Lambda's Python runtime ships (boto3).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from localcloud.paths import PROJECT_ROOT, STATE_DIR, service_dir
from localcloud.process import DaemonInfo, read_pid, start_daemon, stop_daemon

NAME = "localstack"
SERVICE = NAME  # the attribute name the other localcloud service modules use
LOCALSTACK_VERSION = "2026.3.0"
# Newer releases of these break LocalStack's start-up on this machine (see docs/local-cloud.md).
LOCALSTACK_PINS = ("cbor2<6", "pyopenssl<25", "cryptography<45", "service_identity")
LAMBDA_RUNTIME = "python3.13"
# What Lambda's python3.13 runtime bundles; keep in step with the project's boto3 pin.
LAMBDA_RUNTIME_PACKAGES = ("boto3==1.44.5",)

LOCALSTACK_VENV = STATE_DIR / "localstack-venv"
# One per runtime: a checkout on another runtime sharing this state never swaps the interpreter.
LAMBDA_RUNTIME_VENV = STATE_DIR / f"lambda-runtime-{LAMBDA_RUNTIME}"
EXECUTOR_SOURCE = PROJECT_ROOT / "infra" / "localstack_executor"
_STAMP = ".localcloud-install.json"
_BUILD_LEFTOVERS = shutil.ignore_patterns("build", "dist", "*.egg-info", "__pycache__", "*.pyc")
_PYENV_313 = Path("/root/.pyenv/versions/3.13.0/bin/python")
DEFAULT_PORT = 4566
# Environments idle this long are stopped; each one is a Python process holding the function's imports.
DEFAULT_KEEPALIVE_MS = 300_000
# Opt-in (LOCALCLOUD_THROUGHPUT_SETTINGS=1 when LocalStack starts; a running LocalStack keeps
# what it started with): how the emulator moves events. Measured in docs/events.md (the bus leg
# alone about doubles); not the default until the e2e suite has run on it.
# - IN_MEMORY_CLIENT: LocalStack's own service-to-service calls (a bus rule's SendMessage to each
#   target queue, the SQS poller's ReceiveMessage/DeleteMessageBatch, the gateway's Lambda
#   invocations, per-invocation CloudWatch metrics) stay in the process instead of each being an
#   HTTP request to its own gateway;
# - the SQS -> Lambda poller sleeps LAMBDA_EVENT_SOURCE_MAPPING_POLL_INTERVAL_SEC (default 1 s)
#   after every batch, which caps a mapping at one batch per second plus the invocation (AWS's
#   pollers do not wait); after an empty poll it backs off up to ..._MAX_BACKOFF_ON_EMPTY_POLL_SEC
#   (default 10 s), which delays the first batch after a quiet spell by up to that.
THROUGHPUT_SETTINGS: dict[str, str] = {
    "IN_MEMORY_CLIENT": "1",
    "LAMBDA_EVENT_SOURCE_MAPPING_POLL_INTERVAL_SEC": "0.1",
    "LAMBDA_EVENT_SOURCE_MAPPING_MAX_BACKOFF_ON_EMPTY_POLL_SEC": "2",
}


def throughput_settings() -> dict[str, str]:
    return dict(THROUGHPUT_SETTINGS) if os.environ.get("LOCALCLOUD_THROUGHPUT_SETTINGS") == "1" else {}


class LocalStackInstallError(RuntimeError):
    """A virtualenv for LocalStack or the Lambda runtime could not be prepared."""


def port() -> int:
    return int(os.environ.get("LOCALSTACK_PORT", DEFAULT_PORT))


def endpoint_url() -> str:
    return f"http://127.0.0.1:{port()}"


def venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


# install


def _python_version(executable: str | Path) -> str | None:
    """`X.Y` of an interpreter, or None if it does not run (pyenv shims exist for versions not selected)."""
    try:
        result = subprocess.run(  # noqa: S603 - a local interpreter path
            [str(executable), "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def _find_python(version: str, preferred: list[Path]) -> Path:
    candidates = [*preferred]
    on_path = shutil.which(f"python{version}")
    if on_path:
        candidates.append(Path(on_path))
    candidates.append(Path(sys.executable))
    for candidate in candidates:
        if candidate.exists() and _python_version(candidate) == version:
            return candidate
    raise LocalStackInstallError(
        f"Python {version} is needed but none was found (tried {', '.join(map(str, candidates))})."
    )


def _executor_digest() -> str:
    digest = hashlib.sha256()
    for path in sorted(EXECUTOR_SOURCE.rglob("*")):
        relative = path.relative_to(EXECUTOR_SOURCE)
        if path.is_file() and not any(_BUILD_LEFTOVERS(str(path.parent), list(relative.parts))):
            digest.update(str(relative).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def _inputs_hash(base_python: Path, requirements: list[str], extra: str = "") -> str:
    payload = json.dumps({"python": str(base_python), "requirements": requirements, "extra": extra})
    return hashlib.sha256(payload.encode()).hexdigest()


def _up_to_date(venv: Path, inputs: str) -> bool:
    stamp = venv / _STAMP
    if not stamp.exists() or not venv_python(venv).exists():
        return False
    try:
        return bool(json.loads(stamp.read_text()).get("inputs") == inputs)
    except ValueError:
        return False


def _run(argv: list[str], log: Path) -> None:
    with open(log, "ab") as out:
        result = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, check=False)  # noqa: S603
    if result.returncode != 0:
        raise LocalStackInstallError(f"{' '.join(argv[:4])} ... failed (exit {result.returncode}); see {log}")


def _ensure_venv(venv: Path, base_python: Path, version: str, log: Path) -> Path:
    python = venv_python(venv)
    if python.exists() and _python_version(python) != version:
        shutil.rmtree(venv)  # made by another interpreter: rebuild rather than mix site-packages
    if not python.exists():
        _run([str(base_python), "-m", "venv", str(venv)], log)
    return python


def install(*, force: bool = False) -> None:
    """Create/refresh both virtualenvs. Cheap when nothing changed (a stamp holds a hash of the inputs)."""
    log_dir = STATE_DIR / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    log = log_dir / "localstack-install.log"

    base_313 = _find_python("3.13", [_PYENV_313])
    # The bare distribution is only the CLI: the emulator itself needs the `runtime` extra.
    requirements = [f"localstack-core[runtime]=={LOCALSTACK_VERSION}", *LOCALSTACK_PINS]
    inputs = _inputs_hash(base_313, requirements, _executor_digest())
    if force or not _up_to_date(LOCALSTACK_VENV, inputs):
        python = _ensure_venv(LOCALSTACK_VENV, base_313, "3.13", log)
        _run([str(python), "-m", "pip", "install", "--quiet", *requirements], log)
        # Non-editable, and reinstalled whenever its source changed (same version number every time).
        # Built from a copy: setuptools would leave build/ and *.egg-info in the source tree.
        with tempfile.TemporaryDirectory(prefix="localstack-executor-") as tmp:
            source = Path(tmp) / "src"
            shutil.copytree(EXECUTOR_SOURCE, source, ignore=_BUILD_LEFTOVERS)
            pip = [str(python), "-m", "pip", "install", "--quiet", "--no-deps", "--force-reinstall"]
            _run([*pip, str(source)], log)
        (LOCALSTACK_VENV / _STAMP).write_text(json.dumps({"inputs": inputs}))

    runtime_version = LAMBDA_RUNTIME.removeprefix("python")
    base_runtime = _find_python(runtime_version, [])
    runtime_inputs = _inputs_hash(base_runtime, list(LAMBDA_RUNTIME_PACKAGES))
    if force or not _up_to_date(LAMBDA_RUNTIME_VENV, runtime_inputs):
        python = _ensure_venv(LAMBDA_RUNTIME_VENV, base_runtime, runtime_version, log)
        _run([str(python), "-m", "pip", "install", "--quiet", *LAMBDA_RUNTIME_PACKAGES], log)
        (LAMBDA_RUNTIME_VENV / _STAMP).write_text(json.dumps({"inputs": runtime_inputs}))


# run


def is_healthy() -> bool:
    try:
        with urllib.request.urlopen(f"{endpoint_url()}/_localstack/health", timeout=2) as response:  # noqa: S310
            body = json.loads(response.read() or b"{}")
            return response.status == 200 and isinstance(body.get("services"), dict)
    except (OSError, ValueError, urllib.error.URLError):
        return False


def daemon_env() -> dict[str, str]:
    state = service_dir(NAME)
    tmp = state / "tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.update(
        {
            # The sandbox looks like a container to LocalStack; it must act as a host process.
            "OVERRIDE_IN_DOCKER": "0",
            "GATEWAY_LISTEN": f"127.0.0.1:{port()}",
            # The default server (twisted) binds 0.0.0.0 whatever GATEWAY_LISTEN says; hypercorn doesn't.
            "GATEWAY_SERVER": "hypercorn",
            "FILESYSTEM_ROOT": str(state / "filesystem"),
            "LOCALSTACK_VOLUME_DIR": str(state / "volume"),
            # LocalStack's DNS server would bind 0.0.0.0:53; nothing here needs it.
            "DNS_ADDRESS": "0",
            # Unzipped function code lands under TMPDIR/lambda: keep it inside .state.
            "TMPDIR": str(tmp),
            # URLs LocalStack hands out (queue URLs, API URLs) must resolve here: no *.localstack.cloud DNS.
            "LOCALSTACK_HOST": f"127.0.0.1:{port()}",
            "SQS_ENDPOINT_STRATEGY": "path",
            # Queue depths reach CloudWatch (and the dead-letter alarms) within seconds, not a minute.
            "SQS_CLOUDWATCH_METRICS_REPORT_INTERVAL": "10",
            # No usage analytics: this machine has no route to the internet anyway.
            "DISABLE_EVENTS": "1",
            "LAMBDA_RUNTIME_EXECUTOR": "subprocess",
            "SUBPROCESS_EXECUTOR_PYTHONS": json.dumps(
                {LAMBDA_RUNTIME: str(venv_python(LAMBDA_RUNTIME_VENV))}
            ),
            "LAMBDA_KEEPALIVE_MS": os.environ.get("LAMBDA_KEEPALIVE_MS", str(DEFAULT_KEEPALIVE_MS)),
            **throughput_settings(),
        }
    )
    # The caller's AWS settings are for clients, not for the emulator itself.
    for key in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        env.pop(key, None)
    return env


def _started_with() -> Path:
    """What the running LocalStack was started with (the install stamp's inputs)."""
    return service_dir(NAME) / "started-with.json"


def start(*, timeout_s: float = 90.0) -> DaemonInfo:
    """Start LocalStack on 127.0.0.1 (idempotent); installs first if needed. A LocalStack running
    from an older install (the project's plugin changed since, or it predates this record) is
    restarted: the running process would keep the old plugin code. `up` deploys the stack again."""
    install()
    installed = (LOCALSTACK_VENV / _STAMP).read_text() if (LOCALSTACK_VENV / _STAMP).exists() else ""
    marker = _started_with()
    if is_running() and (not marker.exists() or marker.read_text() != installed):
        stop()
    info = start_daemon(
        NAME,
        [str(venv_python(LOCALSTACK_VENV)), "-m", "localstack.runtime.main"],
        env=daemon_env(),
        cwd=service_dir(NAME),
        healthy=is_healthy,
        timeout_s=timeout_s,
    )
    marker.write_text(installed)
    return info


def stop() -> bool:
    """Stop LocalStack if we started it. Lambda children run in their own sessions, but each exits by
    itself once its request pipe from LocalStack closes (after a running invocation finishes)."""
    return stop_daemon(NAME)


def is_running() -> bool:
    return read_pid(NAME) is not None
