"""Text and number hygiene shared by every collector: find what PostgreSQL or UTF-8 cannot hold, escape it.

A lone UTF-16 surrogate (`"\\ud800"` in JSON) cannot be encoded as UTF-8, a NUL cannot be stored in a
`text` or `jsonb` value, and control characters have no place in ids or timestamps. `text_fault` names
the first such character of a field; `storable` turns any text (a rejected item's raw input, a reason
quoting it) into text that PostgreSQL, JSON and MQTT all accept, keeping it readable.
"""

from __future__ import annotations

import json
import re
from typing import Any

#: NUL and the other C0 controls except tab, line feed and carriage return; DEL and the C1 controls;
#: lone surrogates (which Python's json module lets through from `\udXXX` escapes).
_BAD = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")

#: Integers beyond this magnitude are refused before any conversion (a float holds 53 bits exactly;
#: no catalogue metric comes near 10^18).
MAX_ABS_INTEGER = 10**18
#: Raw input kept with a rejection is cut to this many characters.
RAW_KEEP_CHARS = 4096


def text_fault(text: str, name: str) -> str | None:
    """Why `text` (the field `name`) cannot be accepted, or None when it holds no forbidden character."""
    found = _BAD.search(text)
    if found is None:
        return None
    char = found.group()
    what = "a lone UTF-16 surrogate" if "\ud800" <= char <= "\udfff" else "a control character"
    return (
        f"{name} holds {what} (U+{ord(char):04X}) at position {found.start()}; "
        "text fields may hold neither control characters nor lone surrogates: fix the sender's encoding"
    )


def storable(text: str, limit: int | None = None) -> str:
    """`text` with NUL, control characters and lone surrogates written as `\\uXXXX` (a backslash already
    there is kept as is, so the escape is readable rather than reversible), cut to `limit` characters."""
    if limit is not None and len(text) > limit:
        text = text[:limit] + f"… [cut; {len(text)} characters in all]"
    if _BAD.search(text) is None:
        return text
    return _BAD.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def raw_text(value: Any, limit: int = RAW_KEEP_CHARS) -> str:
    """Any decoded input as storable JSON-ish text; never raises (huge integers, cycles, odd objects)."""
    try:
        text = json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError, RecursionError):
        try:
            text = repr(value)
        except (ValueError, RecursionError):  # e.g. an integer of more than 4300 digits
            text = f"<{type(value).__name__} that cannot be shown>"
    return storable(text, limit)


def integer_fault(value: int, name: str = "value") -> str | None:
    """Why an integer is out of range (checked before it is converted to a float), or None."""
    if -MAX_ABS_INTEGER <= value <= MAX_ABS_INTEGER:
        return None
    digits = max(1, int(value.bit_length() * 0.30103) + 1)
    return f"{name} is an integer of about {digits} digits, out of range (at most ±10^18): send the real figure"


def bounded_int(text: str) -> int | float:
    """`parse_int` for json.loads: an integer literal too long for Python to convert becomes infinity
    (rejected by validation as out of range) instead of failing the whole message."""
    if len(text) > 400:
        return float("-inf") if text.startswith("-") else float("inf")
    return int(text)


__all__ = ["MAX_ABS_INTEGER", "RAW_KEEP_CHARS", "bounded_int", "integer_fault", "raw_text", "storable", "text_fault"]
