"""Our sessions (storage.db): connections and pools turn JIT compilation off, unless the URL sets options of
its own, which are kept as they are."""

from __future__ import annotations

from psycopg.conninfo import conninfo_to_dict, make_conninfo

from storage.db import connect, open_pool


def test_our_connections_and_pools_compile_no_statement(db_url: str) -> None:
    with connect(db_url) as conn:
        assert conn.execute("SHOW jit").fetchone() == ("off",)
    pool = open_pool(db_url, min_size=1, max_size=1, name="test-sessions")
    try:
        with pool.connection(timeout=10) as conn:
            assert conn.execute("SHOW jit").fetchone() == ("off",)
    finally:
        pool.close()


def test_options_in_the_url_are_the_users_choice(db_url: str) -> None:
    params = conninfo_to_dict(db_url)
    params["options"] = "-c jit=on -c work_mem=7MB"
    url = make_conninfo("", **params)
    with connect(url) as conn:
        assert conn.execute("SHOW jit").fetchone() == ("on",)
        assert conn.execute("SHOW work_mem").fetchone() == ("7MB",)
