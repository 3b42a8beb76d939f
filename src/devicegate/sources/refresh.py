"""Keeping a source current inside a long-running process (`serve`, `console`).

A `Refresher` is one daemon thread per source. On each tick it

1. adopts a newer version another process wrote to the store (another server's sync, or an
   operator's `sources sync --force`), so every server on a store serves the same version;
2. when a pass is due and it holds the source's lease (one server at a time reads a shared
   source), syncs: LDAP a delta every `refresh.delta` and a full pass every `refresh.full`,
   an MDM a full pass every `refresh.full`;
3. calls `on_version(served, version)` whenever the version it serves changes — the caller
   recompiles the policy against it and swaps the snapshot atomically.

A refused sync changes nothing: the last good version keeps serving, and `metrics()` says
why. A failed callback is logged and retried with the next version; it never stops the thread.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from devicegate.sources.config import refresh_of
from devicegate.sources.sync import Loaded, Served, Source, SyncResult
from devicegate.sources.versions import SourceVersion
from devicegate.timeutil import utc_now

log = logging.getLogger("devicegate.sources")

OnVersion = Callable[[Served, SourceVersion], None]
#: how often the store is asked for a version another process wrote
DEFAULT_POLL = timedelta(seconds=30)


@dataclass(frozen=True, slots=True)
class SourceMetrics:
    """What `/metrics` shows for one source (the names the lead exposes, see docs/sources.md).

    `last_success` is a Unix time (0: never); `age_seconds` how old the served version's last
    successful check is; `size` users or devices served; `refusals` refused syncs since the
    process started; `last_outcome`/`last_reason` the newest attempt of this process."""

    source: str
    kind: str
    version: str
    size: int
    last_success: float
    age_seconds: float
    refusals: int
    last_outcome: str
    last_reason: str | None


def owner_id() -> str:
    """This process, as the lease names it."""
    return f"{socket.gethostname()}:{os.getpid()}"[:128]


class Refresher:
    """Keeps one source current in a background thread (see the module docstring)."""

    def __init__(
        self,
        source: Source,
        on_version: OnVersion,
        *,
        current: Loaded,
        poll: timedelta = DEFAULT_POLL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.source = source
        self.on_version = on_version
        self.poll = poll.total_seconds()
        self.clock = clock
        intervals = refresh_of(source.config)
        self.full_every = intervals.full.total_seconds() if intervals.full else 3600.0
        self.delta_every = intervals.delta.total_seconds() if intervals.delta else None
        self.owner = owner_id()
        self._current = current
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        now = clock()
        # a version older than the full interval (a restart after an outage) is refreshed
        # at once; a delta is always due at once, so a restart is current within a tick
        age = max(0.0, utc_now().timestamp() - current.version.accepted_at.timestamp())
        self._next_full = now + max(0.0, self.full_every - age)
        self._next_delta = now if self.delta_every else float("inf")
        self._last_success = current.version.accepted_at.timestamp()
        self._refusals = 0
        self._last_outcome = "loaded"
        self._last_reason: str | None = None

    # ---- the thread -------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._run, name=f"source-{self.source.name}", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception:  # never let the thread die: the next tick tries again
                log.exception("%s: refresh failed", self.source.label)
            now = self.clock()
            wait = min(self._next_full, self._next_delta, now + self.poll) - now
            self._stop.wait(max(0.05, wait))

    def tick(self) -> SyncResult | None:
        """One round: adopt a newer stored version, then sync if a pass is due."""
        self.adopt()
        now = self.clock()
        full_due = now >= self._next_full
        delta_due = now >= self._next_delta
        if not (full_due or delta_due):
            return None
        # twice the shortest interval: the holder renews it on every pass, and when it dies
        # another server takes over the reading within two intervals
        lease = 2 * (self.delta_every or self.full_every)
        store = self.source._store()
        if not store.take_lease(self.source.name, self.source.kind, self.owner, lease):
            # another server reads the source; its versions arrive through adopt()
            self._schedule(now, full_due)
            return None
        result = self.source.sync(full=True if full_due else None)
        self._schedule(now, full_due or result.full)
        self._note(result)
        if result.accepted and result.loaded is not None:
            self._swap(result.loaded)
        return result

    def _schedule(self, now: float, was_full: bool) -> None:
        if was_full:
            self._next_full = now + self.full_every
        if self.delta_every:
            self._next_delta = now + self.delta_every

    def adopt(self) -> bool:
        """Serve the store's newest version if it is newer than the one served."""
        latest = self.source.latest()
        if latest is None or latest.row == self._current.version.row:
            return False
        loaded = self.source.load(latest)
        self._last_success = max(self._last_success, latest.accepted_at.timestamp())
        self._swap(loaded)
        return True

    def _swap(self, loaded: Loaded) -> None:
        try:
            self.on_version(loaded.served, loaded.version)
        except Exception:
            log.exception(
                "%s: the new version %s could not be swapped in",
                self.source.label, loaded.version.version,
            )  # fmt: skip
            return
        with self._lock:
            self._current = loaded

    def _note(self, result: SyncResult) -> None:
        with self._lock:
            self._last_outcome = result.outcome
            self._last_reason = result.reason
            if result.outcome == "refused":
                self._refusals += 1
            else:
                self._last_success = utc_now().timestamp()

    # ---- what /metrics shows ----------------------------------------------------------------

    @property
    def current(self) -> Loaded:
        with self._lock:
            return self._current

    def metrics(self) -> SourceMetrics:
        with self._lock:
            current = self._current
            return SourceMetrics(
                source=self.source.name,
                kind=self.source.kind,
                version=current.version.version,
                size=current.version.size,
                last_success=self._last_success,
                age_seconds=max(0.0, utc_now().timestamp() - self._last_success),
                refusals=self._refusals,
                last_outcome=self._last_outcome,
                last_reason=self._last_reason,
            )


__all__ = ["OnVersion", "Refresher", "SourceMetrics", "owner_id"]
