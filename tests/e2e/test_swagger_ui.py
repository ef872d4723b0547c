"""Swagger UI of the deployed stack (/api/v2/docs through LocalStack's API Gateway and the
ApiDocsFunction) renders every operation in headless Chromium with no internet: only the API's
own host resolves, and the Content-Security-Policy allows its own origin only."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests

from swagger_ui_browser import render_docs
from therapy_platform.platform.rest import swagger_ui

pytestmark = pytest.mark.e2e


def test_the_deployed_swagger_ui_renders_every_operation_offline(base_url: str, tmp_path: Path) -> None:
    page = requests.get(f"{base_url}/api/v2/docs", timeout=60)
    assert page.status_code == 200, page.text
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    bundle = requests.get(f"{base_url}/api/v2/docs/swagger-ui-bundle.js", timeout=60)
    shipped = (swagger_ui.ASSET_DIR / "swagger-ui-bundle.min.js").read_text(encoding="utf-8")
    assert bundle.status_code == 200 and bundle.text == shipped  # the Powertools asset, unchanged
    document = requests.get(f"{base_url}/api/v2/openapi.json", timeout=60).json()

    rendered = render_docs(f"{base_url}/api/v2/docs", tmp_path / "profile")

    expected = sorted(op["operationId"] for methods in document["paths"].values() for op in methods.values())
    assert sorted(rendered.operation_ids) == expected
    assert "Refused to" not in rendered.log, "the Content-Security-Policy blocked part of the page"
