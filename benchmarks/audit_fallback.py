"""Ingesting a big nginx log with one line the fast path cannot vouch for.

    .venv/bin/python benchmarks/audit_fallback.py [--lines 1000000] [--cache DIR]

The log is `benchmarks/audit.py`'s generated one (same cache), copied with one line whose
time is 30 February inserted in the middle: DuckDB's `strptime` refuses it, so the fast path
cannot vouch for the file as a whole. Measured in one run, each in a subprocess of its own
(peak RSS is the process's):

* devicegate — `ingest_file`: the whole-file fast path, then the file in parts of
  `PART_LINES` lines, only the part holding the odd line read by the reference parser;
* baseline — the whole file through the reference parser (`ingest_python`): what reading
  it without parts costs.

Both must count the same events and bad lines. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from audit import add_cache_option, generate  # noqa: E402  (the log audit.py generates)

ODD = b'198.51.100.7 - ivanov [30/Feb/2023:09:00:00 +0300] "GET / HTTP/1.1" 200 1 "-" "UA"\n'


def odd_copy(log: Path, lines: int) -> Path:
    """The log with the odd line after its middle line (made once, kept in the cache)."""
    odd = log.with_name(f"{log.stem}-odd.log")
    if odd.exists() and odd.stat().st_size == log.stat().st_size + len(ODD):
        return odd
    partial = odd.with_suffix(".partial")
    with log.open("rb") as source, partial.open("wb") as out:
        for number, text in enumerate(source):
            if number == lines // 2:
                out.write(ODD)
            out.write(text)
    partial.replace(odd)
    return odd


def child(which: str, log: Path) -> None:
    """One measurement, in this process: prints seconds, events, bad lines, peak RSS."""
    from zoneinfo import ZoneInfo

    from devicegate.audit import ingest
    from devicegate.audit.formats.base import ParseContext

    ctx = ParseContext(str(log), "web", ZoneInfo("UTC"), 2023)
    with tempfile.TemporaryDirectory(prefix="devicegate-bench-", dir=log.parent) as tmp:
        started = time.perf_counter()
        if which == "devicegate":
            done = ingest.ingest_file(log, "nginx", ctx, Path(tmp) / "x")
        else:
            con = ingest.connect()
            try:
                done = ingest.ingest_python(con, log, "nginx", ctx, Path(tmp) / "x.parquet")
            finally:
                con.close()
        seconds = time.perf_counter() - started
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "events": done.events, "bad": done.bad, "rss": rss}))


def measure(which: str, log: Path) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", which, str(log)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return dict(json.loads(out.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--lines", type=int, default=1_000_000)
    add_cache_option(parser)
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], Path(args.child[1]))
        return

    if ROOT in args.cache.resolve().parents:
        raise SystemExit("the cache directory must be outside the repository")
    log, _ = generate(args.cache, args.lines)
    odd = odd_copy(log, args.lines)
    new = measure("devicegate", odd)
    old = measure("baseline", odd)
    if (new["events"], new["bad"]) != (old["events"], old["bad"]):
        raise SystemExit(f"the two disagree: {new} against {old}")
    ratio = old["seconds"] / new["seconds"]
    print(f"{args.lines + 1:,} lines, one of them odd; {new['events']:,} events, {new['bad']} bad")
    print(f"devicegate (parts):     {new['seconds']:7.2f} s  peak RSS {new['rss']:6.0f} MB")
    print(f"baseline (whole file):  {old['seconds']:7.2f} s  peak RSS {old['rss']:6.0f} MB")
    print(f"  speed-up              {ratio:7.2f}x")
    result = {
        "lines": args.lines + 1,
        "seconds": round(new["seconds"], 3),
        "peak_rss_mb": round(new["rss"]),
        "baseline_seconds": round(old["seconds"], 3),
        "baseline_peak_rss_mb": round(old["rss"]),
        "ratio_vs_baseline": round(ratio, 2),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
