"""Reliability figures: the soak, the faults survived, the fuzz campaign — one table.

    .venv/bin/python benchmarks/soak.py [--requests 1000000] [--store sqlite|postgres]
                                        [--fuzz-examples 100000 | --fuzz-report FILE]

1. The soak (`tests/faults/soak.py`): `--requests` mixed requests over loopback through one
   `devicegate serve` (forward-auth 70 %, Dovecot 15 %, Postfix 10 %, RADIUS 5 %), a policy
   reload every 10 s, a quarantine hold and release every second; unexpected answers,
   memory growth after warm-up (serve and its writer), acknowledged decisions against rows.
2. The fault tests (`tests/faults/`), each run by pytest: PostgreSQL stopped for 10 s
   (durable and buffered), the writer killed, the disk full, policy files replaced during a
   reload, LDAP and an MDM unreachable, the clock, the systemd unit; each reports its figures.
3. The fuzz campaign (`tests/fuzz/`) with `--fuzz-examples` inputs a parser, or the counts
   a `make fuzz` run wrote (`--fuzz-report`).

Prints the table of docs/reliability.md; the last line is one JSON object. Needs the
project's test dependencies and, for `--store postgres` and the faults, the Debian
packages of scripts/deps (run `make soak` from a checkout). Run it at low priority
(`nice`): it takes the machine's cores for its length.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the soak's harness lives with the tests that use it

FAULTS = {
    "postgres_outage": "tests/faults/test_postgres_outage.py",
    "writer_killed": "tests/faults/test_writer_killed.py",
    "disk_full": "tests/faults/test_disk_full.py",
    "reload_races": "tests/faults/test_reload_races.py",
    "source_unreachable": "tests/faults/test_source_unreachable.py",
    "time": "tests/faults/test_time.py",
    "service": "tests/faults/test_service.py",
}


def run_soak(requests: int, store: str) -> dict[str, object]:
    from tests.faults.soak import soak

    with tempfile.TemporaryDirectory(prefix="devicegate-soak-") as name:
        tmp = Path(name)
        if store == "postgres":
            from tests.server import procs

            with procs.postgres(tmp / "pg") as url:
                return soak(tmp, url, requests=requests, seconds=6 * 3600, progress=True)
        url = f"sqlite:///{tmp}/soak.db"
        return soak(tmp, url, requests=requests, seconds=6 * 3600, progress=True)


def pytest(args: list[str], env: dict[str, str]) -> int:
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args]
    return subprocess.run(command, cwd=ROOT, env=env, check=False).returncode


def run_faults() -> dict[str, dict[str, object]]:
    """Each fault test file once; its figures from the report it writes."""
    results: dict[str, dict[str, object]] = {}
    for name, path in FAULTS.items():
        with tempfile.NamedTemporaryFile(suffix=".jsonl", delete=False) as handle:
            report = Path(handle.name)
        env = dict(os.environ, CI="true", DEVICEGATE_FAULTS_REPORT=str(report))
        started = time.monotonic()
        code = pytest([path], env)
        figures = [json.loads(line) for line in report.read_text().splitlines() if line]
        report.unlink()
        lost = sum(int(f.get("lost", 0)) for f in figures if not f["fault"].endswith("buffered"))
        results[name] = {
            "survived": code == 0,
            "lost": lost,
            "seconds": round(time.monotonic() - started, 1),
            "runs": figures,
        }
    return results


def run_fuzz(examples: int, report: Path | None) -> dict[str, object]:
    if report is None:
        with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as handle:
            report = Path(handle.name)
        env = dict(
            os.environ,
            CI="true",
            DEVICEGATE_FUZZ_EXAMPLES=str(examples),
            DEVICEGATE_FUZZ_REPORT=str(report),
        )
        pytest(["tests/fuzz"], env)
    counts = json.loads(report.read_text())
    return {
        "inputs": sum(counts["inputs"].values()),
        "failures": sum(counts["failures"].values()),
        "parsers": len(counts["inputs"]),
        "least_per_parser": min(counts["inputs"].values()),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=1_000_000)
    parser.add_argument("--store", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--fuzz-examples", type=int, default=100_000)
    parser.add_argument("--fuzz-report", type=Path, help="counts a `make fuzz` run wrote")
    parser.add_argument("--skip-faults", action="store_true")
    args = parser.parse_args()

    started = time.monotonic()
    soak = run_soak(args.requests, args.store)
    soak_seconds = time.monotonic() - started
    faults = {} if args.skip_faults else run_faults()
    fuzz = run_fuzz(args.fuzz_examples, args.fuzz_report)

    requests = int(soak["requests"])  # type: ignore[call-overload]
    lost = int(soak["acknowledged"]) - int(soak["logged"])  # type: ignore[call-overload]
    print()
    print("| what | figure | decisions lost | reproduce |")
    print("|---|---|---|---|")
    print(
        f"| load held | {requests:,} requests ({requests / soak_seconds:,.0f}/s, store "
        f"{args.store}), {soak['unexpected']} unexpected, {soak['reloads']} reloads, "
        f"{soak['hold_cycles']} holds and releases, memory after a "
        f"{float(soak['warmup_s']) / 60:.0f}-minute warm-up "  # type: ignore[arg-type]
        f"{float(soak['rss_growth']):+.1%} (serve + writer "  # type: ignore[arg-type]
        f"{int(soak['rss_final']) >> 20} MiB), versions out of force: "  # type: ignore[call-overload]
        f"{len(soak['version_violations'])} | {lost} "  # type: ignore[arg-type]
        f"| `benchmarks/soak.py --requests {args.requests} --store {args.store}` |"
    )
    for name, result in faults.items():
        runs = "; ".join(
            ", ".join(f"{k} {v}" for k, v in run.items() if k != "fault")
            for run in result["runs"]  # type: ignore[attr-defined]
        )
        print(
            f"| fault: {name} | {'survived' if result['survived'] else 'FAILED'}"
            f"{': ' + runs if runs else ''} | {result['lost']} | `pytest {FAULTS[name]}` |"
        )
    print(
        f"| inputs tried | {fuzz['inputs']:,} over {fuzz['parsers']} parsers (at least "
        f"{fuzz['least_per_parser']:,} each), {fuzz['failures']} failures | — | "
        f"`make fuzz` |"
    )
    result = {
        "name": "soak",
        "requests": requests,
        "unexpected": soak["unexpected"],
        "rss_growth": soak["rss_growth"],
        "acknowledged": soak["acknowledged"],
        "logged": soak["logged"],
        "faults": {
            name: faults[name]["survived"] if name in faults else None
            for name in (
                "postgres_outage",
                "writer_killed",
                "disk_full",
                "reload_races",
                "source_unreachable",
            )
        },
        "fuzz_inputs": fuzz["inputs"],
        "fuzz_failures": fuzz["failures"],
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
