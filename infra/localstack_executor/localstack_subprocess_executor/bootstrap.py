"""Lambda-like Python runtime that runs inside the function's child process (stdlib only).

Started by the executor as `python -u bootstrap.py` with the function's environment. It imports the
handler once (the init phase), then serves invocations one at a time over a private pipe pair whose
file descriptors arrive in `PROTOCOL_FDS_ENV`. stdout/stderr stay free for the handler: whatever it
prints becomes the function's log output.

Protocol (one JSON document per line):
  child -> parent, once:   {"type": "ready"} or {"type": "init_error", "error": {...}}
  parent -> child:         {"type": "invoke", "request_id", "invoked_function_arn", "payload",
                            "deadline_ms", "trace_id"}
  child -> parent:         {"type": "result", "payload": "<json>"} or {"type": "error", "error": {...}}
Before each answer the child writes `log_marker(request_id)` to stdout, so the parent can cut the
log stream exactly at the end of that invocation.

This file must stay importable by every Python the functions may use (3.9+): no newer syntax.
"""

from __future__ import annotations

import contextlib
import decimal
import importlib
import json
import logging
import os
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any, BinaryIO

PROTOCOL_FDS_ENV = "_LSX_PROTOCOL_FDS"
_MARKER_PREFIX = b"\x00\x1e__lsx_invocation_end__:"


def log_marker(request_id: str) -> bytes:
    """Bytes written to stdout after an invocation's output; never valid text a handler would print."""
    return _MARKER_PREFIX + request_id.encode("utf-8", "replace") + b"\x1e\x00"


class LambdaContext:
    """The subset of the Lambda Python context object that handlers and Powertools use."""

    def __init__(self, request_id: str, invoked_function_arn: str, deadline_ms: int) -> None:
        self.aws_request_id = request_id
        self.invoked_function_arn = invoked_function_arn
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "")
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        # Lambda's runtime hands this through from the environment as a string; keep that parity.
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME", "")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME", "")
        self.identity = None
        self.client_context = None
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self._deadline_ms - int(time.time() * 1000))

    def __repr__(self) -> str:
        return (
            f"LambdaContext(aws_request_id={self.aws_request_id!r}, function_name={self.function_name!r}, "
            f"invoked_function_arn={self.invoked_function_arn!r})"
        )


class FaultError(Exception):
    """An error of the runtime itself (bad handler, import failure), reported with Lambda's error types."""

    def __init__(self, error_type: str, message: str, stack_trace: list[str] | None = None) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message
        self.stack_trace = stack_trace or []


class _RequestIdFilter(logging.Filter):
    """Adds the current request id to log records, like the Lambda runtime's root handler does."""

    request_id = ""

    def filter(self, record: logging.LogRecord) -> bool:
        record.aws_request_id = _RequestIdFilter.request_id
        return True


def _install_root_logging() -> None:
    # Lambda pre-installs a root handler, so `logging.getLogger().warning(...)` reaches the logs and a
    # later `logging.basicConfig()` in user code is a no-op there too.
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(
        logging.Formatter(
            "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s",
            "%Y-%m-%dT%H:%M:%S",
        )
    )
    handler.formatter.converter = time.gmtime  # type: ignore[union-attr]
    handler.addFilter(_RequestIdFilter())
    logging.getLogger().addHandler(handler)


def _user_stack(tb: Any) -> list[str]:
    # Lambda's stack traces show user code only: drop this runner's and importlib's frames.
    own_file = os.path.abspath(__file__)
    frames = [
        frame
        for frame in traceback.extract_tb(tb)
        if not frame.filename.startswith("<frozen ") and os.path.abspath(frame.filename) != own_file
    ]
    return traceback.format_list(frames)


def load_handler(handler_spec: str) -> Callable[[Any, LambdaContext], Any]:
    """Import `module.function` (module may use `/` for folders) with Lambda's init error types."""
    try:
        module_name, function_name = handler_spec.rsplit(".", 1)
    except ValueError as exc:
        raise FaultError("Runtime.MalformedHandlerName", f"Bad handler '{handler_spec}': {exc}") from None
    module_name = module_name.replace("/", ".")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise FaultError(
            "Runtime.ImportModuleError", f"Unable to import module '{module_name}': {exc}"
        ) from None
    except SyntaxError as exc:
        trace = [f'  File "{exc.filename}" Line {exc.lineno}\n    {exc.text}']
        raise FaultError(
            "Runtime.UserCodeSyntaxError", f"Syntax error in module '{module_name}': {exc}", trace
        ) from None
    handler = getattr(module, function_name, None)
    if handler is None or not callable(handler):
        raise FaultError(
            "Runtime.HandlerNotFound", f"Handler '{function_name}' missing on module '{module_name}'"
        )
    return handler  # type: ignore[no-any-return]


