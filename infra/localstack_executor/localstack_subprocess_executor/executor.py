"""LocalStack `RuntimeExecutor` that runs each Lambda execution environment as a local Python process."""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from localstack import config
from localstack.aws.api.lambda_ import PackageType
from localstack.services.lambda_.invocation.lambda_models import FunctionVersion, InvocationResult
from localstack.services.lambda_.invocation.runtime_executor import LambdaRuntimeException, RuntimeExecutor

from localstack_subprocess_executor.sandbox import BOOTSTRAP_PATH, Sandbox, SandboxConfig

LOG = logging.getLogger(__name__)

PYTHONS_ENV = "SUBPROCESS_EXECUTOR_PYTHONS"
LOCAL_HOST = "127.0.0.1"
# Lambda's own PATH (/var/lang/bin:/usr/local/bin:/usr/bin/:/bin:/opt/bin), translated to this host.
_SYSTEM_PATH = ["/usr/local/bin", "/usr/bin", "/bin"]


def _runtime_name(function_version: FunctionVersion) -> str:
    runtime = function_version.config.runtime
    return str(getattr(runtime, "value", runtime) or "")


def configured_pythons() -> dict[str, str]:
    """The runtime -> interpreter map from SUBPROCESS_EXECUTOR_PYTHONS (JSON object), or {}."""
    raw = os.environ.get(PYTHONS_ENV, "").strip()
    if not raw:
        return {}
    try:
        mapping = json.loads(raw)
    except ValueError as exc:
        raise LambdaRuntimeException(f"{PYTHONS_ENV} is not valid JSON: {exc}") from exc
    if not isinstance(mapping, dict) or not all(isinstance(v, str) for v in mapping.values()):
        raise LambdaRuntimeException(
            f'{PYTHONS_ENV} must map runtimes to paths, e.g. {{"python3.13": "/usr/bin/python3.13"}}'
        )
    return {str(key): value for key, value in mapping.items()}


def interpreter_for(runtime: str) -> str:
    """Interpreter for a Lambda runtime such as `python3.13`; a clear error for anything else."""
    if not runtime.startswith("python"):
        raise LambdaRuntimeException(
            "The subprocess Lambda executor runs Python functions only; "
            f"runtime '{runtime or 'container image'}' is not supported here."
        )
    configured = configured_pythons().get(runtime)
    if configured:
        if not os.access(configured, os.X_OK):
            raise LambdaRuntimeException(
                f"{PYTHONS_ENV} maps {runtime} to {configured}, which is not executable."
            )
        return configured
    found = shutil.which(runtime)
    if not found:
        raise LambdaRuntimeException(
            f"No interpreter for Lambda runtime {runtime}: put {runtime} on PATH or map it in {PYTHONS_ENV}."
        )
    return found


def layer_paths(function_version: FunctionVersion) -> list[Path]:
    """Unzipped folders of the function's layers, in the order the function lists them."""
    return [
        Path(layer.code.get_unzipped_code_location())
        for layer in function_version.config.layers
        if layer.code is not None
    ]


def python_path(code_dir: str, layers: list[Path], runtime: str) -> list[str]:
    """sys.path order of Lambda's Python runtimes: task root, /opt/python/lib/pythonX.Y/site-packages,
    /opt/python. Layers are merged into /opt in order, later ones overwriting earlier ones, so the
    last layer comes first within each group."""
    newest_first = list(reversed(layers))
    site_packages = [str(layer / "python" / "lib" / runtime / "site-packages") for layer in newest_first]
    plain = [str(layer / "python") for layer in newest_first]
    return [code_dir, *site_packages, *plain]


