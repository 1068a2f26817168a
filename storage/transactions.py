"""Transaction etiquette: the function that opens a transaction commits it; nothing commits a caller's.

Two ways to follow it: `with conn.transaction():` (psycopg commits the block when the connection was idle
and makes it a savepoint inside a caller's transaction), or `@owns_transaction` on a function taking the
connection first, for reads and other work that should not leave a caller's connection idle in a
transaction it opened.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Concatenate, ParamSpec, TypeVar

import psycopg

P = ParamSpec("P")
R = TypeVar("R")
_IDLE = psycopg.pq.TransactionStatus.IDLE
_INTRANS = psycopg.pq.TransactionStatus.INTRANS


def owns_transaction(
    fn: Callable[Concatenate[psycopg.Connection, P], R],
) -> Callable[Concatenate[psycopg.Connection, P], R]:
    """If the connection was idle when `fn` started, commit what `fn` did (or roll back on an error), so a
    caller's connection is not left idle in a transaction; inside a caller's transaction, leave it alone."""

    @functools.wraps(fn)
    def wrapper(conn: psycopg.Connection, *args: P.args, **kwargs: P.kwargs) -> R:
        ours = not conn.autocommit and conn.info.transaction_status == _IDLE
        try:
            result = fn(conn, *args, **kwargs)
        except BaseException:
            if ours and conn.info.transaction_status != _IDLE:
                conn.rollback()
            raise
        if ours and conn.info.transaction_status == _INTRANS:
            conn.commit()
        return result

    return wrapper
