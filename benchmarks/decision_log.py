"""The decision-log writer: narrow rows against wide ones, WAL checkpoints in a thread
against SQLite's own.

    .venv/bin/python benchmarks/decision_log.py [--decisions 200000] [--batch 64]
        [--templates 2000] [--rounds 3]

What `devicegate serve`'s writer process does per batch (`RowWriter.write`: the details a
batch sees first, one multi-row INSERT of narrow decision rows, commit with
`synchronous=FULL`), on a fresh SQLite store in a temporary directory, in three
configurations measured in alternating rounds:

* devicegate: one narrow row a decision (request id, time, details id), details kept once in
  `decision_details`; the WAL copied into the database file by the writer's checkpoint
  thread (PASSIVE, every 0.2 s after commits; SQLite's own checkpoint as a backstop);
* wide: the decision log before migration 0004 — one row a decision with everything it said
  (12 columns, the explanation's JSON included), the same checkpoint thread;
* own-checkpoint: devicegate's rows with SQLite's default checkpoint — the commit that takes
  the WAL past 1,000 pages runs the checkpoint itself.

Decisions cycle through `--templates` different details (users × devices × what was
decided), each first seen in the batch that uses it. A batch of 64 is what 64 waiting
connections give in `--log-ack durable`; every request of a batch waits for its commit, so
the commit time is part of every answer. Reports per configuration the commit time
p50/p99/max, batches over 5 ms, CPU per decision (the process, threads included) and the
database's bytes per decision; the best round by CPU counts. The last line is one JSON
object.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from devicegate.server.log_rows import CHUNK, RowWriter, Template
from devicegate.store import open_store

DETAIL = json.dumps(
    {
        "signals": {
            "user_agent": "Mozilla/5.0 (iPhone; CPU iPhone OS 16_3 like Mac OS X) "
            "AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.3 Mobile/15E451 Safari/604.1"
        },
        "identity": {"vendor": "Apple", "platform": "iOS", "model": "iPhone"},
        "explain": ["rule apple-wave-1 applies to gov/minpromtorg/industry"],
        "message": "Apple devices are not allowed for work from 17 July 2023.",
    }
)
WIDE_TABLE = """CREATE TABLE decisions_wide (
    id INTEGER PRIMARY KEY, request_id VARCHAR(64) NOT NULL UNIQUE, at DATETIME NOT NULL,
    user VARCHAR(320) NOT NULL, resource VARCHAR(64) NOT NULL, adapter VARCHAR(32) NOT NULL,
    action VARCHAR(16) NOT NULL, rule VARCHAR(128), policy_version VARCHAR(32) NOT NULL,
    device_ref VARCHAR(64), vendor VARCHAR(64), platform VARCHAR(64), detail JSON NOT NULL)"""


def templates(count: int) -> dict[int, Template]:
    return {
        tid: (
            (f"u{tid}@bench.example", "web", "forward-auth", "block", "apple-wave-1", "v1",
             None, "Apple", "iOS", DETAIL.replace("iPhone OS 16_3", f"iPhone OS 16_{tid}")),
            None,
        )
        for tid in range(1, count + 1)
    }  # fmt: skip


class WideWriter(RowWriter):
    """The writer as it was before migration 0004: one wide row a decision."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        with self.engine.begin() as conn:
            conn.exec_driver_sql(WIDE_TABLE)
            conn.exec_driver_sql("CREATE INDEX ix_decisions_wide_at ON decisions_wide (at)")
        self.wide_sql = "INSERT INTO decisions_wide (request_id, at, user, resource, adapter, "
        self.wide_sql += (
            "action, rule, policy_version, device_ref, vendor, platform, detail) VALUES "
        )
        self.wide_values = "(" + ", ".join(["?"] * 12) + ")"

    def write(self, records: list[Any], templates: dict[int, Template]) -> None:
        if self._conn is None:
            self._conn = self.engine.raw_connection()
            if self.checkpointer is not None:
                self._conn.cursor().execute("PRAGMA wal_autocheckpoint=10000")
        prefix, stamp = self.id_prefix, self._time
        rows = [
            (f"{prefix}{n:010x}", stamp(at), *templates[tid][0]) for n, at, _, tid, _ in records
        ]
        self._insert_rows(self._conn.cursor(), self.wide_sql, self.wide_values, rows)
        self._conn.commit()
        if self.checkpointer is not None:
            self.checkpointer.touch()


