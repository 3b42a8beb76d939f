"""The Spark engine: the same audit as `duckdb_engine`, on PySpark (`--engine spark`).

The steps are `pipeline`'s, as for DuckDB: what reads groups and the tables derived from
them (small: one row per group and segment or day) runs on the driver; the two passes that
read every event — counting per group, policy segment and day, and pulling the events of
violating (group, segment)s — run on Spark, over the same grouped Parquet the ingester
wrote. Both engines must give identical tables (`tests/audit/test_engines.py`). Local mode
by default (`local[2]`); `--master` points it at a cluster. Spark needs a Java runtime
(Debian `default-jre-headless`) and the `devicegate[spark]` extra; both are checked up
front with a one-line message.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pyarrow as pa

from devicegate.audit import pipeline
from devicegate.audit.inference import Submissions
from devicegate.audit.results import AuditTables
from devicegate.errors import ExtraMissing, InputError
from devicegate.policy import Snapshot

#: The (part, group, segment) key both passes return, as the DuckDB passes type it.
KEY_TYPES = {"part": pa.int32(), "g": pa.int32(), "seg": pa.int32()}


def session(master: str | None = None) -> Any:
    """A SparkSession (local[2] unless `master`), or a friendly error when Spark cannot run."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise ExtraMissing("spark", "pyspark") from None
    if not (os.environ.get("JAVA_HOME") or shutil.which("java")):
        raise InputError(
            "the spark engine needs a Java runtime and none was found",
            hint="install Debian's default-jre-headless (bash scripts/system-deps.sh)",
        )
    return (
        SparkSession.builder.master(master or "local[2]")
        .appName("devicegate-audit")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.driver.memory", "1g")
        .getOrCreate()
    )


class SparkPasses:
    """`pipeline.EventPasses` on PySpark: explode each group's times, segment, count."""

    def __init__(self, spark: Any) -> None:
        self.spark = spark

    def _events(self, parts: pipeline.Parts, breaks_us: list[int], lines: bool) -> Any:
        from pyspark.sql import functions as F

        frames = [
            self.spark.read.parquet(path).select("g", "ts", "line").withColumn("part", F.lit(i))
            for i, path in enumerate(parts.paths)
        ]
        groups = frames[0]
        for frame in frames[1:]:
            groups = groups.unionByName(frame)
        seg = pipeline.segment_expr("t", breaks_us, "unix_micros")
        if lines:  # line numbers, when the reader knew them, are aligned with the times
            events = groups.select(
                "part", "g", F.posexplode("ts").alias("pos", "t"), "line"
            ).withColumn("line", F.col("line")[F.col("pos")])
        else:
            events = groups.select("part", "g", F.explode("ts").alias("t"))
        return events.withColumn("seg", F.expr(seg))

    def segment_days(self, parts: pipeline.Parts, breaks_us: list[int], tz: str) -> pa.Table:
        from pyspark.sql import functions as F

        rows = (
            self._events(parts, breaks_us, False)
            .withColumn("day", F.to_date(F.from_utc_timestamp("t", tz)))
            .groupBy("part", "g", "seg", "day")
            .agg(
                F.count(F.lit(1)).alias("n"),
                F.min(F.expr("unix_micros(t)")).alias("first_seen"),
                F.max(F.expr("unix_micros(t)")).alias("last_seen"),
            )
            .collect()
        )
        return _arrow(
            rows,
            {
                **KEY_TYPES,
                "day": pa.date32(),
                "n": pa.int64(),
                "first_seen": pa.int64(),
                "last_seen": pa.int64(),
            },
        )

    def violation_events(
        self, parts: pipeline.Parts, flagged: pa.Table, breaks_us: list[int]
    ) -> pa.Table:
        keys = self.spark.createDataFrame(
            [tuple(r.values()) for r in flagged.to_pylist()], schema="part int, g int, seg int"
        )
        from pyspark.sql import functions as F

        rows = (
            self._events(parts, breaks_us, True)
            .join(F.broadcast(keys), ["part", "g", "seg"])
            .select("part", "g", "seg", F.expr("unix_micros(t)").alias("ts"), "line")
            .collect()
        )
        return _arrow(
            rows,
            {
                **KEY_TYPES,
                "ts": pa.int64(),
                "line": pa.int64(),
            },
        )


def _arrow(rows: list[Any], types: dict[str, pa.DataType]) -> pa.Table:
    """Collected Spark rows as Arrow; integer micros become UTC timestamps."""
    columns = {}
    for name, kind in types.items():
        values = pa.array([r[name] for r in rows], kind)
        if name in ("first_seen", "last_seen", "ts"):
            values = values.cast(pa.timestamp("us", tz="UTC"))
        columns[name] = values
    return pa.table(columns)


def run(
    snapshot: Snapshot,
    parquet: list[tuple[str, str]],
    out: Path | None,
    *,
    master: str | None = None,
    submissions: Submissions | None = None,
) -> AuditTables:
    from devicegate.audit.duckdb_engine import connect

    spark = session(master)
    spark.sparkContext.setLogLevel("ERROR")
    con = connect()
    try:
        return pipeline.run(con, snapshot, parquet, out, SparkPasses(spark), submissions)
    finally:
        con.close()
