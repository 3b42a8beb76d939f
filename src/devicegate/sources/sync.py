"""One source bound to a store: read it, guard the answer, keep accepted versions.

    source = Source.open("sources/ldap.yaml", store)
    loaded = source.load_last_good()        # what to serve at start (raises NoGoodVersion)
    result = source.sync()                  # a delta or a full pass, guarded
    if result.accepted: swap(result.loaded)

`sync` never raises for a bad answer: a failed read, an empty answer or one that removes too
much comes back as `outcome="refused"` with the reason, recorded in the store; the version the
store already holds stays current. `force=True` accepts what the guard refused (an empty or
shrunken answer the operator has checked with `dry_run=True`); a read that failed cannot be
forced, since there is nothing complete to accept.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from devicegate.directory import Directory
from devicegate.errors import DevicegateError, SourceError
from devicegate.inventory import Inventory
from devicegate.sources.config import (
    LdapSource,
    MdmConfig,
    SourceConfig,
    load_source_config,
)
from devicegate.sources.guard import Diff, diff, refusal
from devicegate.sources.ldapread import LdapReader
from devicegate.sources.mdm import read_mdm
from devicegate.sources.state import (
    DirectoryState,
    InventoryState,
    Rows,
    State,
    decode,
    encode,
    rows_of,
)
from devicegate.sources.versions import SourceVersion, VersionStore
from devicegate.store import Store

log = logging.getLogger("devicegate.sources")

Served = Directory | Inventory
Outcome = Literal["accepted", "unchanged", "refused"]


class NoGoodVersion(SourceError):
    """The store holds no accepted version of a source: `serve` must not start on it."""


class Loaded:
    """A version ready to serve: its stored version, its state, the rows it serves, and the
    `Directory` or `Inventory` built from them when first asked for (`served`) — so a sync
    that only stores a version does not pay for the index a server needs."""

    def __init__(self, rows: Rows, version: SourceVersion, state: State) -> None:
        self.rows = rows
        self.version = version
        self.state = state
        self._served: Served | None = None
        self._lock = threading.Lock()

    @property
    def served(self) -> Served:
        with self._lock:
            if self._served is None:
                self._served = self.rows.build()
            return self._served


@dataclass(frozen=True, slots=True)
class SyncResult:
    source: str
    outcome: Outcome
    full: bool
    reason: str | None = None
    diff: Diff | None = None
    #: the version current after the sync (the new one when accepted)
    loaded: Loaded | None = None
    #: what was read (also when refused or in a dry run; None when the read failed)
    read: Rows | None = None
    dry_run: bool = False

    @property
    def accepted(self) -> bool:
        return self.outcome == "accepted" and not self.dry_run


def _kind(config: SourceConfig) -> str:
    return "directory" if isinstance(config, LdapSource) else "inventory"


class Source:
    """A configured source (its YAML) and, optionally, the store its versions live in."""

    def __init__(
        self,
        config: SourceConfig,
        name: str,
        *,
        path: Path,
        store: Store | None = None,
        max_removal: float | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.config = config
        self.name = name
        self.path = path
        self.kind = _kind(config)
        self.versions = VersionStore(store) if store is not None else None
        self.max_removal = max_removal if max_removal is not None else config.guard.max_removal
        self.sleep = sleep
        self._cache: Loaded | None = None
        self._reader = LdapReader(config) if isinstance(config, LdapSource) else None

    @classmethod
    def open(
        cls,
        path: str | Path,
        store: Store | None = None,
        *,
        max_removal: float | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> Source:
        config, name = load_source_config(path)
        return cls(config, name, path=Path(path), store=store, max_removal=max_removal, sleep=sleep)

    @property
    def label(self) -> str:
        """How messages and `Directory.source` name it: `ldap source corp (sources/x.yaml)`."""
        return f"{self.config.kind} source `{self.name}` ({self.path})"

    # ---- reading ----------------------------------------------------------------------------

    def read_full(self) -> tuple[State, str | None]:
        """A full pass, live, unguarded (for `sources check` and one-shot commands)."""
        if self._reader is not None:
            result = self._reader.full()
            return result.state, result.watermark
        assert not isinstance(self.config, LdapSource)
        mdm: MdmConfig = self.config
        devices, skipped = read_mdm(mdm, self.name, self.sleep)
        if skipped:
            log.warning("%s: %d records without an id or listed twice skipped", self.name, skipped)
        return InventoryState(devices), None

    def rows(self, state: State) -> Rows:
        return rows_of(state, str(self.path))

    def serve(self, state: State) -> Served:
        """The `Directory` or `Inventory` a state serves."""
        return self.rows(state).build()

    # ---- the store --------------------------------------------------------------------------

    def _store(self) -> VersionStore:
        if self.versions is None:
            raise SourceError(f"{self.label}: no store to keep versions in")
        return self.versions

    def latest(self) -> SourceVersion | None:
        return self._store().latest(self.name)

    def load(self, version: SourceVersion) -> Loaded:
        """A stored version, decoded and built (cached while it stays current)."""
        if self._cache is not None and self._cache.version.row == version.row:
            return self._cache
        state = decode(self._store().content(version.row))
        loaded = Loaded(self.rows(state), version, state)
        self._cache = loaded
        return loaded

    def load_last_good(self) -> Loaded:
        """The newest accepted version: what `serve` starts from, also during an outage."""
        version = self.latest()
        if version is None:
            raise NoGoodVersion(
                f"{self.label}: the store holds no accepted version yet",
                hint=f"run `devicegate sources sync {self.path} --store URL` first",
            )
        return self.load(version)

    def ensure_version(self) -> Loaded:
        """The last good version, or — for a source never synced — a first guarded sync."""
        try:
            return self.load_last_good()
        except NoGoodVersion:
            result = self.sync(full=True)
            if result.loaded is None:
                raise NoGoodVersion(
                    f"{self.label}: no accepted version, and the first sync was refused: "
                    f"{result.reason}",
                    hint="fix the source, then run `devicegate sources sync`",
                ) from None
            return result.loaded

    # ---- sync -------------------------------------------------------------------------------

    def sync(
        self,
        *,
        full: bool | None = None,
        force: bool = False,
        dry_run: bool = False,
        by: str = "sync",
    ) -> SyncResult:
        """Read the source (a delta when one is possible, unless `full` or `force`), compare the
        answer with the current version, and accept it when the guard (or `force`) allows."""
        store = self._store()
        current_version = store.latest(self.name)
        current = self.load(current_version) if current_version is not None else None
        status = store.status(self.name)
        watermark = status.watermark if status is not None else None
        delta_ok = (
            self._reader is not None
            and current is not None
            and isinstance(current.state, DirectoryState)
            and watermark is not None
            and status is not None
            and status.watermark_version == current.version.version
        )
        # a delta cannot see deletions: what --force accepts is always a full pass
        use_full = force or not delta_ok or bool(full)
        try:
            if use_full:
                state, next_mark = self.read_full()
            else:
                assert self._reader is not None and current is not None and watermark
                assert isinstance(current.state, DirectoryState)
                result = self._reader.delta(current.state, watermark)
                if not result.changed:
                    if not dry_run:
                        store.record(
                            self.name, self.kind, "unchanged",
                            watermark=result.watermark, watermark_version=current.version.version,
                        )  # fmt: skip
                    size = len(current.rows)
                    return SyncResult(
                        self.name, "unchanged", False, loaded=current, read=current.rows,
                        diff=Diff(self.kind, size, size), dry_run=dry_run,
                    )  # fmt: skip
                state, next_mark = result.state, result.watermark
        except DevicegateError as exc:
            failure = f"read failed: {exc.one_line()}"
            return self._refused(failure, use_full, current, None, None, dry_run)
        except Exception as exc:  # a bug or an unexpected library error: refuse, say what
            failure = f"read failed: {type(exc).__name__}: {exc}"
            log.exception("%s: sync failed", self.label)
            return self._refused(failure, use_full, current, None, None, dry_run)
        served = self.rows(state)
        content, version_id = encode(state)
        change = diff(current.rows if current else None, served)
        if current is not None and version_id == current.version.version:
            if not dry_run:
                store.record(
                    self.name, self.kind, "unchanged",
                    watermark=next_mark, watermark_version=version_id,
                )  # fmt: skip
            return SyncResult(
                self.name, "unchanged", use_full, diff=change, loaded=current, read=served,
                dry_run=dry_run,
            )  # fmt: skip
        reason = refusal(change, self.max_removal)
        if reason is not None and not force:
            return self._refused(reason, use_full, current, change, served, dry_run)
        if dry_run:
            return SyncResult(
                self.name, "accepted", use_full, reason=reason, diff=change, loaded=current,
                read=served, dry_run=True,
            )  # fmt: skip
        version = store.accept(
            source=self.name,
            kind=self.kind,
            version=version_id,
            content=content,
            size=len(served),
            added=len(change.added),
            removed=len(change.removed),
            changed=len(change.moved) + len(change.groups) + len(change.changed),
            forced=reason is not None,
            accepted_by=by,
            watermark=next_mark,
        )
        loaded = Loaded(served, version, state)
        self._cache = loaded
        log.info(
            "%s: accepted version %s (%d %s; +%d -%d, %d moved)%s",
            self.label, version_id, len(served), "users" if self.kind == "directory" else "devices",
            len(change.added), len(change.removed), len(change.moved),
            f" by force over: {reason}" if reason else "",
        )  # fmt: skip
        return SyncResult(
            self.name, "accepted", use_full, reason=reason, diff=change, loaded=loaded,
            read=served,
        )  # fmt: skip

    def _refused(
        self,
        reason: str,
        full: bool,
        current: Loaded | None,
        change: Diff | None,
        read: Rows | None,
        dry_run: bool,
    ) -> SyncResult:
        if not dry_run:
            self._store().record(self.name, self.kind, "refused", reason)
            log.warning(
                "%s: sync refused, version %s keeps serving: %s",
                self.label, current.version.version if current else "(none)", reason,
            )  # fmt: skip
        return SyncResult(
            self.name, "refused", full, reason=reason, diff=change, loaded=current, read=read,
            dry_run=dry_run,
        )  # fmt: skip


__all__ = ["Loaded", "NoGoodVersion", "Source", "SyncResult"]
