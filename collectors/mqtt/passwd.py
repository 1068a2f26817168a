"""Broker credentials: add or replace a user's line in a Mosquitto password file, in the hash format
Mosquitto 2 reads (`user:$7$101$<salt>$<hash>`, PBKDF2-HMAC-SHA512 with 101 iterations, as mosquitto_passwd
writes it). The password never appears on a command line."""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
from pathlib import Path

ITERATIONS = 101
SALT_BYTES = 12


def mosquitto_hash(password: str, *, salt: bytes | None = None, iterations: int = ITERATIONS) -> str:
    """The `$7$` hash of a password as Mosquitto 2 stores it."""
    salt = salt if salt is not None else secrets.token_bytes(SALT_BYTES)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, iterations)
    return f"$7${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def verify(password: str, hashed: str) -> bool:
    """Whether `password` matches a `$7$` hash (for tests and for checking a file by hand)."""
    parts = hashed.split("$")
    if len(parts) != 5 or parts[1] != "7":
        return False
    salt = base64.b64decode(parts[3])
    return secrets.compare_digest(mosquitto_hash(password, salt=salt, iterations=int(parts[2])), hashed)


def set_password(path: Path, username: str, password: str) -> bool:
    """Write `username`'s hash into the password file (created 0600 if new); True if the user was new."""
    if not username or ":" in username or any(ch in username for ch in "+#/\n\r"):
        raise ValueError(f"user name {username!r} cannot be used by Mosquitto (no ':', '+', '#', '/' or newlines)")
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    entry = f"{username}:{mosquitto_hash(password)}"
    kept = [line for line in lines if line.split(":", 1)[0] != username]
    new = len(kept) == len(lines)
    kept.append(entry)
    text = "\n".join(kept) + "\n"
    if path.exists():
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        os.chmod(tmp, path.stat().st_mode & 0o777)
        os.replace(tmp, path)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
    return new


def generate_password() -> str:
    return secrets.token_urlsafe(18)
