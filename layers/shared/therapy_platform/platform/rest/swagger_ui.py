"""Swagger UI for the API's OpenAPI document, served from the assets Powertools ships
(`aws_lambda_powertools/event_handler/openapi/swagger_ui/`): pinned with Powertools in the
shared layer's requirements, no CDN, so the page works with no internet at all.

The page loads only same-origin files (the bundle, its CSS and a small start script; no inline
script or style), which the Content-Security-Policy enforces: scripts, styles, fetches and
fonts from the API's own origin only; images also as data: URIs (Swagger UI's icons are).
Each file carries its Subresource Integrity hash, computed from the shipped bytes at cold start."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from aws_lambda_powertools.event_handler.openapi import swagger_ui

ASSET_DIR: Final = Path(swagger_ui.__file__).parent
CONTENT_SECURITY_POLICY: Final = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
# Relative URLs: the page works behind any stage prefix or custom domain. `openapi.json` resolves
# against the page (/api/v2/docs -> /api/v2/openapi.json); validatorUrl null: no call to the
# public validator.
START_SCRIPT: Final = """window.ui = SwaggerUIBundle({
  url: "openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  displayOperationId: true,
  validatorUrl: null
});
"""


@dataclass(frozen=True)
class Asset:
    """One file of the page: its body, media type and SRI hash."""

    body: str
    content_type: str

    @property
    def integrity(self) -> str:
        digest = hashlib.sha384(self.body.encode("utf-8")).digest()
        return "sha384-" + base64.b64encode(digest).decode("ascii")


def load_assets() -> dict[str, Asset]:
    """The page's files by name (the last part of /api/v2/docs/<name>)."""
    return {
        "swagger-ui-bundle.js": Asset(
            (ASSET_DIR / "swagger-ui-bundle.min.js").read_text(encoding="utf-8"),
            "text/javascript; charset=utf-8",
        ),
        "swagger-ui.css": Asset(
            (ASSET_DIR / "swagger-ui.min.css").read_text(encoding="utf-8"), "text/css; charset=utf-8"
        ),
        "swagger-init.js": Asset(START_SCRIPT, "text/javascript; charset=utf-8"),
    }


def page(title: str, assets: dict[str, Asset]) -> str:
    """The HTML page at /api/v2/docs; the files are at docs/<name> beside it."""
    css, bundle, start = assets["swagger-ui.css"], assets["swagger-ui-bundle.js"], assets["swagger-init.js"]
    return f"""<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>{title}</title>
  <link rel="stylesheet" href="docs/swagger-ui.css" integrity="{css.integrity}">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="docs/swagger-ui-bundle.js" integrity="{bundle.integrity}"></script>
  <script src="docs/swagger-init.js" integrity="{start.integrity}"></script>
</body>
</html>
"""
