"""Ingest: the one pipeline every collector hands observations to — validate (docs/interface.md §4), stage with COPY,
merge by identity (duplicates counted, revisions kept in history), quarantine rejections, record the batch,
all in one transaction — and the acknowledge-after-commit delivery collectors build on."""

from ingest.pipeline import IngestPipeline
from ingest.report import BatchReport, Rejection

__all__ = ["BatchReport", "IngestPipeline", "Rejection"]
