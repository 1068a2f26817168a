"""Pins what collectors/mqtt/wire.py relies on in paho-mqtt's internals (see its docstring): the private
names and signatures it overrides or calls, paho's one-byte header reads that make it worth having, and
that BufferedClient hands every PUBLISH of one socket read to the collector and sends batched PUBACKs as
the bytes paho's own ack() would. A paho upgrade that breaks one of these fails here."""

from __future__ import annotations

import inspect
import socket
import struct
from collections.abc import Iterator

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from collectors.mqtt.wire import BufferedClient, message_topic, send_pubacks


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def publish_packet(topic: bytes, payload: bytes, mid: int, qos: int, props: bytes = b"") -> bytes:
    """An MQTT 5 PUBLISH as a broker sends it."""
    body = struct.pack("!H", len(topic)) + topic + (struct.pack("!H", mid) if qos else b"")
    body += _varint(len(props)) + props + payload
    return bytes([0x30 | qos << 1]) + _varint(len(body)) + body


class CountingSocket:
    """A socket whose recv() calls are recorded (the size asked for each)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.asked: list[int] = []

    def recv(self, bufsize: int) -> bytes:
        self.asked.append(bufsize)
        return self.sock.recv(bufsize)

    def send(self, data: bytes) -> int:
        return self.sock.send(data)

    def fileno(self) -> int:
        return self.sock.fileno()

    def close(self) -> None:  # paho closes it when the client goes; the fixture closes the real one
        pass


@pytest.fixture
def pair() -> Iterator[tuple[CountingSocket, socket.socket]]:
    ours, broker = socket.socketpair()
    ours.setblocking(False)
    yield CountingSocket(ours), broker
    ours.close()
    broker.close()


def client_on(sock: CountingSocket, cls: type[mqtt.Client] = BufferedClient) -> mqtt.Client:
    client = cls(CallbackAPIVersion.VERSION2, client_id="wire-test", protocol=mqtt.MQTTv5, manual_ack=True)
    client._sock = sock  # as paho's connect() leaves it
    return client


def test_the_private_names_and_signatures_the_patch_uses_exist():
    def params(fn: object) -> list[str]:
        return list(inspect.signature(fn).parameters)  # type: ignore[arg-type]

    assert params(mqtt.Client._sock_recv) == ["self", "bufsize"]
    assert params(mqtt.Client._handle_publish) == ["self"]
    assert params(mqtt.Client.loop_read) == ["self", "max_packets"]
    assert params(mqtt.Client._send_puback) == ["self", "mid"]
    assert params(mqtt.Client._handle_on_message) == ["self", "message"]
    assert params(mqtt.Client._packet_queue)[:5] == ["self", "command", "packet", "mid", "qos"]
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5, manual_ack=True)
    assert client._protocol == mqtt.MQTTv5 and client._manual_ack is True and client._sock is None
    assert {"command", "packet"} <= set(client._in_packet)
    assert message_topic(mqtt.MQTTMessage(topic=b"infra/v1/\xff")) == b"infra/v1/\xff"


def test_paho_reads_a_packets_fixed_header_one_byte_per_recv(pair):
    """The reason for the patch: if this fails, paho reads in blocks itself and wire.py may be dropped."""
    ours, broker = pair
    client = client_on(ours, mqtt.Client)
    client.on_message = lambda *a: None
    broker.sendall(publish_packet(b"infra/v1/cmcc/bs5g_total", b"[]", 1, 1))
    assert client.loop_read() == mqtt.MQTTErrorCode.MQTT_ERR_SUCCESS
    assert ours.asked[:2] == [1, 1]  # command byte, then the remaining length byte by byte


def test_every_publish_of_one_read_goes_to_the_hook_in_order(pair):
    ours, broker = pair
    client = client_on(ours)
    seen: list[tuple[bytes, bytes, int, int]] = []
    client.on_publish_received = lambda *args: seen.append(args)
    big = b"x" * 300  # a remaining length of two bytes
    broker.sendall(
        publish_packet(b"infra/v1/cmcc/bs5g_total", b"[1]", 7, 1)
        + publish_packet(b"infra/v1/ctcc/bs5g_total", big, 8, 1, props=b"\x01\x01")  # payload format indicator
        + publish_packet(b"infra/v1/cucc/bs5g_total", b"[3]", 0, 0)
        + publish_packet(b"infra/v1/cmcc/bs5g_total", b"[4]", 65535, 1)
    )
    assert client.loop_read() == mqtt.MQTTErrorCode.MQTT_ERR_SUCCESS
    assert seen == [
        (b"infra/v1/cmcc/bs5g_total", b"[1]", 7, 1),
        (b"infra/v1/ctcc/bs5g_total", big, 8, 1),
        (b"infra/v1/cucc/bs5g_total", b"[3]", 0, 0),
        (b"infra/v1/cmcc/bs5g_total", b"[4]", 65535, 1),
    ]
    assert ours.asked[0] >= 64 * 1024  # one block read brought them all ...
    assert len([n for n in ours.asked if n]) <= 2  # ... (and at most one more finding the socket empty)


def test_without_the_hook_paho_on_message_gets_the_message(pair):
    ours, broker = pair
    client = client_on(ours)
    got: list[mqtt.MQTTMessage] = []
    client.on_message = lambda c, userdata, message: got.append(message)
    broker.sendall(publish_packet(b"infra/v1/cmcc/bs5g_total", b"[1]", 3, 1))
    client.loop_read()
    assert [(m.topic, m.payload, m.mid, m.qos) for m in got] == [("infra/v1/cmcc/bs5g_total", b"[1]", 3, 1)]


@pytest.mark.parametrize("mids", [[5], [1, 2, 300]], ids=["one", "several"])
def test_pubacks_go_out_as_the_bytes_paho_ack_writes(pair, mids):
    ours, broker = pair
    client = client_on(ours)
    send_pubacks(client, mids)  # without a network thread paho writes at once
    broker.settimeout(2)
    expected = b"".join(b"\x40\x02" + struct.pack("!H", mid) for mid in mids)
    received = b""
    while len(received) < len(expected):
        received += broker.recv(4096)
    assert received == expected
    # the single PUBACK paho's public ack() writes is the same packet
    client.ack(9, 1)
    assert broker.recv(4096) == b"\x40\x02\x00\x09"
