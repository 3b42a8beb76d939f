"""The Spark engine: the same audit as `duckdb_engine`, on PySpark (`--engine spark`).

It reads the same typed Parquet the ingester wrote and performs the same three steps —
distinct users and signals, distinct (plan, resource, signals) decided by `judge` on the
driver, then the join back and the aggregates — so both engines must give identical tables
(`tests/audit/test_engines.py`). Local mode by default (`local[2]`); `--master` points it
at a cluster. Spark needs a Java runtime (Debian `default-jre-headless`) and the
`devicegate[spark]` extra; both are checked up front with a one-line message.
"""

from __future__ import annotations

import os
import shutil
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from devicegate.audit import judge
from devicegate.audit.events import SIGNAL_COLUMNS
from devicegate.audit.tables import (
    DAILY_COLUMNS,
    DEVICE_COLUMNS,
    DEVICE_KEYS,
    REPORT_ONLY_COLUMNS,
    UNIT_COLUMNS,
    AuditTables,
    shape,
)
from devicegate.errors import ExtraMissing, InputError
from devicegate.policy import Snapshot

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _micros(value: int) -> datetime:
    from datetime import timedelta

    return EPOCH + timedelta(microseconds=int(value))


def _maybe_micros(value: int | None) -> datetime | None:
    return None if value is None else _micros(value)


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


def _frame(spark: Any, table: pa.Table, schema: str) -> Any:
    rows = [tuple(r.values()) for r in table.to_pylist()]
    return spark.createDataFrame(rows, schema=schema)


