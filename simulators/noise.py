"""Counter-based pseudo-random numbers: a value is a pure function of (seed, series, time), never of call order.

Live windows and one-shot backfills therefore produce identical values for the same observation.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache

import numpy as np

_MASK = np.uint64(0xFFFFFFFFFFFFFFFF)


@lru_cache(maxsize=1 << 16)
def stream_key(seed: int, *parts: object) -> int:
    """A stable 64-bit key for one named random stream (seed plus series identity)."""
    text = "|".join([str(seed), *map(str, parts)]).encode()
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "little")


_C1 = np.uint64(0x9E3779B97F4A7C15)
_C2 = np.uint64(0xBF58476D1CE4E5B9)
_C3 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31, _S11 = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(11)


def _splitmix(x: np.ndarray) -> np.ndarray:
    # uint64 arrays wrap around silently, as the algorithm wants (0-d values are kept as arrays)
    z = np.asarray(x, dtype=np.uint64) + _C1
    z = (z ^ (z >> _S30)) * _C2
    z = (z ^ (z >> _S27)) * _C3
    return np.asarray(z ^ (z >> _S31))


def _keys(key: int | np.ndarray) -> np.ndarray:
    k = np.asarray(key, dtype=np.uint64) if isinstance(key, np.ndarray) else np.uint64(key)
    return np.asarray(k)


def uniform(key: int | np.ndarray, counters: np.ndarray) -> np.ndarray:
    """Uniform numbers in [0, 1), one per counter (e.g. the ts in seconds), for the stream `key`.

    With an array of keys of shape (k, 1) and counters of shape (n,), the result is (k, n).
    """
    c = np.atleast_1d(np.asarray(counters).astype(np.int64)).view(np.uint64)
    z = _splitmix(_splitmix(c) ^ _keys(key))
    return (z >> _S11).astype(np.float64) / float(1 << 53)


def normal(key: int | np.ndarray, counters: np.ndarray) -> np.ndarray:
    """Standard normal numbers (Box-Muller over two independent uniform streams)."""
    u1 = uniform(key, counters)
    u2 = uniform(_keys(key) ^ np.uint64(0x5DEECE66D), counters)
    return np.sqrt(-2.0 * np.log1p(-u1)) * np.cos(2.0 * np.pi * u2)


def keys_of(seed: int, *prefix: object, cells: list[tuple[object, ...]]) -> np.ndarray:
    """Stream keys of many series at once, shaped (len(cells), 1) to broadcast against ts."""
    return np.array([stream_key(seed, *prefix, *cell) for cell in cells], dtype=np.uint64)[:, None]


def row_keys(*columns: np.ndarray) -> np.ndarray:
    """A 64-bit key per row from several columns (strings hashed once per distinct value)."""
    n = len(columns[0])
    key = np.zeros(n, dtype=np.uint64)
    for col in columns:
        col = np.asarray(col)
        if col.dtype.kind in "iu":
            part = col.astype(np.int64).view(np.uint64)
        else:
            uniq, inv = np.unique(col.astype(str), return_inverse=True)
            part = np.array([stream_key(0, u) for u in uniq], dtype=np.uint64)[inv]
        key = _splitmix(key ^ part)
    return key


def row_uniform(keys: np.ndarray, salt: int) -> np.ndarray:
    """Uniform numbers in [0, 1), one per row key, independent for each salt."""
    z = _splitmix(np.asarray(keys, dtype=np.uint64) ^ np.uint64(salt))
    return (z >> np.uint64(11)).astype(np.float64) / float(1 << 53)
