"""The API's own figures for /metrics, and the ASGI middleware that counts requests and caps body sizes."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from prometheus_client import Counter, Gauge, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ingest import telemetry
from ingest.report import BatchReport

log = logging.getLogger("api.access")

REQUESTS = Counter(
    "infrawatch_http_requests_total",
    "HTTP requests answered, by route template and status",
    ["method", "route", "status"],
)
LATENCY = Histogram(
    "infrawatch_http_request_duration_seconds",
    "Time to answer HTTP requests, by route template",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 120),
)
EVALUATION_SECONDS = Histogram(
    "infrawatch_target_evaluation_seconds",
    "Time to evaluate plan targets' progress for an API request (GET /v1/progress, /v1/targets)",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
UPLOAD_BYTES = Counter("infrawatch_http_upload_bytes_total", "Bytes of CSV received through POST /v1/uploads")
READ_REPLICA_LAG = Gauge(
    "infrawatch_read_replica_lag_seconds", "Age of the last commit the read replica replayed, seen at /readyz"
)

#: The `source` label of HTTP-ingested observations in the ingest figures (infrawatch_ingest_*).
INGEST_SOURCE = "api"
_QUIET = {"/healthz", "/readyz", "/metrics"}


class _TooLarge(Exception):
    pass


def record_ingest(report: BatchReport, started: float) -> None:
    """Count one HTTP request's committed batch (JSON or CSV) in the ingest layer's shared figures."""
    telemetry.MESSAGES_RECEIVED.labels(INGEST_SOURCE).inc()
    telemetry.record_batch(report, INGEST_SOURCE, time.perf_counter() - started)
    telemetry.MESSAGES_ACKNOWLEDGED.labels(INGEST_SOURCE).inc()


def upload_batch(report: dict[str, Any]) -> BatchReport:
    """An upload report's totals as one batch, for the ingest figures."""
    return BatchReport(
        received=report["rows"],
        accepted=report["accepted"],
        duplicates=report["duplicates"],
        revised=report["revised"],
        rejected=report["rejected"],
    )


class ApiMiddleware:
    """Counts requests by route template and caps request bodies (uploads — the API's and the web console's —
    are exempt: they stream to disk under their own, larger cap)."""

    def __init__(
        self, app: ASGIApp, *, max_body_bytes: int, unlimited_paths: tuple[str, ...] = ("/v1/uploads", "/upload")
    ):
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.unlimited_paths = unlimited_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = {"code": 500, "sent": False}
        path: str = scope.get("path", "")

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = int(message["status"])
                status["sent"] = True
            await send(message)

        limited = not path.startswith(self.unlimited_paths)
        if limited:
            length = _content_length(scope)
            if length is not None and length > self.max_body_bytes:
                await _send_413(send, self.max_body_bytes)
                self._record(scope, 413, started)
                return
            received = 0

            async def counting_receive() -> Message:
                nonlocal received
                message = await receive()
                if message["type"] == "http.request":
                    received += len(message.get("body", b""))
                    if received > self.max_body_bytes:
                        raise _TooLarge
                return message

            inner_receive: Receive = counting_receive
        else:
            inner_receive = receive
        try:
            await self.app(scope, inner_receive, send_wrapper)
        except _TooLarge:
            if not status["sent"]:
                await _send_413(send, self.max_body_bytes)
                status["code"] = 413
        finally:
            self._record(scope, int(status["code"]), started)

    def _record(self, scope: Scope, code: int, started: float) -> None:
        route = scope.get("route")
        template = getattr(route, "path", None) or "unmatched"
        method = scope.get("method", "")
        elapsed = time.perf_counter() - started
        REQUESTS.labels(method, template, str(code)).inc()
        LATENCY.labels(method, template).observe(elapsed)
        if scope.get("path") not in _QUIET:
            principal = getattr(scope.get("state", {}).get("principal"), "label", None) if scope.get("state") else None
            log.info(
                "request",
                extra={
                    "event": "api.request",
                    "method": method,
                    "route": template,
                    "status": code,
                    "ms": round(elapsed * 1000, 1),
                    "key": principal,
                },
            )


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _send_413(send: Send, limit: int) -> None:
    body: dict[str, Any] = {
        "error": f"request body larger than {limit // (1024 * 1024)} MB; send fewer observations per request "
        "(or upload a CSV file through POST /v1/uploads)"
    }
    data = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": data})
