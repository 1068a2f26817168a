"""Readiness probes: is the database answering, is the MQTT broker accepting connections."""

from __future__ import annotations

import contextlib
import socket
import struct

import psycopg

from core.settings import MqttEndpoint


def ping_database(conn: psycopg.Connection) -> None:
    conn.execute("SELECT 1")
    conn.rollback()


def replica_lag_seconds(conn: psycopg.Connection) -> float | None:
    """How far a hot standby's replay trails the primary's last commit (seconds); None on a primary.
    An idle primary makes this grow although nothing is missing: it is the age of the last replayed commit."""
    row = conn.execute(
        "SELECT pg_is_in_recovery(), EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp())::float8"
    ).fetchone()
    conn.rollback()
    if row is None or not row[0]:
        return None
    return float(row[1]) if row[1] is not None else 0.0


def _connect_packet(client_id: str, username: str | None, password: str | None) -> bytes:
    """An MQTT 3.1.1 CONNECT packet (clean session, keep-alive 10 s)."""

    def field(value: str) -> bytes:
        data = value.encode()
        return struct.pack("!H", len(data)) + data

    flags = 0x02 | (0x80 if username else 0) | (0x40 if username and password else 0)
    variable = field("MQTT") + bytes([4, flags]) + struct.pack("!H", 10)
    payload = (
        field(client_id) + (field(username) if username else b"") + (field(password) if username and password else b"")
    )
    body = variable + payload
    length = bytearray()
    n = len(body)
    while True:
        byte, n = n % 128, n // 128
        length.append(byte | (0x80 if n else 0))
        if not n:
            break
    return bytes([0x10]) + bytes(length) + body


def check_broker(url: str, timeout: float = 2.0) -> str | None:
    """None when the broker answers an MQTT CONNECT with a CONNACK; else what went wrong."""
    try:
        endpoint = MqttEndpoint(url)
    except ValueError as exc:
        return str(exc)
    if endpoint.tls:
        try:  # a TLS broker: reachability of its port is what we can check without a client certificate setup
            with socket.create_connection((endpoint.host, endpoint.port), timeout=timeout):
                return None
        except OSError as exc:
            return f"cannot connect to {endpoint.host}:{endpoint.port} ({exc})"
    try:
        with socket.create_connection((endpoint.host, endpoint.port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            sock.sendall(_connect_packet("infrawatch-readyz", endpoint.username, endpoint.password))
            reply = sock.recv(4)
            if len(reply) < 4 or reply[0] != 0x20:
                return f"{endpoint.host}:{endpoint.port} did not answer like an MQTT broker"
            if reply[3] not in (0, 4, 5):
                return f"broker refused the connection (CONNACK code {reply[3]})"
            with contextlib.suppress(OSError):
                sock.sendall(b"\xe0\x00")  # DISCONNECT
            return None
    except OSError as exc:
        return f"cannot connect to {endpoint.host}:{endpoint.port} ({exc.strerror or exc})"
