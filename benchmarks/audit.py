"""Benchmark `devicegate audit` on a 10M-line nginx log against a plain Python loop.

    .venv/bin/python benchmarks/audit.py [--lines 10000000] [--cache DIR] [--engine spark]

Generated once into a cache directory outside the repository (default
`~/.cache/devicegate-bench/audit`, or $DEVICEGATE_BENCH_CACHE): a combined log of the
scenario's month around wave 1, 50,000 users with one to three devices each, 5,000
distinct User-Agents with a skewed (Zipf-like) popularity, under the bundled apple-ban
policy. Then, in one run:

* floor    — `cat` of the file to /dev/null;
* baseline — a plain Python loop: regex per line, the user's class from the snapshot, a
             per-distinct-User-Agent cache of identification, `decide` per line, counting;
             it reads the first `--baseline-lines` (2M) lines and its time is scaled to the
             file (it is a linear loop; `--baseline-lines 0` runs it on everything, ~4 min);
* devicegate — `devicegate audit --quiet --json --out DIR` end to end (subprocess), its
             peak RSS, then the same command again (re-audit of already ingested data:
             nothing changed, so the last run's results are reused), then once more with
             a *changed* policy (a rule's message edited: a new policy version), which
             re-judges everything from the stored groups without re-reading the log
             (`rejudge_seconds`: not a target, reported so that a slower re-judge shows).

`--engine spark` runs the three audits on Spark (local[2]; docs/audit.md) instead of DuckDB.
Both sides must agree on events and violations. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
POLICY = ROOT / "examples" / "apple-ban" / "policy.yaml"
MSK = timezone(timedelta(hours=3))
UNITS = [
    "gov/minpromtorg/industry",
    "gov/minpromtorg/trade",
    "gov/mintsifry/platforms",
    "gov/mintsifry/ios-lab",
    "gov/minfin/budget",
    "gov/minfin/treasury",
    "gov/minenergo/grid",
    "gov/minzdrav",
    "gov/mincult",
    "rostec/holding",
    "rostec/cii",
]
USERS = 50_000
AGENTS = 5_000


def agents() -> list[str]:
    """5,000 distinct, realistic User-Agents across platforms (Apple about a third)."""
    out: list[str] = []
    for v in range(1000):
        ios = f"{15 + v % 3}_{v % 8}"
        out.append(
            f"Mozilla/5.0 (iPhone; CPU iPhone OS {ios} like Mac OS X) AppleWebKit/605.1.15 "
            f"(KHTML, like Gecko) Version/{ios.replace('_', '.')} Mobile/15E{v:03d} Safari/604.1"
        )
        out.append(
            f"Mozilla/5.0 (Linux; Android {11 + v % 4}; SM-G99{v % 10}B Build/TP1A.{v}) "
            f"AppleWebKit/537.36 (KHTML, like Gecko) Chrome/115.0.{v}.110 Mobile Safari/537.36"
        )
        out.append(
            f"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like "
            f"Gecko) Chrome/114.0.{v}.199 Safari/537.36"
        )
        out.append(
            f"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, "
            f"like Gecko) Version/16.{v % 6} Safari/605.1.{v}"
        )
        out.append(
            f"Mozilla/5.0 (X11; Linux x86_64; rv:{90 + v % 30}.0) Gecko/20100101 "
            f"Firefox/{90 + v % 30}.{v}"
        )
    assert len(set(out)) == AGENTS
    return out


def generate(cache: Path, lines: int) -> tuple[Path, Path]:
    log = cache / f"access-v2-{lines}.log"
    directory = cache / "directory.csv"
    if log.exists() and directory.exists():
        return log, directory
    cache.mkdir(parents=True, exist_ok=True)
    rnd = random.Random(20230717)
    users = [f"u{i:05d}@bench.example" for i in range(USERS)]
    with directory.open("w", encoding="utf-8") as handle:
        handle.write("user,unit,groups,email,name\n")
        for i, user in enumerate(users):
            handle.write(f"u{i:05d},{UNITS[i % len(UNITS)]},,{user},User {i}\n")
    uas = agents()
    rnd.shuffle(uas)
    weights = [1 / (rank + 1) ** 1.1 for rank in range(len(uas))]
    # like real traffic: each user has one to three devices (browsers), popular ones often
    owned = [rnd.choices(uas, weights, k=rnd.choice((1, 1, 2, 2, 3))) for _ in users]
    missing = set(uas) - {ua for devices in owned for ua in devices}
    for index, ua in enumerate(sorted(missing)):  # every agent is in use somewhere
        owned[index % USERS].append(ua)
    start = datetime(2023, 7, 3, tzinfo=MSK)
    span = 31 * 86400
    stamps = [f"{start + timedelta(seconds=s):%d/%b/%Y:%H:%M:%S %z}" for s in range(0, span, 7)]
    paths = ["/portal/news", "/portal/docs?id=42", "/portal/hr", "/api/tasks?page=2"]
    print(f"generating {lines:,} lines into {log} (once)…", file=sys.stderr)
    tmp = log.with_suffix(".tmp")
    block = 200_000
    with tmp.open("w", encoding="utf-8") as handle:
        for first in range(0, lines, block):
            n = min(block, lines - first)
            picks = rnd.choices(range(USERS), k=n)
            who = [users[p] for p in picks]
            ua = [rnd.choice(owned[p]) for p in picks]
            base = first * len(stamps) // lines
            chunk = [
                f"198.51.100.{i % 250 + 1} - {who[i]} "
                f"[{stamps[min(len(stamps) - 1, base + i * len(stamps) // lines)]}] "
                f'"GET {paths[i % 4]} HTTP/1.1" 200 {(i * 7919) % 50000} "-" "{ua[i]}"\n'
                for i in range(n)
            ]
            handle.writelines(chunk)
    tmp.replace(log)
    return log, directory


def floor(log: Path) -> float:
    started = time.perf_counter()
    with open(os.devnull, "wb") as sink:
        subprocess.run(["cat", str(log)], stdout=sink, check=True)
    return time.perf_counter() - started


LINE = re.compile(r'^(\S+) \S+ (\S+) \[([^\]]+)\] "[^"]*" \d{3} \S+ "[^"]*" "([^"]*)"')


def baseline(log: Path, directory: Path, limit: int) -> tuple[float, int, int, int]:
    """The plain Python loop with a per-distinct-User-Agent cache, over the first `limit`
    lines: (seconds, lines read, events, violations)."""
    from devicegate.directory import load_directory
    from devicegate.model import Request, Signals
    from devicegate.policy import compile_policy, decide, load_policy

    snapshot = compile_policy(load_policy([POLICY]), load_directory(directory))
    started = time.perf_counter()
    cache: dict[str, Signals] = {}
    events = violations = read = 0
    parse_time = datetime.strptime
    with log.open(encoding="utf-8") as handle:
        for line in handle:
            read += 1
            if read > limit:
                read = limit
                break
            match = LINE.match(line)
            if match is None:
                continue
            _ip, user, stamp, ua = match.groups()
            if user == "-":
                continue
            signals = cache.get(ua)
            if signals is None:  # one interned Signals per distinct agent: identified once
                signals = cache[ua] = Signals(user_agent=ua)
                snapshot.identifier.profile(signals)
            at = parse_time(stamp, "%d/%b/%Y:%H:%M:%S %z")
            decision = decide(snapshot, Request(user, "web", at, signals))
            events += 1
            if decision.action.value in ("block", "quarantine"):
                violations += 1
    return time.perf_counter() - started, read, events, violations


def draft_policy(folder: Path) -> Path:
    """The scenario's policy with one rule's message edited: same decisions, new version."""
    import yaml

    data = yaml.safe_load(POLICY.read_text(encoding="utf-8"))
    rule = next(r for r in data["rules"] if r.get("message"))
    rule["message"] = str(rule["message"]) + " (draft)"
    path = folder / "draft-policy.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


def audit(
    log: Path, directory: Path, out: Path, policy: Path = POLICY, engine: str = "duckdb"
) -> tuple[float, float, dict[str, object]]:
    """(seconds, peak RSS in MB, summary) of one `devicegate audit` run as a subprocess."""
    command = [
        str(Path(sys.executable).with_name("devicegate")),
        "audit",
        "--quiet",
        "--json",
        "--engine",
        engine,
        "-p",
        str(policy),
        "-d",
        str(directory),
        "--resource",
        "web",
        "--out",
        str(out),
        str(log),
    ]
    started = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    stdout = proc.stdout.read() if proc.stdout else b""
    stderr = proc.stderr.read() if proc.stderr else b""
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"devicegate audit failed ({proc.returncode}): {stderr.decode()[-2000:]}")
    return seconds, usage.ru_maxrss / 1024, json.loads(stdout)


def add_cache_option(parser: argparse.ArgumentParser) -> None:
    """`--cache DIR`: where generated logs are kept (outside the repository)."""
    default = os.environ.get(
        "DEVICEGATE_BENCH_CACHE", Path.home() / ".cache" / "devicegate-bench" / "audit"
    )
    parser.add_argument("--cache", type=Path, default=Path(default))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--lines", type=int, default=10_000_000)
    add_cache_option(parser)
    parser.add_argument("--skip-baseline", action="store_true", help="for quick iterations")
    parser.add_argument(
        "--engine",
        choices=("duckdb", "spark"),
        default="duckdb",
        help="the audit's engine (spark: local[2], docs/audit.md; peak RSS is the driver's)",
    )
    parser.add_argument(
        "--baseline-lines",
        type=int,
        default=2_000_000,
        help="lines the Python loop reads; its time is scaled linearly to the whole file "
        "(the loop is linear; 0: the whole file)",
    )
    args = parser.parse_args()
    if ROOT in args.cache.resolve().parents:
        raise SystemExit("the cache directory must be outside the repository")
    log, directory = generate(args.cache, args.lines)
    floor_s = floor(log)
    print(f"floor (cat):        {floor_s:7.2f} s  ({log.stat().st_size / 1e9:.2f} GB)")
    base_s, base_events, base_violations, measured = (float("nan"), -1, -1, 0)
    if not args.skip_baseline:
        limit = args.baseline_lines or args.lines
        took, measured, base_events, base_violations = baseline(log, directory, limit)
        base_s = took * args.lines / measured
        print(
            f"baseline (Python):  {base_s:7.2f} s  ({took:.2f} s measured on the first "
            f"{measured:,} lines, scaled to {args.lines:,}); {base_events:,} events, "
            f"{base_violations:,} violations in those lines"
        )
    with tempfile.TemporaryDirectory(prefix="devicegate-bench-") as tmp:
        out = Path(tmp) / "out"
        seconds, rss, summary = audit(log, directory, out, engine=args.engine)
        print(
            f"devicegate audit:   {seconds:7.2f} s  {summary['events']:,} events, "
            f"{summary['violations']:,} violations, peak RSS {rss:.0f} MB"
        )
        again, rss2, summary2 = audit(log, directory, out, engine=args.engine)
        print(f"re-audit:           {again:7.2f} s  (peak RSS {rss2:.0f} MB)")
        draft = draft_policy(Path(tmp))
        rejudge, rss3, summary3 = audit(log, directory, out, draft, args.engine)
        print(f"re-judge (policy changed): {rejudge:7.2f} s  (peak RSS {rss3:.0f} MB)")
        if summary3["policy_version"] == summary["policy_version"]:
            print("WARNING: the draft policy has the same version", file=sys.stderr)
        if (summary3["events"], summary3["violations"]) != (
            summary["events"],
            summary["violations"],
        ):
            print("WARNING: re-judging disagrees with the first run", file=sys.stderr)
    if measured == args.lines and (base_events, base_violations) != (
        summary["events"],
        summary["violations"],
    ):
        print("WARNING: baseline and devicegate disagree", file=sys.stderr)
    if summary2["events"] != summary["events"]:
        print("WARNING: re-audit disagrees with the first run", file=sys.stderr)
    ratio = base_s / seconds
    print(f"ratio vs baseline:  {ratio:.2f}x   lines/s: {args.lines / seconds:,.0f}")
    print(
        json.dumps(
            {
                "lines": args.lines,
                "engine": args.engine,
                "seconds": round(seconds, 3),
                "lines_per_s": round(args.lines / seconds),
                "baseline_seconds": round(base_s, 3),
                "baseline_measured_lines": measured,
                "ratio_vs_baseline": round(ratio, 2),
                "floor_seconds": round(floor_s, 3),
                "peak_rss_mb": round(max(rss, rss2, rss3)),
                "reaudit_seconds": round(again, 3),
                "rejudge_seconds": round(rejudge, 3),
            }
        )
    )


if __name__ == "__main__":
    main()
