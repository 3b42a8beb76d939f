"""DuckDB and Spark give identical results on the same input."""

from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from devicegate.audit import AuditOptions, read_events, run_audit
from devicegate.policy.compile import Snapshot
from tests.audit.test_equivalence import write_logs
from tests.conftest import require


@pytest.mark.slow
def test_duckdb_and_spark_agree(tmp_path: Path, snapshot: Snapshot) -> None:
    pytest.importorskip("pyspark", reason="the spark extra is not installed")
    require(shutil.which("java") is not None, "no Java runtime (default-jre-headless)")
    logs = tmp_path / "logs"
    logs.mkdir()
    write_logs(logs)
    duck = run_audit(snapshot, AuditOptions(logs=[logs], out=tmp_path / "duck"))
    spark = run_audit(snapshot, AuditOptions(logs=[logs], out=tmp_path / "spark", engine="spark"))
    for name in ("daily", "devices", "units", "report_only"):
        assert getattr(duck.tables, name).equals(getattr(spark.tables, name)), name
    assert duck.tables.totals == spark.tables.totals
    for key in (
        "events",
        "violations",
        "excepted",
        "report_only_hits",
        "by_unit",
        "first_event",
        "last_event",
        "policy_version",
        "bad_lines",
    ):
        assert duck.summary[key] == spark.summary[key], key
    assert duck.summary["violations"] > 0 and duck.summary["report_only_hits"] >= 0

    def events(root: Path) -> list[tuple[object, ...]]:
        rows = read_events(root).to_pylist()
        return sorted(
            (
                r["ts"],
                r["user"],
                r["resource"],
                r["device"],
                r["action"],
                r["rule"],
                r["file"],
                r["line"],
            )
            for r in rows
        )

    assert events(tmp_path / "duck") == events(tmp_path / "spark")
    # the violations come from each engine's own second pass over the events
    duck_violations = pq.read_table(tmp_path / "duck" / "violations.parquet")
    spark_violations = pq.read_table(tmp_path / "spark" / "violations.parquet")
    assert duck_violations.num_rows == duck.summary["violations"]
    assert duck_violations.to_pylist() == spark_violations.to_pylist()


def test_spark_without_pyspark_says_which_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from devicegate.audit import spark_engine
    from devicegate.errors import ExtraMissing

    monkeypatch.setitem(sys.modules, "pyspark.sql", None)
    with pytest.raises(ExtraMissing, match="pyspark"):
        spark_engine.session()


def test_spark_without_java_names_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("pyspark", reason="the spark extra is not installed")
    from devicegate.audit import spark_engine
    from devicegate.errors import InputError

    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setattr(spark_engine.shutil, "which", lambda name: None)
    with pytest.raises(InputError) as raised:
        spark_engine.session()
    assert "default-jre-headless" in (raised.value.hint or "")
