"""Schemathesis over the API's OpenAPI schema, with an admin key, against a live uvicorn on loopback:
no 5xx anywhere and every response conforming to the documented status codes, media types and schemas."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import requests
import schemathesis
import uvicorn
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api.app import create_app
from core.embedded import free_port
from core.settings import get_settings
from metrics import load_targets
from tests.api_support import make_keys

EXAMPLES = 15  # per operation and mode: 15 operations × 2 modes × 15 ≈ 450 requests, ~20 s
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


class _PlainAdapter(requests.adapters.BaseAdapter):
    """Delegates to requests' HTTPAdapter without being one: grafana-client pulls in urllib3-future, whose
    pool container schemathesis' dropped-connection bookkeeping cannot read (it only inspects HTTPAdapters)."""

    def __init__(self) -> None:
        super().__init__()
        self._inner = requests.adapters.HTTPAdapter()

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        return self._inner.send(request, **kwargs)

    def close(self) -> None:
        self._inner.close()


@pytest.fixture
def live(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, dict[str, str], Any]]:
    monkeypatch.setenv("INFRAWATCH_DATA_DIR", str(tmp_path / "data"))
    get_settings.cache_clear()
    keys = make_keys(db_url)
    with psycopg.connect(db_url) as conn:
        load_targets(conn)
    app = create_app(get_settings(), db_timeout=5.0)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}", keys, app
    finally:
        server.should_exit = True
        thread.join(15)


@pytest.mark.slow
def test_fuzzing_the_openapi_schema_with_an_admin_key_finds_no_5xx_and_no_nonconforming_response(
    live: tuple[str, dict[str, str], Any],
) -> None:
    base_url, keys, app = live
    schema = schemathesis.openapi.from_dict(app.openapi())
    auth = {"Authorization": f"Bearer {keys['admin']}"}
    session = requests.Session()
    for prefix in ("http://", "https://"):
        session.mount(prefix, _PlainAdapter())
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 15
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(
                max_examples=EXAMPLES,
                deadline=None,
                database=None,
                derandomize=True,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            def exercise(case: Any) -> None:
                case.call_and_validate(base_url=base_url, session=session, headers=auth, checks=CHECKS, timeout=60)

            try:
                exercise()
            except Unsatisfiable:  # no parameters or body to make invalid (negative mode of /healthz etc.)
                continue
            except BaseException as exc:  # collect every operation's failure, not only the first
                failures.append(f"{operation.method.upper()} {operation.path} ({mode.value}): {exc}"[:3000])
    assert not failures, "\n\n".join(failures)
