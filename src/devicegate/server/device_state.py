"""The device-state cache: compromise verdicts and quarantine holds, in memory.

The hot path must not query the store per request, so each server keeps every *restricted*
device (an active hold or an uncleared compromised verdict) in a dict keyed by normalised
identifier, and reloads it from the store every `refresh` seconds in a background thread.
Devices not in the dict have no state (`NO_STATE`), which is what the engine gets for the
vast majority of requests.

Propagation bound: a hold or verdict written by any server, the CLI or triage is enforced by
every server at most `refresh` seconds (plus one store query) after it committed; a hold set
by *this* server is visible to it at once (`put`), and stays visible: a refresh whose query
began before the hold was written does not take it away again, and a refresh that began
before another one finished does not overwrite it. A release propagates with the same bound.
If the store cannot be read, the last good state stays in force (holds keep blocking) and
`devicegate_state_refresh_failures_total` counts the failures.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Callable, Iterable

import sqlalchemy as sa

from devicegate.inventory import normalise_key
from devicegate.model import NO_STATE, DeviceState
from devicegate.server.binding import SCOPED_PREFIX, scoped_key
from devicegate.store import COMPROMISED, Store
from devicegate.store import tables as t

log = logging.getLogger("devicegate.server")

Key = tuple[str, str]


def load_restricted(store: Store) -> dict[Key, DeviceState]:
    """Every identifier of every device with an active hold or compromised verdict."""
    held: dict[str, set[str]] = {}
    verdicts: dict[str, str] = {}
    with store.engine.connect() as conn:
        for ref, resource in conn.execute(
            sa.select(t.holds.c.device_ref, t.holds.c.resource).where(
                t.holds.c.released_at.is_(None)
            )
        ):
            held.setdefault(ref, set()).add(resource)
        for ref, verdict, scan_id in conn.execute(
            sa.select(t.verdicts.c.device_ref, t.verdicts.c.verdict, t.verdicts.c.scan_id).where(
                t.verdicts.c.cleared_at.is_(None), t.verdicts.c.verdict == COMPROMISED
            )
        ):
            verdicts[ref] = f"{verdict} (scan {scan_id})"
        refs = set(held) | set(verdicts)
        if not refs:
            return {}
        rows = conn.execute(
            sa.select(
                t.device_keys.c.kind, t.device_keys.c.value, t.device_keys.c.device_ref
            ).where(t.device_keys.c.device_ref.in_(sorted(refs)))
        ).all()
    states = {
        ref: DeviceState(
            compromised=ref in verdicts,
            verdict=verdicts.get(ref),
            held=frozenset(held.get(ref, ())),
            device_ref=ref,
        )
        for ref in refs
    }
    return {(kind, value): states[ref] for kind, value, ref in rows if ref in states}


class StateCache:
    """Restricted devices by identifier, refreshed from the store in a daemon thread."""

    def __init__(
        self,
        store: Store,
        *,
        refresh: float = 1.0,
        on_failure: Callable[[], None] | None = None,
    ) -> None:
        self.store = store
        self.refresh = refresh
        self._on_failure = on_failure
        self._by_key: dict[Key, DeviceState] = {}
        self._scoped = False  # whether any key is a user-scoped one (a hold on what was seen)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._generations = itertools.count(1)  # next() is atomic: two threads bump it
        self.generation = 0
        # Refreshes (the thread, a release on the loop's worker) and `put` (the loop) race: a
        # refresh applies only if no refresh that began later has applied, and keeps every
        # state `put` since its query began (the query may not have seen it).
        self._lock = threading.Lock()
        self._began = 0  # refreshes begun
        self._applied = 0  # the newest refresh applied (by when it began)
        self._puts = 0  # states put
        self._recent: list[tuple[int, Key, DeviceState]] = []  # (put number, key, state)

    def reload(self) -> None:
        """Replace the whole map in one assignment: readers never see a half-built one.

        `generation` changes only when the content did: servers replay decisions made under
        the same generation (see `ServerService.replay_if_valid`)."""
        with self._lock:
            self._began += 1
            ticket, puts_before = self._began, self._puts
        fresh = load_restricted(self.store)
        with self._lock:
            if ticket < self._applied:
                return  # a refresh that began later has applied a newer view
            self._applied = ticket
            # a put before this query began was committed before it: the query has it (or
            # its release); later ones it may lack
            self._recent = [entry for entry in self._recent if entry[0] > puts_before]
            for _, key, state in self._recent:
                fresh[key] = state
            if fresh != self._by_key:
                self._scoped = any(kind.startswith(SCOPED_PREFIX) for kind, _ in fresh)
                self._by_key = fresh
                self.generation = next(self._generations)

    def start(self) -> None:
        self.reload()
        self._thread = threading.Thread(target=self._run, name="devicegate-state", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self.refresh):
            try:
                self.reload()
            except Exception as exc:  # keep the last good state; say so
                log.warning("state refresh failed: %s", exc)
                if self._on_failure is not None:
                    self._on_failure()

    def get(self, keys: tuple[Key, ...], user: str | None = None) -> DeviceState:
        """The state of the device these identifiers name; with `user` (canonical), also a
        hold on what this user was seen presenting (`binding.scoped_key`)."""
        by_key = self._by_key
        if not by_key:
            return NO_STATE
        for kind, value in keys:
            state = by_key.get((kind, normalise_key(kind, value)))
            if state is not None:
                return state
        if user is not None and self._scoped:
            for kind, value in keys:
                state = by_key.get(scoped_key(user, kind, value))
                if state is not None:
                    return state
        return NO_STATE

    def put(self, keys: Iterable[Key], state: DeviceState) -> None:
        """Make a state this server just wrote (and committed) visible at once
        (copy-on-write)."""
        with self._lock:
            by_key = dict(self._by_key)
            for kind, value in keys:
                key = (kind, normalise_key(kind, value))
                by_key[key] = state
                self._puts += 1
                self._recent.append((self._puts, key, state))
                self._scoped |= kind.startswith(SCOPED_PREFIX)
            self._by_key = by_key
            self.generation = next(self._generations)

    def __len__(self) -> int:
        return len(self._by_key)
