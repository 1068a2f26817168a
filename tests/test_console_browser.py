"""The web console in headless Chromium (Debian's /usr/bin/chromium driven by Playwright) against a live
`infrawatch serve --no-scheduler` on a loopback port, on a database filled through the ingest pipeline:
load the overview, open a target, sign in as an operator and upload a CSV with a bad row, with and
without JavaScript, and with every request to another host refused. Screenshots go to test-artifacts/."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import httpx
import psycopg
import pytest

from core.embedded import free_port
from tests.api_support import make_keys
from tests.conftest import IN_CI, with_dbname
from tests.test_console_pages import ACHIEVED, OFF_TRACK, fill_console_data

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
PAGES = ("/", f"/targets/{OFF_TRACK}", "/alerts", "/feeds", "/signin")
EXTERNAL_REF = re.compile(
    r"""(?:src|href|action|xlink:href)\s*=\s*["']?\s*(?:https?:)?//|url\(\s*["']?\s*(?:https?:)?//""", re.I
)


@dataclass
class Console:
    base: str
    keys: dict[str, str]


def _fail_or_skip(message: str) -> None:
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="module")
def console(pg_server: str, template_db: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    """A live server (its own process) on a database of its own, filled once for the module."""
    name = f"iw_console_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pg_server, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_db}"')
    url = with_dbname(pg_server, name)
    workdir = tmp_path_factory.mktemp("console")
    env = dict(os.environ) | {  # same secret key as make_keys below; own database and data directory
        "INFRAWATCH_DATABASE_URL": url,
        "INFRAWATCH_DATA_DIR": str(workdir / "data"),
        "INFRAWATCH_LOG_LEVEL": "WARNING",
    }
    proc = None
    try:
        with psycopg.connect(url) as conn:
            fill_console_data(conn)
        keys = make_keys(url)
        port = free_port()
        exe = shutil.which("infrawatch", path=str(Path(sys.executable).parent)) or "infrawatch"
        log = open(workdir / "server.log", "wb")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(
            [exe, "serve", "--no-scheduler", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 45
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the server did not start: {(workdir / 'server.log').read_text()[-2000:]}")
            time.sleep(0.2)
        yield Console(base, keys)
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
        with psycopg.connect(pg_server, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not Path(CHROMIUM).exists():
        _fail_or_skip(f"{CHROMIUM} is missing; install Debian's chromium (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _fail_or_skip("playwright is not installed; run `uv sync` (it is a dev dependency)")
    with sync_playwright() as p:
        try:
            b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        except Exception as exc:  # an environment problem, reported as such
            _fail_or_skip(f"Chromium at {CHROMIUM} does not start: {exc}")
        ARTIFACTS.mkdir(exist_ok=True)
        yield b
        b.close()


@dataclass
class Tab:
    page: object
    outside: list[str]  # requests to other hosts, refused


def open_tab(browser: object, console: Console, *, javascript: bool = True) -> Iterator[Tab]:
    """A fresh context (no cookies) where any request leaving 127.0.0.1 is recorded and refused."""
    context = browser.new_context(java_script_enabled=javascript, viewport={"width": 1280, "height": 900})  # type: ignore[attr-defined]
    outside: list[str] = []

    def guard(route: object) -> None:
        url = route.request.url  # type: ignore[attr-defined]
        if urlparse(url).hostname not in ("127.0.0.1",):
            outside.append(url)
            route.abort()  # type: ignore[attr-defined]
        else:
            route.continue_()  # type: ignore[attr-defined]

    context.route("**/*", guard)
    page = context.new_page()
    page.set_default_timeout(15_000)
    try:
        yield Tab(page, outside)
    finally:
        context.close()


@pytest.fixture
def tab(browser: object, console: Console) -> Iterator[Tab]:
    yield from open_tab(browser, console)


@pytest.fixture
def tab_without_js(browser: object, console: Console) -> Iterator[Tab]:
    yield from open_tab(browser, console, javascript=False)


def sign_in(page: object, console: Console, who: str, start: str = "/") -> None:
    """Open `start`, get sent to the sign-in form, sign in with the key and come back."""
    page.goto(console.base + start)  # type: ignore[attr-defined]
    assert "/signin" in page.url  # type: ignore[attr-defined]
    page.fill("#key", console.keys[who])  # type: ignore[attr-defined]
    page.click("button[type=submit]")  # type: ignore[attr-defined]
    page.wait_for_load_state()  # type: ignore[attr-defined]


def test_overview_then_target_page_in_chromium(tab: Tab, console: Console) -> None:
    page = tab.page
    sign_in(page, console, "viewer")
    assert urlparse(page.url).path == "/"  # type: ignore[attr-defined]
    card = page.locator(f"#target-{OFF_TRACK}")  # type: ignore[attr-defined]
    assert card.locator(".status").inner_text().strip().lower() == "off track"
    assert card.locator('[data-figure="actual"]').inner_text() == "1,360"  # see fill_console_data
    assert card.locator('[data-figure="goal"]').inner_text() == ">= 2,400"
    assert card.locator("svg.chart polyline.actual").count() == 1
    assert card.locator("svg.chart polyline.projection").count() == 1
    achieved = page.locator(f"#target-{ACHIEVED}")  # type: ignore[attr-defined]
    assert achieved.locator(".status").inner_text().strip().lower() == "achieved"
    page.screenshot(path=str(ARTIFACTS / "console-overview.png"), full_page=True)  # type: ignore[attr-defined]

    card.locator("h2 a").click()
    page.wait_for_load_state()  # type: ignore[attr-defined]
    assert urlparse(page.url).path == f"/targets/{OFF_TRACK}"  # type: ignore[attr-defined]
    cities = page.locator('table[data-by="city"] tr.laggard')  # type: ignore[attr-defined]
    operators = page.locator('table[data-by="operator"] tr.laggard')  # type: ignore[attr-defined]
    assert sorted(cities.evaluate_all("rows => rows.map(r => r.dataset.key)")) == ["360100", "360200"]
    assert operators.evaluate_all("rows => rows.map(r => r.dataset.key)") == ["ctcc"]
    page.screenshot(path=str(ARTIFACTS / "console-target.png"), full_page=True)  # type: ignore[attr-defined]
    assert tab.outside == []


def test_operator_uploads_a_csv_and_sees_the_bad_row_with_its_line(tab: Tab, console: Console) -> None:
    page = tab.page
    sign_in(page, console, "cmcc", start="/upload")
    assert urlparse(page.url).path == "/upload"  # type: ignore[attr-defined]
    csv = (
        "ts,region,metric,value\n"
        "2024-01-31,360100,gigabit_users,120\n"
        "2024-01-31,360200,gigabit_users,minus five\n"  # line 3: not a number
        "2024-01-31,360300,gigabit_users,80\n"
    )
    page.set_input_files("#file", files=[{"name": "january.csv", "mimeType": "text/csv", "buffer": csv.encode()}])  # type: ignore[attr-defined]
    page.click("form[action='/upload'] button[type=submit]")  # type: ignore[attr-defined]
    page.wait_for_load_state()  # type: ignore[attr-defined]
    report = page.locator("section.report")  # type: ignore[attr-defined]
    assert report.locator('[data-figure="rows"]').inner_text() == "3"
    assert report.locator('[data-figure="accepted"]').inner_text() == "2"
    assert report.locator('[data-figure="rejected"]').inner_text() == "1"
    row = report.locator("table.errors tbody tr")
    assert row.count() == 1
    cells = row.locator("td").all_inner_texts()
    assert cells[0] == "3" and cells[1] == "value" and "minus five" in cells[2]
    page.screenshot(path=str(ARTIFACTS / "console-upload-report.png"), full_page=True)  # type: ignore[attr-defined]

    page.click("nav a[href='/rejections']")  # type: ignore[attr-defined]
    page.wait_for_load_state()  # type: ignore[attr-defined]
    body = page.locator("table.rejections").inner_text()  # type: ignore[attr-defined]
    assert "http-upload:january.csv" in body and "minus five" in body
    page.screenshot(path=str(ARTIFACTS / "console-rejections.png"), full_page=True)  # type: ignore[attr-defined]
    assert tab.outside == []


def test_essentials_are_readable_with_javascript_disabled(tab_without_js: Tab, console: Console) -> None:
    page = tab_without_js.page
    sign_in(page, console, "viewer")  # the sign-in form itself works without JavaScript
    text = page.locator("main").inner_text()  # type: ignore[attr-defined]
    assert "OFF TRACK" in text.upper() and "1,360" in text and ">= 2,400" in text
    assert "ACHIEVED" in text.upper() and "1,100" in text
    page.screenshot(path=str(ARTIFACTS / "console-overview-nojs.png"), full_page=True)  # type: ignore[attr-defined]
    page.goto(f"{console.base}/targets/{OFF_TRACK}")  # type: ignore[attr-defined]
    text = page.locator("main").inner_text()  # type: ignore[attr-defined]
    assert "Pingxiang" in text and "lagging" in text
    page.goto(f"{console.base}/feeds")  # type: ignore[attr-defined]
    assert page.locator("td.stale[data-feed='ctcc/traffic_mobile_gb']").count() == 1  # type: ignore[attr-defined]
    page.screenshot(path=str(ARTIFACTS / "console-feeds-nojs.png"), full_page=True)  # type: ignore[attr-defined]
    page.goto(f"{console.base}/alerts")  # type: ignore[attr-defined]
    firing = page.locator("table[aria-label='Firing alerts']").inner_text()  # type: ignore[attr-defined]
    assert f"target-{OFF_TRACK}" in firing
    page.screenshot(path=str(ARTIFACTS / "console-alerts-nojs.png"), full_page=True)  # type: ignore[attr-defined]
    assert tab_without_js.outside == []


def test_pages_reference_nothing_outside_the_server(console: Console) -> None:
    with httpx.Client(base_url=console.base, timeout=30) as client:
        r = client.post("/signin", data={"key": console.keys["viewer"]}, follow_redirects=False)
        assert r.status_code == 303
        client.cookies = r.cookies
        for path in PAGES:
            page = client.get(path)
            assert page.status_code == 200, path
            assert not EXTERNAL_REF.search(page.text), f"{path} links to another host"
            assert "default-src 'none'" in page.headers["content-security-policy"]
        css = client.get("/static/console.css")
        assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
        assert "url(" not in css.text and "@import" not in css.text
