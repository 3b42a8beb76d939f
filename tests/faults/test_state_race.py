"""The device-state cache under the race the soak found: a refresh whose store query began
before this server wrote a hold finished after it, and replaced the map without the hold —
the held device was allowed until the next refresh. A hold this server sets must stay
visible, and an older refresh must not overwrite a newer one (a release seen at once)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from devicegate.model import DeviceState
from devicegate.server import device_state
from devicegate.server.device_state import StateCache
from devicegate.store import Store, open_store

KEYS = (("eas_device_id", "RACEDEV1"),)


class SlowQuery:
    """`load_restricted` whose result is taken at once but returned only when released:
    a refresh that read the store before a concurrent write and finishes after it."""

    def __init__(self) -> None:
        self.taken = threading.Event()
        self.go = threading.Event()
        self.real = device_state.load_restricted
        self.slow = True

    def __call__(self, store: Store) -> dict[device_state.Key, DeviceState]:
        result = self.real(store)
        if self.slow:
            self.slow = False  # only the first (background) refresh is slow
            self.taken.set()
            assert self.go.wait(10)
        return result


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return open_store(f"sqlite:///{tmp_path}/state.db")


def hold(store: Store, cache: StateCache) -> str:
    """What `ServerService._hold` does: write the hold, then make it visible at once."""
    ref = store.hold(KEYS, resource="email", rule="spoof-hold", reason="test")
    cache.put(KEYS, DeviceState(held=frozenset({"email"}), device_ref=ref))
    return ref


def test_a_refresh_begun_before_a_hold_does_not_take_it_away(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    slow = SlowQuery()
    monkeypatch.setattr(device_state, "load_restricted", slow)
    cache = StateCache(store, refresh=60)
    refresh = threading.Thread(target=cache.reload)
    refresh.start()
    assert slow.taken.wait(10)  # the refresh has read the store: no hold yet
    hold(store, cache)
    assert cache.get(KEYS).held == {"email"}
    slow.go.set()
    refresh.join(10)
    assert cache.get(KEYS).held == {"email"}, "the refresh dropped a hold set after its query"
    cache.reload()  # a later refresh sees the hold in the store itself
    assert cache.get(KEYS).held == {"email"}


def test_an_older_refresh_does_not_overwrite_a_newer_one(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = StateCache(store, refresh=60)
    ref = hold(store, cache)
    cache.reload()
    slow = SlowQuery()
    monkeypatch.setattr(device_state, "load_restricted", slow)
    refresh = threading.Thread(target=cache.reload)  # reads: held
    refresh.start()
    assert slow.taken.wait(10)
    store.release(ref, by="ops")
    cache.reload()  # what the admin release does: the release is seen at once
    assert cache.get(KEYS).held == frozenset()
    slow.go.set()
    refresh.join(10)
    assert cache.get(KEYS).held == frozenset(), "an older refresh brought a released hold back"
