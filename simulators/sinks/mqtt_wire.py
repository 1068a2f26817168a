"""A lean MQTT 3.1.1 publisher (CONNECT, PUBLISH at QoS 1, PUBACK, PINGREQ) for throughput.

A load generator must outrun the service it tests; a general client spends most of its time on
per-message bookkeeping (paho reaches ~8-10k QoS 1 messages/s here). This one encodes packets into
a buffer, writes them in large blocks, and counts PUBACKs in bulk, keeping at most `window`
messages unacknowledged so packet ids are never reused while in flight.
"""

from __future__ import annotations

import select
import socket
import ssl
import struct
import time


class WireError(ConnectionError):
    pass


_CONNACK_REASONS = {
    1: "unacceptable protocol version",
    2: "client id rejected",
    3: "server unavailable",
    4: "bad user name or password",
    5: "not authorised",
}


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _utf8(text: str) -> bytes:
    data = text.encode()
    return struct.pack("!H", len(data)) + data


def connect_packet(client_id: str, username: str | None, password: str | None, keepalive: int) -> bytes:
    flags = 0x02  # clean session
    payload = _utf8(client_id)
    if username is not None:
        flags |= 0x80
        payload += _utf8(username)
        if password is not None:
            flags |= 0x40
            payload += _utf8(password)
    body = b"\x00\x04MQTT\x04" + bytes([flags]) + struct.pack("!H", keepalive) + payload
    return b"\x10" + _varint(len(body)) + body


def publish_packet(topic: bytes, payload: bytes, packet_id: int) -> bytes:
    """PUBLISH at QoS 1 (fixed header 0x32) with a 2-byte topic length and packet id."""
    n = 2 + len(topic) + 2 + len(payload)
    return b"\x32" + _varint(n) + struct.pack("!H", len(topic)) + topic + struct.pack("!H", packet_id) + payload


class WirePublisher:
    """One MQTT connection publishing at QoS 1 with a bounded window of unacknowledged messages."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        client_id: str,
        username: str | None = None,
        password: str | None = None,
        tls: bool = False,
        keepalive: int = 60,
        window: int = 2000,
        timeout: float = 15.0,
    ) -> None:
        if not 1 <= window <= 30000:
            raise ValueError("window must be between 1 and 30000 (packet ids must not wrap while in flight)")
        self.window = window
        self.keepalive = keepalive
        self.sent = 0
        self.acked = 0
        self._next_id = 1
        self._out = bytearray()
        self._in = bytearray()
        self._last_io = time.monotonic()
        try:
            raw = socket.create_connection((host, port), timeout=timeout)
        except OSError as exc:
            raise WireError(f"cannot connect to {host}:{port} ({exc})") from None
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock: socket.socket = ssl.create_default_context().wrap_socket(raw, server_hostname=host) if tls else raw
        self.sock.sendall(connect_packet(client_id, username, password, keepalive))
        deadline = time.monotonic() + timeout
        while len(self._in) < 4:
            if time.monotonic() > deadline:
                raise WireError(f"no CONNACK from {host}:{port} within {timeout:.0f}s")
            chunk = self.sock.recv(4 - len(self._in))
            if not chunk:
                raise WireError(f"{host}:{port} closed the connection during CONNECT")
            self._in += chunk
        if self._in[0] != 0x20:
            raise WireError(f"{host}:{port} did not answer CONNECT with CONNACK")
        rc = self._in[3]
        del self._in[:4]
        if rc:
            raise WireError(f"the broker refused the connection: {_CONNACK_REASONS.get(rc, f'code {rc}')}")
        self.sock.setblocking(False)

    @property
    def in_flight(self) -> int:
        return self.sent - self.acked

    def publish(self, topic: bytes, payload: bytes) -> None:
        """Queue one QoS 1 message; writes when the buffer is large, waits when the window is full."""
        if self.in_flight >= self.window:
            self.flush_out()
            self.wait_below(self.window // 2)
        self._out += publish_packet(topic, payload, self._next_id)
        self._next_id = self._next_id % 65535 + 1
        self.sent += 1
        if len(self._out) >= 1 << 16:
            self.flush_out()

    def flush_out(self) -> None:
        view = memoryview(self._out)
        total = 0
        while total < len(view):
            try:
                total += self.sock.send(view[total:])
            except (BlockingIOError, ssl.SSLWantWriteError):
                self._read_acks()
                select.select([], [self.sock], [], 0.05)
            except OSError as exc:
                raise WireError(f"the broker connection failed while sending ({exc})") from None
        view.release()
        self._out.clear()
        self._last_io = time.monotonic()

    def _read_acks(self) -> None:
        while True:
            try:
                chunk = self.sock.recv(1 << 16)
            except (BlockingIOError, ssl.SSLWantReadError):
                break
            except OSError as exc:
                raise WireError(f"the broker connection failed ({exc})") from None
            if not chunk:
                raise WireError(
                    f"the broker closed the connection ({self.in_flight} messages unacknowledged); "
                    "check its log, the ACL and the payload size limit"
                )
            self._in += chunk
        buf = self._in
        pos = 0
        while len(buf) - pos >= 2:
            kind = buf[pos] & 0xF0
            length, width = 0, 0
            multiplier = 1
            while True:
                if pos + 1 + width >= len(buf):
                    length = -1
                    break
                b = buf[pos + 1 + width]
                length += (b & 0x7F) * multiplier
                multiplier *= 128
                width += 1
                if not b & 0x80:
                    break
            if length < 0 or len(buf) - pos < 1 + width + length:
                break
            if kind == 0x40:  # PUBACK
                self.acked += 1
            pos += 1 + width + length
        del buf[:pos]

    def wait_below(self, limit: int, timeout: float = 60.0) -> None:
        """Read PUBACKs until at most `limit` messages are unacknowledged."""
        deadline = time.monotonic() + timeout
        while self.in_flight > limit:
            self._read_acks()
            if self.in_flight <= limit:
                break
            left = deadline - time.monotonic()
            if left <= 0:
                raise WireError(f"the broker stopped acknowledging ({self.in_flight} messages unacknowledged)")
            select.select([self.sock], [], [], min(left, 0.05))

    def ping_if_idle(self) -> None:
        """Keep the connection alive between sparse live sends."""
        self._read_acks()
        if time.monotonic() - self._last_io > self.keepalive / 2:
            self._out += b"\xc0\x00"
            self.flush_out()

    def close(self) -> None:
        try:
            self.flush_out()
            self.sock.setblocking(True)
            self.sock.sendall(b"\xe0\x00")  # DISCONNECT
        except OSError:
            pass
        finally:
            self.sock.close()
