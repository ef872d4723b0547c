"""Fuzz the deployed API with schemathesis, driven by the committed OpenAPI document: no request,
however odd, may produce a server error (5xx), and every answer must conform to the document:
a documented status code, its documented content type (`application/problem+json` for every
error, the gateway's own answers included), a body valid against its schema and the documented
headers. It calls as an admin (every operation is open to that role) with a token of the local
identity provider; test_access_matrix.py covers the callers who may not."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from localcloud import identity, stack

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "functions" / "api_docs" / "openapi.json"
REPORT_DIR = ROOT / ".state" / "schemathesis"
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "response_headers_conformance",
)


def test_the_served_document_is_the_committed_one(base_url: str) -> None:
    import requests

    served = requests.get(f"{base_url}/api/v2/openapi.json", timeout=30)
    assert served.status_code == 200
    assert served.json() == __import__("json").loads(SPEC.read_text())
    docs = requests.get(f"{base_url}/api/v2/docs", timeout=30)
    assert docs.status_code == 200 and "swagger-ui" in docs.text


def test_schemathesis_finds_no_server_error_and_no_answer_off_the_document(deployed: stack.StackInfo) -> None:
    schemathesis = Path(sys.executable).with_name("st")
    # Valid for longer than the run may take (its timeout below).
    token = identity.issue_token(("admin",), user="e2e-fuzz@praxisvermittlung.example.de", ttl_s=3 * 3600)
    result = subprocess.run(
        [
            str(schemathesis),
            "run",
            str(SPEC),
            "--url",
            deployed.api_base_url,
            "--checks",
            ",".join(CHECKS),
            "--max-examples",
            "30",
            "--seed",
            "20261122",
            "--header",
            f"Authorization: Bearer {token}",
            "--request-timeout",
            "60",
            "--report",
            "junit",
            "--report-dir",
            str(REPORT_DIR),
        ],
        capture_output=True,
        text=True,
        timeout=1500,
        check=False,
    )
    summary = result.stdout[-6000:]
    assert result.returncode == 0, f"schemathesis found problems:\n{summary}\n{result.stderr[-2000:]}"
