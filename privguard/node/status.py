"""A small read-only HTTP status endpoint on loopback: GET /status returns JSON (no PHI)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def start_status_server(host: str, port: int, status: Callable[[], dict[str, Any]]) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.rstrip("/") not in ("/status", ""):
                self.send_error(404)
                return
            body = json.dumps(status(), indent=2).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="privguard-status", daemon=True).start()
    return server


def fetch_status(host: str, port: int, timeout: float = 5.0) -> dict[str, Any]:
    from urllib.request import urlopen

    with urlopen(f"http://{host}:{port}/status", timeout=timeout) as resp:
        data: dict[str, Any] = json.loads(resp.read())
    return data
