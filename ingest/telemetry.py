"""The ingest service's own figures as Prometheus metrics (served on /metrics by the API, or by a collector's
`--metrics-port`). Every name starts with `infrawatch_ingest_`; `source` is the transport ("mqtt", "api", "csv").

Collectors call `record_batch` after each committed batch; the MQTT collector also counts messages and
keeps the in-flight gauge (received but not yet acknowledged).
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from ingest.report import BatchReport

MESSAGES_RECEIVED = Counter(
    "infrawatch_ingest_messages_received_total",
    "Messages (MQTT publishes, API requests, files) received by a collector.",
    ["source"],
)
MESSAGES_ACKNOWLEDGED = Counter(
    "infrawatch_ingest_messages_acknowledged_total",
    "Messages acknowledged to the sender after their observations were committed or quarantined.",
    ["source"],
)
OBSERVATIONS = Counter(
    "infrawatch_ingest_observations_total",
    "Observations by outcome: accepted (new), duplicate (same value again), revised (new value), rejected.",
    ["source", "outcome"],
)
BATCHES = Counter(
    "infrawatch_ingest_batches_total",
    "Batches committed through the ingest pipeline.",
    ["source"],
)
COMMIT_SECONDS = Histogram(
    "infrawatch_ingest_commit_seconds",
    "Time to validate, store and commit one batch (seconds).",
    ["source"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
BATCH_OBSERVATIONS = Histogram(
    "infrawatch_ingest_batch_observations",
    "Observations per committed batch.",
    ["source"],
    buckets=(1, 10, 100, 500, 1000, 2500, 5000, 10000, 50000),
)
IN_FLIGHT = Gauge(
    "infrawatch_ingest_inflight_messages",
    "Messages received and not yet acknowledged.",
    ["source"],
)
DATABASE_RETRIES = Counter(
    "infrawatch_ingest_database_retries_total",
    "Batches retried because the database was unreachable or the transaction failed transiently.",
    ["source"],
)
DEAD_LETTERED = Counter(
    "infrawatch_ingest_dead_lettered_messages_total",
    "Messages acknowledged after neither storing nor quarantining them worked (logged whole at ERROR)",
    ["source"],
)
REJECTS_PUBLISHED = Counter(
    "infrawatch_ingest_rejects_published_total",
    "Rejection reports published back to the sender (MQTT infra/v1/{operator}/_rejects).",
    ["source"],
)
BROKER_CONNECTED = Gauge(
    "infrawatch_ingest_broker_connected",
    "1 while the collector is connected to its MQTT broker.",
    ["source"],
)


def record_batch(report: BatchReport, source: str, seconds: float) -> None:
    """Count one committed batch's observations by outcome and its commit latency."""
    OBSERVATIONS.labels(source, "accepted").inc(report.accepted)
    OBSERVATIONS.labels(source, "duplicate").inc(report.duplicates)
    OBSERVATIONS.labels(source, "revised").inc(report.revised)
    OBSERVATIONS.labels(source, "rejected").inc(report.rejected)
    BATCHES.labels(source).inc()
    COMMIT_SECONDS.labels(source).observe(seconds)
    BATCH_OBSERVATIONS.labels(source).observe(report.received)