CONFIGURATIONS = (("devicegate", RowWriter, True), ("wide", WideWriter, True),
                  ("own-checkpoint", RowWriter, False))  # fmt: skip


def run(folder: Path, decisions: int, batch: int, count: int, kind: type[RowWriter],
        thread: bool) -> dict[str, float]:  # fmt: skip
    path = folder / "log.db"
    store = open_store(f"sqlite:///{path}")
    writer = kind(store, "0123456789abcdef-", checkpoint_thread=thread)
    known = templates(count)
    took: list[float] = []
    cpu = time.process_time()
    try:
        now = time.time()
        for start in range(0, decisions, batch):
            records = [
                (n, now + n * 1e-5, now, 1 + n % count, False) for n in range(start, start + batch)
            ]
            began = time.perf_counter()
            writer.write(records, known)
            took.append(time.perf_counter() - began)
    finally:
        writer.close()
        store.engine.dispose()
    cpu = time.process_time() - cpu
    size = sum(p.stat().st_size for p in folder.iterdir() if p.name.startswith("log.db"))
    took.sort()
    return {
        "p50_ms": round(took[len(took) // 2] * 1e3, 3),
        "p99_ms": round(took[int(len(took) * 0.99)] * 1e3, 3),
        "max_ms": round(took[-1] * 1e3, 3),
        "over_5ms": sum(t > 0.005 for t in took),
        "batches": len(took),
        "cpu_us_per_decision": round(cpu / (len(took) * batch) * 1e6, 2),
        "bytes_per_decision": round(size / (len(took) * batch)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--decisions", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--templates", type=int, default=2_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if not 0 < args.batch <= CHUNK:
        parser.error(f"--batch must be 1..{CHUNK}")
    best: dict[str, dict[str, float]] = {}
    for round_ in range(1, args.rounds + 1):
        for name, kind, thread in CONFIGURATIONS:
            with tempfile.TemporaryDirectory(prefix="devicegate-decision_log-") as tmp:
                got = run(Path(tmp), args.decisions, args.batch, args.templates, kind, thread)
            print(
                f"round {round_} {name:14s} commit p50 {got['p50_ms']:6.2f} ms  "
                f"p99 {got['p99_ms']:6.2f} ms  max {got['max_ms']:6.2f} ms  "
                f">5 ms {got['over_5ms']:4.0f}/{got['batches']:.0f}  "
                f"cpu {got['cpu_us_per_decision']:5.1f} µs/decision  "
                f"{got['bytes_per_decision']:4.0f} B/decision",
                flush=True,
            )
            if name not in best or got["cpu_us_per_decision"] < best[name]["cpu_us_per_decision"]:
                best[name] = got
    cpu_ratio = best["devicegate"]["cpu_us_per_decision"] / best["wide"]["cpu_us_per_decision"]
    p99_ratio = best["devicegate"]["p99_ms"] / best["own-checkpoint"]["p99_ms"]
    print(
        f"writer CPU a decision: {best['devicegate']['cpu_us_per_decision']:.1f} µs against "
        f"{best['wide']['cpu_us_per_decision']:.1f} µs with wide rows ({cpu_ratio:.2f}x); "
        f"commit p99 {best['devicegate']['p99_ms']:.2f} ms against "
        f"{best['own-checkpoint']['p99_ms']:.2f} ms with SQLite's own checkpoint ({p99_ratio:.2f}x)"
    )
    print(
        json.dumps(
            {
                "batch": args.batch,
                "decisions": args.decisions,
                "templates": args.templates,
                "rounds": args.rounds,
                **best,
                "cpu_ratio_vs_wide": round(cpu_ratio, 3),
                "p99_ratio_vs_own_checkpoint": round(p99_ratio, 3),
            }
        )
    )


if __name__ == "__main__":
    main()