def _error_body(error_type: str, message: str, request_id: str, stack_trace: list[str]) -> dict[str, Any]:
    return {
        "errorMessage": message,
        "errorType": error_type,
        "requestId": request_id,
        "stackTrace": stack_trace,
    }


def _log_error(error_type: str, message: str, stack_trace: list[str]) -> None:
    # Same shape as the Lambda runtime's "[ERROR] Type: message" log entry for uncaught errors.
    text = f"[ERROR] {error_type}: {message}\nTraceback (most recent call last):\n" + "".join(stack_trace)
    sys.stderr.write(text if text.endswith("\n") else text + "\n")


def _json_default(value: Any) -> Any:
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _send(stream: BinaryIO, message: dict[str, Any]) -> None:
    stream.write(json.dumps(message).encode("utf-8") + b"\n")
    stream.flush()


def _flush_logs(request_id: str) -> None:
    # Handler output must be on the pipe before the marker, or it would land in the next invocation.
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    with contextlib.suppress(OSError):
        os.write(1, log_marker(request_id))


def _invoke(handler: Callable[[Any, LambdaContext], Any], request: dict[str, Any]) -> dict[str, Any]:
    request_id = str(request["request_id"])
    if request.get("trace_id"):
        os.environ["_X_AMZN_TRACE_ID"] = str(request["trace_id"])
    else:
        os.environ.pop("_X_AMZN_TRACE_ID", None)
    _RequestIdFilter.request_id = request_id
    context = LambdaContext(
        request_id, str(request.get("invoked_function_arn", "")), int(request["deadline_ms"])
    )
    try:
        event = json.loads(request.get("payload") or "null")
    except ValueError as exc:
        error = _error_body("Runtime.UnmarshalError", f"Unable to unmarshal input: {exc}", request_id, [])
        _log_error(error["errorType"], error["errorMessage"], [])
        return {"type": "error", "error": error}
    try:
        result = handler(event, context)
    except Exception as exc:
        stack = _user_stack(exc.__traceback__)
        error = _error_body(type(exc).__name__, str(exc), request_id, stack)
        _log_error(error["errorType"], error["errorMessage"], stack)
        return {"type": "error", "error": error}
    try:
        body = json.dumps(result, default=_json_default)
    except (TypeError, ValueError) as exc:
        error = _error_body("Runtime.MarshalError", f"Unable to marshal response: {exc}", request_id, [])
        _log_error(error["errorType"], error["errorMessage"], [])
        return {"type": "error", "error": error}
    return {"type": "result", "payload": body}


def main() -> int:
    # Running as a script puts this package's folder first on sys.path; user code must not see it.
    own_dir = os.path.dirname(os.path.abspath(__file__))
    if sys.path and os.path.abspath(sys.path[0] or ".") == own_dir:
        sys.path.pop(0)
    # The Lambda runtime always imports from the task root, whatever PYTHONPATH says.
    task_root = os.environ.get("LAMBDA_TASK_ROOT")
    if task_root and task_root not in sys.path:
        sys.path.insert(0, task_root)
    fds = os.environ.pop(PROTOCOL_FDS_ENV, "")
    try:
        read_fd, write_fd = (int(part) for part in fds.split(","))
    except ValueError:
        sys.stderr.write(f"bootstrap: {PROTOCOL_FDS_ENV} must be '<read_fd>,<write_fd>'\n")
        return 2
    # Keep the protocol pipes away from processes the handler may spawn.
    os.set_inheritable(read_fd, False)
    os.set_inheritable(write_fd, False)
    requests = os.fdopen(read_fd, "rb")
    responses = os.fdopen(write_fd, "wb")

    _install_root_logging()
    try:
        handler = load_handler(os.environ.get("_HANDLER", ""))
    except FaultError as fault:
        _log_error(fault.error_type, fault.message, fault.stack_trace)
        _flush_logs("init")
        error = _error_body(fault.error_type, fault.message, "", fault.stack_trace)
        _send(responses, {"type": "init_error", "error": error})
        return 0
    except Exception as exc:
        # Any other exception while importing user code: Lambda reports it under its own type.
        stack = _user_stack(exc.__traceback__)
        _log_error(type(exc).__name__, str(exc), stack)
        _flush_logs("init")
        error = _error_body(type(exc).__name__, str(exc), "", stack)
        _send(responses, {"type": "init_error", "error": error})
        return 0
    _flush_logs("init")
    _send(responses, {"type": "ready"})

    while True:
        line = requests.readline()
        if not line:
            return 0  # parent closed the pipe: the environment is being shut down
        request = json.loads(line)
        answer = _invoke(handler, request)
        _flush_logs(str(request["request_id"]))
        _send(responses, answer)


if __name__ == "__main__":
    sys.exit(main())
