"""Which local ports the deployed stack's functions talk to, against the ports this local cloud's
servers run on (`localcloud check-ports`). A second stack on moved ports (PG_PORT, KAFKA_PORT,
SMTP_PORT, DIRECTORY_PORT, IDENTITY_PORT, LOCALSTACK_PORT) must not send anything to the first
stack's servers: every `127.0.0.1:<port>` / `localhost:<port>` a function's environment names, and
every `*_PORT` variable, must be one of this stack's ports."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from localcloud import directory, identity, kafka, localstack, postgres, smtp

_LOCAL_ENDPOINT = re.compile(r"(?:127\.0\.0\.1|localhost|\[::1\]):(\d{1,5})(?!\d)")
_PORT_VARIABLE = re.compile(r"(?:^|_)PORT$")


def server_ports() -> dict[str, int]:
    """The port of every server `localcloud up` starts (from the environment or the default)."""
    return {
        "postgres": postgres.port(),
        "kafka": kafka.port(),
        "smtp": smtp.port(),
        "directory": directory.port(),
        "identity": identity.port(),
        "localstack": localstack.port(),
    }


@dataclass(frozen=True)
class StrayPort:
    function: str
    variable: str
    port: int


def stray_ports(environments: Mapping[str, Mapping[str, str]], allowed: Iterable[int]) -> list[StrayPort]:
    """Every local port a function's environment names that is not one of `allowed` (this stack's
    servers): in a local endpoint (`127.0.0.1:N`, `localhost:N`) or as a `*_PORT` variable."""
    ports = set(allowed)
    found: list[StrayPort] = []
    for function, variables in sorted(environments.items()):
        for variable, value in sorted(variables.items()):
            named = {int(match) for match in _LOCAL_ENDPOINT.findall(value)}
            if _PORT_VARIABLE.search(variable) and value.strip().isdigit():
                named.add(int(value))
            found.extend(StrayPort(function, variable, port) for port in sorted(named - ports))
    return found


def deployed_environments(lambda_client: Any) -> dict[str, dict[str, str]]:
    """Function name -> its environment variables, for every function LocalStack holds."""
    environments: dict[str, dict[str, str]] = {}
    for page in lambda_client.get_paginator("list_functions").paginate():
        for function in page["Functions"]:
            variables = function.get("Environment", {}).get("Variables", {})
            environments[function["FunctionName"]] = dict(variables)
    return environments
