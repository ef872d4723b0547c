"""A local stand-in for the 116117 directory (Arztsuche) and the practices' websites.

Run: python -m localcloud.directory_server --host 127.0.0.1 --port 8117 [--data FILE | --entries N]

Serves answers in the directory's shape from a dataset made by localcloud.directory_data:
    GET /api/data?lat=&lon=&r=<km>&page=<n>  {"arztPraxisDatas": [...], "moreResults": bool},
                                             entries within r km, nearest first, 50 a page
    GET /robots.txt                          (default: Disallow: /intern/)
    GET /praxis/<id>/, /praxis/<id>/kontakt  the practice websites of the dataset

Control endpoints for tests and the demo (never part of the real directory):
    GET  /_control/health
    POST /_control/faults    [{"status": 429, "retry_after": "2", "delay": 1.5, "body": "...",
                               "headers": {"Location": "..."}, "path": "/api/data", "times": 1},
                              ...] answered in order to the next matching requests (slow
                              answers, 429, 5xx, broken JSON, redirects)
    POST /_control/robots    text/plain: the robots.txt to serve
    POST /_control/data      a dataset (JSON) replacing the current one
    GET  /_control/requests  every request so far: path, query, user agent, time, status
    POST /_control/reset     no faults, default robots.txt, empty request log
Only the standard library: the server starts in well under a second.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import signal
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Final
from urllib.parse import parse_qs, urlsplit

log = logging.getLogger("localcloud.directory_server")

DEFAULT_ROBOTS: Final = "User-agent: *\nDisallow: /intern/\n"
PAGE_SIZE: Final = 50
BASE_PLACEHOLDER: Final = "{base}"


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6371.0088 * math.asin(min(1.0, math.sqrt(a)))


class DirectoryState:
    """The dataset, the fault script and the request log, shared by the handler threads."""

    def __init__(self, dataset: dict[str, Any], page_size: int = PAGE_SIZE) -> None:
        self.lock = threading.Lock()
        self.page_size = page_size
        self.robots = DEFAULT_ROBOTS
        self.faults: list[dict[str, Any]] = []
        self.requests: list[dict[str, Any]] = []
        self.load(dataset)

    def load(self, dataset: dict[str, Any]) -> None:
        with self.lock:
            self.entries = [
                (float(item["at"][0]), float(item["at"][1]), item["entry"]) for item in dataset["entries"]
            ]
            self.websites = dict(dataset.get("websites", {}))

    def reset(self) -> None:
        with self.lock:
            self.faults.clear()
            self.requests.clear()
            self.robots = DEFAULT_ROBOTS

    def next_fault(self, path: str) -> dict[str, Any] | None:
        with self.lock:
            for index, fault in enumerate(self.faults):
                if path.startswith(str(fault.get("path", ""))):
                    times = int(fault.get("times", 1))
                    if times <= 1:
                        self.faults.pop(index)
                    else:
                        fault["times"] = times - 1
                    return dict(fault)
        return None

    def search(self, lat: float, lon: float, radius: float, page: int) -> tuple[list[Any], bool]:
        with self.lock:
            entries = list(self.entries)
        hits = sorted(
            (haversine_km(lat, lon, e_lat, e_lon), index, entry)
            for index, (e_lat, e_lon, entry) in enumerate(entries)
            if haversine_km(lat, lon, e_lat, e_lon) <= radius
        )
        start = page * self.page_size
        chunk = hits[start : start + self.page_size]
        result = []
        for distance, _, entry in chunk:
            if isinstance(entry, dict):
                entry = {**entry, "distance": round(distance, 2)}
            result.append(entry)
        return result, start + self.page_size < len(hits)


class DirectoryHandler(BaseHTTPRequestHandler):
    server: DirectoryServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)

    # -- plumbing ---------------------------------------------------------------------------------

    def _send(
        self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, value: Any, headers: dict[str, str] | None = None) -> None:
        self._send(
            status,
            json.dumps(value, ensure_ascii=False).encode("utf-8"),
            "application/json; charset=utf-8",
            headers,
        )

    def _record(self, status: int) -> None:
        parts = urlsplit(self.path)
        if parts.path.startswith("/_control/"):
            return
        with self.server.state.lock:
            self.server.state.requests.append(
                {
                    "path": parts.path,
                    "query": {key: values[0] for key, values in parse_qs(parts.query).items()},
                    "user_agent": self.headers.get("User-Agent", ""),
                    "at": getattr(self, "arrived", time.time()),
                    "status": status,
                }
            )

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    @property
    def base(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    # -- GET ----------------------------------------------------------------------------------------

    def do_GET(self) -> None:
        self.arrived = time.time()  # the log keeps when a request came, not when it was answered
        parts = urlsplit(self.path)
        if parts.path == "/_control/health":
            self._json(200, {"status": "ok", "entries": len(self.server.state.entries)})
            return
        if parts.path == "/_control/requests":
            with self.server.state.lock:
                self._json(200, list(self.server.state.requests))
            return
        fault = self.server.state.next_fault(parts.path)
        if fault is not None and self._fault(fault):
            return
        if parts.path == "/robots.txt":
            self._record(200)
            self._send(200, self.server.state.robots.encode("utf-8"), "text/plain; charset=utf-8")
        elif parts.path == "/api/data":
            self._search(parse_qs(parts.query))
        elif parts.path.startswith("/praxis/"):
            self._website(parts.path)
        else:
            self._record(404)
            self._json(404, {"error": "not found"})

    def _fault(self, fault: dict[str, Any]) -> bool:
        """Apply a scripted fault; True when it answered the request itself."""
        delay = float(fault.get("delay", 0))
        if delay:
            time.sleep(delay)
        status = fault.get("status")
        if status is None and "body" not in fault:
            return False  # only slow: answer normally
        headers = {"Retry-After": str(fault["retry_after"])} if "retry_after" in fault else {}
        headers.update({str(name): str(value) for name, value in dict(fault.get("headers", {})).items()})
        self._record(int(status or 200))
        body = str(fault.get("body", json.dumps({"error": "scripted fault"})))
        self._send(int(status or 200), body.encode("utf-8"), "application/json; charset=utf-8", headers)
        return True

    def _search(self, query: dict[str, list[str]]) -> None:
        try:
            lat, lon = float(query["lat"][0]), float(query["lon"][0])
            radius = float(query.get("r", ["10"])[0])
            page = int(query.get("page", ["0"])[0])
        except (KeyError, ValueError):
            self._record(400)
            self._json(400, {"error": "lat, lon (numbers), r (km) and page (integer) are expected"})
            return
        entries, more = self.server.state.search(lat, lon, radius, page)
        base = self.base
        text = json.dumps({"arztPraxisDatas": entries, "moreResults": more}, ensure_ascii=False)
        self._record(200)
        self._send(
            200, text.replace(BASE_PLACEHOLDER, base).encode("utf-8"), "application/json; charset=utf-8"
        )

    def _website(self, path: str) -> None:
        parts = [part for part in path.split("/") if part]
        site = self.server.state.websites.get(parts[1]) if len(parts) >= 2 else None
        page = "home" if len(parts) == 2 else parts[2]
        html = site.get(page) if site else None
        if html is None:
            self._record(404)
            self._send(404, b"<html><body>Nicht gefunden</body></html>", "text/html; charset=utf-8")
            return
        self._record(200)
        self._send(200, html.encode("utf-8"), "text/html; charset=utf-8")

    # -- POST (control) -----------------------------------------------------------------------------

    def do_POST(self) -> None:
        path = urlsplit(self.path).path
        body = self._body()
        state = self.server.state
        try:
            if path == "/_control/faults":
                faults = json.loads(body or b"[]")
                with state.lock:
                    state.faults.extend(faults if isinstance(faults, list) else [faults])
            elif path == "/_control/robots":
                with state.lock:
                    state.robots = body.decode("utf-8")
            elif path == "/_control/data":
                state.load(json.loads(body))
            elif path == "/_control/reset":
                state.reset()
            else:
                self._json(404, {"error": "not found"})
                return
        except (ValueError, KeyError, TypeError) as error:
            self._json(400, {"error": str(error)})
            return
        self._json(200, {"status": "ok"})


class DirectoryServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], state: DirectoryState) -> None:
        super().__init__(address, DirectoryHandler)
        self.state = state


def load_dataset(
    path: Path | None, entries: int, seed: int, prefixes: list[str] | None = None
) -> dict[str, Any]:
    if path is not None:
        return dict(json.loads(path.read_text(encoding="utf-8")))
    from localcloud.directory_data import DirectoryDataGenerator

    return DirectoryDataGenerator(seed, prefixes=prefixes or None).dataset(entries)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m localcloud.directory_server", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8117)
    parser.add_argument("--data", type=Path, default=None, help="a dataset file (localcloud.directory_data)")
    parser.add_argument("--entries", type=int, default=2000, help="without --data: generate this many")
    parser.add_argument("--seed", type=int, default=116117)
    parser.add_argument("--prefixes", default="", help="without --data: comma-separated postcode prefixes")
    parser.add_argument("--page-size", type=int, default=PAGE_SIZE)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    state = DirectoryState(
        load_dataset(args.data, args.entries, args.seed, [p for p in args.prefixes.split(",") if p]),
        args.page_size,
    )
    server = DirectoryServer((args.host, args.port), state)

    def stop(*_: object) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.info("directory on http://%s:%d with %d entries", args.host, args.port, len(state.entries))
    server.serve_forever()
    server.server_close()
    log.info("stopped")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
