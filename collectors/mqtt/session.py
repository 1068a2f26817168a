"""The MQTT session: the paho client set up for a persistent session (fixed client id, clean start off,
session expiry, Receive Maximum), subscribed again on every connect, and the acknowledgement bookkeeping —
which connection a message arrived on, and PUBACKs sent, in order, only for messages of the current one."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from functools import partial
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from collectors.mqtt.config import CollectorConfig
from collectors.mqtt.messages import subscription
from collectors.mqtt.wire import BufferedClient, message_topic, send_pubacks
from core.settings import MqttEndpoint
from ingest import telemetry

log = logging.getLogger(__name__)
SOURCE = "mqtt"

#: (connection generation, packet id, qos) of a received message
Receipt = tuple[int, int, int]


class MqttSession:
    """Owns the paho client. `on_publish(topic, payload, mid, qos)` is called on paho's network thread for
    each received PUBLISH; `receipt` gives the acknowledgement to attach to its message, which
    `flush_acks` sends once the message is stored."""

    def __init__(
        self,
        config: CollectorConfig,
        on_publish: Callable[[bytes, bytes | bytearray, int, int], None],
        stopping: Callable[[], bool],
    ) -> None:
        self.config = config
        self.endpoint = MqttEndpoint(config.mqtt_url)
        self._on_publish = on_publish
        self._stopping = stopping
        self._disconnected = threading.Event()
        self._ack_lock = threading.Lock()
        self._generation = 0  # bumped on each connection; acks of older connections' messages are skipped
        self._acks: list[Receipt] = []  # acknowledged by the last delivery, not sent yet
        self.client = self._make_client()

    # -- life cycle --------------------------------------------------------------------------------

    def start(self) -> None:
        """Connect (in the background, reconnecting with backoff) and start paho's network thread."""
        c = self.config
        if c.mqtt5:
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = c.session_expiry_s
            props.ReceiveMaximum = c.receive_maximum
            self.client.connect_async(
                self.endpoint.host, self.endpoint.port, keepalive=c.keepalive_s, clean_start=False, properties=props
            )
        else:
            self.client.connect_async(self.endpoint.host, self.endpoint.port, keepalive=c.keepalive_s)
        self.client.loop_start()

    def close(self) -> None:
        """Disconnect after what is queued (the last acknowledgements) went out, and stop the network thread."""
        if self.client.is_connected():
            self._disconnected.clear()
            self.client.disconnect()
            self._disconnected.wait(5.0)
        self.client.loop_stop()

    # -- acknowledgements ----------------------------------------------------------------------------

    def receipt(self, mid: int, qos: int) -> Callable[[], None]:
        """The acknowledgement of a message received just now (network thread): queued by calling it."""
        return partial(self._ack, (self._generation, mid, qos))

    def _ack(self, receipt: Receipt) -> None:
        self._acks.append(receipt)  # the list is swapped by flush_acks

    def flush_acks(self) -> int:
        """Send the PUBACKs of the messages acknowledged since the last flush (after their commit), in order,
        as one write; returns how many acknowledgements were taken."""
        acks, self._acks = self._acks, []
        if not acks:
            return 0
        try:
            with self._ack_lock:  # a reconnect cannot slip in between the check and the PUBACKs
                # Received on an earlier connection: the broker has already sent it again on this one, and that
                # copy is acknowledged when it is stored; acknowledging the old packet id could hit a new message.
                send_pubacks(
                    self.client, [mid for generation, mid, qos in acks if qos == 1 and generation == self._generation]
                )
        except Exception:
            log.exception("acknowledgement failed", extra={"event": "ingest.ack_failed", "messages": len(acks)})
        return len(acks)

    def publish(self, topic: str, payload: str) -> None:
        self.client.publish(topic, payload, qos=1)

    # -- paho ----------------------------------------------------------------------------------------

    def _make_client(self) -> mqtt.Client:
        c = self.config
        if c.mqtt5:
            client = BufferedClient(
                CallbackAPIVersion.VERSION2, client_id=c.client_id, protocol=mqtt.MQTTv5, manual_ack=True
            )
        else:
            client = BufferedClient(
                CallbackAPIVersion.VERSION2,
                client_id=c.client_id,
                protocol=mqtt.MQTTv311,
                clean_session=False,
                manual_ack=True,
            )
        if self.endpoint.username:
            client.username_pw_set(self.endpoint.username, self.endpoint.password)
        if self.endpoint.tls:
            client.tls_set()
        client.reconnect_delay_set(c.reconnect_min_s, c.reconnect_max_s)
        client.max_inflight_messages_set(100)  # our own `_rejects` publications
        client.max_queued_messages_set(0)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        client.on_publish_received = self._on_publish
        return client

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason_code: Any, properties: Any) -> None:
        if reason_code.is_failure:
            log.error(
                "broker refused the connection; check INFRAWATCH_MQTT_URL's user and password",
                extra={"event": "mqtt.refused", "reason": str(reason_code)},
            )
            return
        with self._ack_lock:
            self._generation += 1
        telemetry.BROKER_CONNECTED.labels(SOURCE).set(1)
        log.info(
            "connected to broker",
            extra={
                "event": "mqtt.connected",
                "session_present": bool(flags.session_present),
                "client_id": self.config.client_id,
            },
        )
        if self.config.mqtt5:
            options = SubscribeOptions(qos=1, retainHandling=SubscribeOptions.RETAIN_SEND_IF_NEW_SUB)
            client.subscribe(subscription(self.config.share_group), options=options)
        else:
            client.subscribe(subscription(None), qos=1)

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason_code: Any, properties: Any) -> None:
        telemetry.BROKER_CONNECTED.labels(SOURCE).set(0)
        self._disconnected.set()
        if not self._stopping():
            log.warning(
                "disconnected from broker; reconnecting (unacknowledged messages will be delivered again)",
                extra={"event": "mqtt.disconnected", "reason": str(reason_code)},
            )

    def _on_subscribe(self, client: mqtt.Client, userdata: Any, mid: int, reason_codes: Any, properties: Any) -> None:
        for rc in reason_codes:
            if rc.is_failure:
                log.error(
                    "subscription refused; the service account needs read access to infra/v1/#",
                    extra={"event": "mqtt.subscribe_refused", "reason": str(rc)},
                )
            else:
                log.info("subscribed", extra={"event": "mqtt.subscribed", "qos": rc.value})

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        """paho's dispatch, for what BufferedClient leaves to paho (QoS 2, unusual packets)."""
        self._on_publish(message_topic(msg), msg.payload, msg.mid, msg.qos)
