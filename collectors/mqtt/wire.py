"""The one place that reaches into paho-mqtt's internals: reading the socket in blocks, handing QoS 0/1
PUBLISH packets straight to the collector, and queueing many PUBACKs as one write.

Why: paho 2 reads each packet's fixed header one byte per recv() and handles one packet per select()
wake-up, builds property objects and matches every topic against per-filter callbacks for each message,
and queues one packet (and wakes its network thread once) per ack(). At tens of thousands of small
messages a second those costs dominate the network thread (docs/benchmarks.md); paho's public API offers
no way around them.

What it relies on (paho-mqtt 2.2, pinned in pyproject.toml; tests/test_mqtt_wire.py checks each point, so
an upgrade that changes one fails there, not in production):
- `Client._sock_recv(bufsize)` is the only way `_packet_read` reads the socket, and `Client._sock` is the
  socket (a new object after a reconnect);
- `Client.loop_read()` reads one packet per call when nothing is in flight, via `_packet_read`, which
  dispatches a complete PUBLISH to `Client._handle_publish()` with `_in_packet["command"]` (the fixed
  header's first byte) and `_in_packet["packet"]` (the variable header and payload);
- `Client._protocol` and `Client._manual_ack` hold the constructor's `protocol` and `manual_ack`;
- `Client._handle_on_message(message)` dispatches to `on_message`, `Client._send_puback(mid)` acks one;
- `Client._packet_queue(command, packet, mid, qos)` queues raw bytes for the network thread to write;
- `MQTTMessage._topic` is the topic's bytes as received.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Callable
from functools import lru_cache

import paho.mqtt.client as mqtt

_PUBACK = 0x40
_READ_BLOCK = 64 * 1024


class BufferedClient(mqtt.Client):
    """paho's client, reading the socket in 64 KiB blocks and handling every complete packet a read brought."""

    _rbuf: bytes = b""
    _rpos: int = 0
    _rsock: object = None
    #: Called with (topic bytes, payload, packet id, qos) for each QoS 0/1 PUBLISH instead of paho's
    #: on_message dispatch (which matches every topic against the per-filter callbacks we never add).
    on_publish_received: Callable[[bytes, bytes, int, int], None] | None = None

    def _sock_recv(self, bufsize: int) -> bytes:
        if self._sock is not self._rsock:  # a new connection: nothing buffered belongs to it
            self._rsock, self._rbuf, self._rpos = self._sock, b"", 0
        if self._rpos >= len(self._rbuf):
            data = super()._sock_recv(max(bufsize, _READ_BLOCK))
            if not data:
                return data
            self._rbuf, self._rpos = data, 0
        out = self._rbuf[self._rpos : self._rpos + bufsize]
        self._rpos += len(out)
        return out

    def _handle_publish(self) -> mqtt.MQTTErrorCode:
        """QoS 0/1 PUBLISH without paho's property objects (we use none, and allow no topic aliases);
        QoS 2 and anything unusual go to paho's own handler."""
        header, packet = self._in_packet["command"], self._in_packet["packet"]
        qos = (header & 0x06) >> 1
        if qos == 2 or len(packet) < 2:
            return super()._handle_publish()
        pos = 2 + int.from_bytes(packet[:2], "big")
        topic = packet[2:pos]
        mid = 0
        if qos:
            mid = int.from_bytes(packet[pos : pos + 2], "big")
            pos += 2
        if self._protocol == mqtt.MQTTv5:
            props_len, shift = 0, 0
            while pos < len(packet) and shift <= 21:  # variable byte integer: the properties' length
                byte = packet[pos]
                pos += 1
                props_len |= (byte & 0x7F) << shift
                shift += 7
                if not byte & 0x80:
                    break
            else:
                return super()._handle_publish()
            pos += props_len
        if pos > len(packet) or not topic:
            return super()._handle_publish()  # malformed or empty topic: paho decides
        hook = self.on_publish_received
        if hook is not None and self._manual_ack:
            hook(bytes(topic), bytes(packet[pos:]), mid, qos)
            return mqtt.MQTTErrorCode.MQTT_ERR_SUCCESS
        message = mqtt.MQTTMessage(mid=mid, topic=bytes(topic))
        message.dup, message.qos, message.retain = bool(header & 0x08), qos, bool(header & 0x01)
        message.payload = bytes(packet[pos:])
        message.timestamp = time.monotonic()
        self._handle_on_message(message)
        if qos == 1 and not self._manual_ack:
            return self._send_puback(mid)
        return mqtt.MQTTErrorCode.MQTT_ERR_SUCCESS

    def loop_read(self, max_packets: int = 1) -> mqtt.MQTTErrorCode:
        rc = super().loop_read(max_packets)
        while (
            rc == mqtt.MQTTErrorCode.MQTT_ERR_SUCCESS
            and self._rpos < len(self._rbuf)
            and self._sock is not None
            and self._sock is self._rsock
        ):
            rc = super().loop_read(max_packets)
        return rc


def send_pubacks(client: mqtt.Client, mids: list[int]) -> None:
    """Acknowledge QoS 1 messages by packet id, in order: one PUBACK through paho's public `ack`, several
    as one queued write (the bytes paho's `ack` would queue one by one)."""
    if len(mids) == 1:
        client.ack(mids[0], 1)
    elif mids:
        packets = b"".join(struct.pack("!BBH", _PUBACK, 2, mid) for mid in mids)
        client._packet_queue(_PUBACK, packets, 0, 0)


@lru_cache(maxsize=4096)
def topic_text(topic: bytes) -> str:
    """A topic's text (topics repeat, so cached); one that is not UTF-8 is named by its repr."""
    try:
        return topic.decode("utf-8")
    except UnicodeDecodeError:
        return repr(topic)


def message_topic(message: mqtt.MQTTMessage) -> bytes:
    """A message's topic as received (paho's `topic` property decodes it and fails on bytes not UTF-8)."""
    return message._topic
