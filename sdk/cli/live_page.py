"""The live page: the annotated video as MJPEG at /stream.mjpg, the live figures at /stats.json, and a page at /
that shows both, for people who check a camera on a Pi from a laptop and would rather look than read.

A small server on the standard library's asyncio streams, one thread for all connections: an idle or slow
client costs a socket and a few kilobytes, not a thread (the threading server it replaces held a thread per
connection forever, and 204 idle connections ended a run under a 32-bit address space). Its rules, each a
constant below:

- at most ``MAX_CONNECTIONS`` sockets; when full, the connection that has waited longest without sending its
  request is closed to make room, so idle connections cannot lock viewers out;
- a request's line and headers must arrive within ``HEADER_TIMEOUT`` seconds and ``HEADER_BYTES`` bytes;
- at most ``viewers`` video viewers at once (503 beyond), and a viewer that does not take a frame within
  ``WRITE_TIMEOUT`` seconds is dropped;
- only GET on the three paths: another method is 405, another path 404, every answer plain text, no HTML
  error page; every response closes its connection (no keep-alive to hold);
- a socket error is counted (``errors`` in /stats.json), never printed.

It binds to 127.0.0.1 unless told otherwise (``[::1]`` works too); bound to any other address it requires a
token of at least ``MIN_TOKEN`` characters (``?token=`` or an ``Authorization: Bearer`` header, compared in
constant time; give it through ``EDGELITE_LIVE_TOKEN`` to keep it out of ``ps``). Plain HTTP: see
docs/security.md for what to put in front of it.
"""
from __future__ import annotations

import asyncio
import collections
import contextlib
import errno
import hmac
import html
import io
import ipaddress
import json
import socket
import threading
from urllib.parse import parse_qs, urlsplit

from edgelite.cli.limits import MIN_TOKEN, VIEWERS
from edgelite.runtime.errors import InputError

MAX_CONNECTIONS = 64     # sockets open at once, of every kind
HEADER_TIMEOUT = 5.0     # seconds for a request's line and headers
HEADER_BYTES = 8192      # the most a request's line and headers may take
WRITE_TIMEOUT = 10.0     # seconds a viewer may take to accept a frame
PATHS = ("/", "/stream.mjpg", "/stats.json")

PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>edgelite live</title>
<style>body{font-family:sans-serif;margin:1em;background:#111;color:#eee}img{max-width:100%;border:1px solid #444}
pre{font-size:14px}</style></head><body><h3>edgelite live: SOURCE</h3><img id="video" alt="live video">
<pre id="stats">waiting for figures...</pre><script>
const token = new URLSearchParams(location.search).get("token") || "";
const q = token ? "?token=" + encodeURIComponent(token) : "";
document.getElementById("video").src = "/stream.mjpg" + q;
const ms = (v) => v === null || v === undefined ? "-" : Number(v).toFixed(1);
async function tick() {
  try {
    const s = await (await fetch("/stats.json" + q)).json();
    const r = s.recent || {}, l = s.latency_ms || {};
    const stages = Object.entries(s.stages_ms || {}).map(([k, v]) => `${k} ${ms(v)}`).join(", ");
    const now = Object.entries(s.current || {}).map(([k, v]) => `${k} ${v}`).join(", ");
    document.getElementById("stats").textContent =
      `${s.state}: frames read ${s.frames_read}, processed ${s.processed}, dropped ${s.dropped}\\n` +
      `last ${r.seconds || 0} s: ${ms(r.fps)} fps, latency p50 ${ms(r.p50)} ms, p95 ${ms(r.p95)} ms\\n` +
      `whole run: ${ms(s.fps)} fps, latency p50 ${ms(l.p50)} ms, p95 ${ms(l.p95)} ms\\n` +
      `stages (median ms): ${stages}\\nnow: ${now || "nothing"}`;
  } catch (e) {}
  setTimeout(tick, 500);
}
tick();
</script></body></html>"""


class UsageError(ValueError):
    """--serve was given an address that needs what was not given (exit 2)."""


def parse_address(text: str, token: str | None) -> tuple[str, int]:
    """HOST:PORT (``[::1]:PORT`` for IPv6), where a host other than loopback needs a token of MIN_TOKEN
    characters or more."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) < 65536 or not host:
        raise UsageError(f"--serve {text!r}: give HOST:PORT, e.g. 127.0.0.1:8080 or [::1]:8080")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        raise UsageError(f"--serve {text!r}: the host must be an IP address or localhost") from None
    if not loopback and not token:
        raise UsageError(f"--serve {text!r}: a page on an address other than loopback needs --token "
                         "(or EDGELITE_LIVE_TOKEN)")
    if not loopback and token is not None and len(token) < MIN_TOKEN:
        raise UsageError(f"--serve {text!r}: a token off loopback needs at least {MIN_TOKEN} characters "
                         f"(this one has {len(token)}); e.g. python3 -c 'import secrets; print(secrets.token_urlsafe())'")
    return host, int(port)


class LivePage:
    """Serves the newest annotated frame and figures; ``publish`` updates them (from any thread), ``close`` ends
    every connection and the server's thread."""

    def __init__(self, address: str, token: str | None = None, title: str = "", viewers: int = VIEWERS):
        host, port = parse_address(address, token)
        self.token, self.title, self.max_viewers = token, title, viewers
        self._lock = threading.Lock()
        self._jpeg: bytes | None = None
        self._serial = 0
        self._stats: dict = {}
        self.errors = self.refused = self.viewers = 0
        self._waiting: collections.OrderedDict = collections.OrderedDict()  # writers yet to send a request
        self._open: set = set()
        self._loop = asyncio.new_event_loop()
        self._loop.set_exception_handler(lambda loop, context: self._count_error())
        self._fresh: asyncio.Event | None = None
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        listener = socket.socket(family, socket.SOCK_STREAM)
        try:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind((host, port))
            listener.listen(128)
            listener.setblocking(False)
            self.server = self._loop.run_until_complete(self._start(listener))
        except OSError as exc:
            listener.close()
            self._loop.close()
            why = "already in use" if exc.errno == errno.EADDRINUSE else (exc.strerror or str(exc))
            raise InputError(f"--serve {address}: {why}") from None
        shown = f"[{host}]" if family == socket.AF_INET6 else host
        self.address = f"http://{shown}:{listener.getsockname()[1]}/"  # the token is the user's: never printed
        self._thread = threading.Thread(target=self._loop.run_forever, name="edgelite-live-page", daemon=True)
        self._thread.start()

    async def _start(self, listener: socket.socket) -> asyncio.base_events.Server:
        self._fresh = asyncio.Event()
        return await asyncio.start_server(self._client, sock=listener, limit=HEADER_BYTES)

    # -- what the stream hands over (any thread) ----------------------------------------------------------
    def publish(self, picture, stats: dict) -> None:
        """The newest frame and figures. The frame is encoded only while someone watches the video: encoding every
        frame for nobody was a JPEG per processed frame on the stream's own thread; a viewer who arrives gets the
        next frame."""
        jpeg = None
        if self.viewers:
            buffer = io.BytesIO()
            picture.save(buffer, "JPEG", quality=80)
            jpeg = buffer.getvalue()
        with self._lock:
            self._jpeg, self._stats, self._serial = jpeg, stats, self._serial + 1
        with contextlib.suppress(RuntimeError):  # the loop already ended: nobody is waiting
            self._loop.call_soon_threadsafe(self._wake)

    def _wake(self) -> None:
        """Wakes every viewer waiting for a frame (the loop's thread): the event they hold is set, and the next
        waiters get a fresh one."""
        assert self._fresh is not None
        self._fresh.set()
        self._fresh = asyncio.Event()

    def stats(self) -> dict:
        with self._lock:
            data = dict(self._stats)
        data["page"] = {"viewers": self.viewers, "connections": len(self._open), "errors": self.errors,
                        "refused": self.refused}
        return data

    def _count_error(self) -> None:
        self.errors += 1

    # -- one connection (the loop's thread) -----------------------------------------------------------------
    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._make_room()
        self._open.add(writer)
        self._waiting[writer] = None
        try:
            try:
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), HEADER_TIMEOUT)
            finally:
                self._waiting.pop(writer, None)
            await self._answer(head, writer)
        except (asyncio.TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError,
                ConnectionError, OSError):
            self._count_error()
        except asyncio.CancelledError:
            pass
        finally:
            self._open.discard(writer)
            writer.close()

    def _make_room(self) -> None:
        """At MAX_CONNECTIONS, closes the connection that has waited longest without sending a request."""
        while len(self._open) >= MAX_CONNECTIONS:
            if not self._waiting:
                return  # every connection is a viewer or mid-answer; viewers are capped well below the limit
            oldest, _ = self._waiting.popitem(last=False)
            oldest.transport.abort()
            self._open.discard(oldest)
            self.refused += 1

    async def _answer(self, head: bytes, writer: asyncio.StreamWriter) -> None:
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/"):
            return await self._send(writer, 400, "a request line is METHOD PATH HTTP/1.1\n")
        method, target = parts[0], urlsplit(parts[1])
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
        if target.path not in PATHS:
            return await self._send(writer, 404, "not found\n")
        if method != "GET":
            return await self._send(writer, 405, "only GET\n", {"Allow": "GET"})
        if not self.allowed(target.query, headers.get("authorization", "")):
            return await self._send(writer, 403, "a valid token is required\n")
        if target.path == "/":
            body = PAGE.replace("SOURCE", html.escape(self.title))
            return await self._send(writer, 200, body, kind="text/html; charset=utf-8")
        if target.path == "/stats.json":
            return await self._send(writer, 200, json.dumps(self.stats()), kind="application/json")
        if self.viewers >= self.max_viewers:
            return await self._send(writer, 503, f"{self.max_viewers} viewers already (--viewers)\n")
        self.viewers += 1
        try:
            await self._mjpeg(writer)
        finally:
            self.viewers -= 1

    async def _send(self, writer: asyncio.StreamWriter, code: int, body: str, extra: dict | None = None,
                    kind: str = "text/plain; charset=utf-8") -> None:
        data = body.encode()
        reason = {200: "OK", 400: "Bad Request", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
                  503: "Service Unavailable"}[code]
        fields = {"Content-Type": kind, "Content-Length": str(len(data)), "Cache-Control": "no-store",
                  "X-Content-Type-Options": "nosniff", "Connection": "close", **(extra or {})}
        writer.write(f"HTTP/1.1 {code} {reason}\r\n".encode() +
                     "".join(f"{k}: {v}\r\n" for k, v in fields.items()).encode() + b"\r\n" + data)
        await asyncio.wait_for(writer.drain(), WRITE_TIMEOUT)

    async def _mjpeg(self, writer: asyncio.StreamWriter) -> None:
        assert self._fresh is not None
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: multipart/x-mixed-replace; boundary=frame\r\n"
                     b"Cache-Control: no-store\r\nConnection: close\r\n\r\n")
        seen = -1
        while True:
            with self._lock:
                jpeg, serial = self._jpeg, self._serial
            if serial == seen or jpeg is None:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._fresh.wait(), 1.0)
                continue
            seen = serial
            writer.write(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: " + str(len(jpeg)).encode() +
                         b"\r\n\r\n" + jpeg + b"\r\n")
            await asyncio.wait_for(writer.drain(), WRITE_TIMEOUT)

    def allowed(self, query: str, authorization: str) -> bool:
        if not self.token:
            return True
        given = (parse_qs(query).get("token") or [""])[0]
        given = given or (authorization[7:] if authorization.startswith("Bearer ") else "")
        return hmac.compare_digest(given.encode(), self.token.encode())

    # -- ending --------------------------------------------------------------------------------------------
    def close(self) -> None:
        if self._loop.is_closed():
            return
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    async def _shutdown(self) -> None:
        self.server.close()
        for writer in list(self._open):
            writer.transport.abort()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
