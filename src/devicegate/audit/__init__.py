"""Audit past logs under a policy: what the policy would have decided for every access.

Public surface: `run_audit(snapshot, AuditOptions(...))` → `AuditResult` (summary dict,
engine tables, per-file ingestion results). The pieces, one concern each:

    formats/        one module per log format (+ the DuckDB fast path for combined logs)
    sources         finding files, gzip, format detection, fingerprints
    ingest          a file → typed Parquet with a signal key; bad lines counted and sampled
    state           incremental manifest (only new or changed files are ingested)
    judge           distinct users / signals / cases → the online `decide` (no re-implementation)
    duckdb_engine   the default engine; spark_engine the same audit on PySpark
    compliance      summary JSON, Parquet and CSV outputs
"""

from devicegate.audit.compliance import read_events
from devicegate.audit.run import AuditOptions, AuditResult, Reporter, run_audit

__all__ = ["AuditOptions", "AuditResult", "Reporter", "read_events", "run_audit"]
