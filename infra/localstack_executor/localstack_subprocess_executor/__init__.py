"""Run LocalStack Lambda execution environments as local Python subprocesses (no Docker).

`plugin` registers the executor with LocalStack; `executor` is the LocalStack glue; `sandbox`
(parent side) and `bootstrap` (child side) are stdlib-only and usable without LocalStack.
"""

__version__ = "0.1.0"
