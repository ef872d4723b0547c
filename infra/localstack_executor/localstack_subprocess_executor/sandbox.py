"""Parent side of the bootstrap protocol: one child Python process = one Lambda execution environment.

Stdlib only, so it can be tested without LocalStack. The LocalStack glue lives in `executor.py`.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import select
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from localstack_subprocess_executor.bootstrap import PROTOCOL_FDS_ENV, log_marker

BOOTSTRAP_PATH = Path(__file__).with_name("bootstrap.py")
# Lambda gives the init phase 10 s before it retries init inside the first invoke.
DEFAULT_INIT_TIMEOUT_S = 10.0
# How long we wait for the tail of the log stream once the answer is in (it is normally already there).
_LOG_TAIL_WAIT_S = 2.0
_MAX_PENDING_LOG_BYTES = 8 * 1024 * 1024
_MAX_HISTORY_CHARS = 256 * 1024

Status = Literal["ok", "error", "timeout", "crash", "init_error"]


class SandboxStoppedError(RuntimeError):
    """The environment was stopped; it takes no more invocations."""


class _ChildGoneError(Exception):
    """The child closed its protocol pipe (it exited or was killed)."""


@dataclass(frozen=True)
class SandboxConfig:
    interpreter: str
    env: Mapping[str, str]
    cwd: str
    timeout_s: float
    memory_mb: int = 128
    version: str = "$LATEST"
    runtime: str = "python3.13"
    init_timeout_s: float = DEFAULT_INIT_TIMEOUT_S


@dataclass(frozen=True)
class InvokeOutcome:
    request_id: str
    status: Status
    payload: bytes
    logs: str

    @property
    def is_error(self) -> bool:
        return self.status != "ok"


class _LogCollector:
    """Reads the child's stdout+stderr pipe on a thread; hands out the text invocation by invocation."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._buf = bytearray()
        self._eof = False
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._run, name=f"lambda-logs-{fd}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while True:
                try:
                    chunk = os.read(self._fd, 65536)
                except OSError:
                    chunk = b""
                with self._cond:
                    if not chunk:
                        self._eof = True
                        self._cond.notify_all()
                        return
                    self._buf += chunk
                    if len(self._buf) > _MAX_PENDING_LOG_BYTES:
                        # A runaway printer must not eat LocalStack's memory: keep the newest output.
                        del self._buf[: len(self._buf) - _MAX_PENDING_LOG_BYTES]
                    self._cond.notify_all()
        finally:
            os.close(self._fd)

    def take_until(self, marker: bytes, timeout_s: float) -> str:
        """Text before `marker` (consumed with it); everything so far if it does not come in time."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while True:
                index = self._buf.find(marker)
                if index >= 0:
                    text = bytes(self._buf[:index])
                    del self._buf[: index + len(marker)]
                    return text.decode("utf-8", "replace")
                remaining = deadline - time.monotonic()
                if self._eof or remaining <= 0:
                    return self._take_all_locked()
                self._cond.wait(remaining)

    def take_after_eof(self, timeout_s: float) -> str:
        """Everything up to the end of the stream (the child is gone), waiting at most `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while not self._eof and (remaining := deadline - time.monotonic()) > 0:
                self._cond.wait(remaining)
            return self._take_all_locked()

    def take_all(self) -> str:
        with self._cond:
            return self._take_all_locked()

    def peek(self) -> str:
        with self._cond:
            return bytes(self._buf).decode("utf-8", "replace")

    def _take_all_locked(self) -> str:
        text = bytes(self._buf).decode("utf-8", "replace")
        self._buf.clear()
        return text


class _LineReader:
    """Reads newline-terminated messages from a pipe with a deadline (poll, so any fd number works)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._buf = bytearray()
        self._poll = select.poll()
        self._poll.register(fd, select.POLLIN | select.POLLHUP | select.POLLERR)

    def read_line(self, deadline: float) -> bytes:
        while True:
            index = self._buf.find(b"\n")
            if index >= 0:
                line = bytes(self._buf[:index])
                del self._buf[: index + 1]
                return line
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError
            if not self._poll.poll(max(1, math.ceil(remaining * 1000))):
                continue
            chunk = os.read(self.fd, 65536)
            if not chunk:
                raise _ChildGoneError
            self._buf += chunk


def _write_all(fd: int, data: bytes, deadline: float) -> None:
    """Write to the non-blocking request pipe; a child that is still busy initialising may not read yet."""
    poller = select.poll()
    poller.register(fd, select.POLLOUT | select.POLLERR | select.POLLHUP)
    view = memoryview(data)
    while view:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError
        try:
            written = os.write(fd, view)
        except BlockingIOError:
            poller.poll(max(1, math.ceil(remaining * 1000)))
            continue
        except BrokenPipeError:
            raise _ChildGoneError from None
        view = view[written:]


@dataclass
class _Child:
    process: subprocess.Popen[bytes]
    request_fd: int
    responses: _LineReader
    logs: _LogCollector
    spawned_at: float
    # None while the init phase runs; then "ready" or Lambda's error body.
    init: str | dict[str, Any] | None = None
    init_duration_ms: float = 0.0
    init_reported: bool = False
    preamble: str = ""
    max_memory_mb: int = 0
    closed: bool = False

    def exit_status(self) -> int | None:
        """Exit code (negative: signal) without reaping, so the process group id stays ours to kill."""
        if self.process.returncode is not None:
            return self.process.returncode
        try:
            info = os.waitid(os.P_PID, self.process.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return self.process.poll()
        if info is None:
            return None
        return info.si_status if info.si_code == os.CLD_EXITED else -info.si_status

    def wait_exit_status(self, timeout_s: float) -> int | None:
        deadline = time.monotonic() + timeout_s
        while (status := self.exit_status()) is None and time.monotonic() < deadline:
            time.sleep(0.01)
        return status


def _signal_description(returncode: int) -> str:
    # Lambda reports exits the way Go's os/exec prints them.
    if returncode >= 0:
        return f"exit status {returncode}"
    names = {
        signal.SIGKILL: "killed",
        signal.SIGSEGV: "segmentation fault",
        signal.SIGABRT: "aborted",
        signal.SIGTERM: "terminated",
    }
    try:
        sig = signal.Signals(-returncode)
    except ValueError:
        return f"signal: {-returncode}"
    return f"signal: {names.get(sig, sig.name.lower())}"


def _max_memory_mb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return max(1, math.ceil(int(line.split()[1]) / 1024))
    except (OSError, ValueError, IndexError):
        pass
    return 0


class Sandbox:
    """A Lambda execution environment backed by one child process, restarted lazily after it dies."""

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self._invoke_lock = threading.Lock()
        self._state_lock = threading.Lock()
        self._child: _Child | None = None
        self._stopped = False
        self._history: deque[str] = deque()
        self._history_chars = 0

    # lifecycle

    def start(self) -> None:
        """Spawn the child and give its init phase up to `init_timeout_s` (errors surface on invoke)."""
        with self._invoke_lock:
            child = self._spawn()
            # On a slow or dead init the first invoke keeps waiting for (or reports) the outcome.
            with contextlib.suppress(TimeoutError, _ChildGoneError):
                self._await_init(child, time.monotonic() + self.config.init_timeout_s)

    def stop(self) -> None:
        """Kill the child; safe to call from another thread while an invocation is running."""
        with self._state_lock:
            self._stopped = True
            child, self._child = self._child, None
        if child is not None:
            self._kill(child)

    @property
    def pid(self) -> int | None:
        child = self._child
        return child.process.pid if child is not None else None

    def recent_logs(self) -> str:
        child = self._child
        pending = child.preamble + child.logs.peek() if child is not None else ""
        return "".join(self._history) + pending

    # invocation

    def invoke(
        self, request_id: str, payload: str, invoked_function_arn: str = "", trace_id: str | None = None
    ) -> InvokeOutcome:
        with self._invoke_lock:
            outcome = self._invoke_locked(request_id, payload, invoked_function_arn, trace_id)
        self._remember(outcome.logs)
        return outcome

    def _invoke_locked(
        self, request_id: str, payload: str, invoked_function_arn: str, trace_id: str | None
    ) -> InvokeOutcome:
        timeout_s = self.config.timeout_s
        started = time.monotonic()
        deadline = started + timeout_s
        deadline_ms = int(time.time() * 1000 + timeout_s * 1000)
        child = self._child
        if child is not None and child.init == "ready" and child.exit_status() is not None:
            # Died between invocations (e.g. a background thread called os._exit): start afresh.
            self._discard(child)
            child = None
        if child is None:
            child = self._spawn()  # init now counts against this invocation, as Lambda's suppressed init
        preamble: str | None = None  # taken when the request goes out; later output is the handler's
        try:
            if child.init is None:
                self._await_init(child, deadline)
            if isinstance(child.init, dict):
                return self._init_error_outcome(child, request_id, started)
            message = {
                "type": "invoke",
                "request_id": request_id,
                "invoked_function_arn": invoked_function_arn,
                "payload": payload,
                "deadline_ms": deadline_ms,
                "trace_id": trace_id,
            }
            preamble = self._take_preamble(child)
            _write_all(child.request_fd, json.dumps(message).encode("utf-8") + b"\n", deadline)
            answer = json.loads(child.responses.read_line(deadline))
        except TimeoutError:
            return self._timeout_outcome(child, preamble, request_id, started)
        except _ChildGoneError:
            return self._crash_outcome(child, preamble, request_id, started)
        handler_logs = child.logs.take_until(log_marker(request_id), _LOG_TAIL_WAIT_S)
        child.max_memory_mb = max(child.max_memory_mb, _max_memory_mb(child.process.pid))
        if answer.get("type") == "result":
            body = str(answer.get("payload", "null")).encode("utf-8")
            logs = self._compose(child, preamble, request_id, started, handler_logs)
            return InvokeOutcome(request_id, "ok", body, logs)
        error = answer.get("error") or {}
        body = json.dumps(error).encode("utf-8")
        logs = self._compose(child, preamble, request_id, started, handler_logs)
        return InvokeOutcome(request_id, "error", body, logs)

    # outcomes

    def _init_error_outcome(self, child: _Child, request_id: str, started: float) -> InvokeOutcome:
        error = child.init if isinstance(child.init, dict) else {}
        error_type = str(error.get("errorType", "Runtime.Unknown"))
        preamble = self._take_preamble(child)
        preamble += (
            f"INIT_REPORT Init Duration: {child.init_duration_ms:.2f} ms\tPhase: init\tStatus: error"
            f"\tError Type: {error_type}\n"
        )
        child.init_reported = True  # the INIT_REPORT line already carries it
        # Lambda retries the init on the next invoke: drop this child so a fresh one is spawned.
        self._discard(child)
        logs = self._compose(
            child, preamble, request_id, started, "", status=f"error\tError Type: {error_type}"
        )
        return InvokeOutcome(request_id, "init_error", json.dumps(error).encode("utf-8"), logs)

    def _timeout_outcome(
        self, child: _Child, preamble: str | None, request_id: str, started: float
    ) -> InvokeOutcome:
        timeout_s = self.config.timeout_s
        child.max_memory_mb = max(child.max_memory_mb, _max_memory_mb(child.process.pid))
        if preamble is None:
            preamble = self._take_preamble(child)
        self._discard(child)
        handler_logs = child.logs.take_after_eof(_LOG_TAIL_WAIT_S)
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        handler_logs = (
            _with_newline(handler_logs)
            + f"{stamp} {request_id} Task timed out after {timeout_s:.2f} seconds\n"
        )
        body = {
            "errorType": "Sandbox.Timedout",
            "errorMessage": f"RequestId: {request_id} Error: Task timed out after {timeout_s:.2f} seconds",
        }
        logs = self._compose(child, preamble, request_id, started, handler_logs, status="timeout")
        return InvokeOutcome(request_id, "timeout", json.dumps(body).encode("utf-8"), logs)

    def _crash_outcome(
        self, child: _Child, preamble: str | None, request_id: str, started: float
    ) -> InvokeOutcome:
        if preamble is None:
            preamble = self._take_preamble(child)
        returncode = child.wait_exit_status(_LOG_TAIL_WAIT_S)
        if returncode is None:
            returncode = -signal.SIGKILL  # closed its pipe but hangs on: we kill it below
        self._discard(child)
        handler_logs = child.logs.take_after_eof(_LOG_TAIL_WAIT_S)
        if returncode == 0:
            reason = f"RequestId: {request_id} Error: Runtime exited without providing a reason"
        else:
            reason = (
                f"RequestId: {request_id} Error: Runtime exited with error: {_signal_description(returncode)}"
            )
        handler_logs = _with_newline(handler_logs) + f"{reason}\nRuntime.ExitError\n"
        body = {"errorType": "Runtime.ExitError", "errorMessage": reason}
        logs = self._compose(
            child, preamble, request_id, started, handler_logs, status="error\tError Type: Runtime.ExitError"
        )
        return InvokeOutcome(request_id, "crash", json.dumps(body).encode("utf-8"), logs)

    def _compose(
        self,
        child: _Child,
        preamble: str,
        request_id: str,
        started: float,
        handler_logs: str,
        status: str | None = None,
    ) -> str:
        duration_ms = (time.monotonic() - started) * 1000
        report = (
            f"REPORT RequestId: {request_id}\tDuration: {duration_ms:.2f} ms"
            f"\tBilled Duration: {max(1, math.ceil(duration_ms))} ms"
            f"\tMemory Size: {self.config.memory_mb} MB\tMax Memory Used: {child.max_memory_mb} MB"
        )
        if child.init == "ready" and not child.init_reported:
            report += f"\tInit Duration: {child.init_duration_ms:.2f} ms"
            child.init_reported = True
        if status:
            report += f"\tStatus: {status}"
        return (
            f"{_with_newline(preamble)}"
            f"START RequestId: {request_id} Version: {self.config.version}\n"
            f"{_with_newline(handler_logs)}"
            f"END RequestId: {request_id}\n"
            f"{report}\n"
        )

    # child management

    def _spawn(self) -> _Child:
        with self._state_lock:
            if self._stopped:
                raise SandboxStoppedError("execution environment was stopped")
            request_read, request_write = os.pipe()
            response_read, response_write = os.pipe()
            log_read, log_write = os.pipe()
            env = dict(self.config.env)
            env[PROTOCOL_FDS_ENV] = f"{request_read},{response_write}"
            try:
                process = subprocess.Popen(  # noqa: S603 - interpreter path comes from the operator's config
                    [self.config.interpreter, "-u", str(BOOTSTRAP_PATH)],
                    stdin=subprocess.DEVNULL,
                    stdout=log_write,
                    stderr=log_write,
                    pass_fds=(request_read, response_write),
                    env=env,
                    cwd=self.config.cwd,
                    # Own process group: a timeout kills the handler and anything it spawned.
                    start_new_session=True,
                )
            except BaseException:
                for fd in (request_read, request_write, response_read, response_write, log_read, log_write):
                    os.close(fd)
                raise
            for fd in (request_read, response_write, log_write):
                os.close(fd)
            os.set_blocking(request_write, False)
            runtime_version = self.config.runtime.replace("python", "python:")
            child = _Child(
                process=process,
                request_fd=request_write,
                responses=_LineReader(response_read),
                logs=_LogCollector(log_read),
                spawned_at=time.monotonic(),
                preamble=f"INIT_START Runtime Version: {runtime_version}.local\tRuntime Version ARN: local\n",
            )
            self._child = child
            return child

    def _await_init(self, child: _Child, deadline: float) -> None:
        message = json.loads(child.responses.read_line(deadline))
        child.init_duration_ms = (time.monotonic() - child.spawned_at) * 1000
        child.preamble += child.logs.take_until(log_marker("init"), _LOG_TAIL_WAIT_S)
        child.max_memory_mb = _max_memory_mb(child.process.pid)
        child.init = "ready" if message.get("type") == "ready" else dict(message.get("error") or {})

    @staticmethod
    def _take_preamble(child: _Child) -> str:
        # Init output (first invocation only) plus anything printed between invocations.
        preamble = child.preamble + child.logs.take_all()
        child.preamble = ""
        return preamble

    def _discard(self, child: _Child) -> None:
        with self._state_lock:
            if self._child is child:
                self._child = None
        self._kill(child)

    @staticmethod
    def _kill(child: _Child) -> None:
        if child.closed:
            return
        child.closed = True
        with contextlib.suppress(OSError):
            os.close(child.request_fd)
        # Lambda's Python runtime gets no graceful shutdown either. Only signal the group while the
        # leader is unreaped: then its pid (= group id) cannot have been reused.
        if child.process.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(child.process.pid, signal.SIGKILL)  # also ends whatever the handler spawned
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.process.wait(timeout=5.0)
        with contextlib.suppress(OSError):
            os.close(child.responses.fd)

    def _remember(self, logs: str) -> None:
        with self._state_lock:
            self._history.append(logs)
            self._history_chars += len(logs)
            while self._history_chars > _MAX_HISTORY_CHARS and len(self._history) > 1:
                self._history_chars -= len(self._history.popleft())


def _with_newline(text: str) -> str:
    return text if not text or text.endswith("\n") else text + "\n"
