"""The decision-log writer's group commits: WAL checkpoints in a thread vs SQLite's own.

    .venv/bin/python benchmarks/decision_log.py [--decisions 200000] [--batch 64] [--rounds 3]

What `devicegate serve`'s writer process does per batch (`RowWriter.write`: one multi-row
INSERT of decision rows, commit with `synchronous=FULL`), on a fresh SQLite store in a
temporary directory, in two configurations measured in alternating rounds:

* devicegate: the WAL is copied into the database file by the writer's checkpoint thread
  (PASSIVE, every 0.2 s after commits; SQLite's own checkpoint as a backstop at 10,000 pages);
* baseline: the same writer with SQLite's default — the commit that takes the WAL past
  1,000 pages runs the checkpoint itself (`RowWriter(..., checkpoint_thread=False)`).

A batch of 64 is what 64 waiting connections give in `--log-ack durable`: every request of
a batch waits for its commit, so the commit-time tail is the requests' tail. Reports per
configuration the commit time p50/p99/max, how many batches took over 5 ms, and CPU per
decision (the process, threads included); the best round by p99 counts. The last line is
one JSON object.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from devicegate.server.rows import RowWriter, Template
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
TEMPLATE: Template = (
    ("u1@bench.example", "web", "forward-auth", "block", "apple-wave-1", "v1", None, "Apple", "iOS",
     DETAIL),
    None,
)  # fmt: skip


def run(folder: Path, decisions: int, batch: int, thread: bool) -> dict[str, float]:
    store = open_store(f"sqlite:///{folder / 'log.db'}")
    writer = RowWriter(store, "0123456789abcdef-", checkpoint_thread=thread)
    took: list[float] = []
    cpu = time.process_time()
    try:
        now = time.time()
        for start in range(0, decisions, batch):
            records = [(n, now + n * 1e-5, now, 1, False) for n in range(start, start + batch)]
            began = time.perf_counter()
            writer.write(records, {1: TEMPLATE})
            took.append(time.perf_counter() - began)
    finally:
        writer.close()
        store.engine.dispose()
    cpu = time.process_time() - cpu
    took.sort()
    return {
        "p50_ms": round(took[len(took) // 2] * 1e3, 3),
        "p99_ms": round(took[int(len(took) * 0.99)] * 1e3, 3),
        "max_ms": round(took[-1] * 1e3, 3),
        "over_5ms": sum(t > 0.005 for t in took),
        "batches": len(took),
        "cpu_us_per_decision": round(cpu / (len(took) * batch) * 1e6, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--decisions", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    best: dict[str, dict[str, float]] = {}
    for round_ in range(1, args.rounds + 1):
        for name, thread in (("devicegate", True), ("baseline", False)):
            with tempfile.TemporaryDirectory(prefix="devicegate-declog-") as tmp:
                got = run(Path(tmp), args.decisions, args.batch, thread)
            print(
                f"round {round_} {name:10s} commit p50 {got['p50_ms']:6.2f} ms  "
                f"p99 {got['p99_ms']:6.2f} ms  max {got['max_ms']:6.2f} ms  "
                f">5 ms {got['over_5ms']:4.0f}/{got['batches']:.0f}  "
                f"cpu {got['cpu_us_per_decision']:5.1f} µs/decision"
            )
            if name not in best or got["p99_ms"] < best[name]["p99_ms"]:
                best[name] = got
    ratio = best["devicegate"]["p99_ms"] / best["baseline"]["p99_ms"]
    print(
        f"commit p99: checkpoint thread {best['devicegate']['p99_ms']:.2f} ms, SQLite's own "
        f"checkpoint {best['baseline']['p99_ms']:.2f} ms ({ratio:.2f}x)"
    )
    print(
        json.dumps(
            {
                "batch": args.batch,
                "decisions": args.decisions,
                "rounds": args.rounds,
                "devicegate": best["devicegate"],
                "baseline": best["baseline"],
                "p99_ratio_vs_baseline": round(ratio, 3),
            }
        )
    )


if __name__ == "__main__":
    main()
