"""The naive MQTT consumer the benchmark compares against: paho-mqtt, one INSERT per observation through the
`observation` view (its INSTEAD OF trigger finds or makes the series), a commit per message. Not part of the
product: it exists to show what the batching pipeline buys.

Naive but correct: each message is one `ingest_batch` row (its receipt time is what the view shows as
received_at). The view's trigger refuses an observation already stored (a QoS 1 redelivery) and ON CONFLICT
cannot reach through a view, so a message holding one is stored again row by row, each in a savepoint,
skipping those already there."""

from __future__ import annotations

import json
import signal
import sys
from datetime import datetime
from typing import Any

import paho.mqtt.client as mqtt
import psycopg

NEW_BATCH = "INSERT INTO ingest_batch (source, operator) VALUES ('naive', %s) RETURNING id"
INSERT = (
    "INSERT INTO observation (metric, region, operator, entity, ts, value, batch_id)"
    " VALUES (%(metric)s, %(region)s, %(operator)s, %(entity)s, %(ts)s, %(value)s, %(batch)s)"
)


def store(conn: psycopg.Connection, operator: str, rows: list[dict[str, Any]], skip_stored: bool) -> None:
    """One message in one transaction: its batch, then one INSERT per observation."""
    row = conn.execute(NEW_BATCH, (operator,)).fetchone()
    for params in rows:
        params["batch"] = row[0] if row else 0
        if not skip_stored:
            conn.execute(INSERT, params)
            continue
        try:
            with conn.transaction():  # a savepoint: the message's transaction is open
                conn.execute(INSERT, params)
        except psycopg.errors.UniqueViolation:
            pass  # already stored
    conn.commit()


def main(db_url: str, host: str, port: int) -> None:
    conn = psycopg.connect(db_url)

    def on_message(client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        _, _, operator, metric = message.topic.split("/", 3)
        payload = json.loads(message.payload)
        rows = [
            {
                "metric": metric,
                "region": int(item["region"]),
                "operator": operator,
                "entity": item.get("entity", ""),
                "ts": datetime.fromisoformat(item["ts"]),
                "value": float(item["value"]),
            }
            for item in (payload if isinstance(payload, list) else [payload])
        ]
        try:
            store(conn, operator, rows, skip_stored=False)
        except psycopg.errors.UniqueViolation:
            conn.rollback()
            store(conn, operator, rows, skip_stored=True)

    def on_connect(client: mqtt.Client, userdata: object, flags: object, reason: object, props: object) -> None:
        client.subscribe("infra/v1/+/+", qos=1)

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="naive-consumer", protocol=mqtt.MQTTv5)
    client.on_message = on_message
    client.on_connect = on_connect
    client.connect(host, port)

    def _stop(*_: object) -> None:
        client.disconnect()

    signal.signal(signal.SIGTERM, _stop)
    client.loop_forever()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
