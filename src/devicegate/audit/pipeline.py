"""The audit's steps in order, shared by both engines; only the passes over events differ.

Ingestion leaves grouped Parquet (`ingest`): one row per distinct (user, resource, raw
signals) of a file, with the list of its event times. Everything but two passes works on
those groups and on tables derived from them, which are small (one row per group and
policy segment or day), so it runs here, in DuckDB on the driver, for either engine:

1. groups → distinct users and distinct raw signals → `judge` maps them (directory,
   identification) → each group gets `uid`, scope class `cls`, `sid`;
2. **pass over events** (`EventPasses.segment_days`): per group, policy segment and day,
   the count and the first and last time;
3. distinct (class, resource, segment) → plans; distinct (plan, resource, signals) →
   one `decide` each (`judge`); every (group, segment) gets its decision `did`;
4. the compliance tables from the (user, device, decision, day) aggregate;
5. with `--out`: the events as a star (groups with their times, decisions per group and
   segment, dimensions), and the violations, read by the second **pass over events**
   (`EventPasses.violation_events`), restricted to the groups that have any.

The DuckDB engine runs the two passes in SQL on the same connection; the Spark engine runs
them on PySpark (`spark_engine`). Judging never happens outside `judge` → `decide`.
"""

from __future__ import annotations

import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Protocol
from zoneinfo import ZoneInfo

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from devicegate.audit import inference, judge
from devicegate.audit.events import SIGNAL_COLUMNS
from devicegate.audit.formats.nginx_fast import sql_literal
from devicegate.audit.inference import Submissions
from devicegate.audit.results import (
    DAILY_COLUMNS,
    DEVICE_COLUMNS,
    DEVICE_KEYS,
    REPORT_ONLY_COLUMNS,
    UNIT_COLUMNS,
    AuditTables,
    shape,
)
from devicegate.policy import Snapshot
from devicegate.timeutil import assume_utc

