"""Audit past logs under a policy: what the policy would have decided for every access.

Public surface: `run_audit(snapshot, AuditOptions(...))` → `AuditResult` (summary dict,
engine tables, per-file ingestion results). The pieces, one concern each:

    formats/        one module per log format (+ the DuckDB fast path for combined logs)
    sources         finding files, gzip, format detection, fingerprints
    ingest          a file → grouped, typed Parquet (one row per distinct user and signals,
                    with the list of event times); bad lines counted and sampled
    state           incremental manifest (only new or changed files are ingested) and the
                    last run's record (unchanged inputs: its results are reused)
    judge           distinct users / signals / cases → the online `decide` (no re-implementation)
    pipeline        the steps in order, shared by both engines
    duckdb_engine   the default engine's passes over events; spark_engine the same on PySpark
    compliance      summary JSON, Parquet and CSV outputs
    progress        the progress callbacks (`Reporter`)

The names below load on first use (PEP 562): `devicegate audit` needs DuckDB and Arrow,
every other command of the CLI would pay for them at start otherwise.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from devicegate.lazy import lazy_attributes

if TYPE_CHECKING:
    from devicegate.audit.compliance import read_events
    from devicegate.audit.progress import Reporter
    from devicegate.audit.run import AuditOptions, AuditResult, run_audit

_LAZY = {
    "AuditOptions": "devicegate.audit.run",
    "AuditResult": "devicegate.audit.run",
    "Reporter": "devicegate.audit.progress",
    "read_events": "devicegate.audit.compliance",
    "run_audit": "devicegate.audit.run",
}


__getattr__ = lazy_attributes(__name__, _LAZY)

__all__ = ["AuditOptions", "AuditResult", "Reporter", "read_events", "run_audit"]
