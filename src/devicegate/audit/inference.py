"""SMTP submissions in the audit get the device `devicegate serve` would have decided them on.

SMTP carries no device data. Online, `devicegate serve` decides a Postfix submission from
the user's *identified* sightings on other adapters within `--postfix-window`
(`adapters/postfix.py`, `choose`): with `--postfix-match any` the most severe decision over
every distinct identified device the user was seen on in the window (the newest sighting
among equally severe ones), with `newest` the newest identified sighting's. A request
whose signals identify no device is no sighting. Without any, the submission is decided on
no device signals (each rule's `on_unidentified`).

The audit does the same with the events of the run's other logs. It works after `judge`
has mapped the distinct users and signals (the pipeline's `users_t`, `sigkeys`), so a
sighting is an event whose signals identify a device — identification is done once per
distinct signal, as for judging — and users meet under the name `serve` records sightings
under (`bulk.user(...).canonical`: `i.petrov` in the IMAP log and `MINFIN\\i.petrov` in the
IIS log are one user when the policy's `login_domains` says so). Then, in DuckDB:

1. the sightings: (user, signals id, time) of every identified event of a submitter;
2. `newest`: an as-of join (`ASOF JOIN`) gives each submission the user's newest sighting
   at or before it; `any`: each (user, signals) the user was seen with around the
   submission's time, as-of joined on (user, signals), gives the newest sighting of *that*
   device at or before it — in both, one kept only when within the window;
3. `any`: the candidates' decisions — one `decide` per distinct (plan, device) through
   `judge` — and per submission the most severe (then the newest sighting);
4. each submission part is rewritten as grouped Parquet (`g`, `user`, `escaped`,
   `resource`, `sid`, `n`, `ts`, `line`: the ingested shape with the chosen signals id
   instead of raw signals), which the pipeline judges like any other part.

The derived files depend on the other logs, so they are rebuilt on every run and never kept
in the incremental state.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import duckdb
import pyarrow as pa

from devicegate.audit import judge
from devicegate.audit.formats.nginx_fast import sql_literal
from devicegate.model import Signals
from devicegate.policy import Snapshot

__all__ = ["Submissions", "infer"]


@dataclass(frozen=True)
class Submissions:
    """The parts of logs whose events carry no device data (Postfix), each with its log
    file, and how they take a device: `match` (`any` or `newest`) over the identified
    sightings within `window`. Derived parts are written to `workdir`."""

    parquet: list[tuple[str, str]]
    window: timedelta
    match: str
    workdir: Path


def _paths(paths: list[str]) -> str:
    return "[" + ", ".join(sql_literal(p) for p in paths) + "]"


def infer(
    con: duckdb.DuckDBPyConnection,
    snapshot: Snapshot,
    users: pa.Table,
    smap: judge.SignalMap,
    sightings: list[str],
    submissions: Submissions,
) -> list[tuple[str, str]]:
    """(Parquet path, log file) of each submission part rewritten with the signals id each
    event is judged on. `sightings` are the parts whose events carry device data; `con`
    has `users_t` and `sigkeys` registered (`pipeline`)."""
    workdir = submissions.workdir
    workdir.mkdir(parents=True, exist_ok=True)
    for old in workdir.glob("smtp-*.parquet"):
        old.unlink()
    # the signals id of no signals, which submission groups carry: absent only when the
    # submission parts hold no event at all (then no row needs it)
    found = smap.sid(Signals())
    none = -1 if found is None else found
    con.register("identified_t", smap.identified())
    parts = [path for path, _ in submissions.parquet]
    numbered = ", ".join(f"({sql_literal(path)}, {i})" for i, path in enumerate(parts))
    con.execute(
        "CREATE TEMP TABLE sub AS SELECT (row_number() OVER ())::BIGINT AS eid, p.src, "
        'q."user", q.escaped, q.resource, u.ukey, u.cls, q.ts, q.line FROM ('
        'SELECT filename, "user", escaped, resource, unnest(ts) AS ts, unnest(line) AS line '
        f"FROM read_parquet({_paths(parts)}, filename = true, union_by_name = true)) q "
        f"JOIN (VALUES {numbered}) p(filename, src) USING (filename) "
        'JOIN users_t u ON q."user" = u.raw AND q.escaped = u.escaped'
    )
    _sightings(con, sightings)
    window_us = int(submissions.window.total_seconds() * 1_000_000)
    if submissions.match == "newest":
        _newest(con, window_us)
    else:
        _most_severe(con, snapshot, users, smap, window_us)
    derived = []
    for src, (path, log_file) in enumerate(submissions.parquet):
        del path
        target = workdir / f"smtp-{src}.parquet"
        con.execute(
            "COPY (SELECT (row_number() OVER (ORDER BY min(e.line), min(e.ts)) - 1)::INTEGER "
            'AS g, e."user", e.escaped, e.resource, '
            f"coalesce(c.sid, {none})::INTEGER AS sid, count(*) AS n, "
            "list(e.ts ORDER BY e.line, e.ts) AS ts, list(e.line ORDER BY e.line, e.ts) AS line "
            f"FROM sub e LEFT JOIN chosen c USING (eid) WHERE e.src = {src} "
            'GROUP BY e."user", e.escaped, e.resource, coalesce(c.sid, '
            f"{none})) TO {sql_literal(str(target))} (FORMAT parquet)"
        )
        derived.append((str(target), log_file))
    for table in ("sub", "sight", "chosen"):
        con.execute(f"DROP TABLE IF EXISTS {table}")
    con.unregister("identified_t")
    return derived


def _sightings(con: duckdb.DuckDBPyConnection, parts: list[str]) -> None:
    """`sight`: (user, signals id, time) of every event of a submitter whose signals
    identify a device."""
    if not parts:
        con.execute("CREATE TEMP TABLE sight (ukey VARCHAR, sid INTEGER, seen TIMESTAMPTZ)")
        return
    con.execute(
        "CREATE TEMP TABLE sight AS SELECT DISTINCT ukey, sid, seen FROM ("
        "SELECT u.ukey, k.sid, unnest(q.ts) AS seen "
        f"FROM read_parquet({_paths(parts)}, union_by_name = true) q "
        'JOIN users_t u ON q."user" = u.raw AND q.escaped = u.escaped '
        "JOIN sigkeys k ON q.sig = k.sig AND q.escaped = k.escaped "
        "SEMI JOIN identified_t i ON i.sid = k.sid "
        "WHERE u.ukey IN (SELECT DISTINCT ukey FROM sub))"
    )


def _newest(con: duckdb.DuckDBPyConnection, window_us: int) -> None:
    """`chosen`: (eid, sid) — the newest identified sighting at or before each submission,
    within the window (of sightings at the same instant, the lowest signals id)."""
    con.execute(
        "CREATE TEMP TABLE chosen AS SELECT e.eid, s.sid FROM sub e ASOF JOIN ("
        "SELECT ukey, seen, min(sid) AS sid FROM sight GROUP BY ukey, seen) s "
        "ON e.ukey = s.ukey AND e.ts >= s.seen "
        f"WHERE epoch_us(e.ts) - epoch_us(s.seen) <= {window_us}"
    )


def _most_severe(
    con: duckdb.DuckDBPyConnection,
    snapshot: Snapshot,
    users: pa.Table,
    smap: judge.SignalMap,
    window_us: int,
) -> None:
    """`chosen`: (eid, sid) — of the distinct devices seen within the window before each
    submission, the one whose decision is the most severe; the newest sighting among
    equals, as `serve` picks (then the lowest signals id)."""
    # each (user, device) the user was seen with while the submission's window was open
    # (a cheap bound from the first and last sighting), then the newest sighting of that
    # device at or before the submission
    seg = judge.segment_sql("c.ts", judge.segment_breaks_us(snapshot))
    con.execute(
        "CREATE TEMP TABLE cand AS SELECT c.eid, c.cls, c.resource, c.ts, "
        f"({seg})::INTEGER AS seg, c.sid, s.seen "
        "FROM (SELECT e.eid, e.ukey, e.cls, e.resource, e.ts, r.sid FROM sub e JOIN ("
        "SELECT ukey, sid, min(seen) AS first, max(seen) AS last FROM sight GROUP BY ALL) r "
        "ON e.ukey = r.ukey AND e.ts >= r.first "
        f"AND epoch_us(e.ts) - epoch_us(r.last) <= {window_us}) c "
        "ASOF JOIN sight s ON c.ukey = s.ukey AND c.sid = s.sid AND c.ts >= s.seen "
        f"WHERE epoch_us(c.ts) - epoch_us(s.seen) <= {window_us}"
    )
    plans = judge.plan_table(
        snapshot,
        con.execute("SELECT cls, resource, seg, min(ts) FROM cand GROUP BY ALL").fetchall(),
    )
    con.register("cand_plans", plans)
    combos = con.execute(
        "SELECT p.pid, c.resource, c.sid, arg_min(c.cls, c.ts), min(c.ts) FROM cand c "
        "JOIN cand_plans p USING (cls, resource, seg) GROUP BY p.pid, c.resource, c.sid "
        "ORDER BY ALL"
    ).fetchall()
    decided = judge.decide_combos(snapshot, combos, judge.representatives(users), smap)
    con.register("cand_decisions", decided.select(["did", "pid", "resource", "sid"]))
    con.register("cand_severity", judge.severities(decided))
    con.execute(
        "CREATE TEMP TABLE chosen AS SELECT c.eid, c.sid FROM cand c "
        "JOIN cand_plans p USING (cls, resource, seg) "
        "JOIN cand_decisions d ON d.pid = p.pid AND d.resource = c.resource AND d.sid = c.sid "
        "JOIN cand_severity v USING (did) "
        "QUALIFY row_number() OVER (PARTITION BY c.eid ORDER BY v.severity DESC, "
        "c.seen DESC, c.sid) = 1"
    )
    for name in ("cand_plans", "cand_decisions", "cand_severity"):
        con.unregister(name)
    con.execute("DROP TABLE cand")
