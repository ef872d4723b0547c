"""A development OpenID Connect issuer on the loopback interface: what the API's authorizer needs
of an identity provider, and nothing more (no login, no users: `localcloud token` signs tokens
with the same key).

Run: python -m localcloud.identity_server --host 127.0.0.1 --port 8118 --key FILE

    GET /.well-known/openid-configuration   issuer, jwks_uri, the signing algorithm
    GET /.well-known/jwks.json              the public signing key(s) (JWKS)
    GET /_control/health                    {"status": "ok"}

The keys are read from the PEM file (made by localcloud.identity) at every JWKS request, so a
key rotated in `.state/identity/` is served at once. Only the standard library and PyJWT.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from localcloud.identity import ALGORITHM, public_jwks

log = logging.getLogger("localcloud.identity_server")


class IdentityServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], key_file: Path) -> None:
        super().__init__(address, IdentityHandler)
        self.key_file = key_file
        host, port = self.server_address[:2]
        self.issuer = f"http://{host!s}:{port}"


class IdentityHandler(BaseHTTPRequestHandler):
    server: IdentityServer

    def log_message(self, format: str, *args: Any) -> None:
        log.info("%s %s", self.address_string(), format % args)

    def _json(self, status: int, body: Any) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Cache-Control", "max-age=60")
        self.end_headers()
        self.wfile.write(payload)

    def do_GET(self) -> None:
        issuer = self.server.issuer
        if self.path == "/.well-known/openid-configuration":
            self._json(
                200,
                {
                    "issuer": issuer,
                    "jwks_uri": f"{issuer}/.well-known/jwks.json",
                    "id_token_signing_alg_values_supported": [ALGORITHM],
                    "subject_types_supported": ["public"],
                    "response_types_supported": ["id_token"],
                    "claims_supported": ["sub", "name", "roles", "iss", "aud", "exp", "nbf", "iat"],
                },
            )
        elif self.path == "/.well-known/jwks.json":
            self._json(200, public_jwks(self.server.key_file))
        elif self.path == "/_control/health":
            self._json(200, {"status": "ok", "issuer": issuer})
        else:
            self._json(404, {"error": "not_found", "message": f"no route GET {self.path}"})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m localcloud.identity_server", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8118)
    parser.add_argument("--key", type=Path, required=True, help="the PEM private signing key")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    server = IdentityServer((args.host, args.port), args.key)

    def stop(*_: object) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.info("identity provider %s (key %s)", server.issuer, args.key)
    server.serve_forever()
    server.server_close()
    log.info("stopped")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
