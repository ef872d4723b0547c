"""Architecture rules import-linter cannot express (its contracts are in pyproject.toml):

- a handler (functions/*/app.py) imports the platform, the contracts and at most one service;
- no service holds another service's tables: every SQLAlchemy Table a service's modules define or
  import lives in that service's schema;
- handlers are thin: none is longer than HANDLER_MAX_LINES;
- every function of template.yaml has a sample event in events/, and every sample folder a function;
- the pure-domain contract's wildcards reach every domain package, and the contracts package;
- no two test modules share a basename (pytest could not collect the suite).

Every rule is strict: no handler or service is exempt.
"""

from __future__ import annotations

import ast
import importlib
import pkgutil
import re
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from samtranslator.yaml_helper import yaml_parse
from sqlalchemy import Table

import therapy_platform

ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS = ROOT / "functions"
EVENTS = ROOT / "events"
HANDLER_MAX_LINES = 80
SHARED_PACKAGES = frozenset({"platform", "contracts"})
SCHEMA_OF_SERVICE = {
    "patients": "patient_service",
    "therapists": "therapist_service",
    "matching": "matching_service",
    "communication": "communication_service",
    "geocoding": "geocoding_service",
    "directory": "scraping_service",
}


def _handlers() -> list[str]:
    return sorted(path.parent.name for path in FUNCTIONS.glob("*/app.py"))


def _imported_modules(path: Path) -> set[str]:
    imported: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            imported.add(node.module)
    return imported


# ---------------------------------------------------------------- (a) one service per handler


@pytest.mark.parametrize("handler", _handlers())
def test_a_handler_imports_the_platform_the_contracts_and_at_most_one_service(handler: str) -> None:
    packages = {
        module.split(".")[1]
        for module in _imported_modules(FUNCTIONS / handler / "app.py")
        if module.startswith("therapy_platform.")
    }
    services = packages - SHARED_PACKAGES
    assert services <= set(SCHEMA_OF_SERVICE), f"{handler} imports unknown packages {services}"
    assert len(services) <= 1, f"{handler} imports several services: {sorted(services)}"


# ---------------------------------------------------------------- (b) each service its own tables


def _service_modules(service: str) -> Iterator[str]:
    package = importlib.import_module(f"therapy_platform.{service}")
    yield package.__name__
    for module in pkgutil.walk_packages(package.__path__, prefix=f"{package.__name__}."):
        # A composition root reads the deployed settings at import and defines no tables.
        if module.name.rsplit(".", 1)[-1] != "bootstrap":
            yield module.name


def _tables_in(value: Any) -> Iterator[Table]:
    if isinstance(value, Table):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _tables_in(item)
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            yield from _tables_in(item)


@pytest.mark.parametrize("service", sorted(SCHEMA_OF_SERVICE))
def test_a_service_holds_only_tables_of_its_own_schema(service: str) -> None:
    """No service reads another's tables: every Table a module of the service defines or imports
    (at module level, alone or in a collection) is in the service's schema."""
    foreign = sorted(
        f"{module_name}: {table.fullname}"
        for module_name in _service_modules(service)
        for name, value in vars(importlib.import_module(module_name)).items()
        if not name.startswith("__")
        for table in _tables_in(value)
        if table.schema != SCHEMA_OF_SERVICE[service]
    )
    assert foreign == [], f"{service} holds tables outside {SCHEMA_OF_SERVICE[service]}"


# ---------------------------------------------------------------- (c) thin handlers


@pytest.mark.parametrize("handler", _handlers())
def test_a_handler_is_thin(handler: str) -> None:
    lines = len((FUNCTIONS / handler / "app.py").read_text().splitlines())
    assert lines <= HANDLER_MAX_LINES, f"{handler}/app.py has {lines} lines"


# ---------------------------------------------------------------- (d) sample events


def _functions() -> dict[str, dict[str, Any]]:
    resources = yaml_parse((ROOT / "template.yaml").read_text())["Resources"]
    return {
        name: body["Properties"]
        for name, body in resources.items()
        if body["Type"] == "AWS::Serverless::Function"
    }


def _sample_folders(function: str, properties: dict[str, Any]) -> set[str]:
    """A function's samples are in events/<its code folder>, or events/<its name in snake case>."""
    named = re.sub(r"(?<!^)(?=[A-Z])", "_", function.removesuffix("Function")).lower()
    return {Path(properties["CodeUri"]).name, named}


def test_every_function_has_a_sample_event_and_every_sample_folder_a_function() -> None:
    functions = _functions()
    folders = {path.name for path in EVENTS.iterdir() if path.is_dir() and any(path.glob("*.json"))}
    without = sorted(
        name for name, properties in functions.items() if not _sample_folders(name, properties) & folders
    )
    assert without == [], f"functions without a sample event in events/: {without}"
    claimed = set().union(*(_sample_folders(name, properties) for name, properties in functions.items()))
    assert folders - claimed - {"schemas"} == set(), "sample folders no function owns"


# ---------------------------------------------------------------- import-linter's reach


def _contract(contract_id: str) -> dict[str, Any]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    [contract] = [c for c in config["tool"]["importlinter"]["contracts"] if c["id"] == contract_id]
    return contract  # type: ignore[no-any-return]


def _matches(pattern: str, module: str) -> bool:
    """import-linter's module wildcards: `*` one name, `**` one or more (a package covers its
    descendants)."""
    regex = re.escape(pattern).replace(r"\*\*", r"[^.]+(?:\.[^.]+)*").replace(r"\*", r"[^.]+")
    return re.fullmatch(rf"{regex}(?:\..+)?", module) is not None


def _packages() -> list[str]:
    return [
        module.name
        for module in pkgutil.walk_packages(therapy_platform.__path__, prefix="therapy_platform.")
        if module.ispkg
    ]


def test_the_pure_domain_contract_reaches_every_domain_package_and_the_contracts() -> None:
    sources = _contract("pure-domain")["source_modules"]
    domains = [name for name in _packages() if name.rsplit(".", 1)[-1] == "domain"]
    assert len(domains) >= 4
    for package in [*domains, "therapy_platform.contracts"]:
        assert any(_matches(pattern, package) for pattern in sources), (
            f"{package} escapes the pure-domain contract"
        )


def test_the_layers_contract_names_every_top_level_package() -> None:
    layers = _contract("services-contracts-platform")["layers"]
    named = {name.strip() for layer in layers for name in layer.split("|")}
    top_level = {name.split(".")[1] for name in _packages() if name.count(".") == 1}
    assert top_level == named
    assert set(SCHEMA_OF_SERVICE) | SHARED_PACKAGES == named


def test_every_test_module_has_a_unique_basename() -> None:
    # The test folders are not packages (rootdir import mode): two modules with the same basename
    # make pytest refuse the whole collection, so the full suite would not even start.
    seen: dict[str, Path] = {}
    clashes = []
    for module in sorted((ROOT / "tests").rglob("test_*.py")):
        if module.name in seen:
            clashes.append(f"{seen[module.name].relative_to(ROOT)} and {module.relative_to(ROOT)}")
        seen.setdefault(module.name, module)
    assert not clashes, f"test modules sharing a basename: {clashes}"
