"""The environment template.yaml gives a function, resolved without deploying: parameters take the
local deployment's values (samconfig.toml `local` plus what `localcloud deploy` adds, else the
parameter's default), conditions are evaluated with them, and references to resources become
placeholders of the right shape (a queue URL for a queue, an ARN for a secret). Tools that import
handler modules outside Lambda (the OpenAPI generator, the architecture tests) use it, so a
handler's cold-start settings are checked against what the template really sets.

    python -m tools.function_environment PatientsApiFunction     prints NAME=value lines
"""

from __future__ import annotations

import re
import sys
import tomllib
from functools import cache
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
SAMCONFIG = ROOT / "samconfig.toml"
REGION = "eu-central-1"
ACCOUNT = "000000000000"
NO_VALUE = object()


@cache
def template() -> dict[str, Any]:
    from samtranslator.yaml_helper import yaml_parse

    return yaml_parse(TEMPLATE.read_text())  # type: ignore[no-any-return]


def local_parameters() -> dict[str, str]:
    """Parameter defaults, overridden by the `local` deployment's parameter_overrides."""
    values = {
        name: str(spec["Default"])
        for name, spec in template().get("Parameters", {}).items()
        if "Default" in spec
    }
    deploy = tomllib.loads(SAMCONFIG.read_text()).get("local", {}).get("deploy", {})
    from localcloud.stack import server_parameters  # what `localcloud deploy` adds

    overrides = [*deploy.get("parameters", {}).get("parameter_overrides", [])]
    overrides += server_parameters(admin_password="")  # no handler reads it
    for override in overrides:
        name, _, value = str(override).partition("=")
        values[name] = value
    return values


class _Resolver:
    def __init__(self, parameters: dict[str, str]) -> None:
        self.parameters = parameters
        self.resources: dict[str, Any] = template()["Resources"]
        self.conditions: dict[str, Any] = template().get("Conditions", {})

    def ref(self, name: str) -> str | object:
        if name == "AWS::NoValue":
            return NO_VALUE
        pseudo = {"AWS::Region": REGION, "AWS::AccountId": ACCOUNT, "AWS::Partition": "aws"}
        if name in pseudo:
            return pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        if name in template().get("Parameters", {}):
            return f"{name.lower()}-placeholder"
        kind = self.resources[name]["Type"]
        if kind == "AWS::SQS::Queue":
            return f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{name}"
        if kind == "AWS::SecretsManager::Secret":
            return f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:{name}"
        if kind == "AWS::S3::Bucket":
            return f"{name.lower()}-placeholder"
        return name

    def get_att(self, name: str, attribute: str) -> str:
        return f"{name}.{attribute}"

    def condition(self, name: str) -> bool:
        return bool(self.resolve(self.conditions[name]))

    def resolve(self, value: Any) -> Any:
        if not isinstance(value, dict) or len(value) != 1:
            return value if not isinstance(value, list) else [self.resolve(item) for item in value]
        [(key, argument)] = value.items()
        if key == "Ref":
            return self.ref(argument)
        if key == "Fn::GetAtt":
            return self.get_att(*(argument.split(".", 1) if isinstance(argument, str) else argument))
        if key == "Fn::If":
            condition, when_true, when_false = argument
            return self.resolve(when_true if self.condition(condition) else when_false)
        if key == "Fn::Equals":
            left, right = (self.resolve(item) for item in argument)
            return str(left) == str(right)
        if key == "Fn::Not":
            return not self.resolve(argument[0])
        if key == "Fn::And":
            return all(self.resolve(item) for item in argument)
        if key == "Fn::Or":
            return any(self.resolve(item) for item in argument)
        if key == "Condition":
            return self.condition(argument)
        if key == "Fn::Join":
            separator, items = argument
            return separator.join(str(self.resolve(item)) for item in self.resolve(items))
        if key == "Fn::Sub":
            text, variables = (argument, {}) if isinstance(argument, str) else argument
            return re.sub(r"\$\{([^}!]+)\}", lambda match: self._sub(match.group(1), variables), text)
        return {key: self.resolve(argument)}

    def _sub(self, name: str, variables: dict[str, Any]) -> str:
        if name in variables:
            return str(self.resolve(variables[name]))
        if "." in name and not name.startswith("AWS::"):
            return self.get_att(*name.split(".", 1))
        return str(self.ref(name))


def function_environment(function: str, parameters: dict[str, str] | None = None) -> dict[str, str]:
    """The environment variables of `function` (Globals first, the function's own over them)."""
    resolver = _Resolver(parameters if parameters is not None else local_parameters())
    variables: dict[str, Any] = {
        **template().get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {}),
        **template()["Resources"][function]["Properties"].get("Environment", {}).get("Variables", {}),
    }
    resolved = {name: resolver.resolve(value) for name, value in variables.items()}
    return {name: str(value) for name, value in resolved.items() if value is not NO_VALUE}


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    for name, value in sorted(function_environment(argv[0]).items()):
        print(f"{name}={value}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
