"""Ingest: the one door every collector hands observations to — `IngestPipeline.prepare` (validate, no
database; docs/interface.md §4) then `IngestPipeline.store` (stage with COPY, merge by identity with
duplicates counted and revisions kept in history, quarantine rejections, record the batch, in one
transaction) — and the acknowledge-after-commit delivery collectors build on."""

from ingest.pipeline import IngestPipeline, PreparedBatch
from ingest.report import BatchReport, Rejection

__all__ = ["BatchReport", "IngestPipeline", "PreparedBatch", "Rejection"]
