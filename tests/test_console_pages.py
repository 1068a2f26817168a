"""The web console's pages through the real app (TestClient over create_app) on a real database filled
through the ingest pipeline: sign-in, who may see what, rejections, uploads and page contents."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import psycopg

from alerts.engine import evaluate as evaluate_alerts
from alerts.rules import Rule
from api.console.auth import COOKIE, safe_next
from api.keys import revoke_key
from ingest.pipeline import IngestPipeline
from metrics import Target, list_targets, load_targets, upsert_target
from metrics.timeutil import PLAN_TZ
from tests.api_support import Api, api_fixture  # noqa: F401  (the `api` fixture)

PIPE = IngestPipeline()
OFF_TRACK = "t-console-5g"
ACHIEVED = "t-console-users"


@dataclass
class ConsoleFacts:
    today: date
    start: date
    deadline: date


def _stamp(d: date) -> str:
    return f"{d.isoformat()}T00:00:00+08:00"


def _push(conn: psycopg.Connection, operator: str, metric: str, points: list[tuple[date, int, float]]) -> None:
    items = [{"ts": _stamp(d), "region": str(region), "value": v} for d, region, v in points]
    report = PIPE.submit_items(conn, items, source="console-test", operator=operator, metric=metric)
    assert report.rejected == 0, report.rejections


def fill_console_data(conn: psycopg.Connection) -> ConsoleFacts:
    """Two targets running from 180 days ago to 185 days ahead, with monthly readings (every 30 days from
    the day before start, the last one yesterday) pushed through the ingest pipeline, a stale feed, and an alert fired by the real engine.

    5G base stations (bs5g_total), reading k = 0..6:
      cmcc 360100: 300 + 40k   cmcc 360200: 100 + 10k   cmcc 360300: 100 + 60k
      ctcc 360100: 100         ctcc 360200: 100
      → today (k=6): 540 + 160 + 460 + 100 + 100 = 1,360; baseline 700; goal 2,400.
      Expected ≈ 700 + 1,700 × 0.49 ≈ 1,540; trend +110 per 30 days → ≈ 2,040 at the deadline: off track.
      Change due by now ≈ 840, shared by the level at start: 360100 (400) ≈ 480 but made +240, 360200 (200)
      ≈ 240 but +60 → both lag; 360300 (100) ≈ 120 and made +360 → no. cmcc (500) ≈ 600, made +660 → no;
      ctcc (200) ≈ 240, made 0 → lags.
    5G users (users_5g), cmcc 360100: 500 + 100k → 1,100 today ≥ goal 1,000: achieved.
    """
    today = datetime.now(PLAN_TZ).date()
    start, deadline = today - timedelta(days=180), today + timedelta(days=185)
    days = [start - timedelta(days=1) + timedelta(days=30 * k) for k in range(7)]  # the last one yesterday
    _push(conn, "cmcc", "bs5g_total", [(d, 360100, 300 + 40 * k) for k, d in enumerate(days)])
    _push(conn, "cmcc", "bs5g_total", [(d, 360200, 100 + 10 * k) for k, d in enumerate(days)])
    _push(conn, "cmcc", "bs5g_total", [(d, 360300, 100 + 60 * k) for k, d in enumerate(days)])
    _push(conn, "ctcc", "bs5g_total", [(d, r, 100) for d in days for r in (360100, 360200)])
    _push(conn, "cmcc", "users_5g", [(d, 360100, 500 + 100 * k) for k, d in enumerate(days)])
    # a daily feed silent for 10 days: stale (cadence 1 day)
    _push(conn, "ctcc", "traffic_mobile_gb", [(today - timedelta(days=10), 360100, 5.0)])
    for target in (
        Target(
            id=OFF_TRACK,
            title="Console test: 5G base stations 2,400",
            source="test plan, clause 1",
            indicator="bs5g_total",
            comparator=">=",
            goal=2400,
            baseline=700,
            start=start,
            deadline=deadline,
        ),
        Target(
            id=ACHIEVED,
            title="Console test: 5G users 1,000",
            source="test plan, clause 2",
            indicator="users_5g",
            comparator=">=",
            goal=1000,
            baseline=500,
            start=start,
            deadline=deadline,
        ),
    ):
        upsert_target(conn, target)
    conn.commit()
    rule = Rule(id=f"target-{OFF_TRACK}", kind="target", target=OFF_TRACK, title="Console test 5G target")
    evaluate_alerts(conn, datetime.now(PLAN_TZ), rules=[rule])
    conn.commit()
    return ConsoleFacts(today, start, deadline)


def sign_in(api: Api, who: str) -> None:
    r = api.client.post("/signin", data={"key": api.keys[who]}, follow_redirects=False)
    assert r.status_code == 303, r.text


def text_of(html: str) -> str:
    """The page's visible text, tags dropped and spaces folded."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


# -- sign-in -------------------------------------------------------------------------------------------------


