"""LocalStack plugin entry point: `LAMBDA_RUNTIME_EXECUTOR=subprocess` selects this executor.

Kept import-light: LocalStack loads every plugin class of the namespace to read its name.
"""

from __future__ import annotations

from typing import Any

from localstack.services.lambda_.invocation.plugins import RuntimeExecutorPlugin


class SubprocessRuntimeExecutorPlugin(RuntimeExecutorPlugin):  # type: ignore[misc]
    name = "subprocess"

    def load(self, *args: Any, **kwargs: Any) -> type:
        from localstack_subprocess_executor.executor import SubprocessRuntimeExecutor

        return SubprocessRuntimeExecutor
