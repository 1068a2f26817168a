"""Failed-authentication limiting (OWASP API4): unknown keys from one address, or against one key
prefix from many addresses, are refused with 429 and Retry-After once over the limit; the console
sign-in is limited the same way; the window passes and the caller may try again."""

from __future__ import annotations

from fastapi.testclient import TestClient

from api.ratelimit import FailureLimiter
from tests.api_support import api_fixture  # noqa: F401  (the `api` fixture)

BAD = "iw_deadbeef_" + "x" * 32  # well formed, unknown


def test_the_eleventh_unknown_key_from_one_address_is_429_with_retry_after(api):
    for i in range(10):
        r = api.client.get("/v1/targets", headers={"Authorization": f"Bearer iw_{i:08d}_guess"})
        assert r.status_code == 401, r.text
    r = api.client.get("/v1/targets", headers={"Authorization": f"Bearer {BAD}"})
    assert r.status_code == 429, r.text
    assert 1 <= int(r.headers["Retry-After"]) <= 60
    assert "too many failed authentications" in r.json()["error"]
    # the address is refused even with a valid key until the window passes: guesses cannot be tested
    r = api.client.get("/v1/targets", headers=api.headers("viewer"))
    assert r.status_code == 429


def test_failures_against_one_key_prefix_from_many_addresses_are_limited(api):
    app = api.client.app
    for i in range(10):
        other = TestClient(app, client=(f"10.0.0.{i + 1}", 50000))
        assert other.get("/v1/targets", headers={"Authorization": f"Bearer {BAD}{i}"}).status_code == 401
    fresh = TestClient(app, client=("10.0.1.1", 50000))
    r = fresh.get("/v1/targets", headers={"Authorization": f"Bearer {BAD}"})
    assert r.status_code == 429 and "Retry-After" in r.headers
    # another prefix from that fresh address is still judged on its own
    assert fresh.get("/v1/targets", headers=api.headers("viewer")).status_code == 200


def test_successful_requests_are_not_counted(api):
    for _ in range(30):
        assert api.client.get("/v1/targets", headers=api.headers("viewer")).status_code == 200


def test_console_sign_in_is_limited_too(api):
    for _ in range(10):
        r = api.client.post("/signin", data={"key": BAD}, follow_redirects=False)
        assert r.status_code == 401
    r = api.client.post("/signin", data={"key": api.keys["viewer"]}, follow_redirects=False)
    assert r.status_code == 429 and "Retry-After" in r.headers


def test_the_window_slides():
    now = [0.0]
    limiter = FailureLimiter(max_failures=3, window_s=60, clock=lambda: now[0])
    for t in (0.0, 10.0, 20.0):
        now[0] = t
        assert limiter.retry_after(["addr:a"]) is None
        limiter.failed(["addr:a"])
    assert limiter.retry_after(["addr:a"]) == 40  # the first failure leaves the window at 60 s
    assert limiter.retry_after(["addr:b"]) is None
    now[0] = 60.0
    assert limiter.retry_after(["addr:a"]) is None
