"""HTTP sink: POST /v1/observations in batches with a Bearer key (per operator, or one admin key)."""

from __future__ import annotations

import json
import time

import httpx
import numpy as np
import pandas as pd

from simulators.faults import item_json
from simulators.sinks import RateLimiter, SinkError, SinkReport


class HttpSink:
    """Pushes outbox rows to the infrawatch API.

    With a key per operator (`keys`), each operator's items go with its own key and any operator
    named in the payload is left for the service to judge. With one admin key, each item names
    its operator (so a foreign_operator fault cannot be told apart and is sent as its sender).
    """

    def __init__(
        self,
        url: str,
        *,
        keys: dict[str, str] | None = None,
        admin_key: str | None = None,
        batch: int = 500,
        rate: float = 0,
        timeout: float = 30.0,
        retries: int = 3,
    ) -> None:
        if not keys and not admin_key:
            raise SinkError("HTTP push needs --key KEY (an admin key) or --key OPERATOR=KEY for each operator")
        self.keys = keys or {}
        self.admin_key = admin_key
        self.batch = max(1, batch)
        self.retries = retries
        self.report = SinkReport("http")
        self._limiter = RateLimiter(rate)
        self._client = httpx.Client(base_url=url.rstrip("/"), timeout=timeout)

    def send(self, out: pd.DataFrame) -> None:
        if out.empty:
            return
        items = item_json(out, with_metric=True)
        broken = (out["raw"] != "").to_numpy()
        items[broken] = [json.dumps(t) for t in items[broken]]  # a broken item travels as a JSON string
        senders = out["operator"].to_numpy(dtype=object)
        for sender in sorted(set(senders)):
            idx = np.flatnonzero(senders == sender)
            key = self.keys.get(sender) or self.admin_key
            if key is None:
                raise SinkError(f"no key for operator {sender!r}: pass --key {sender}=KEY or an admin key")
            texts = items[idx]
            if sender not in self.keys:  # admin key: each item names its operator
                texts = np.array(
                    [
                        t[:-1] + f',"operator":"{sender}"}}' if t.startswith("{") and '"operator"' not in t else t
                        for t in texts
                    ],
                    dtype=object,
                )
            for start in range(0, len(texts), self.batch):
                chunk = texts[start : start + self.batch]
                self._limiter.take(len(chunk))
                self._post(key, '{"observations":[' + ",".join(chunk) + "]}", len(chunk))

    def _post(self, key: str, body: str, count: int) -> None:
        delay = 0.5
        for attempt in range(self.retries + 1):
            try:
                r = self._client.post(
                    "/v1/observations",
                    content=body.encode(),
                    headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
                )
            except httpx.HTTPError as exc:
                if attempt == self.retries:
                    raise SinkError(
                        f"cannot reach {self._client.base_url} ({exc}); is the API running? pass --url"
                    ) from None
                time.sleep(delay)
                delay *= 2
                continue
            if r.status_code in (401, 403):
                raise SinkError(f"the API refused the key ({r.status_code}): {r.text[:200]}; check --key")
            if r.status_code >= 500 and attempt < self.retries:
                time.sleep(delay)
                delay *= 2
                continue
            if r.status_code >= 400:
                raise SinkError(f"POST /v1/observations answered {r.status_code}: {r.text[:300]}")
            body_json = r.json()
            self.report.messages += 1
            self.report.observations += count
            self.report.accepted += int(body_json.get("accepted", 0))
            self.report.duplicates += int(body_json.get("duplicates", 0))
            self.report.revised += int(body_json.get("revised", 0))
            self.report.rejected += len(body_json.get("rejected", []))
            return

    def close(self) -> SinkReport:
        self._client.close()
        return self.report
