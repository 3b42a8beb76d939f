"""What a long-running process decides with — the policy files, the directory, the inventory —
loaded together, kept current together, and compiled into one snapshot at a time.

    inputs = Inputs(policy, directory, devices, store=store, on_change=swap)
    snapshot = inputs.compile()      # at start; raises on a bad policy or a missing version
    inputs.start()                   # sources' refreshers: `swap(new snapshot)` on a change
    snapshot = inputs.reload()       # SIGHUP: the policy files (and file inputs) read again
    inputs.stop()

A directory or inventory given as a file (CSV, LDIF) is read when the process starts and on
every reload; its version is the SHA-256 of its bytes. One given as a source YAML (LDAP, an
MDM: `devicegate.sources`) starts from the store's last accepted version — with none, the
process refuses to start (`NoGoodVersion`): it never serves an empty directory while the
source is down — and a `Refresher` keeps it current; each new version is compiled with the
policy in force and handed to `on_change`, which swaps it in with one reference assignment.
Every snapshot carries the versions it was compiled from (`Snapshot.directory_version`,
`inventory_version`), which every decision records.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from devicegate.directory import EMPTY_DIRECTORY, Directory, load_directory
from devicegate.inventory import EMPTY_INVENTORY, Inventory, load_inventory
from devicegate.policy import Snapshot, compile_policy, load_policy
from devicegate.policy.settled import SETTLE, load_settled
from devicegate.sources import is_source_file
from devicegate.sources.refresh import Refresher, SourceMetrics
from devicegate.sources.sync import Served, Source
from devicegate.sources.versions import SourceVersion
from devicegate.store import Store

log = logging.getLogger("devicegate.sources")


@dataclass(slots=True)
class _Input:
    """The directory or the inventory: where it comes from and what is served now."""

    path: Path | None
    source: Source | None
    served: Directory | Inventory
    version: str
    refresher: Refresher | None = None


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


class Inputs:
    """The policy, directory and inventory of one `serve` or `console` process."""

    def __init__(
        self,
        policy: Sequence[Path],
        directory: Path | None,
        devices: Path | None,
        *,
        store: Store,
        max_removal: float | None = None,
        on_change: Callable[[Snapshot], None] | None = None,
        settle: float = SETTLE,
    ) -> None:
        self.policy = tuple(policy)
        self.settle = settle
        self.store = store
        self.max_removal = max_removal
        self.on_change = on_change
        self._lock = threading.Lock()  # one compile at a time: a reload and a new version
        self._directory = self._open(directory, EMPTY_DIRECTORY)
        self._inventory = self._open(devices, EMPTY_INVENTORY)

    def _open(self, path: Path | None, empty: Directory | Inventory) -> _Input:
        if path is None:
            return _Input(None, None, empty, "")
        if is_source_file(path):
            source = Source.open(path, self.store, max_removal=self.max_removal)
            loaded = source.load_last_good()  # NoGoodVersion: refuse to start
            return _Input(path, source, loaded.served, loaded.version.version)
        return self._read_file(path, empty)

    @staticmethod
    def _read_file(path: Path, empty: Directory | Inventory) -> _Input:
        served: Directory | Inventory = (
            load_directory(path) if isinstance(empty, Directory) else load_inventory(path)
        )
        return _Input(path, None, served, _digest(path))

    # ---- compiling ---------------------------------------------------------------------------

    def compile(self) -> Snapshot:
        """The policy files, checked against the directory, compiled with both inputs."""
        with self._lock:
            return self._compile()

    def _compile(self) -> Snapshot:
        directory = self._directory.served
        inventory = self._inventory.served
        assert isinstance(directory, Directory) and isinstance(inventory, Inventory)
        loaded = load_policy(
            list(self.policy), directory=directory if self._directory.path else None
        )
        return compile_policy(
            loaded,
            directory,
            inventory,
            directory_version=self._directory.version,
            inventory_version=self._inventory.version,
        )

    def reload(self) -> Snapshot:
        """Read the policy files — and a directory or inventory given as a file — again, once
        they have stopped changing (`policy.settled`: an editor or a deployment may still be
        writing them), and compile; raises (and keeps what is served) when any is invalid."""
        files = [*self.policy, *(i.path for i in self._files_read() if i.path is not None)]
        return load_settled(self._reload, files, settle=self.settle)

    def _files_read(self) -> list[_Input]:
        """The directory and inventory read from files (not from sources)."""
        return [i for i in (self._directory, self._inventory) if i.source is None]

    def _reload(self) -> Snapshot:
        with self._lock:
            directory, inventory = self._directory, self._inventory
            try:
                for current in (self._directory, self._inventory):
                    if current.path is not None and current.source is None:
                        fresh = self._read_file(current.path, current.served)
                        if current is self._directory:
                            self._directory = fresh
                        else:
                            self._inventory = fresh
                return self._compile()
            except Exception:
                self._directory, self._inventory = directory, inventory
                raise

    # ---- sources ------------------------------------------------------------------------------

    def start(self) -> None:
        """Start a refresher for every input given as a source."""
        for current in (self._directory, self._inventory):
            if current.source is None or current.refresher is not None:
                continue
            current.refresher = Refresher(
                current.source,
                self._adopter(current),
                current=current.source.load_last_good(),
            )
            current.refresher.start()

    def _adopter(self, current: _Input) -> Callable[[Served, SourceVersion], None]:
        def adopt(served: Served, version: SourceVersion) -> None:
            """A new version of a source (the refresher's thread): compile, then swap."""
            with self._lock:
                previous = (current.served, current.version)
                current.served, current.version = served, version.version
                try:
                    snapshot = self._compile()
                except Exception:
                    current.served, current.version = previous
                    raise  # the refresher logs it; the last good version keeps serving
            log.info(
                "%s version %s in force (%d)", current.source.label if current.source else "",
                version.version, len(served),
            )  # fmt: skip
            if self.on_change is not None:
                self.on_change(snapshot)

        return adopt

    def stop(self) -> None:
        for current in (self._directory, self._inventory):
            if current.refresher is not None:
                current.refresher.stop()
                current.refresher = None

    def metrics(self) -> list[SourceMetrics]:
        """Each source's figures for `/metrics` (none for inputs given as files)."""
        return [
            current.refresher.metrics()
            for current in (self._directory, self._inventory)
            if current.refresher is not None
        ]
