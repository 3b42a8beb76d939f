"""Incremental state: which files were ingested, into which Parquet, with which counts.

Kept in `<out>/.audit-state/manifest.json` beside the Parquet it lists. A file is reused
when its resolved path, size, modification time and the hash of its first 64 KiB match and
it was read with the same format, resource and clock settings; anything else (a new file, a
rotated or rewritten one) is ingested again. Re-judging always happens: the policy may have
changed, and judging typed columns is cheap.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Any

from devicegate.audit.events import BadLine
from devicegate.audit.ingest import Ingested

STATE_DIR = ".audit-state"
VERSION = 3  # 3: grouped Parquet (one row per distinct user and signals)


class State:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.parsed = root / "parsed"
        self.path = root / "manifest.json"
        self.files: dict[str, dict[str, Any]] = {}
        self.counter = 0
        if self.path.exists():
            try:
                data = json.loads(self.path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                data = {}
            if data.get("version") == VERSION:
                self.files = data.get("files", {})
                self.counter = int(data.get("counter", 0))
            else:
                shutil.rmtree(self.parsed, ignore_errors=True)
        self.parsed.mkdir(parents=True, exist_ok=True)

    def lookup(self, key: str, stamp: dict[str, Any]) -> Ingested | None:
        entry = self.files.get(key)
        if entry is None or entry.get("stamp") != stamp:
            return None
        if not all(Path(p).exists() for p in entry["parquet"]):
            return None
        return Ingested(
            file=entry["file"],
            format=entry["format"],
            parquet=list(entry["parquet"]),
            events=int(entry["events"]),
            skipped=int(entry["skipped"]),
            bad=int(entry["bad"]),
            bad_sample=[BadLine(**b) for b in entry["bad_sample"]],
        )

    def target(self) -> Path:
        """A fresh Parquet base name (without suffix) for a file about to be ingested."""
        self.counter += 1
        return self.parsed / f"f{self.counter:06d}"

    def record(self, key: str, stamp: dict[str, Any], result: Ingested) -> None:
        old = self.files.get(key)
        if old is not None:
            for name in old["parquet"]:
                if name not in result.parquet:
                    Path(name).unlink(missing_ok=True)
        entry = asdict(result)
        entry["stamp"] = stamp
        self.files[key] = entry

    def save(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(
            json.dumps({"version": VERSION, "counter": self.counter, "files": self.files}),
            encoding="utf-8",
        )
        tmp.replace(self.path)


class RunRecord:
    """The last complete run in `<out>/.audit-state/run.json`: what it was computed from
    (two keys, below), its summary, totals and the outputs it wrote (name → size).

    A run whose inputs are the same as the last one's — the same log files (fingerprints),
    options and policy inputs — has the same results: they are returned as they are and no
    output is rewritten. "The same policy inputs" is checked two ways: `inputs` hashes the
    bytes of the policy, directory and inventory files (the CLI knows them before loading
    anything, so a re-audit costs no policy compile), `snapshot` hashes the compiled
    policy's version with the directory and inventory it was compiled with (for callers
    that pass a snapshot). Either key matching is enough; a missing or changed output
    file is not reused.
    """

    def __init__(self, root: Path) -> None:
        self.path = root / "run.json"

    def load(self, key: str, kind: str) -> dict[str, Any] | None:
        try:
            data: dict[str, Any] = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if data.get("version") != VERSION or data.get("keys", {}).get(kind) != key:
            return None
        for name, size in data.get("outputs", {}).items():
            path = self.path.parent.parent / name
            if not path.is_file() or path.stat().st_size != size:
                return None
        return data

    def save(self, keys: dict[str, str], summary: dict[str, Any], totals: dict[str, Any]) -> None:
        out = self.path.parent.parent
        outputs = {
            p.name: p.stat().st_size
            for p in sorted(out.iterdir())
            if p.is_file() and not p.name.startswith(".")
        }
        data = {
            "version": VERSION,
            "keys": keys,
            "summary": summary,
            "totals": totals,
            "outputs": outputs,
        }
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, default=str), encoding="utf-8")
        tmp.replace(self.path)

    def forget(self) -> None:
        self.path.unlink(missing_ok=True)
