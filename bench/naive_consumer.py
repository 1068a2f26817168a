"""The naive MQTT consumer the benchmark compares against: paho-mqtt, one INSERT per observation, a commit
per message. Not part of the product: it exists to show what the batching pipeline buys."""

from __future__ import annotations

import json
import signal
import sys
from datetime import datetime

import paho.mqtt.client as mqtt
import psycopg


def main(db_url: str, host: str, port: int) -> None:
    conn = psycopg.connect(db_url)
    stop = False

    def on_message(client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        _, _, operator, metric = message.topic.split("/", 3)
        payload = json.loads(message.payload)
        for item in payload if isinstance(payload, list) else [payload]:
            conn.execute(
                "INSERT INTO observation (metric, region, operator, entity, ts, value, batch_id)"
                " VALUES (%s, %s, %s, %s, %s, %s, 0) ON CONFLICT DO NOTHING",
                (metric, int(item["region"]), operator, item.get("entity", ""),
                 datetime.fromisoformat(item["ts"]), float(item["value"])),
            )
        conn.commit()

    def on_connect(client: mqtt.Client, userdata: object, flags: object, reason: object, props: object) -> None:
        client.subscribe("infra/v1/+/+", qos=1)

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="naive-consumer", protocol=mqtt.MQTTv5)
    client.on_message = on_message
    client.on_connect = on_connect
    client.connect(host, port)

    def _stop(*_: object) -> None:
        nonlocal stop
        stop = True
        client.disconnect()

    signal.signal(signal.SIGTERM, _stop)
    client.loop_forever()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
