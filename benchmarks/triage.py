"""Triage time for a backup with 100k Manifest.db rows, against Kaspersky's triangle_check.

Builds one synthetic *encrypted* backup with the test suite's builder (tests/triage): the
Triangulation scenario plus ~100,000 filler rows (ordinary files, and SMS attachment
folders and attachments, which triangle_check walks). Both tools then scan the same
folder in the same run:

* devicegate: `load_indicators()` (the three bundled STIX sets) + `scan_backup(...)`;
* baseline: `triangle_check.IOSBackupChecker().scan_dir(...)` from PyPI.

triangle_check is not a dependency of devicegate. If it is absent this script installs it
into the running interpreter's environment with `python -m pip install triangle_check`;
if that fails it says so and still prints our figure (`triangle_check_seconds` null).

The keybag uses small PBKDF2 iteration counts (the builder's), so the figure measures the
triage work, not the ~10-million-round key derivation a real backup costs both tools
alike. The tools take turns, `REPEAT` times each; each one's best time counts. `ratio` is
triangle_check_seconds / seconds: above 1 means devicegate is faster (target: > 1).
The last line printed is one JSON object.

Options: `--journal wal` (the default) writes every database as iOS leaves it in a backup,
with a write-ahead-log header and no log file; `--journal delete` in rollback mode, the
form a reader without WAL-header support needs too. `--src DIR` measures the devicegate
source tree in DIR (default: this checkout's `src/`), so two versions compare on the same
kind of backup:

    python benchmarks/triage.py --journal delete --src /tmp/old/src
"""

from __future__ import annotations

import argparse
import importlib
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--journal", choices=("wal", "delete"), default="wal")
    parser.add_argument("--src", type=Path, default=ROOT / "src", help="devicegate source tree")
    return parser.parse_args()


ARGS = _arguments()
sys.path.insert(0, str(ARGS.src.resolve()))

from tests.triage.builder import BASE, unix  # noqa: E402
from tests.triage.scenarios import PASSWORD, base_builder  # noqa: E402

from devicegate.triage import load_indicators, scan_backup  # noqa: E402

ROWS = 100_000
REPEAT = 3


def build(root: Path, journal: str) -> Path:
    """The Triangulation scenario padded to ROWS manifest rows."""
    from datetime import timedelta

    b = base_builder(
        root, password=PASSWORD, processes=[("BackupAgent", BASE + timedelta(1))], journal=journal
    )
    t = unix(BASE)
    for n in range(500):  # SMS attachment folders and files (walked by triangle_check)
        folder = f"Library/SMS/Attachments/{n % 256:02x}/{n % 100:02d}"
        b.add_dir("MediaDomain", folder, (t + n, t + n, t))
        b.add_raw_row("MediaDomain", f"{folder}/{n:08d}-GUID/IMG_{n:04d}.HEIC")
    while len(b.rows) < ROWS:
        n = len(b.rows)
        b.add_raw_row(f"AppDomain-org.example.app{n % 300}", f"Documents/cache/{n:06d}.bin")
    return b.write()


def triangle_check() -> ModuleType | None:
    try:
        return importlib.import_module("triangle_check")
    except ImportError:
        print("triangle_check not installed: pip install triangle_check", file=sys.stderr)
    done = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "triangle_check"],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        print(f"could not install triangle_check: {done.stderr.strip()[-300:]}")
        return None
    importlib.invalidate_caches()
    return importlib.import_module("triangle_check")


def timed(run: Callable[[], object]) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="triage-bench-") as folder:
        start = time.perf_counter()
        backup = build(Path(folder) / "backup", ARGS.journal)
        print(
            f"built an encrypted backup with {ROWS} rows ({ARGS.journal} journal) in "
            f"{time.perf_counter() - start:.1f} s; measuring {ARGS.src}"
        )
        verdicts: list[str] = []
        found: list[int] = []

        def ours() -> None:
            report = scan_backup(backup, load_indicators(), password=lambda: PASSWORD)
            verdicts.append(report.verdict.value)

        module = triangle_check()

        def theirs() -> None:
            assert module is not None
            checker = module.IOSBackupChecker()
            found.append(len(checker.scan_dir(str(backup), PASSWORD.encode(), lambda: None)))

        # the two tools take turns, so a slow minute of the shared machine costs both alike
        mine: list[float] = []
        base: list[float] = []
        for _ in range(REPEAT):
            mine.append(timed(ours))
            if module is not None:
                base.append(timed(theirs))
    seconds = min(mine)
    baseline = min(base) if base else None
    print(f"devicegate triage: {seconds:.3f} s (verdict {verdicts[-1]})")
    if baseline is not None:
        print(f"triangle_check:    {baseline:.3f} s ({found[-1]} detection timestamps)")
    ratio = round(baseline / seconds, 2) if baseline else None
    if ratio is not None:
        print(f"triangle_check / devicegate = {ratio}x (target > 1: devicegate faster)")
    print(
        json.dumps(
            {
                "name": "triage",
                "seconds": round(seconds, 4),
                "triangle_check_seconds": round(baseline, 4) if baseline else None,
                "ratio": ratio,
                "rows": ROWS,
                "journal": ARGS.journal,
            }
        )
    )


if __name__ == "__main__":
    main()
