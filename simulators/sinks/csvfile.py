"""CSV sink: long files (one per operator) or wide files (one per operator per month), UTF-8 or GB18030.

Wide files look like operators' monthly spreadsheets: ts, region, a city-name column (ignored by
the loader), operator, entity, then one column per metric; monthly statistics dated `YYYY-MM`,
daily ones `YYYY-MM-DD`, meter readings as local date-times.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd

from reference.catalogue import METRICS
from reference.regions import REGIONS
from simulators.faults import cadence_of_metrics
from simulators.scenario import Scenario
from simulators.sinks import RateLimiter, SinkReport
from simulators.timeline import DAY_US, format_ts, us_to_local

LONG_HEADER = ["ts", "region", "metric", "value", "operator", "entity"]
ENCODINGS = ("utf-8", "utf-8-sig", "gb18030")


def csv_value(token: str, raw: str) -> str:
    """A JSON value token as a spreadsheet cell: quotes dropped; a broken payload shows as #REF!."""
    if raw:
        return "#REF!"
    return token[1:-1] if token.startswith('"') and token.endswith('"') else token


def metrics_by_operator(scenario: Scenario, out: pd.DataFrame | None = None) -> dict[str, list[str]]:
    """Each sender's metric columns, in catalogue order."""
    found: dict[str, set[str]] = {}
    for metric, g in scenario.gauges.items():
        for op in g.operators:
            found.setdefault(op, set()).add(metric)
    for t in scenario.traffic:
        for op in t.operators:
            found.setdefault(op, set()).update((t.total_metric, t.ipv6_metric))
    if scenario.base_station_energy:
        stations = scenario.gauges[scenario.base_station_energy.stations_metric]
        for op in stations.operators:
            found.setdefault(op, set()).add(scenario.base_station_energy.metric)
    if scenario.admin.population:
        found.setdefault("admin", set()).add("population")
    if scenario.admin.gigabit_city:
        found.setdefault("admin", set()).add("gigabit_city")
    if scenario.data_centres:
        from simulators.generate import data_centre_sites

        for s in data_centre_sites(scenario):
            found.setdefault(s.operator, set()).update(
                (scenario.data_centres.total_metric, scenario.data_centres.it_metric)
            )
    if scenario.base_station_meters:
        for op in scenario.base_station_meters.operators:
            found.setdefault(op, set()).add(scenario.base_station_meters.metric)
    if out is not None:
        for op, metric in out[["operator", "metric"]].drop_duplicates().itertuples(index=False):
            found.setdefault(op, set()).add(metric)
    order = list(METRICS)
    return {op: sorted(ms, key=order.index) for op, ms in sorted(found.items())}


