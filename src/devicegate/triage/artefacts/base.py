"""The shape every artefact module shares (MVT's: extract → check → timeline).

A module exposes one `Artefact`: its name (the key in `coverage`), whether a `clean`
verdict requires it, whether only encrypted backups carry it, and a `run(ctx)` that
returns detections, timeline events and facts. `run` raises `Missing` when the artefact
is absent (coverage `missing`) and `ArtefactError` when it is broken (coverage `error`);
`scan` catches both, so one broken artefact never stops the others. A module that parses
its artefact but leaves part of it unchecked on purpose says so in `Findings.not_checked`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from devicegate.defaults import TRIAGE_MESSAGE_TEXT
from devicegate.triage.backup import Backup, Entry
from devicegate.triage.dbfile import open_db, replay
from devicegate.triage.errors import ArtefactError
from devicegate.triage.indicators import IndicatorIndex
from devicegate.triage.result import Detection, TimelineEvent


class Missing(Exception):
    """The artefact is not in this backup; the message says what was looked for."""


#: The deployment setting (environment variable) for `--include-message-text`; the CLI
#: reads it, the library takes `Options` as given.
MESSAGE_TEXT_SETTING = TRIAGE_MESSAGE_TEXT


@dataclass(frozen=True, slots=True)
class Options:
    """Operator choices that change what a scan reads.

    `include_message_text` is off by default for privacy: message text is read only to
    find links, and without it links to indicator domains in SMS/iMessage go unchecked
    (the report says so).
    """

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
    #: What this artefact could hold but was not checked, each with how to check it
    #: (e.g. links in message text while message text is off); shown in the coverage.
    not_checked: list[str] = field(default_factory=list)
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


@contextmanager
def open_sqlite(
    backup: Backup, entry: Entry, what: str, found: Findings
) -> Iterator[sqlite3.Connection]:
    """The artefact's database, with the write-ahead log beside it replayed when the backup
    carries a non-empty one.

    A log that cannot be read or replayed in full sets `found.error` (coverage `error`,
    so never `clean`) while the part that could be read is still checked: findings
    outrank gaps. A main file that is no database raises `ArtefactError`.
    """
    data: bytes | bytearray = backup.read(entry)
    problem: str | None = None
    wal_entry = backup.find(entry.domain, entry.relative_path + "-wal")
    if wal_entry is not None:
        try:
            wal = backup.read(wal_entry)
        except ArtefactError as exc:
            wal, problem = b"", f"{exc.message}; read without its write-ahead log"
        if wal:
            data, problem = replay(data, wal, what)
    if problem is not None:
        found.error = problem
    with open_db(data, what) as db:
        yield db