def test_signin_sets_an_httponly_strict_cookie_and_goes_to_the_next_page(api: Api) -> None:
    r = api.client.post("/signin", data={"key": api.keys["viewer"], "next": "/feeds"}, follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"] == "/feeds"
    cookie = r.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=")
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie


def test_operator_lands_on_upload_after_signing_in(api: Api) -> None:
    r = api.client.post("/signin", data={"key": api.keys["cmcc"]}, follow_redirects=False)
    assert r.headers["location"] == "/upload"


def test_unknown_key_is_refused_with_the_form_again(api: Api) -> None:
    r = api.client.post("/signin", data={"key": "iw_deadbeef_not-a-real-key"}, follow_redirects=False)
    assert r.status_code == 401
    assert "unknown or revoked" in r.text
    assert "set-cookie" not in r.headers


def test_visitor_without_a_key_is_sent_to_signin_with_the_page_to_return_to(api: Api) -> None:
    r = api.client.get("/targets/x?as_of=2023-06-30", follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"] == "/signin?next=%2Ftargets%2Fx%3Fas_of%3D2023-06-30"


def test_next_page_after_signin_stays_on_this_site() -> None:
    assert safe_next("/targets/a?as_of=2023-06-30") == "/targets/a?as_of=2023-06-30"
    assert safe_next("https://evil.example/") == "/"
    assert safe_next("//evil.example/") == "/"
    assert safe_next("/\\evil.example") == "/"
    assert safe_next(None, "") == ""


def test_revoked_key_in_the_cookie_no_longer_signs_in(api: Api) -> None:
    sign_in(api, "viewer")
    assert api.client.get("/feeds", follow_redirects=False).status_code == 200
    with psycopg.connect(api.db_url) as conn:
        key_id = conn.execute("SELECT id FROM api_key WHERE role = 'viewer'").fetchone()[0]  # type: ignore[index]
        assert revoke_key(conn, key_id)
    assert api.client.get("/feeds", follow_redirects=False).status_code == 303


def test_signout_clears_the_cookie(api: Api) -> None:
    sign_in(api, "viewer")
    r = api.client.post("/signout", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/signin"
    assert f'{COOKIE}=""' in r.headers["set-cookie"] or "Max-Age=0" in r.headers["set-cookie"]
    assert api.client.get("/", follow_redirects=False).status_code == 303


# -- who sees what ----------------------------------------------------------------------------------------


def test_operator_key_cannot_open_the_plan_boards(api: Api) -> None:
    sign_in(api, "cmcc")
    r = api.client.get("/", follow_redirects=False)
    assert r.status_code == 403
    assert "needs a key with role viewer or admin" in r.text


def test_viewer_key_cannot_upload(api: Api) -> None:
    sign_in(api, "viewer")
    assert api.client.get("/upload", follow_redirects=False).status_code == 403


def test_operator_sees_only_its_own_feeds(api: Api, conn: psycopg.Connection) -> None:
    fill_console_data(conn)
    sign_in(api, "cmcc")
    html = api.client.get("/feeds").text
    assert 'data-feed="cmcc/bs5g_total"' in html
    assert "ctcc" not in text_of(html)


def test_rejections_show_only_the_operators_own_rows(api: Api, conn: psycopg.Connection) -> None:
    bad = [{"ts": "2024-01-31T00:00:00+08:00", "region": "360100", "value": -1}]
    PIPE.submit_items(conn, bad, source="console-test-cmcc", operator="cmcc", metric="bs5g_total")
    PIPE.submit_items(conn, bad, source="console-test-ctcc", operator="ctcc", metric="bs5g_total")
    sign_in(api, "cmcc")
    html = api.client.get("/rejections").text
    assert "console-test-cmcc" in html
    assert "console-test-ctcc" not in html
    sign_in(api, "admin")
    html = api.client.get("/rejections").text
    assert "console-test-cmcc" in html and "console-test-ctcc" in html


# -- page contents ---------------------------------------------------------------------------------------


def test_overview_shows_status_and_numbers_of_every_active_target(api: Api, conn: psycopg.Connection) -> None:
    fill_console_data(conn)
    sign_in(api, "viewer")
    r = api.client.get("/")
    assert r.status_code == 200
    text = text_of(r.text)
    assert "Console test: 5G base stations 2,400" in text
    card = r.text.split(f'id="target-{OFF_TRACK}"')[1].split("</article>")[0]
    assert 'data-status="off_track"' in card and "off track" in card
    assert 'data-figure="actual">1,360<' in card  # 540 + 160 + 460 + 100 + 100
    assert 'data-figure="goal">&gt;= 2,400<' in card
    assert '<polyline class="actual"' in card and '<polyline class="expected"' in card
    assert '<polyline class="projection"' in card
    users = r.text.split(f'id="target-{ACHIEVED}"')[1].split("</article>")[0]
    assert 'data-status="achieved"' in users and 'data-figure="actual">1,100<' in users


def test_target_page_highlights_lagging_cities_and_operators(api: Api, conn: psycopg.Connection) -> None:
    fill_console_data(conn)
    sign_in(api, "viewer")
    html = api.client.get(f"/targets/{OFF_TRACK}").text
    lagging = set(re.findall(r'<tr class="laggard" data-key="([^"]+)"', html))
    assert lagging == {"360100", "360200", "ctcc"}  # see fill_console_data
    assert '<tr data-key="360300"' in html and '<tr data-key="cmcc"' in html  # listed, not highlighted
    # Pingxiang's 460 stations today (100 + 60 × 6)
    row = html.split('data-key="360300"')[1].split("</tr>")[0]
    assert ">460<" in row


def test_unknown_target_answers_a_404_page(api: Api) -> None:
    sign_in(api, "viewer")
    r = api.client.get("/targets/no-such-target")
    assert r.status_code == 404 and "There is no target" in r.text


def test_alerts_page_lists_the_firing_target_alert(api: Api, conn: psycopg.Connection) -> None:
    fill_console_data(conn)
    sign_in(api, "viewer")
    html = api.client.get("/alerts").text
    firing = html.split('aria-label="Firing alerts"')[1].split("</table>")[0]
    assert f"target-{OFF_TRACK}" in firing and "critical" in firing


def test_feeds_page_marks_the_silent_feed_stale(api: Api, conn: psycopg.Connection) -> None:
    fill_console_data(conn)
    sign_in(api, "viewer")
    html = api.client.get("/feeds").text
    assert re.search(r'<td class="stale" data-feed="ctcc/traffic_mobile_gb"', html)
    assert re.search(r'<td class="fresh" data-feed="cmcc/bs5g_total"', html)
    assert 'data-stale-count="1"' in html


def test_upload_form_reports_rows_and_errors_by_line(api: Api) -> None:
    sign_in(api, "cmcc")
    csv = "ts,region,metric,value\n2024-01-31,360100,gigabit_users,10\n2024-01-31,360100,gigabit_users,abc\n"
    r = api.client.post("/upload", files={"file": ("jan.csv", csv.encode(), "text/csv")})
    assert r.status_code == 200, r.text
    assert 'data-figure="accepted">1<' in r.text
    assert re.search(r'data-figure="rejected"[^>]*>1<', r.text)
    # the header is line 1, so the bad second data row is line 3; its column and reason are shown
    assert re.search(r'<tr data-line="3"><td class="num">3</td><td>value</td><td>[^<]*abc', r.text)


def test_upload_that_cannot_be_read_says_why(api: Api) -> None:
    sign_in(api, "cmcc")
    r = api.client.post("/upload", files={"file": ("empty.csv", b"", "text/csv")})
    assert r.status_code == 422
    assert "The file was not loaded" in r.text


def test_board_asked_for_a_bad_date_says_what_to_use(api: Api) -> None:
    sign_in(api, "viewer")
    r = api.client.get("/?as_of=yesterday")
    assert r.status_code == 422 and "YYYY-MM-DD" in r.text


def test_overview_shows_every_default_target_even_without_data(api: Api, conn: psycopg.Connection) -> None:
    loaded = load_targets(conn)
    conn.commit()
    sign_in(api, "viewer")
    html = api.client.get("/?as_of=2023-06-30").text
    statuses = re.findall(
        r'<article class="card [^"]*" id="target-[^"]+" data-target="[^"]+">\s*<header>\s*'
        r'<span class="status \w+" data-status="(\w+)"',
        html,
    )
    assert len(statuses) == loaded == len(list_targets(conn))
    assert set(statuses) == {"no_data"}
    assert "no data to draw yet" in html


def test_the_boards_have_a_date_control_that_keeps_the_chosen_date(api: Api, conn: psycopg.Connection) -> None:
    load_targets(conn)
    conn.commit()
    sign_in(api, "viewer")
    now = api.client.get("/").text
    form = re.search(r'<form class="as-of" method="get" action="/"[^>]*>(.*?)</form>', now, re.S)
    assert form and 'type="date"' in form[1] and 'name="as_of"' in form[1] and 'value=""' in form[1]
    past = api.client.get("/", params={"as_of": "2023-06-30"}).text  # what submitting the form asks for
    assert 'name="as_of" value="2023-06-30"' in past and "as of 2023-06-30" in past
    assert 'href="/" class="now-link"' in past  # and the way back to now
    assert 'href="/targets/jx-2023-5g-new?as_of=2023-06-30"' in past
    target = api.client.get("/targets/jx-2023-5g-new", params={"as_of": "2023-06-30"}).text
    assert '<form class="as-of" method="get" action="/targets/jx-2023-5g-new"' in target
    assert 'name="as_of" value="2023-06-30"' in target
    assert api.client.get("/", params={"as_of": ""}).status_code == 200  # an empty date is now
