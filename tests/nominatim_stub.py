"""A local HTTP server that speaks Nominatim's JSON (/search and /reverse, format=json), for
exercising the real Nominatim client: known places, scripted failures (429, 5xx, malformed
bodies) and slow answers. Listens on 127.0.0.1 only, on a free port; every request is recorded
with its arrival time so tests can check pacing and retries."""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

LICENCE = "Data © OpenStreetMap contributors, ODbL 1.0. http://osm.org/copyright"


def place(
    *,
    lat: float,
    lon: float,
    road: str,
    house_number: str | None,
    postcode: str,
    city: str,
    place_rank: int = 30,
) -> dict[str, Any]:
    """A place as Nominatim's format=json with addressdetails=1 renders it."""
    address = {
        "road": road,
        "postcode": postcode,
        "city": city,
        "country": "Deutschland",
        "country_code": "de",
    }
    if house_number:
        address["house_number"] = house_number
    name = f"{road} {house_number}" if house_number else road
    return {
        "place_id": abs(hash((lat, lon))) % 10**9,
        "licence": LICENCE,
        "osm_type": "way",
        "osm_id": abs(hash((road, city))) % 10**9,
        "lat": f"{lat:.7f}",
        "lon": f"{lon:.7f}",
        "class": "building" if house_number else "highway",
        "type": "yes" if house_number else "residential",
        "place_rank": place_rank,
        "importance": 0.3,
        "addresstype": "building" if house_number else "road",
        "name": name,
        "display_name": f"{name}, {city}, {postcode}, Deutschland",
        "address": address,
        "boundingbox": [
            f"{lat - 0.0005:.7f}",
            f"{lat + 0.0005:.7f}",
            f"{lon - 0.0005:.7f}",
            f"{lon + 0.0005:.7f}",
        ],
    }


DOMHOF = place(
    lat=50.7747504, lon=6.0839254, road="Domhof", house_number="1", postcode="52062", city="Aachen"
)
INVALIDENSTRASSE = place(
    lat=52.5305400, lon=13.3836400, road="Invalidenstraße", house_number="43", postcode="10115", city="Berlin"
)


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # JSON-encoded unless it is bytes
    delay: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class RecordedRequest:
    path: str
    params: dict[str, str]
    headers: dict[str, str]
    at: float  # time.monotonic() on arrival


class NominatimStub:
    """Answers from `places` unless a scripted reply is queued for the path (FIFO)."""

    def __init__(self, places: list[dict[str, Any]] | None = None) -> None:
        self.places = list(places if places is not None else [DOMHOF, INVALIDENSTRASSE])
        self.requests: list[RecordedRequest] = []
        self._script: dict[str, deque[Reply]] = {"/search": deque(), "/reverse": deque()}
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    @property
    def domain(self) -> str:
        host, port = self._server.server_address[:2]
        return f"{host!s}:{port}"

    def queue(self, path: str, *replies: Reply) -> None:
        with self._lock:
            self._script[path].extend(replies)

    def requests_to(self, path: str) -> list[RecordedRequest]:
        with self._lock:
            return [request for request in self.requests if request.path == path]

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    # ------------------------------------------------------------------ answers

    def _search(self, params: dict[str, str]) -> list[dict[str, Any]]:
        street = params.get("street", params.get("q", "")).casefold()
        postcode = params.get("postalcode")
        for candidate in self.places:
            address = candidate["address"]
            name = f"{address['road']} {address.get('house_number', '')}".strip().casefold()
            if street and street.startswith(name.split(" ")[0]) and postcode in (None, address["postcode"]):
                return [candidate]
        return []

    def _reverse(self, params: dict[str, str]) -> dict[str, Any]:
        lat, lon = float(params["lat"]), float(params["lon"])
        for candidate in self.places:
            if abs(float(candidate["lat"]) - lat) < 0.001 and abs(float(candidate["lon"]) - lon) < 0.001:
                return candidate
        return {"error": "Unable to geocode"}

    def _reply(self, path: str, params: dict[str, str]) -> Reply:
        with self._lock:
            script = self._script.get(path)
            if script:
                return script.popleft()
        if path == "/search":
            return Reply(body=self._search(params))
        if path == "/reverse":
            return Reply(body=self._reverse(params))
        return Reply(status=404, body={"error": "unknown path"})

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urlsplit(self.path)
                params = {key: values[-1] for key, values in parse_qs(url.query).items()}
                with stub._lock:
                    stub.requests.append(
                        RecordedRequest(url.path, params, dict(self.headers.items()), time.monotonic())
                    )
                reply = stub._reply(url.path, params)
                if reply.delay:
                    time.sleep(reply.delay)
                payload = reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body).encode()
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", "application/json; charset=utf-8")
                    self.send_header("Content-Length", str(len(payload)))
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up waiting (timeout tests)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler
