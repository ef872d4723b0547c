"""The subprocess runtime without LocalStack: bootstrap protocol and the parent-side sandbox."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

# Loaded from infra/localstack_executor (see conftest.py); outside mypy_path on purpose.
from localstack_subprocess_executor.bootstrap import (  # type: ignore[import-not-found]
    PROTOCOL_FDS_ENV,
    log_marker,
)
from localstack_subprocess_executor.sandbox import (  # type: ignore[import-not-found]
    BOOTSTRAP_PATH,
    InvokeOutcome,
    Sandbox,
    SandboxConfig,
)

ARN = "arn:aws:lambda:eu-central-1:000000000000:function:unit-fn"

MakeSandbox = Callable[..., Sandbox]


def _pid_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _lambda_env(code_dir: Path, handler: str) -> dict[str, str]:
    return {
        "_HANDLER": handler,
        "LAMBDA_TASK_ROOT": str(code_dir),
        "AWS_LAMBDA_FUNCTION_NAME": "unit-fn",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
        "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/unit-fn",
        "AWS_LAMBDA_LOG_STREAM_NAME": "2026/01/01/[$LATEST]abc",
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": str(code_dir),
    }


@pytest.fixture
def make_sandbox(tmp_path: Path) -> Iterator[MakeSandbox]:
    sandboxes: list[Sandbox] = []

    def make(code: str, *, handler: str = "app.handler", timeout_s: float = 5.0) -> Sandbox:
        code_dir = tmp_path / f"code-{len(sandboxes)}"
        code_dir.mkdir()
        (code_dir / "app.py").write_text(textwrap.dedent(code))
        sandbox = Sandbox(
            SandboxConfig(
                interpreter=sys.executable,
                env=_lambda_env(code_dir, handler),
                cwd=str(code_dir),
                timeout_s=timeout_s,
                memory_mb=256,
            )
        )
        sandboxes.append(sandbox)
        sandbox.start()
        return sandbox

    yield make
    for sandbox in sandboxes:
        sandbox.stop()


def _invoke(sandbox: Sandbox, event: object = None) -> tuple[InvokeOutcome, object]:
    request_id = str(uuid.uuid4())
    outcome = sandbox.invoke(request_id, json.dumps(event if event is not None else {}), ARN)
    assert outcome.request_id == request_id
    return outcome, json.loads(outcome.payload)


def test_protocol_driven_directly(tmp_path: Path) -> None:
    """The raw pipe protocol: ready, one invoke, answer on the private pipe, prints on stdout + marker."""
    (tmp_path / "app.py").write_text(
        "def handler(event, context):\n    print('to-stdout')\n    return event\n"
    )
    request_read, request_write = os.pipe()
    response_read, response_write = os.pipe()
    env = {**_lambda_env(tmp_path, "app.handler"), PROTOCOL_FDS_ENV: f"{request_read},{response_write}"}
    child = subprocess.Popen(
        [sys.executable, "-u", str(BOOTSTRAP_PATH)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        pass_fds=(request_read, response_write),
        env=env,
        cwd=tmp_path,
    )
    os.close(request_read)
    os.close(response_write)
    try:
        with os.fdopen(request_write, "wb") as requests, os.fdopen(response_read, "rb") as responses:
            assert json.loads(responses.readline()) == {"type": "ready"}
            request = {
                "type": "invoke",
                "request_id": "req-1",
                "invoked_function_arn": ARN,
                "payload": json.dumps({"x": 1}),
                "deadline_ms": int(time.time() * 1000) + 5000,
                "trace_id": None,
            }
            requests.write(json.dumps(request).encode() + b"\n")
            requests.flush()
            answer = json.loads(responses.readline())
            assert answer == {"type": "result", "payload": json.dumps({"x": 1})}
        # Closing the request pipe ends the child cleanly.
        assert child.wait(timeout=10) == 0
        assert child.stdout is not None
        output = child.stdout.read()
        assert output == log_marker("init") + b"to-stdout\n" + log_marker("req-1")
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


def test_success_result_and_context(make_sandbox: MakeSandbox) -> None:
    sandbox = make_sandbox(
        """
        def handler(event, context):
            return {
                "event": event,
                "function_name": context.function_name,
                "function_version": context.function_version,
                "arn": context.invoked_function_arn,
                "memory": context.memory_limit_in_mb,
                "request_id": context.aws_request_id,
                "log_group": context.log_group_name,
                "log_stream": context.log_stream_name,
            }
        """
    )
    outcome, body = _invoke(sandbox, {"hello": "world"})
    assert outcome.status == "ok" and not outcome.is_error
    assert body == {
        "event": {"hello": "world"},
        "function_name": "unit-fn",
        "function_version": "$LATEST",
        "arn": ARN,
        "memory": "256",
        "request_id": outcome.request_id,
        "log_group": "/aws/lambda/unit-fn",
        "log_stream": "2026/01/01/[$LATEST]abc",
    }


def test_warm_environment_keeps_module_state(make_sandbox: MakeSandbox) -> None:
    sandbox = make_sandbox(
        """
        import os
        CALLS = []
        def handler(event, context):
            CALLS.append(1)
            return {"calls": len(CALLS), "pid": os.getpid()}
        """
    )
    _, first = _invoke(sandbox)
    _, second = _invoke(sandbox)
    assert isinstance(first, dict) and isinstance(second, dict)
    assert (first["calls"], second["calls"]) == (1, 2)
    assert first["pid"] == second["pid"] == sandbox.pid


def test_handler_exception_has_lambda_shape(make_sandbox: MakeSandbox) -> None:
    sandbox = make_sandbox(
        """
        def handler(event, context):
            helper()

        def helper():
            raise ValueError("patient not found")
        """
    )
    outcome, body = _invoke(sandbox)
    assert outcome.status == "error" and outcome.is_error
    assert isinstance(body, dict)
    assert set(body) == {"errorMessage", "errorType", "requestId", "stackTrace"}
    assert body["errorType"] == "ValueError"
    assert body["errorMessage"] == "patient not found"
    assert body["requestId"] == outcome.request_id
    # User frames only, in Lambda's "  File ..., line N, in fn\n    code\n" form.
    assert [entry.split(", in ")[1].split("\n")[0] for entry in body["stackTrace"]] == ["handler", "helper"]
    assert all(entry.startswith('  File "') and "app.py" in entry for entry in body["stackTrace"])
    assert "[ERROR] ValueError: patient not found" in outcome.logs


def test_prints_become_logs_not_protocol(make_sandbox: MakeSandbox) -> None:
    sandbox = make_sandbox(
        """
        import logging, sys
        print("printed during init")
        def handler(event, context):
            # Looks like a protocol answer: must stay a log line.
            print('{"type": "result", "payload": "\\\\"forged\\\\""}')
            print("to stderr", file=sys.stderr)
            logging.getLogger().warning("via root logger")
            print("no newline at the end", end="")
            return "real"
        """
    )
    first, body = _invoke(sandbox)
    assert body == "real"
    lines = first.logs.splitlines()
    assert lines[0].startswith("INIT_START ")
    assert "printed during init" in lines
    start = lines.index(f"START RequestId: {first.request_id} Version: $LATEST")
    assert lines.index("printed during init") < start
    assert '{"type": "result", "payload": "\\"forged\\""}' in lines
    assert "to stderr" in lines
    assert any(line.startswith("no newline at the end") for line in lines)
    warning = next(line for line in lines if "via root logger" in line)
    assert warning.startswith("[WARNING]\t") and first.request_id in warning
    assert lines[-2] == f"END RequestId: {first.request_id}"
    assert lines[-1].startswith(f"REPORT RequestId: {first.request_id}\tDuration: ")
    assert "Memory Size: 256 MB" in lines[-1] and "Init Duration: " in lines[-1]

    second, _ = _invoke(sandbox)
    assert "printed during init" not in second.logs
    assert "Init Duration" not in second.logs
    assert second.logs.startswith(f"START RequestId: {second.request_id}")
    assert second.request_id in sandbox.recent_logs() and first.request_id in sandbox.recent_logs()


def test_init_import_error_is_reported_and_retried(make_sandbox: MakeSandbox) -> None:
    sandbox = make_sandbox(
        """
        print("init ran")
        import not_installed_package_xyz
        def handler(event, context):
            return "unreachable"
        """
    )
    outcome, body = _invoke(sandbox)
    assert outcome.status == "init_error" and outcome.is_error
    assert body == {
        "errorMessage": "Unable to import module 'app': No module named 'not_installed_package_xyz'",
        "errorType": "Runtime.ImportModuleError",
        "requestId": "",
        "stackTrace": [],
    }
    assert "init ran" in outcome.logs
    assert "[ERROR] Runtime.ImportModuleError: Unable to import module 'app'" in outcome.logs
    assert "INIT_REPORT Init Duration: " in outcome.logs
    assert f"START RequestId: {outcome.request_id}" in outcome.logs
    # Like Lambda, the next invoke runs the init again (a fresh process).
    again, body_again = _invoke(sandbox)
    assert again.status == "init_error"
    assert isinstance(body_again, dict) and body_again["errorType"] == "Runtime.ImportModuleError"
    assert again.logs.count("init ran") == 1


@pytest.mark.parametrize(
    ("code", "handler", "error_type", "message"),
    [
        ("x = 1\n", "app.handler", "Runtime.HandlerNotFound", "Handler 'handler' missing on module 'app'"),
        ("x = 1\n", "app", "Runtime.MalformedHandlerName", "Bad handler 'app': "),
        ("def handler(:\n", "app.handler", "Runtime.UserCodeSyntaxError", "Syntax error in module 'app': "),
        ("raise KeyError('DATABASE_URL')\n", "app.handler", "KeyError", "'DATABASE_URL'"),
        ("x = 1\n", "missing_module.handler", "Runtime.ImportModuleError", "Unable to import module"),
    ],
)
def test_init_error_types(
    make_sandbox: MakeSandbox, code: str, handler: str, error_type: str, message: str
) -> None:
    sandbox = make_sandbox(code, handler=handler)
    outcome, body = _invoke(sandbox)
    assert outcome.status == "init_error"
    assert isinstance(body, dict)
    assert body["errorType"] == error_type
    assert body["errorMessage"].startswith(message)


def test_remaining_time_counts_down(make_sandbox: MakeSandbox) -> None:
    sandbox = make_sandbox(
        """
        import time
        def handler(event, context):
            first = context.get_remaining_time_in_millis()
            time.sleep(0.5)
            return [first, context.get_remaining_time_in_millis()]
        """,
        timeout_s=3,
    )
    outcome, body = _invoke(sandbox)
    assert outcome.status == "ok"
    assert isinstance(body, list)
    first, second = body
    assert 2000 < first <= 3000
    assert 400 <= first - second < 1500


def test_timeout_kills_process_group_and_next_invoke_restarts(make_sandbox: MakeSandbox) -> None:
    sandbox = make_sandbox(
        """
        import os, subprocess, time
        def handler(event, context):
            if event.get("sleep"):
                helper = subprocess.Popen(["sleep", "60"])
                print("helper", helper.pid, flush=True)
                time.sleep(event["sleep"])
            return {"pid": os.getpid()}
        """,
        timeout_s=1,
    )
    old_pid = sandbox.pid
    assert old_pid is not None
    started = time.monotonic()
    outcome, body = _invoke(sandbox, {"sleep": 30})
    elapsed = time.monotonic() - started
    assert outcome.status == "timeout"
    assert 0.9 <= elapsed < 4
    assert body == {
        "errorType": "Sandbox.Timedout",
        "errorMessage": f"RequestId: {outcome.request_id} Error: Task timed out after 1.00 seconds",
    }
    assert f"{outcome.request_id} Task timed out after 1.00 seconds" in outcome.logs
    assert "Status: timeout" in outcome.logs
    helper_pid = int(
        next(line for line in outcome.logs.splitlines() if line.startswith("helper ")).split()[1]
    )
    assert not _pid_alive(old_pid)
    deadline = time.monotonic() + 5
    while _pid_alive(helper_pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _pid_alive(helper_pid), "the handler's own subprocess survived the timeout"

    after, after_body = _invoke(sandbox)
    assert after.status == "ok"
    assert isinstance(after_body, dict) and after_body["pid"] != old_pid
    assert "Init Duration" in after.logs  # a fresh environment was initialised for this invocation


def test_crash_is_runtime_exit_error(make_sandbox: MakeSandbox) -> None:
    sandbox = make_sandbox(
        """
        import os
        def handler(event, context):
            if event.get("exit"):
                print("about to exit")
                os._exit(3)
            return "alive"
        """
    )
    outcome, body = _invoke(sandbox, {"exit": True})
    assert outcome.status == "crash"
    assert body == {
        "errorType": "Runtime.ExitError",
        "errorMessage": f"RequestId: {outcome.request_id} Error: Runtime exited with error: exit status 3",
    }
    assert "about to exit" in outcome.logs
    assert _invoke(sandbox)[1] == "alive"


def test_unserialisable_result_is_marshal_error(make_sandbox: MakeSandbox) -> None:
    sandbox = make_sandbox(
        """
        from decimal import Decimal
        def handler(event, context):
            if event.get("decimal"):
                return {"price": Decimal("12.50"), "count": Decimal("3")}
            return object()
        """
    )
    outcome, body = _invoke(sandbox)
    assert outcome.status == "error"
    assert isinstance(body, dict) and body["errorType"] == "Runtime.MarshalError"
    assert body["errorMessage"].startswith("Unable to marshal response: Object of type object")
    assert _invoke(sandbox, {"decimal": True})[1] == {"price": 12.5, "count": 3}


def test_stop_ends_the_child(make_sandbox: MakeSandbox) -> None:
    sandbox = make_sandbox("def handler(event, context):\n    return 1\n")
    pid = sandbox.pid
    assert pid is not None and _pid_alive(pid)
    sandbox.stop()
    assert not _pid_alive(pid)
