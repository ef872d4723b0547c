"""Swagger UI (/api/v2/docs) renders every operation of the API in headless Chromium with no
internet: the api_docs handler is served by a small local HTTP server (each request becomes an
API Gateway event, as LocalStack would send it), Chromium can resolve no other host, and the
page's Content-Security-Policy allows its own origin only. No deployed stack is needed.

The same check against the deployed stack is tests/e2e/test_swagger_ui.py."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from support import FakeLambdaContext, api_event, load_function
from swagger_ui_browser import render_docs, screenshot

ROOT = Path(__file__).resolve().parents[2]
DOCUMENT = json.loads((ROOT / "functions" / "api_docs" / "openapi.json").read_text())


class _Server(ThreadingHTTPServer):
    requested: list[str]


def _serve_handler(handler: Any) -> type[BaseHTTPRequestHandler]:
    class Gateway(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            assert isinstance(self.server, _Server)
            self.server.requested.append(self.path)
            response = handler.lambda_handler(api_event("GET", self.path, user=None), FakeLambdaContext())
            body = str(response.get("body") or "").encode("utf-8")
            self.send_response(int(response["statusCode"]))
            for name, values in (response.get("multiValueHeaders") or {}).items():
                for value in values:
                    self.send_header(name, str(value))
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Gateway


@pytest.fixture(scope="module")
def docs_server() -> Iterator[_Server]:
    server = _Server(("127.0.0.1", 0), _serve_handler(load_function("api_docs")))
    server.requested = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _url(server: _Server) -> str:
    host, port = server.server_address[:2]
    return f"http://{host!s}:{port}/api/v2/docs"


def test_swagger_ui_renders_every_operation_offline(docs_server: _Server, tmp_path: Path) -> None:
    rendered = render_docs(_url(docs_server), tmp_path / "profile")
    expected = sorted(op["operationId"] for methods in DOCUMENT["paths"].values() for op in methods.values())
    assert sorted(rendered.operation_ids) == expected
    assert rendered.tags == {tag["name"] for tag in DOCUMENT["tags"]}
    assert "Register a waiting patient" in rendered.dom  # a summary, as a frontend developer reads it
    assert "Refused to" not in rendered.log, "the Content-Security-Policy blocked part of the page"
    # Everything came from this origin: the page, its three files and the document.
    assert set(docs_server.requested) - {"/favicon.ico"} == {
        "/api/v2/docs",
        "/api/v2/docs/swagger-ui-bundle.js",
        "/api/v2/docs/swagger-ui.css",
        "/api/v2/docs/swagger-init.js",
        "/api/v2/openapi.json",
    }


def test_the_rendered_page_is_not_blank(docs_server: _Server, tmp_path: Path) -> None:
    png = screenshot(_url(docs_server), tmp_path / "profile", tmp_path / "docs.png")
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    # A blank 1280x2000 page compresses to a few kilobytes; the rendered operations do not.
    assert len(png) > 40_000, len(png)
