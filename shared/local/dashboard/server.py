"""`totes dashboard`: a local web page over the warehouse and the pipeline's health.

The standard library's threading HTTP server, bound to 127.0.0.1 only; no account, no network:
the page, its script and Chart.js (vendored in `static/`, with its licence) are package data.

    /                 the page (static/index.html)
    /static/<name>    its script, style and Chart.js: only the files in static/, by exact name
    /api/data         the document shared/local/dashboard/data.py builds, read fresh each time

Called by `totes dashboard` (shared/local/cli.py) and tests/test_dashboard.py.
"""

from __future__ import annotations

import json
import threading
import webbrowser
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any

from shared.config import Settings
from shared.local.dashboard.data import collect
from shared.runtime.registry import redact

STATIC = resources.files("shared.local.dashboard") / "static"
TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css", ".md": "text/markdown"}


def _static(name: str) -> bytes | None:
    if "/" in name or name.startswith("."):
        return None
    resource = STATIC / name
    return resource.read_bytes() if resource.is_file() else None


class DashboardServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, settings: Settings, port: int = 0) -> None:
        self.settings = settings
        super().__init__(("127.0.0.1", port), _Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/"

    def start_in_thread(self) -> threading.Thread:
        thread = threading.Thread(target=self.serve_forever, name="totes-dashboard", daemon=True)
        thread.start()
        return thread


class _Handler(BaseHTTPRequestHandler):
    server: DashboardServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass  # quiet: the terminal shows only what the dashboard command prints

    def _send(self, status: HTTPStatus, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", f"{content_type}; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path in ("/", "/index.html"):
            page = _static("index.html")
            assert page is not None
            self._send(HTTPStatus.OK, page, "text/html")
        elif path.startswith("/static/"):
            name = path.removeprefix("/static/")
            body = _static(name)
            suffix = name[name.rfind(".") :] if "." in name else ""
            if body is None or suffix not in TYPES:
                self._send(HTTPStatus.NOT_FOUND, b"not found", "text/plain")
            else:
                self._send(HTTPStatus.OK, body, TYPES[suffix])
        elif path == "/api/data":
            try:
                document: dict[str, Any] = collect(self.server.settings)
                status = HTTPStatus.OK
            except Exception as exc:  # the page shows the reason; the server keeps serving
                message = redact(
                    f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}",
                    self.server.settings,
                )
                document, status = {"error": message}, HTTPStatus.SERVICE_UNAVAILABLE
            body = json.dumps(document, default=str).encode("utf-8")
            self._send(status, body, "application/json")
        else:
            self._send(HTTPStatus.NOT_FOUND, b"not found", "text/plain")


def serve(settings: Settings, port: int, open_browser: bool = False) -> None:
    """Serve until Ctrl-C / SIGTERM (the caller turns those into KeyboardInterrupt or SystemExit)."""
    server = DashboardServer(settings, port)
    print(
        f"totes dashboard: {server.url}  (warehouse {settings.require_warehouse().masked}; Ctrl-C stops it)"
    )
    print(f"  lake {settings.lake_root}", flush=True)
    if open_browser:
        webbrowser.open(server.url)
    try:
        server.serve_forever()
    finally:
        server.server_close()
