"""The typed Python client generated from the OpenAPI document (infra/tools/api_client.py with
the pinned openapi-python-client, in its own virtualenv under .venv-tools/): it generates without
warnings, has one function per operation, type-checks with mypy --strict together with the staff
flow the e2e test drives through it (tests/api_client_flow.py), and really talks to the API: a
patient registered through it by the patients handler (in-memory adapters) comes back typed,
with its Location; an unknown patient comes back as the error model."""

from __future__ import annotations

import importlib
import json
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from fakes import FakeGeocoder, InMemoryDatabase, patient_service
from support import FakeLambdaContext, api_event, load_function
from tools import api_client

ROOT = Path(__file__).resolve().parents[2]
DOCUMENT = json.loads((ROOT / "functions" / "api_docs" / "openapi.json").read_text())
# The generator's fixed client.py passes `*args: object` to httpx's __exit__; everything generated
# from the document is checked strictly.
MYPY_CONFIG = """[mypy]
strict = True
[mypy-therapy_api_client.client]
disable_error_code = arg-type
"""


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    output = tmp_path_factory.mktemp("api-client")
    api_client.generate(output)
    sys.path.insert(0, str(output))
    yield output
    sys.path.remove(str(output))
    generated_modules = {"therapy_api_client", "api_client_flow"}
    for name in [module for module in sys.modules if module.split(".")[0] in generated_modules]:
        del sys.modules[name]


def test_every_operation_has_a_typed_function(generated: Path) -> None:
    for methods in DOCUMENT["paths"].values():
        for operation in methods.values():
            (tag,) = operation["tags"]
            module = importlib.import_module(
                f"therapy_api_client.api.{_snake(tag)}.{_snake(operation['operationId'])}"
            )
            assert callable(module.sync_detailed), operation["operationId"]
            assert callable(module.asyncio_detailed), operation["operationId"]


def test_the_client_and_the_e2e_flow_type_check_strictly(generated: Path, tmp_path: Path) -> None:
    config = tmp_path / "mypy.ini"
    config.write_text(MYPY_CONFIG)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--config-file",
            str(config),
            "--no-incremental",
            str(generated / "therapy_api_client"),
            str(ROOT / "tests" / "api_client_flow.py"),
        ],
        cwd=generated,
        env={"MYPYPATH": str(generated), "PATH": str(Path(sys.executable).parent)},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Success: no issues found" in done.stdout


def _through_the_handler(handler: Any) -> httpx.MockTransport:
    """Each request the client sends becomes an API Gateway event for the handler, as a staff
    member's (the gateway's authorizer verified the token)."""

    def answer(request: httpx.Request) -> httpx.Response:
        body = request.content.decode("utf-8") or None
        event = api_event(request.method, request.url.path, raw_body=body)
        response = handler.lambda_handler(event, FakeLambdaContext())
        headers = [(name, value) for name, many in response["multiValueHeaders"].items() for value in many]
        return httpx.Response(response["statusCode"], headers=headers, content=response["body"].encode())

    return httpx.MockTransport(answer)


def test_the_generated_client_registers_and_reads_a_patient(
    generated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = load_function("patients_api")
    monkeypatch.setattr(module, "service", patient_service(InMemoryDatabase(), geocoder=FakeGeocoder()))
    client_module = importlib.import_module("therapy_api_client")
    flow = importlib.import_module("api_client_flow")
    get_patient = importlib.import_module("therapy_api_client.api.patients.get_patient")
    models = importlib.import_module("therapy_api_client.models")
    client = client_module.AuthenticatedClient(base_url="http://api.test", token="not-checked-here")
    client.set_httpx_client(httpx.Client(base_url="http://api.test", transport=_through_the_handler(module)))

    patient = flow.register_patient(client, "50667", "integration")  # 201 + Location, checked there

    assert isinstance(patient, models.Patient) and patient.status == models.PatientStatus.OPEN
    assert patient.symptoms == [models.Symptom.DEPRESSION, models.Symptom.ANXIETY]
    read = get_patient.sync_detailed(patient.id, client=client)
    assert read.status_code == 200 and read.parsed == patient
    missing = get_patient.sync_detailed(uuid.uuid4(), client=client)
    assert missing.status_code == 404 and isinstance(missing.parsed, models.Problem)
    assert missing.parsed.code == models.ProblemCode.NOT_FOUND and missing.parsed.errors == []
