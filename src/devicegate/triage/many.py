"""Triage a folder of backups in parallel (the engine of `scan-many`).

Each backup is scanned in its own worker process: PBKDF2 with ~10 million iterations per
encrypted backup and plist parsing are CPU-bound, so processes, not threads. A backup that
fails (not a backup, wrong password) becomes an error row; it never stops the others.
"""

from __future__ import annotations

import os
import plistlib
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from devicegate.errors import DevicegateError
from devicegate.triage.artefacts import Options
from devicegate.triage.backup import Limits
from devicegate.triage.indicators import IndicatorIndex
from devicegate.triage.report import EXIT_CODES
from devicegate.triage.result import ScanReport
from devicegate.triage.scan import scan_backup

EXIT_ERROR = 1
#: Which outcome dominates a fleet's exit code: a compromised phone above all, then a
#: suspicious one, then a backup we could not read, then gaps.
FLEET_ORDER = ("clean", "inconclusive", "error", "suspicious", "compromised")


@dataclass(frozen=True, slots=True)
class Outcome:
    path: Path
    report: ScanReport | None
    error: str | None = None

    @property
    def status(self) -> str:
        return self.report.verdict.value if self.report else "error"

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.report.verdict.value] if self.report else EXIT_ERROR


def discover(folder: Path) -> list[Path]:
    """Immediate subfolders holding a Manifest.db, sorted by name.

    Manifest.db, not Manifest.plist: a backup copied without its Manifest.plist is still
    scanned (and reported as such), never skipped without a word.
    """
    try:
        return sorted(child for child in folder.iterdir() if (child / "Manifest.db").is_file())
    except OSError:
        return []


def any_encrypted(paths: list[Path]) -> bool:
    """Cheap look at Manifest.plist: does any backup need a password?"""
    for path in paths:
        try:
            manifest = plistlib.loads((path / "Manifest.plist").read_bytes())
        except Exception:  # absent or unreadable: the scan itself will say so
            continue
        if isinstance(manifest, dict) and manifest.get("IsEncrypted") is True:
            return True
    return False


def _worker(
    path: Path,
    indicators: IndicatorIndex,
    password: str | None,
    options: Options,
    limits: Limits | None,
) -> Outcome:
    source = (lambda: password) if password is not None else None
    try:
        report = scan_backup(path, indicators, password=source, options=options, limits=limits)
    except DevicegateError as exc:
        return Outcome(path, None, exc.one_line())
    except Exception as exc:  # a bug must not take the whole fleet down
        return Outcome(path, None, f"internal error {type(exc).__name__}: {exc}"[:300])
    return Outcome(path, report)


def scan_many(
    paths: list[Path],
    indicators: IndicatorIndex,
    *,
    password: str | None = None,
    options: Options | None = None,
    limits: Limits | None = None,
    jobs: int | None = None,
) -> Iterator[Outcome]:
    """Yield outcomes as backups finish (order of completion)."""
    options = options or Options()
    workers = max(1, min(jobs or os.cpu_count() or 1, len(paths)))
    if workers == 1:
        for path in paths:
            yield _worker(path, indicators, password, options, limits)
        return
    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures: list[Future[Outcome]] = [
            pool.submit(_worker, path, indicators, password, options, limits) for path in paths
        ]
        for future in as_completed(futures):
            yield future.result()


def fleet_exit_code(outcomes: list[Outcome]) -> int:
    if not outcomes:
        return EXIT_ERROR
    worst = max(outcomes, key=lambda o: FLEET_ORDER.index(o.status))
    return worst.exit_code
