"""The MQTT collector's settings: broker and database, batching, flow-control bounds and session lifetime."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class CollectorConfig:
    mqtt_url: str
    database_url: str
    #: Fixed, so the broker keeps our session (and the messages queued for it) across restarts.
    client_id: str = "infrawatch-ingest"
    share_group: str | None = None
    #: Flush a batch at this many observations ...
    batch_observations: int = 20000
    #: ... or this long after its first message arrived.
    batch_interval_s: float = 0.2
    #: MQTT 5 Receive Maximum: unacknowledged messages the broker may have out to us.
    receive_maximum: int = 40000
    #: Bytes of received, unstored payload held in memory before intake pauses.
    max_buffered_bytes: int = 64 * 1024 * 1024
    session_expiry_s: int = 86400
    keepalive_s: int = 30
    reconnect_min_s: int = 1
    reconnect_max_s: int = 30
    #: After SIGTERM, how long to keep retrying an unreachable database before exiting without acknowledging.
    shutdown_grace_s: float = 10.0
    #: "5", or "3.1.1" for brokers without MQTT 5 (the pure-Python amqtt fallback): a persistent session
    #: (clean session off) without session expiry, Receive Maximum or shared subscriptions.
    protocol: str = "5"

    @property
    def mqtt5(self) -> bool:
        return self.protocol != "3.1.1"
