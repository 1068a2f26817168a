"""Storage: PostgreSQL connections, versioned schema migrations and partition maintenance."""

from storage.db import connect, database_url, open_pool, read_database_url
from storage.migrate import SchemaBehind, check_schema, upgrade
from storage.transactions import owns_transaction

__all__ = [
    "SchemaBehind",
    "check_schema",
    "connect",
    "database_url",
    "open_pool",
    "owns_transaction",
    "read_database_url",
    "upgrade",
]