def build_environment(
    env_vars: Mapping[str, Any],
    *,
    code_dir: str,
    layers: list[Path],
    runtime: str,
    interpreter: str,
    user_env: Mapping[str, str] | None,
    gateway_port: int,
) -> dict[str, str]:
    """The child's environment: what LocalStack passes, adjusted from container paths to this host.

    The LocalStack process's own environment is deliberately not inherited (it carries LocalStack's
    configuration, which is not the function's business)."""
    user_env = user_env or {}
    env = {key: str(value) for key, value in env_vars.items() if value is not None}
    env["LAMBDA_TASK_ROOT"] = code_dir
    env["LAMBDA_RUNTIME_DIR"] = str(BOOTSTRAP_PATH.parent)
    if "AWS_ENDPOINT_URL" not in user_env:
        env["AWS_ENDPOINT_URL"] = f"http://{LOCAL_HOST}:{gateway_port}"
    env.setdefault("LANG", "C.UTF-8")
    path_entries = [str(Path(interpreter).parent), *_SYSTEM_PATH, *(str(layer / "bin") for layer in layers)]
    if "PATH" in user_env:
        path_entries.insert(0, user_env["PATH"])
    env["PATH"] = os.pathsep.join(path_entries)
    library_path = [str(layer / "lib") for layer in layers]
    if user_env.get("LD_LIBRARY_PATH"):
        library_path.insert(0, user_env["LD_LIBRARY_PATH"])
    env["LD_LIBRARY_PATH"] = os.pathsep.join(library_path)
    entries = python_path(code_dir, layers, runtime)
    if user_env.get("PYTHONPATH"):
        entries.insert(0, user_env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(entries)
    return env


class SubprocessRuntimeExecutor(RuntimeExecutor):  # type: ignore[misc]
    """One instance per execution environment; the child process is restarted lazily after a timeout."""

    def __init__(self, id: str, function_version: FunctionVersion) -> None:
        super().__init__(id=id, function_version=function_version)
        self._sandbox: Sandbox | None = None

    def start(self, env_vars: dict[str, str]) -> None:
        function_config = self.function_version.config
        runtime = _runtime_name(self.function_version)
        interpreter = interpreter_for(runtime)
        code_dir = str(function_config.code.get_unzipped_code_location())
        env = build_environment(
            env_vars,
            code_dir=code_dir,
            layers=layer_paths(self.function_version),
            runtime=runtime,
            interpreter=interpreter,
            user_env=function_config.environment,
            gateway_port=config.GATEWAY_LISTEN[0].port,
        )
        self._sandbox = Sandbox(
            SandboxConfig(
                interpreter=interpreter,
                env=env,
                cwd=code_dir,
                timeout_s=float(function_config.timeout),
                memory_mb=int(function_config.memory_size),
                version=str(self.function_version.id.qualifier),
                runtime=runtime,
            )
        )
        LOG.debug("Starting subprocess environment %s for %s", self.id, self.function_version.qualified_arn)
        self._sandbox.start()

    def stop(self) -> None:
        if self._sandbox is not None:
            self._sandbox.stop()

    def get_address(self) -> str:
        return LOCAL_HOST

    def get_endpoint_from_executor(self) -> str:
        return LOCAL_HOST

    def get_runtime_endpoint(self) -> str:
        # Unused by our child (it talks over a pipe); LocalStack still puts it into the environment.
        return f"http://{LOCAL_HOST}:{config.GATEWAY_LISTEN[0].port}/_localstack_lambda/{self.id}"

    def invoke(self, payload: dict[str, str]) -> InvocationResult:
        if self._sandbox is None:
            raise LambdaRuntimeException(f"Execution environment {self.id} was not started")
        outcome = self._sandbox.invoke(
            request_id=payload["invoke-id"],
            payload=payload.get("payload") or "",
            invoked_function_arn=payload.get("invoked-function-arn") or "",
            trace_id=payload.get("trace-id"),
        )
        return InvocationResult(
            request_id=outcome.request_id,
            payload=outcome.payload,
            is_error=outcome.is_error,
            logs=outcome.logs,
        )

    def get_logs(self) -> str:
        return self._sandbox.recent_logs() if self._sandbox is not None else ""

    @classmethod
    def prepare_version(cls, function_version: FunctionVersion) -> None:
        function_config = function_version.config
        if function_config.package_type != PackageType.Zip or function_config.code is None:
            raise LambdaRuntimeException("The subprocess Lambda executor supports .zip packages only.")
        # Fail at create time (function state Failed with this reason) rather than on first invoke.
        interpreter_for(_runtime_name(function_version))
        function_config.code.prepare_for_execution()
        for layer in function_config.layers:
            if layer.code is not None:
                layer.code.prepare_for_execution()

    @classmethod
    def cleanup_version(cls, function_version: FunctionVersion) -> None:
        # Nothing of ours to clean: LocalStack owns the unzipped code folders.
        return None

    @classmethod
    def validate_environment(cls) -> bool:
        try:
            configured_pythons()
        except LambdaRuntimeException as exc:
            LOG.warning("%s", exc)
            return False
        return True
