"""Loopback receivers for trying notifications without the outside world: an HTTP webhook receiver that
records requests (and fails on demand) and an SMTP sink (aiosmtpd, a dev dependency). Used by the tests."""

from __future__ import annotations

import json
import threading
import urllib.parse
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    path: str
    query: dict[str, str]
    raw_query: str
    headers: dict[str, str]
    body: Any
    status: int


@dataclass
class WebhookReceiver:
    """An HTTP server on 127.0.0.1 recording every POST; `fail_next(n)` answers the next n with HTTP 500."""

    answer: dict[str, Any] = field(default_factory=lambda: {"errcode": 0, "errmsg": "ok"})
    requests: list[Received] = field(default_factory=list)
    _failures: int = 0
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> WebhookReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                try:
                    body: Any = json.loads(raw)
                except ValueError:
                    body = raw.decode("utf-8", "replace")
                split = urllib.parse.urlsplit(self.path)
                with receiver._lock:
                    status = 500 if receiver._failures > 0 else 200
                    if receiver._failures > 0:
                        receiver._failures -= 1
                    receiver.requests.append(
                        Received(
                            split.path,
                            dict(urllib.parse.parse_qsl(split.query)),
                            split.query,
                            dict(self.headers.items()),
                            body,
                            status,
                        )
                    )
                payload = json.dumps(receiver.answer if status == 200 else {"error": "failing on purpose"}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def fail_next(self, n: int) -> None:
        with self._lock:
            self._failures = n

    @property
    def delivered(self) -> list[Received]:
        """Requests answered with success."""
        with self._lock:
            return [r for r in self.requests if r.status == 200]

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()


class SmtpSink:
    """An aiosmtpd SMTP server on 127.0.0.1 keeping every message it receives."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        from core.embedded import free_port

        self.messages: list[Message] = []
        sink = self

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                sink.messages.append(message_from_bytes(envelope.content, policy=policy.default))
                return "250 OK"

        self.port = free_port()
        self._controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)

    def start(self) -> SmtpSink:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()
