"""The live page: the annotated video as MJPEG at /stream.mjpg, the live figures at /stats.json, and a page at /
that shows both, for people who check a camera on a Pi from a laptop and would rather look than read.

The standard library's threading HTTP server: three read-only paths, one thread per viewer, nothing to install
on the device, and small enough to read in one sitting. It binds to 127.0.0.1 unless told otherwise; bound to
any other address it requires the token given on the command line (``?token=`` or an ``Authorization: Bearer``
header), compared in constant time. Anything else is 404; a wrong or missing token is 403.
"""
from __future__ import annotations

import errno
import hmac
import html
import io
import ipaddress
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from edgelite.runtime.errors import InputError

PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>edgelite live</title>
<style>body{font-family:sans-serif;margin:1em;background:#111;color:#eee}img{max-width:100%;border:1px solid #444}
pre{font-size:14px}</style></head><body><h3>edgelite live: SOURCE</h3><img id="video" alt="live video">
<pre id="stats">waiting for figures...</pre><script>
const token = new URLSearchParams(location.search).get("token") || "";
const q = token ? "?token=" + encodeURIComponent(token) : "";
document.getElementById("video").src = "/stream.mjpg" + q;
async function tick() {
  try {
    const s = await (await fetch("/stats.json" + q)).json();
    document.getElementById("stats").textContent =
      `frames read ${s.frames_read}, processed ${s.processed}, dropped ${s.dropped}\\n` +
      `${s.fps.toFixed(1)} fps, latency p50 ${s.latency_ms.p50} ms, p95 ${s.latency_ms.p95} ms`;
  } catch (e) {}
  setTimeout(tick, 500);
}
tick();
</script></body></html>"""


class UsageError(ValueError):
    """--serve was given an address that needs what was not given (exit 2)."""


def parse_address(text: str, token: str | None) -> tuple[str, int]:
    """HOST:PORT, where a host other than loopback needs a token."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) < 65536 or not host:
        raise UsageError(f"--serve {text!r}: give HOST:PORT, e.g. 127.0.0.1:8080")
    host = host.strip("[]")
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        raise UsageError(f"--serve {text!r}: the host must be an IP address or localhost") from None
    if not loopback and not token:
        raise UsageError(f"--serve {text!r}: a page on an address other than loopback needs --token")
    return host, int(port)


class LivePage:
    """Serves the newest annotated frame and figures; ``publish`` updates them, ``close`` ends every viewer."""

    def __init__(self, address: str, token: str | None = None, title: str = ""):
        host, port = parse_address(address, token)
        self.token, self.title = token, title
        self._cond = threading.Condition()
        self._jpeg: bytes | None = None
        self._serial = 0
        self._stats: dict = {}
        self._closing = False
        try:
            self.server = ThreadingHTTPServer((host, port), _handler(self))
        except OSError as exc:
            why = "already in use" if exc.errno == errno.EADDRINUSE else (exc.strerror or str(exc))
            raise InputError(f"--serve {address}: {why}") from None
        self.server.daemon_threads = True
        self.address = f"http://{host}:{self.server.server_address[1]}/" + (f"?token={token}" if token else "")
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="edgelite-live-page", daemon=True)
        self._thread.start()

    def publish(self, picture, stats: dict) -> None:
        buffer = io.BytesIO()
        picture.save(buffer, "JPEG", quality=80)
        with self._cond:
            self._jpeg, self._stats, self._serial = buffer.getvalue(), stats, self._serial + 1
            self._cond.notify_all()

    def next_frame(self, seen: int, timeout: float = 1.0) -> tuple[bytes | None, int]:
        with self._cond:
            if self._serial == seen and not self._closing:
                self._cond.wait(timeout)
            return (self._jpeg if self._serial != seen else None), self._serial

    def stats(self) -> dict:
        with self._cond:
            return dict(self._stats)

    @property
    def closing(self) -> bool:
        return self._closing

    def allowed(self, query: str, headers) -> bool:
        if not self.token:
            return True
        given = (parse_qs(query).get("token") or [""])[0]
        bearer = headers.get("Authorization", "")
        given = given or (bearer[7:] if bearer.startswith("Bearer ") else "")
        return hmac.compare_digest(given.encode(), self.token.encode())

    def close(self) -> None:
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)


def _handler(page: LivePage) -> type:
    """The request handler class bound to ``page`` (http.server instantiates one per request)."""
    return type("LivePageHandler", (_Handler,), {"page": page})


class _Handler(BaseHTTPRequestHandler):
    page: LivePage

    def do_GET(self):  # noqa: N802 - http.server's protocol
        parts = urlsplit(self.path)
        if parts.path not in ("/", "/stream.mjpg", "/stats.json"):
            return self._send(404, "text/plain", b"not found\n")
        if not self.page.allowed(parts.query, self.headers):
            return self._send(403, "text/plain", b"a valid token is required\n")
        if parts.path == "/":
            return self._send(200, "text/html; charset=utf-8", PAGE.replace("SOURCE", html.escape(self.page.title)).encode())
        if parts.path == "/stats.json":
            return self._send(200, "application/json", json.dumps(self.page.stats()).encode())
        return self._mjpeg()

    def _send(self, code: int, kind: str, body: bytes) -> None:
        self.send_response(code)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def _mjpeg(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        seen = -1
        try:
            while not self.page.closing:
                jpeg, seen = self.page.next_frame(seen)
                if jpeg is None:
                    continue
                self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: " +
                                 str(len(jpeg)).encode() + b"\r\n\r\n" + jpeg + b"\r\n")
        except (BrokenPipeError, ConnectionResetError):
            return  # the viewer left

    def log_message(self, format, *args):  # noqa: A002 - http.server's signature
        """Quiet: the page is a view, not a log."""