EVENTS = "events.parquet"  # a directory: one Parquet file per ingested part
FLAGGED = "(d.violation OR d.action = 'warn' OR d.excepted IS NOT NULL)"
VIOLATION_COLUMNS = (
    "ts",
    "day",
    "user",
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
# what the violations show of each dimension, by its key; `rank` orders users by name
VIOLATION_DIMENSIONS = {
    "uid": 'SELECT uid, "user", unit, dense_rank() OVER (ORDER BY "user") AS rank FROM users_t',
    "sid": "SELECT sid, device, vendor, platform, model, device_id FROM devices_t",
    "did": "SELECT did, resource, action, rule, spoofing_suspected FROM decisions_t",
    "fid": "SELECT fid, file FROM sources_t",
}


@dataclass(frozen=True)
class Parts:
    """The grouped Parquet files of one audit: `paths[i]` is part `i`, read from log file
    `sources[fids[i]]` (a log file may have several parts)."""

    paths: list[str]
    fids: list[int]
    sources: list[str]

    @classmethod
    def of(cls, parquet: list[tuple[str, str]]) -> Parts:
        sources = sorted({source for _, source in parquet})
        return cls(
            [p for p, _ in parquet], [sources.index(source) for _, source in parquet], sources
        )

    def sql_list(self) -> str:
        return "[" + ", ".join(sql_literal(p) for p in self.paths) + "]"


class EventPasses(Protocol):
    """The two passes that read every event (the rest reads groups)."""

    def segment_days(self, parts: Parts, breaks_us: list[int], tz: str) -> pa.Table:
        """(part, g, seg, day, n, first_seen, last_seen) over all events."""
        ...

    def violation_events(self, parts: Parts, flagged: pa.Table, breaks_us: list[int]) -> pa.Table:
        """(part, g, seg, ts, line) of the events of the `flagged` (part, g, seg)."""
        ...


def session(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    """A connection's or cursor's own settings. A cursor starts in the machine's time
    zone, and both TIMESTAMPTZ results in Arrow and times in CSV come out in that zone."""
    con.execute("SET preserve_insertion_order = false")
    con.execute("SET TimeZone = 'UTC'")
    return con


def segment_expr(column: str, breaks_us: list[int], micros: str = "epoch_us") -> str:
    """`snapshot.segment` of a timestamp column, as SQL (DuckDB; Spark with `unix_micros`)."""
    return judge.segment_sql(column, breaks_us, micros)


def time_range(parts: Parts) -> tuple[datetime, datetime] | None:
    """The first and last event time of all parts, from the Parquet statistics of the `ts`
    lists (no data read); None when a part has no statistics."""
    lows: list[datetime] = []
    highs: list[datetime] = []
    for path in parts.paths:
        meta = pq.ParquetFile(path).metadata
        names = [meta.schema.column(i).path for i in range(meta.num_columns)]
        index = next((i for i, n in enumerate(names) if n.startswith("ts.")), None)
        if index is None:
            return None
        for group in range(meta.num_row_groups):
            stats = meta.row_group(group).column(index).statistics
            if meta.row_group(group).num_rows == 0:
                continue
            if stats is None or not stats.has_min_max:
                return None
            lows.append(_as_time(stats.min))
            highs.append(_as_time(stats.max))
    return (min(lows), max(highs)) if lows else None


def _as_time(value: object) -> datetime:
    if isinstance(value, datetime):
        return assume_utc(value)
    return datetime.fromtimestamp(int(value) / 1_000_000, UTC)  # type: ignore[call-overload]


def constant_offset_us(tz: str, span: tuple[datetime, datetime] | None) -> int | None:
    """The UTC offset of zone `tz` in microseconds when it is the same on every day of
    `span` (and two days around it); None when it changes or the span is unknown."""
    if span is None:
        return None
    zone = ZoneInfo(tz)
    first, last = span[0] - timedelta(days=2), span[1] + timedelta(days=2)
    days = int((last - first).total_seconds() // 86400) + 1
    offsets = {(first + timedelta(days=i)).astimezone(zone).utcoffset() for i in range(days)}
    offsets.add(last.astimezone(zone).utcoffset())
    if len(offsets) != 1 or None in offsets:
        return None
    (offset,) = offsets
    assert offset is not None
    return int(offset.total_seconds()) * 1_000_000


def day_sql(column: str, tz: str, span: tuple[datetime, datetime] | None) -> str:
    """The day in zone `tz` of a TIMESTAMPTZ column, as DuckDB SQL. When the zone's UTC
    offset is the same on every day of `span` (a zone without daylight saving, or a span
    between two changes), integer arithmetic on the epoch; otherwise the zone conversion
    (several times slower per event)."""
    shift = constant_offset_us(tz, span)
    if shift is None:
        return f"CAST(timezone({sql_literal(tz)}, {column}) AS DATE)"
    return f"(DATE '1970-01-01' + CAST((epoch_us({column}) + {shift}) // 86400000000 AS INTEGER))"


def break_days(
    breaks_us: list[int], tz: str, span: tuple[datetime, datetime] | None
) -> list[date] | None:
    """The local days at whose start the policy's segments break, when every break is a
    local midnight and the zone's offset is constant over `span` (what dated policies give:
    waves, notices and expiries are days). Then an event's segment is a function of its
    day — `day >= break day` for each break — and the passes can count per day first and
    place days, not events, in segments. None when some break falls inside a day."""
    shift = constant_offset_us(tz, span)
    if shift is None:
        return None
    days: list[date] = []
    for b in breaks_us:
        local, rest = divmod(b + shift, 86_400_000_000)
        if rest:
            return None
        days.append(date(1970, 1, 1) + timedelta(days=local))
    return days


def segment_of_day(column: str, days: list[date]) -> str:
    """`snapshot.segment` of a DATE column holding local days, given `break_days`."""
    if not days:
        return "0"
    return " + ".join(f"CAST({column} >= DATE '{d.isoformat()}' AS INTEGER)" for d in days)


def run(
    con: duckdb.DuckDBPyConnection,
    snapshot: Snapshot,
    parquet: list[tuple[str, str]],
    out: Path | None,
    passes: EventPasses,
    submissions: Submissions | None = None,
) -> AuditTables:
    """`parquet` pairs each grouped Parquet file whose events carry device data with the
    log file it came from; `submissions` are the parts whose events take their device from
    those (Postfix: `inference`)."""
    inferring = submissions.parquet if submissions is not None else []
    tz = snapshot.timezone.key
    # the pass over every event runs beside the judging of users and signals, which is
    # Python (identification, the directory) and leaves a core to the pass
    breaks = judge.segment_breaks_us(snapshot)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="audit-pass") as pool:
        counting = (
            pool.submit(passes.segment_days, Parts.of(parquet), breaks, tz) if parquet else None
        )
        users, smap = _judge_groups(
            con, snapshot, [p for p, _ in parquet], [p for p, _ in inferring]
        )
        derived: list[tuple[str, str]] = []
        if submissions is not None and inferring:
            derived = inference.infer(
                con, snapshot, users, smap, [p for p, _ in parquet], submissions
            )
        parts = Parts.of(parquet + derived)
        if not derived:  # every part is known: the groups' keys too, while the pass runs
            _register_parts(con, parts)
            _group_keys(con, parts, [])
        counted = [counting.result()] if counting is not None else []
    if derived:  # the submissions' events, now that their parts exist, numbered after
        later = passes.segment_days(Parts.of(derived), breaks, tz)
        shifted = pc.add(later["part"], pa.scalar(len(parquet), pa.int32()))
        counted.append(later.set_column(later.schema.get_field_index("part"), "part", shifted))
        _register_parts(con, parts)
        _group_keys(con, parts, [p for p, _ in derived])
    segment_days = pa.concat_tables(counted)
    con.register("sd", segment_days)
    # per group and segment (a few rows per group): plans, cases and decisions come from here
    con.execute(
        "CREATE TEMP TABLE gs AS SELECT s.part, s.g, s.seg, k.cls, k.resource, k.sid, "
        "min(s.first_seen) AS first_seen FROM sd s JOIN gk k USING (part, g) GROUP BY ALL"
    )
    plans = judge.plan_table(
        snapshot,
        con.execute("SELECT cls, resource, seg, min(first_seen) FROM gs GROUP BY ALL").fetchall(),
    )
    con.register("plans_t", plans)
    planned = "FROM gs s JOIN plans_t p USING (cls, resource, seg)"
    combos = con.execute(
        f"SELECT p.pid, s.resource, s.sid, arg_min(s.cls, s.first_seen), min(s.first_seen) "
        f"{planned} GROUP BY p.pid, s.resource, s.sid ORDER BY ALL"
    ).fetchall()
    decisions = judge.decide_combos(snapshot, combos, judge.representatives(users), smap)
    con.register("decisions_t", decisions)
    con.execute(
        "CREATE TEMP TABLE gsd AS SELECT s.part, s.g, s.seg, d.did "
        f"{planned} JOIN decisions_t d USING (pid, resource, sid)"
    )
    con.execute(
        "CREATE TEMP TABLE agg AS SELECT k.uid, k.sid, x.did, s.day, sum(s.n) AS n, "
        "min(s.first_seen) AS first_seen, max(s.last_seen) AS last_seen "
        "FROM sd s JOIN gk k USING (part, g) JOIN gsd x USING (part, g, seg) GROUP BY ALL"
    )
    con.unregister("sd")  # the biggest table so far: gone before the outputs are written
    con.execute("DROP TABLE gs")
    if out is None:
        return _tables(con)
    _write_events(con, out, parts, users, decisions, smap.devices, breaks, tz)
    rows = _violation_rows(con, parts, passes, breaks, tz)
    # the files are written on a cursor in a thread while the compliance tables are made:
    # DuckDB's CSV writer and Parquet's leave most of the second core idle
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="audit-write") as pool:
        writing = pool.submit(_write_violations, session(con.cursor()), out, rows)
        tables = _tables(con)
        writing.result()
    return tables


def _register_parts(con: duckdb.DuckDBPyConnection, parts: Parts) -> None:
    """`parts_t` (filename → part, fid) and `sources_t` (fid → log file)."""
    con.register(
        "parts_t",
        pa.table(
            {
                "filename": parts.paths,
                "part": pa.array(range(len(parts.paths)), pa.int32()),
                "fid": pa.array(parts.fids, pa.int32()),
            }
        ),
    )
    con.register(
        "sources_t",
        pa.table({"fid": pa.array(range(len(parts.sources)), pa.int32()), "file": parts.sources}),
    )


def _judge_groups(
    con: duckdb.DuckDBPyConnection, snapshot: Snapshot, grouped: list[str], inferring: list[str]
) -> tuple[pa.Table, judge.SignalMap]:
    """The distinct users and signals of the groups in `grouped` and `inferring`, judged
    (`users_t`, `sigkeys`, `devices_t` registered); the groups themselves kept in `grp`
    under `fidx`: a grouped file's index, which is its part, or below zero for an inferring
    one (which is no part: its events are derived later)."""
    cols = ", ".join(f"q.{c}" for c in SIGNAL_COLUMNS)
    paths = grouped + inferring
    index = [*range(len(grouped)), *range(-1, -len(inferring) - 1, -1)]
    con.register("grp_files", pa.table({"filename": paths, "fidx": pa.array(index, pa.int32())}))
    # the file as an integer at once: a file name on every group costs memory and a string
    # join later
    con.execute(
        'CREATE TEMP TABLE grp AS SELECT f.fidx, q.g, q."user", q.escaped, q.resource, '
        f"q.sig, {cols}, q.n FROM read_parquet([{', '.join(sql_literal(p) for p in paths)}], "
        "filename = true, union_by_name = true) q JOIN grp_files f USING (filename)"
    )
    con.unregister("grp_files")
    users = judge.users_table(
        snapshot, con.execute('SELECT DISTINCT "user", escaped FROM grp').fetchall()
    )
    anyv = ", ".join(f"any_value({c})" for c in SIGNAL_COLUMNS)
    smap = judge.signal_map(
        snapshot,
        con.execute(f"SELECT sig, escaped, {anyv} FROM grp GROUP BY sig, escaped").fetchall(),
    )
    con.register("users_t", users)
    con.register("sigkeys", smap.keys)
    con.register("devices_t", smap.devices)
    return users, smap


def _group_keys(con: duckdb.DuckDBPyConnection, parts: Parts, derived: list[str]) -> None:
    """`gk`: each group's part, file, user, scope class, signals id and resource — from
    its raw signals, or for a derived submission part (`inference`) its chosen `sid`."""
    con.execute(
        "CREATE TEMP TABLE gk AS SELECT p.part, g.g, p.fid, u.uid, u.cls, k.sid, g.resource "
        "FROM grp g JOIN parts_t p ON p.part = g.fidx "
        'JOIN users_t u ON g."user" = u.raw AND g.escaped = u.escaped '
        "JOIN sigkeys k ON g.sig = k.sig AND g.escaped = k.escaped"
    )
    if derived:
        con.execute(
            "INSERT INTO gk SELECT p.part, d.g, p.fid, u.uid, u.cls, d.sid, d.resource FROM "
            f"read_parquet([{', '.join(sql_literal(p) for p in derived)}], filename = true) d "
            "JOIN parts_t p USING (filename) "
            'JOIN users_t u ON d."user" = u.raw AND d.escaped = u.escaped'
        )
    con.execute("DROP TABLE grp")


def _write_events(
    con: duckdb.DuckDBPyConnection,
    out: Path,
    parts: Parts,
    users: pa.Table,
    decisions: pa.Table,
    devices: pa.Table,
    breaks: list[int],
    tz: str,
) -> None:
    """The events as a star: `events.parquet/` (a Parquet dataset, one file per ingested
    part: one row per group, its user and signals as logged, the list of event times and
    line numbers), `groups` (each group's user, device and file keys), `segments` (the
    decision of each group in each policy segment), `breaks` (where segments start) and
    the dimensions. The parts are the ingested files themselves, hard-linked (copied only
    across file systems): the times are never rewritten. `read_events` flattens it."""
    dataset = out / EVENTS
    if dataset.is_dir():
        shutil.rmtree(dataset)
    else:
        dataset.unlink(missing_ok=True)  # a single file from an older release
    dataset.mkdir()
    for part, path in enumerate(parts.paths):
        _link(Path(path), dataset / part_name(part))
    groups = sql_literal(str(out / "groups.parquet"))
    con.execute(f"COPY (SELECT part, g, uid, sid, fid FROM gk) TO {groups} (FORMAT parquet)")
    con.execute(f"COPY gsd TO {sql_literal(str(out / 'segments.parquet'))} (FORMAT parquet)")
    pq.write_table(
        pa.table(
            {
                "seg": pa.array(range(len(breaks) + 1), pa.int32()),
                "start_us": pa.array([None, *breaks], pa.int64()),
                "tz": [tz] * (len(breaks) + 1),
            }
        ),
        out / "breaks.parquet",
    )
    for name, table in (
        ("users", users.select(["uid", "user", "unit", "cls"])),
        ("decisions", decisions),
        ("signals", devices),
    ):
        pq.write_table(table, out / f"{name}.parquet")
    con.execute(f"COPY sources_t TO {sql_literal(str(out / 'files.parquet'))} (FORMAT parquet)")


def part_name(part: int) -> str:
    """The file of part `part` in the `events.parquet/` dataset (`read_events` parses it)."""
    return f"part-{part:05d}.parquet"


def _link(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:  # another file system, or links not allowed
        shutil.copyfile(source, target)


def _write_violations(cursor: duckdb.DuckDBPyConnection, out: Path, rows: pa.Table) -> None:
    """The violations (`_violation_rows`), denormalised (people read them as they are), as
    Parquet and CSV; closes `cursor`, which is this call's own. The string columns are
    dictionary arrays over the dimensions: Parquet writes them as its dictionaries and
    DuckDB's CSV writer reads them without a copy. Without the Arrow schema in the file,
    they read back as plain strings, the other columns as they are."""
    try:
        pq.write_table(rows, out / "violations.parquet", store_schema=False)
        cursor.register("violations_t", rows)
        cursor.execute("SET preserve_insertion_order = true")  # the CSV keeps the order
        cursor.execute(
            f"COPY violations_t TO {sql_literal(str(out / 'violations.csv'))} (FORMAT csv, HEADER)"
        )
    finally:
        cursor.close()


def _violation_rows(
    con: duckdb.DuckDBPyConnection, parts: Parts, passes: EventPasses, breaks: list[int], tz: str
) -> pa.Table:
    """The violations in (time, user, line) order. DuckDB joins only integer keys to the
    events; sorted in Arrow on integer keys — the user's rank in name order stands for the
    name — and the dimensions' columns attached by position, so no string is moved (under
    half the time of joining and sorting the strings themselves, on the benchmark)."""
    flagged = con.sql(
        "SELECT x.part, x.g, x.seg FROM gsd x JOIN decisions_t d USING (did) WHERE d.violation"
    ).to_arrow_table()
    con.register("violating", passes.violation_events(parts, flagged, breaks))
    day = day_sql("v.ts", tz, time_range(parts))
    keys = con.sql(
        f"SELECT v.ts, {day} AS day, v.line, k.uid, k.sid, x.did, k.fid FROM violating v "
        "JOIN gk k USING (part, g) JOIN gsd x USING (part, g, seg)"
    ).to_arrow_table()
    con.unregister("violating")
    dims = {
        key: _used(con.sql(sql).to_arrow_table(), key, keys[key])
        for key, sql in VIOLATION_DIMENSIONS.items()
    }
    at = {key: pc.index_in(keys[key], value_set=dim[key]) for key, dim in dims.items()}
    ranks = dims["uid"]["rank"].take(at["uid"])
    # ties (same time, user and line: the fast path logs no line numbers) in key order,
    # so that the files do not depend on how DuckDB's threads met the rows
    tied = ("sid", "did", "fid")
    order = pc.sort_indices(
        pa.table(
            {"ts": keys["ts"], "rank": ranks, "line": keys["line"], **{k: keys[k] for k in tied}}
        ),
        [(name, "ascending") for name in ("ts", "rank", "line", *tied)],
    )
    columns = {name: keys[name].take(order) for name in ("ts", "day", "line")}
    for key, dim in dims.items():
        rows_at = at[key].take(order).combine_chunks()
        shown = (name for name in dim.column_names if name in VIOLATION_COLUMNS)
        columns.update({name: _attached(dim[name], rows_at) for name in shown})
    return pa.table({name: columns[name] for name in VIOLATION_COLUMNS})


def _used(dim: pa.Table, key: str, keys: pa.ChunkedArray) -> pa.Table:
    """The rows of a dimension that `keys` refer to: its dictionaries then hold only
    the values the violations show, as the Parquet writer's own would."""
    return dim.filter(pc.is_in(dim[key], value_set=pc.unique(keys)))


def _attached(values: pa.ChunkedArray, at: pa.Array) -> pa.Array:
    """`values` at positions `at`; strings as a dictionary array (indices only taken)."""
    if not pa.types.is_string(values.type):
        return values.take(at)
    encoded = pc.dictionary_encode(values.combine_chunks())
    return pa.DictionaryArray.from_arrays(encoded.indices.take(at), encoded.dictionary)


def _tables(con: duckdb.DuckDBPyConnection) -> AuditTables:
    """The compliance tables from `agg` (user, device, decision, day → counts, times)."""
    joined = "FROM agg a JOIN users_t u USING (uid) JOIN decisions_t d USING (did)"
    # per user and day first: distinct users then become plain counts
    con.execute(
        "CREATE TEMP TABLE per_day AS SELECT p.*, u.unit FROM (SELECT a.uid, a.day, "
        "sum(a.n) AS events, "
        "coalesce(sum(a.n) FILTER (WHERE d.violation), 0) AS violations, "
        "coalesce(sum(a.n) FILTER (WHERE d.excepted IS NOT NULL), 0) AS excepted, "
        "coalesce(sum(a.n) FILTER (WHERE d.action = 'warn'), 0) AS warned, "
        "coalesce(sum(a.n) FILTER (WHERE d.report_only IS NOT NULL), 0) AS report_only_hits, "
        "min(a.first_seen) AS first_seen, max(a.last_seen) AS last_seen "
        "FROM agg a JOIN decisions_t d USING (did) GROUP BY a.uid, a.day) p "
        "JOIN users_t u USING (uid)"
    )
    sums = (
        "sum(events) AS events, sum(violations) AS violations, sum(excepted) AS excepted, "
        "sum(warned) AS warned, sum(report_only_hits) AS report_only_hits"
    )
    daily = con.sql(
        f"SELECT unit, day, {sums}, count(*) AS users, "
        "count(*) FILTER (WHERE violations > 0) AS users_violating FROM per_day GROUP BY ALL"
    ).to_arrow_table()
    con.execute(
        f"CREATE TEMP TABLE per_user AS SELECT uid, unit, {sums}, min(first_seen) AS first_seen, "
        "max(last_seen) AS last_seen FROM per_day GROUP BY uid, unit"
    )
    units = con.sql(
        f"SELECT unit, {sums}, count(*) AS users, "
        "count(*) FILTER (WHERE violations > 0) AS users_violating FROM per_user GROUP BY ALL"
    ).to_arrow_table()
    # per (user, signals) on integer keys first, then merged by what people read
    per_device = (
        "SELECT a.uid, a.sid, sum(a.n) AS events, "
        "coalesce(sum(a.n) FILTER (WHERE d.violation), 0) AS violations, "
        "coalesce(sum(a.n) FILTER (WHERE d.action = 'warn'), 0) AS warned, "
        "coalesce(sum(a.n) FILTER (WHERE d.excepted IS NOT NULL), 0) AS excepted, "
        "min(a.first_seen) AS first_seen, max(a.last_seen) AS last_seen, "
        f"max(a.last_seen) FILTER (WHERE {FLAGGED}) AS last_flagged "
        "FROM agg a JOIN decisions_t d USING (did) GROUP BY a.uid, a.sid"
    )
    devices = con.sql(
        "SELECT u.user, u.unit, v.device, v.vendor, v.platform, v.model, "
        "max(v.os_version) AS os_version, v.device_id, sum(p.events) AS events, "
        "sum(p.violations) AS violations, sum(p.warned) AS warned, "
        "sum(p.excepted) AS excepted, min(p.first_seen) AS first_seen, "
        "max(p.last_seen) AS last_seen, max(p.last_flagged) AS last_flagged "
        f"FROM ({per_device}) p JOIN users_t u USING (uid) JOIN devices_t v ON v.sid = p.sid "
        "GROUP BY u.user, u.unit, v.device, v.vendor, v.platform, v.model, v.device_id"
    ).to_arrow_table()
    report_only = con.sql(
        "SELECT split_part(ro, '=', 1) AS rule, split_part(ro, '=', 2) AS action, unit, "
        "sum(n) AS events, count(DISTINCT uid) AS users FROM ("
        "SELECT unnest(string_split(d.report_only, ',')) AS ro, u.unit, a.uid, a.n "
        f"{joined} WHERE d.report_only IS NOT NULL) GROUP BY ALL"
    ).to_arrow_table()
    total = con.execute(
        f"SELECT {sums}, count(*) AS users, count(*) FILTER (WHERE violations > 0), "
        "min(first_seen), max(last_seen) FROM per_user"
    ).fetchone()
    assert total is not None
    # the daily table's counts, in its order, then the span
    names = (*DAILY_COLUMNS[2:], "first_event", "last_event")
    totals = {
        k: (0 if v is None and k not in ("first_event", "last_event") else v)
        for k, v in zip(names, total, strict=True)
    }
    return AuditTables(
        daily=shape(daily, DAILY_COLUMNS, ("unit", "day")),
        devices=shape(devices, DEVICE_COLUMNS, DEVICE_KEYS),
        units=shape(units, UNIT_COLUMNS, ("unit",)),
        report_only=shape(report_only, REPORT_ONLY_COLUMNS, ("rule", "action", "unit")),
        totals=totals,
    )
