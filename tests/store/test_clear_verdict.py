"""`clear_verdict` and `release` clear verdicts the same way; only `release` lifts holds."""

from __future__ import annotations

from pathlib import Path

from devicegate.store import open_store


def test_clear_verdict_keeps_holds_and_counts_what_it_cleared(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'dg.db'}")
    keys = [("serial", "f2lx1234")]
    ref = store.record_verdict(
        keys=keys, verdict="compromised", evidence=[], scan_id="s1", source="backup"
    )
    store.hold(keys, resource="email", rule="r", reason="spoof")
    assert store.clear_verdict(ref, by="analyst") == 1
    state = store.device_state(keys)
    assert not state.compromised and state.held == {"email"}
    assert store.clear_verdict(ref) == 0  # nothing standing any more
    assert store.release(ref) == 1  # the hold; the verdict was already cleared
    assert store.device_state(keys).held == frozenset()
