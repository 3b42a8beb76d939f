"""The shape every artefact module shares (MVT's: extract → check → timeline).

A module exposes one `Artefact`: its name (the key in `coverage`), whether a `clean`
verdict requires it, whether only encrypted backups carry it, and a `run(ctx)` that
returns detections, timeline events and facts. `run` raises `Missing` when the artefact
is absent (coverage `missing`) and `ArtefactError` when it is broken (coverage `error`);
`scan` catches both, so one broken artefact never stops the others.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from devicegate.triage.backup import Backup, Entry
from devicegate.triage.indicators import IndicatorIndex
from devicegate.triage.result import Detection, TimelineEvent


class Missing(Exception):
    """The artefact is not in this backup; the message says what was looked for."""


@dataclass(frozen=True, slots=True)
class Options:
    """Operator choices that change what a scan reads."""

    include_message_text: bool = False
    shutdown_log: Path | None = None


@dataclass(frozen=True, slots=True)
class Context:
    backup: Backup
    indicators: IndicatorIndex
    options: Options = field(default_factory=Options)


@dataclass(slots=True)
class Findings:
    """What `run` returns; `facts` are named values (e.g. `lockdown_mode`)."""

    detections: list[Detection] = field(default_factory=list)
    timeline: list[TimelineEvent] = field(default_factory=list)
    facts: dict[str, str] = field(default_factory=dict)
    note: str = ""
    #: Set when part of the artefact was unreadable: coverage becomes `error`, but the
    #: detections found in the readable part are still reported.
    error: str = ""


@dataclass(frozen=True, slots=True)
class Artefact:
    name: str
    description: str
    run: Callable[[Context], Findings]
    required: bool = True
    needs_encryption: bool = False
    enabled: Callable[[Context], bool] = lambda ctx: True


def locate(backup: Backup, candidates: tuple[tuple[str, str], ...]) -> Entry:
    """The first (domain, relativePath) present, or `Missing` naming the first candidate."""
    for domain, relative_path in candidates:
        entry = backup.find(domain, relative_path)
        if entry is not None:
            return entry
    domain, relative_path = candidates[0]
    raise Missing(f"{domain}/{relative_path} is not in the backup")


def wal_of(backup: Backup, entry: Entry) -> bytes | None:
    """The SQLite write-ahead log beside `entry`, when the backup carries a non-empty one."""
    wal = backup.find(entry.domain, entry.relative_path + "-wal")
    if wal is None:
        return None
    data = backup.read(wal)
    return data or None
