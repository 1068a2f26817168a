"""Ingest has one door: collectors (MQTT, CSV, inbox) and the API (POST /v1/observations, /v1/uploads) reach
the pipeline only through `prepare` then `store`, and import nothing else from ingest but report types,
the delivery built on the door and small helpers (an AST scan, so no collector or route has to run)."""

from __future__ import annotations

import ast
from pathlib import Path

from ingest.pipeline import IngestPipeline

ROOT = Path(__file__).resolve().parents[1]
CALLERS = sorted([*(ROOT / "collectors").rglob("*.py"), *(ROOT / "api").rglob("*.py")])

ALLOWED_IMPORTS = {
    # the door and what it hands back
    ("ingest.pipeline", "IngestPipeline"),
    ("ingest.pipeline", "PreparedBatch"),
    ("ingest.report", "BatchReport"),
    ("ingest.report", "Rejection"),
    # acknowledge-after-commit, built on the door (MQTT)
    ("ingest.delivery", "Delivery"),
    ("ingest.delivery", "DeliveryResult"),
    ("ingest.delivery", "PendingMessage"),
    ("ingest.delivery", "PreparedDelivery"),
    # helpers that store nothing
    ("ingest.ahead", "read_ahead"),
    ("ingest.distinct", "Distinct"),
    ("ingest.validate", "RAW_COLUMNS"),
    ("ingest.validate", "TimestampRule"),
    ("ingest.text", "bounded_int"),
    ("ingest", "telemetry"),
}
#: the pipeline's public names: the door, the one-call shortcut for scripts and tests, the operator cache
PIPELINE_PUBLIC = {"prepare", "store", "submit_items", "known_operators"}
NOT_FOR_CALLERS = {"submit_items", "submit_frame", "store_prepared", "_write", "_validate"}


def _trees() -> list[tuple[Path, ast.AST]]:
    return [(path, ast.parse(path.read_text(), filename=str(path))) for path in CALLERS]


def test_collectors_and_the_api_import_only_the_door_report_types_and_helpers_from_ingest():
    imported: dict[tuple[str, str], list[str]] = {}
    for path, tree in _trees():
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "ingest":
                for alias in node.names:
                    imported.setdefault((node.module, alias.name), []).append(str(path.relative_to(ROOT)))
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.split(".")[0] == "ingest":
                        imported.setdefault((alias.name, "*"), []).append(str(path.relative_to(ROOT)))
    assert imported, "the scan found no imports from ingest: CALLERS is wrong"
    assert {k: v for k, v in imported.items() if k not in ALLOWED_IMPORTS} == {}


def test_the_pipeline_is_reached_through_prepare_and_store_only():
    assert {n for n in vars(IngestPipeline) if not n.startswith("_")} == PIPELINE_PUBLIC
    attributes: dict[str, set[str]] = {}
    for path, tree in _trees():
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute):
                attributes.setdefault(node.attr, set()).add(str(path.relative_to(ROOT)))
    assert {a: sorted(p) for a, p in attributes.items() if a in NOT_FOR_CALLERS} == {}
    for door in ("prepare", "store"):  # the CSV loader (load-csv, inbox, uploads) and POST /v1/observations
        assert {"collectors/csvfile/loader.py", "api/routes/observations.py"} <= attributes[door]
    delivery = ast.parse((ROOT / "ingest" / "delivery.py").read_text())  # MQTT, through ingest.delivery
    used = {n.attr for n in ast.walk(delivery) if isinstance(n, ast.Attribute)}
    assert {"prepare", "store"} <= used and not used & NOT_FOR_CALLERS
