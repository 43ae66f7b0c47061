"""The local dashboard server: the static page, /config.json and the WebSocket on one port.

`serve()` starts a `websockets` asyncio server. Plain HTTP GETs are answered in
`process_request` (static files from `static_dir`, `/config.json` from `page_config`);
a WebSocket upgrade on `/ws` is handed to the Hub. Everything binds 127.0.0.1 by default.
"""

from __future__ import annotations

import email.utils
import logging
import mimetypes
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import orjson
from websockets.asyncio.server import Server, ServerConnection
from websockets.asyncio.server import serve as ws_serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from acme_telemetry.local.hub import Hub

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
WS_PATH = "/ws"

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".txt": "text/plain; charset=utf-8",
    ".map": "application/json",
}

# The same policy CloudFront sends (data_stack/constructs/dashboard_site.py): the page
# loads only its own files and talks only to its own origin's WebSocket.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self' ws: wss:; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'; form-action 'none'"
)
SECURITY_HEADERS = (
    ("Content-Security-Policy", CSP),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
    ("Permissions-Policy", "camera=(), microphone=(), geolocation=()"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
)


def _response(status: HTTPStatus, body: bytes, content_type: str, cache: str = "no-cache") -> Response:
    headers = Headers(
        [
            ("Date", email.utils.formatdate(usegmt=True)),
            ("Connection", "close"),
            ("Content-Length", str(len(body))),
            ("Content-Type", content_type),
            ("Cache-Control", cache),
            *SECURITY_HEADERS,
        ]
    )
    return Response(status.value, status.phrase, headers, body)


def _text(status: HTTPStatus, text: str) -> Response:
    return _response(status, (text + "\n").encode(), "text/plain; charset=utf-8", cache="no-store")


def resolve_static(static_dir: Path, url_path: str) -> Path | None:
    """The file under static_dir for a URL path, or None (missing or outside the folder)."""
    path = unquote(url_path)
    if "\x00" in path or "\\" in path:
        return None
    rel = path.lstrip("/") or "index.html"
    if rel.endswith("/"):
        rel += "index.html"
    parts = Path(rel).parts
    if any(p in ("..", ".") or p.startswith(".") for p in parts):
        return None
    root = static_dir.resolve()
    candidate = (root / rel).resolve()
    if not candidate.is_relative_to(root) or not candidate.is_file():
        return None
    return candidate


def _find_static_dir(static_dir: Path) -> Path:
    if static_dir.is_absolute() or static_dir.exists():
        return static_dir
    return REPO_ROOT / static_dir  # the default "dashboard/dist" when started outside the repo root


def _same_origin(request: Request) -> bool:
    origin = request.headers.get("Origin")
    if origin is None:  # not a browser (bench, tests, CLI tools)
        return True
    return urlsplit(origin).netloc.lower() == (request.headers.get("Host") or "").lower()


async def serve(
    hub: Hub,
    host: str = "127.0.0.1",
    port: int = 8000,
    static_dir: Path = Path("dashboard/dist"),
    page_config: dict[str, Any] | None = None,
) -> Server:
    """Start the dashboard server; returns the running websockets Server (caller closes it).

    GET /            the page (static_dir/index.html), GET /<file> static files
    GET /config.json page_config (default: window length, environment "local", no URL,
                     so the page derives ws://<host>/ws)
    GET /ws          WebSocket: hello, the last 15 minutes of kpi, the latest feed, then live
    """
    static_dir = _find_static_dir(Path(static_dir))
    if not (static_dir / "index.html").is_file():
        log.warning("dashboard page not built (%s missing): run `node dashboard/build.mjs`", static_dir / "index.html")
    config = (
        page_config
        if page_config is not None
        else {
            "windowSeconds": hub.window_seconds,
            "rollingSeconds": hub.rolling_seconds,
            "heartbeatMs": hub.heartbeat_ms,
            "environment": "local",
        }
    )
    config_body = orjson.dumps(config)
    hub.bind()

    def process_request(connection: ServerConnection, request: Request) -> Response | None:
        path = urlsplit(request.path).path
        upgrade = "websocket" in (request.headers.get("Upgrade") or "").lower()
        if path == WS_PATH:
            if not upgrade:
                return _text(HTTPStatus.UPGRADE_REQUIRED, "this is the dashboard WebSocket; connect with ws://")
            if not _same_origin(request):
                return _text(HTTPStatus.FORBIDDEN, "cross-origin WebSocket refused")
            return None  # proceed with the handshake
        if upgrade:
            return _text(HTTPStatus.NOT_FOUND, f"the WebSocket is at {WS_PATH}")
        if path == "/config.json":
            return _response(HTTPStatus.OK, config_body, "application/json", cache="no-store")
        if path in ("/", "/index.html") and not (static_dir / "index.html").is_file():
            return _text(HTTPStatus.SERVICE_UNAVAILABLE, "dashboard page not built: run `node dashboard/build.mjs`")
        file = resolve_static(static_dir, path)
        if file is None:
            return _text(HTTPStatus.NOT_FOUND, "not found")
        ctype = CONTENT_TYPES.get(file.suffix.lower()) or mimetypes.guess_type(file.name)[0] or "application/octet-stream"
        return _response(HTTPStatus.OK, file.read_bytes(), ctype)

    async def handler(connection: ServerConnection) -> None:
        await hub.handle(connection)

    return await ws_serve(
        handler,
        host,
        port,
        process_request=process_request,
        compression=None,  # per-client deflate would cost CPU per message per client
        max_size=4096,  # pages send nothing we use
        server_header="acme-telemetry",
    )