def run(
    snapshot: Snapshot,
    parquet: list[tuple[str, str]],
    out: Path | None,
    *,
    master: str | None = None,
) -> AuditTables:
    from pyspark.sql import functions as F

    spark = session(master)
    spark.sparkContext.setLogLevel("ERROR")
    sources = sorted({source for _, source in parquet})
    frames = [
        spark.read.parquet(path).withColumn("fid", F.lit(sources.index(source)))
        for path, source in parquet
    ]
    raw = frames[0]
    for frame in frames[1:]:
        raw = raw.unionByName(frame, allowMissingColumns=True)
    raw = raw.withColumn("sig", F.col("sig").cast("decimal(20,0)"))
    ev = raw.where(F.col("ok") & F.col("user").isNotNull())

    users = judge.users_table(
        snapshot,
        [(r["user"], r["escaped"]) for r in ev.select("user", "escaped").distinct().collect()],
    )
    sig_rows = (
        raw.where(F.col("ok"))
        .groupBy("sig", "escaped")
        .agg(*[F.first(c, ignorenulls=False).alias(c) for c in SIGNAL_COLUMNS])
        .collect()
    )
    smap = judge.signal_map(
        snapshot, [(int(r["sig"]), r["escaped"], *[r[c] for c in SIGNAL_COLUMNS]) for r in sig_rows]
    )
    users_df = _frame(
        spark, users, "raw string, escaped boolean, uid int, user string, cls int, unit string"
    )
    keys = smap.keys.to_pylist()
    keys_df = spark.createDataFrame(
        [(Decimal(k["sig"]), k["escaped"], k["sid"]) for k in keys],
        schema="sig decimal(20,0), escaped boolean, sid int",
    )
    breaks = judge.segment_breaks_us(snapshot)
    seg = " + ".join(f"CAST(unix_micros(ts) >= {b} AS INT)" for b in breaks) or "0"
    based = (
        ev.join(
            users_df.withColumnRenamed("raw", "user_raw"),
            (ev["user"] == F.col("user_raw")) & (ev["escaped"] == users_df["escaped"]),
        )
        .select(
            ev["fid"],
            ev["line"],
            ev["ts"],
            ev["resource"],
            ev["sig"],
            ev["escaped"].alias("esc"),
            "uid",
            "cls",
            "unit",
            users_df["user"].alias("uname"),
        )
        .withColumn("seg", F.expr(seg))
    )
    plan_rows = (
        based.groupBy("cls", "resource", "seg")
        .agg(F.min(F.expr("unix_micros(ts)")).alias("at"))
        .collect()
    )
    plans = judge.plan_table(
        snapshot, [(r["cls"], r["resource"], r["seg"], _micros(r["at"])) for r in plan_rows]
    )
    plans_df = _frame(spark, plans, "cls int, resource string, seg int, pid int")
    keyed = (
        based.join(keys_df, (based["sig"] == keys_df["sig"]) & (based["esc"] == keys_df["escaped"]))
        .join(plans_df, ["cls", "resource", "seg"])
        .select("fid", "line", "ts", "uid", "cls", "unit", "uname", "resource", "sid", "pid")
        .cache()
    )
    combos = (
        keyed.groupBy("pid", "resource", "sid")
        .agg(F.min_by("cls", "ts").alias("cls"), F.min(F.expr("unix_micros(ts)")).alias("at"))
        .orderBy("pid", "resource", "sid")
        .collect()
    )
    decisions = judge.decide_combos(
        snapshot,
        [(r["pid"], r["resource"], r["sid"], r["cls"], _micros(r["at"])) for r in combos],
        judge.representatives(snapshot, users),
        smap,
    )
    decisions_df = _frame(
        spark,
        decisions,
        "did int, pid int, resource string, sid int, action string, rule string, "
        "violation boolean, excepted string, report_only string, report_only_action string, "
        "spoofing_suspected boolean",
    )
    devices_df = _frame(
        spark,
        smap.devices.select(
            ["sid", "device", "vendor", "platform", "model", "os_version", "device_id"]
        ),
        "sid int, device string, vendor string, platform string, model string, "
        "os_version string, device_id string",
    )
    tz = snapshot.timezone.key
    judged = (
        keyed.join(decisions_df, ["pid", "resource", "sid"])
        .withColumn("day", F.to_date(F.from_utc_timestamp("ts", tz)))
        .join(devices_df, "sid")
        .cache()
    )
    if out is not None:
        judged.select("ts", "day", "uid", "did", "sid", "fid", "line").write.mode(
            "overwrite"
        ).parquet(str(out / "events.parquet"))
        for name, dim in (
            ("users", users.select(["uid", "user", "unit", "cls"])),
            ("decisions", decisions),
            ("signals", smap.devices),
            ("files", pa.table({"fid": range(len(sources)), "file": sources})),
        ):
            pq.write_table(dim, out / f"{name}.parquet")
        files_df = spark.createDataFrame(list(enumerate(sources)), schema="fid int, file string")
        violations = (
            judged.where("violation")
            .join(files_df, "fid")
            .select(
                F.expr("unix_micros(ts)").alias("ts"),
                "day",
                F.col("uname").alias("user"),
                "unit",
                "resource",
                "device",
                "vendor",
                "platform",
                "model",
                "device_id",
                "action",
                "rule",
                "spoofing_suspected",
                "file",
                "line",
            )
        )
        _write_single(violations.orderBy("ts", "user", "line"), out / "violations.parquet")
        if not (out / "violations.parquet").exists():  # no violation: an empty table
            duck = out / "violations.parquet"
            pq.write_table(pa.table({"ts": pa.array([], pa.timestamp("us", tz="UTC"))}), duck)
    viol = F.col("violation")

    def counts() -> list[Any]:
        return [
            F.count(F.lit(1)).alias("events"),
            F.sum(F.when(viol, 1).otherwise(0)).alias("violations"),
            F.sum(F.when(F.col("excepted").isNotNull(), 1).otherwise(0)).alias("excepted"),
            F.sum(F.when(F.col("action") == "warn", 1).otherwise(0)).alias("warned"),
            F.sum(F.when(F.col("report_only").isNotNull(), 1).otherwise(0)).alias(
                "report_only_hits"
            ),
            F.countDistinct("uid").alias("users"),
            F.countDistinct(F.when(viol, F.col("uid"))).alias("users_violating"),
        ]

    def table(frame: Any) -> pa.Table:
        rows = [r.asDict() for r in frame.collect()]
        for row in rows:
            for key in ("first_seen", "last_seen", "last_flagged"):
                if key in row:
                    row[key] = _maybe_micros(row[key])
        return pa.Table.from_pylist(rows) if rows else pa.table({})

    daily = table(judged.groupBy("unit", "day").agg(*counts()))
    units = table(judged.groupBy("unit").agg(*counts()))
    flagged = viol | (F.col("action") == "warn") | F.col("excepted").isNotNull()
    micros = F.expr("unix_micros(ts)")
    devices = table(
        judged.groupBy(
            F.col("uname").alias("user"),
            "unit",
            "device",
            "vendor",
            "platform",
            "model",
            "device_id",
        ).agg(
            F.max("os_version").alias("os_version"),
            F.count(F.lit(1)).alias("events"),
            F.sum(F.when(viol, 1).otherwise(0)).alias("violations"),
            F.sum(F.when(F.col("action") == "warn", 1).otherwise(0)).alias("warned"),
            F.sum(F.when(F.col("excepted").isNotNull(), 1).otherwise(0)).alias("excepted"),
            F.min(micros).alias("first_seen"),
            F.max(micros).alias("last_seen"),
            F.max(F.when(flagged, micros)).alias("last_flagged"),
        )
    )
    report_only = table(
        judged.where(F.col("report_only").isNotNull())
        .withColumn("ro", F.explode(F.split("report_only", ",")))
        .groupBy(
            F.split("ro", "=").getItem(0).alias("rule"),
            F.split("ro", "=").getItem(1).alias("action"),
            "unit",
        )
        .agg(F.count(F.lit(1)).alias("events"), F.countDistinct("uid").alias("users"))
    )
    total = judged.agg(
        *counts(), F.min(micros).alias("first"), F.max(micros).alias("last")
    ).collect()[0]
    totals: dict[str, object] = {
        name: total[name] or 0
        for name in (
            "events",
            "violations",
            "excepted",
            "warned",
            "report_only_hits",
            "users",
            "users_violating",
        )
    }
    totals["first_event"] = _maybe_micros(total["first"])
    totals["last_event"] = _maybe_micros(total["last"])
    keyed.unpersist()
    judged.unpersist()
    return AuditTables(
        daily=_shaped(daily, DAILY_COLUMNS, ("unit", "day")),
        devices=_shaped(devices, DEVICE_COLUMNS, DEVICE_KEYS),
        units=_shaped(units, UNIT_COLUMNS, ("unit",)),
        report_only=_shaped(report_only, REPORT_ONLY_COLUMNS, ("rule", "action", "unit")),
        totals=totals,
    )


def _write_single(frame: Any, path: Path) -> None:
    """A small Spark result as one Parquet file (what the CSV export and people expect)."""
    rows = frame.collect()
    table = pa.Table.from_pylist([r.asDict() for r in rows]) if rows else None
    if table is None:
        return
    index = table.column_names.index("ts")  # unix micros → UTC timestamps
    table = table.set_column(index, "ts", table.column("ts").cast(pa.timestamp("us", tz="UTC")))
    pq.write_table(table, path)


def _shaped(table: pa.Table, columns: tuple[str, ...], keys: tuple[str, ...]) -> pa.Table:
    if table.num_columns == 0:  # no rows: an empty table with the right columns
        table = pa.table({name: pa.array([], pa.null()) for name in columns})
    return shape(table, columns, keys)
