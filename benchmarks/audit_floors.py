"""Where the audit's seconds go: the least each step costs on this machine, in one run.

    .venv/bin/python benchmarks/audit_floors.py [--lines 10000000] [--cache DIR] [--rounds 2]

`benchmarks/audit.py` measures `devicegate audit` against a Python loop; this script asks
what any DuckDB-based audit of the same log must at least spend, so that devicegate's time
is weighed against floors measured next to it, not guessed (docs/performance.md). On the log
`audit.py` generates (same cache), each in a subprocess of its own, best of `--rounds`:

* cat        — the file read from the page cache to /dev/null;
* split      — DuckDB's CSV reader splitting every line into the seven fields of
               `nginx_fast.reader`, counting rows: no other work at all;
* group      — the same, grouped by the raw key (agent, `ident user [`, zone) with the count
               and the list of parsed times, no checks: the least a grouped ingestion that
               keeps every event's time does;
* ingest     — devicegate's own ingestion query (`nginx_fast.parse_query`), checks and all;
* count      — the events of devicegate's ingested groups counted per group and local day
               in one DuckDB pass (the least judging by dated policy segments reads);
* write      — the violations devicegate found, read back, written as Parquet and as CSV
               the way `pipeline._write_violations` writes them (the output floor);
* startup    — a new interpreter importing the CLI and loading the policy and the 50,000-user
               directory (`cli.common.load_snapshot`): devicegate's own cost, the one step
               here that is not a floor of any audit;
* devicegate — `devicegate audit --out` end to end (as in `audit.py`).

The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from audit import POLICY, add_cache_option, audit, floor, generate  # noqa: E402

STEPS = ("split", "group", "ingest")
#: what `least_seconds` adds up: one floor for each thing every audit with `--out` must do
LEAST = ("group", "count", "write", "startup")


def query(step: str, log: Path) -> str:
    from devicegate.audit.formats import nginx_fast

    source = nginx_fast.reader(str(log), "none")
    if step == "split":
        return f"SELECT count(*), count(f5) FROM {source}"
    if step == "group":
        local = "strptime(substr(f0, -28, 20), '%d/%b/%Y:%H:%M:%S')"
        key = "substr(f0, strpos(f0, ' ') + 1, length(f0) - 28 - strpos(f0, ' '))"
        return (
            f"SELECT f5, {key} AS k0, substr(f0, -8) AS tz, count(*), list({local}) "
            f"FROM {source} GROUP BY ALL"
        )
    return nginx_fast.parse_query(str(log), "none")


def child(step: str, target: Path) -> None:
    """One measurement in this process; prints its seconds."""
    started = time.perf_counter()
    if step == "startup":  # `target`: the directory CSV
        from devicegate.cli.common import load_snapshot

        load_snapshot([POLICY], target, None, quiet=True)
        print(time.perf_counter() - started)
        return
    from devicegate.audit import ingest

    if step == "count":  # `target`: a folder of ingested grouped Parquet
        con = ingest.connect()
        from devicegate.audit.formats.nginx_fast import sql_literal

        parts = sql_literal(str(target / "*.parquet"))
        day = "(epoch_us(t) + 10800000000) // 86400000000"  # Moscow: UTC+3 all year
        con.sql(
            f"SELECT g, {day} AS day, count(*), min(t), max(t) FROM "
            f"(SELECT g, unnest(ts) AS t FROM read_parquet({parts})) GROUP BY ALL"
        ).to_arrow_table()
    elif step in STEPS:
        con = ingest.connect()
        con.sql(query(step, target)).to_arrow_table()
    else:  # write: `target` is the violations.parquet of a devicegate run
        import pyarrow.parquet as pq

        from devicegate.audit.formats.nginx_fast import sql_literal

        rows = pq.read_table(target)
        started = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="devicegate-bench-") as tmp:
            pq.write_table(rows, Path(tmp) / "v.parquet")
            con = ingest.connect()
            con.execute("SET preserve_insertion_order = true")
            con.register("rows_t", rows)
            csv = sql_literal(str(Path(tmp) / "v.csv"))
            con.execute(f"COPY rows_t TO {csv} (FORMAT csv, HEADER)")
    print(time.perf_counter() - started)


def measure(step: str, target: Path) -> float:
    done = subprocess.run(
        [sys.executable, __file__, "--child", step, str(target)],
        capture_output=True,
        text=True,
        check=True,
    )
    return float(done.stdout.split()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--lines", type=int, default=10_000_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    add_cache_option(parser)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], Path(args.child[1]))
        return
    log, directory = generate(args.cache, args.lines)
    best: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="devicegate-bench-") as tmp:
        for _ in range(args.rounds):  # interleaved: a slow minute hits every step alike
            out = Path(tmp) / "out"
            subprocess.run(["rm", "-rf", str(out)], check=True)
            seconds, _, summary = audit(log, directory, out)
            took = {"cat": floor(log), "devicegate": seconds}
            took.update({step: measure(step, log) for step in STEPS})
            took["count"] = measure("count", out / ".audit-state" / "parsed")
            took["write"] = measure("write", out / "violations.parquet")
            took["startup"] = measure("startup", directory)
            for name, value in took.items():
                best[name] = min(best.get(name, value), value)
    for name in ("cat", *STEPS, "count", "write", "startup", "devicegate"):
        print(f"{name:11} {best[name]:7.2f} s")
    least = sum(best[name] for name in LEAST)
    print(
        f"{' + '.join(LEAST)}: {least:.2f} s, the floors a DuckDB audit with these outputs "
        f"pays plus devicegate's start-up, against devicegate's {best['devicegate']:.2f} s "
        f"({summary['violations']:,} violations written)"
    )
    print(
        json.dumps(
            {
                "lines": args.lines,
                **{f"{name}_seconds": round(value, 3) for name, value in best.items()},
                "violations": summary["violations"],
                "least_seconds": round(least, 3),
            }
        )
    )


if __name__ == "__main__":
    main()
