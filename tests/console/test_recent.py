"""The user page, in process, when the rollups trail the log by more than the look-back: it
shows what it found and names the decisions it did not search; with the rollups current it
names nothing."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from tests.console.test_hostile import TestClient
from tests.console.world import console_app, write_world
from tests.store.logrows import Said, write

from devicegate.console import raw
from devicegate.store import open_store

NOTE = "complete up to #%d and from #%d on"


def test_the_user_page_names_what_it_did_not_search(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = write_world(tmp_path)
    store = open_store(world.store_url)
    now = datetime.now(UTC)
    (first,) = write(store, [(now, Said("a01", "block", "wave-1", matched=("wave-1",)))])
    app = console_app(world, store, dev_login="viewer")  # rolls up the one decision
    with TestClient(app) as client:
        page = client.get("/users/a01")
        assert page.status_code == 200 and "not searched" not in page.text
        later = write(store, [(now, Said("a02", "allow", None))] * 20)
        monkeypatch.setattr(raw, "LIVE_LOOKBACK", 5)
        page = client.get("/users/a01", headers={"Accept-Language": "en"})
        assert page.status_code == 200
        assert NOTE % (first, later[-1] - 5 + 1) in page.text
        assert "No decision in the last 30 days." not in page.text  # the rolled-up one shows