class CsvSink:
    """Writes the outbox as CSV files under `out_dir`."""

    def __init__(
        self,
        scenario: Scenario,
        out_dir: Path,
        *,
        layout: str = "long",
        encoding: str = "utf-8",
        rate: float = 0,
    ) -> None:
        if layout not in ("long", "wide"):
            raise ValueError("--format must be long or wide")
        if encoding.lower() not in ENCODINGS:
            raise ValueError(f"--encoding must be one of {', '.join(ENCODINGS)}")
        self.scenario = scenario
        self.out_dir = out_dir
        self.layout = layout
        self.encoding = encoding.lower()
        self.report = SinkReport("csv")
        self._files: dict[Path, tuple[IO[str], Any]] = {}
        self._columns = metrics_by_operator(scenario)
        self._cadence = cadence_of_metrics(scenario)
        self._limiter = RateLimiter(rate)
        out_dir.mkdir(parents=True, exist_ok=True)

    def _writer(self, path: Path, header: list[str]) -> Any:
        if path not in self._files:
            fh = open(path, "w", encoding=self.encoding, newline="")  # noqa: SIM115 - closed in close()
            w = csv.writer(fh, lineterminator="\n")
            w.writerow(header)
            self._files[path] = (fh, w)
            self.report.files.append(str(path))
        return self._files[path][1]

    def send(self, out: pd.DataFrame) -> None:
        if out.empty:
            return
        self._limiter.take(len(out))
        self.report.observations += len(out)
        if self.layout == "long":
            self._send_long(out)
        else:
            self._send_wide(out)
        for fh, _ in self._files.values():
            fh.flush()  # live runs: rows are visible as soon as they are sent

    def _send_long(self, out: pd.DataFrame) -> None:
        operator = np.where(out["payload_operator"] != "", out["payload_operator"], out["operator"]).tolist()
        values = _cells(out)
        cols = [out[c].to_numpy(dtype=object).tolist() for c in ("ts", "region", "metric")]
        entity = out["entity"].to_numpy(dtype=object).tolist()
        rows = list(zip(*cols, values, operator, entity, strict=True))
        senders = out["operator"].to_numpy(dtype=object)
        for sender in sorted(set(senders)):
            w = self._writer(self.out_dir / f"{self.scenario.name}-{sender}.csv", LONG_HEADER)
            w.writerows(rows[i] for i in np.flatnonzero(senders == sender))

    def _send_wide(self, out: pd.DataFrame) -> None:
        tz = self.scenario.zone
        ts_text = self._wide_ts(out)
        operator = np.where(out["payload_operator"] != "", out["payload_operator"], out["operator"])
        values = _cells(out)
        send_month = {
            int(d): us_to_local(int(d) * DAY_US + DAY_US // 2, tz).strftime("%Y-%m")
            for d in np.unique(out["send_us"].to_numpy() // DAY_US)
        }
        months = [send_month[int(s) // DAY_US] for s in out["send_us"]]
        files: dict[tuple[str, str], dict[tuple[str, str, str, str], list[dict[str, str]]]] = {}
        for i, (sender, metric, region, entity) in enumerate(
            zip(out["operator"], out["metric"], out["region"], out["entity"], strict=True)
        ):
            rows = files.setdefault((sender, months[i]), {}).setdefault((ts_text[i], region, entity, operator[i]), [])
            for row in rows:
                if metric not in row:
                    row[metric] = values[i]
                    break
            else:
                rows.append({metric: values[i]})
        for (sender, month), keyed in files.items():
            metrics = self._columns.get(sender, [])
            extra = sorted({m for rows in keyed.values() for row in rows for m in row} - set(metrics))
            metrics = metrics + extra
            with_entity = any(METRICS[m].entity_required for m in metrics if m in METRICS)
            header = ["ts", "region", "城市", "operator", *(["entity"] if with_entity else []), *metrics]
            w = self._writer(self.out_dir / f"{self.scenario.name}-{sender}-{month}.csv", header)
            for (ts, region, entity, op), rows in keyed.items():
                city = REGIONS[int(region)].name_zh if region.isdigit() and int(region) in REGIONS else ""
                for row in rows:
                    w.writerow(
                        [ts, region, city, op, *([entity] if with_entity else []), *(row.get(m, "") for m in metrics)]
                    )

    def _wide_ts(self, out: pd.DataFrame) -> list[str]:
        """Spreadsheet-style ts: YYYY-MM for monthly statistics, a date for daily, local date-time otherwise."""
        tz = self.scenario.zone
        ts_us = out["ts_us"].to_numpy(dtype=np.int64)
        canonical = format_ts(ts_us, tz)
        sent = out["ts"].to_numpy(dtype=object)
        cadence = out["metric"].map(self._cadence).fillna(0).to_numpy()
        result: list[str] = []
        for c_text, s_text, cad in zip(canonical, sent, cadence, strict=True):
            if s_text != c_text:
                result.append(s_text)  # a faulty ts stays as sent
            elif cad >= 28 * 86400:
                result.append(c_text[:7])
            elif cad == 86400:
                result.append(c_text[:10])
            else:
                result.append(c_text[:19].replace("T", " "))
        return result

    def close(self) -> SinkReport:
        for fh, _ in self._files.values():
            fh.close()
        self._files.clear()
        return self.report


def _cells(out: pd.DataFrame) -> list[str]:
    value = out["value"].to_numpy(dtype=object).tolist()
    raw = out["raw"].to_numpy(dtype=object)
    if not (raw != "").any() and not any(v.startswith('"') for v in value):
        return value
    return [csv_value(v, r) for v, r in zip(value, raw.tolist(), strict=True)]
