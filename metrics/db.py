"""Connection etiquette for metrics: end the implicit transaction our statements opened, never the caller's
(the decorator lives in storage.transactions; this name is kept for metrics' imports)."""

from __future__ import annotations

from storage.transactions import owns_transaction

__all__ = ["owns_transaction"]
