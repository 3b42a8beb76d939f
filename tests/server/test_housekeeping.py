"""What `serve` does beside answering: its heartbeat in the store (what the console lists) and
the decision log's retention (`--log-retention`), which deletes only what the rollups hold."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from devicegate.cli import app as cli_app
from devicegate.server.housekeeping import Housekeeping
from devicegate.store import open_store
from devicegate.store import tables as t
from devicegate.store.heartbeats import Heartbeat, heartbeats
from devicegate.store.rollups import position
from tests.server import procs
from tests.server.conftest import make_app
from tests.store.logrows import Said, write


def beat_of(store_url: str, port: int, version: str, timeout: float = 10.0) -> Heartbeat:
    store = open_store(store_url)
    deadline = time.monotonic() + timeout
    try:
        while True:
            found = [b for b in heartbeats(store) if b.instance.endswith(f":{port}")]
            if found and found[0].policy_version == version:
                return found[0]
            assert time.monotonic() < deadline, f"no heartbeat with {version}: {found}"
            time.sleep(0.1)
    finally:
        store.engine.dispose()


@pytest.mark.integration
def test_serve_beats_and_says_a_new_policy_within_seconds(
    tmp_path: Path, scenario: tuple[Path, Path]
) -> None:
    policy, directory = scenario
    store = f"sqlite:///{tmp_path}/store.db"
    with procs.devicegate(tmp_path, policy, directory, store) as server:
        with server.client() as client:
            first = client.get("/healthz").json()
            started = beat_of(store, server.port, first["policy_version"])
            assert started.software and started.pid == server.proc.pid
            policy.write_text(policy.read_text().replace("leave work use", "are retired"))
            reloaded = client.post("/v1/admin/reload", headers=server.admin()).json()
        assert reloaded["policy_version"] != first["policy_version"]
        began = time.monotonic()
        beat = beat_of(store, server.port, reloaded["policy_version"], timeout=5.0)
        assert time.monotonic() - began < 3.0  # within a second or two, not the 15 s interval
        assert beat.started_at == started.started_at  # the same instance's row


def test_retention_deletes_old_decisions_only_once_rolled_up(
    tmp_path: Path, scenario: tuple[Path, Path]
) -> None:
    app = make_app(tmp_path, *scenario)
    store = app.service.store
    now = datetime.now(UTC)
    old = [
        (now - timedelta(days=100, minutes=i), Said("a.user@x", "block", "r")) for i in range(30)
    ]
    new = [(now - timedelta(days=1, minutes=i), Said("a.user@x", "block", "r")) for i in range(5)]
    ids = write(store, old + new)
    keeper = Housekeeping(
        app.service,
        instance="test",
        retention=timedelta(days=90),
        beat_every=timedelta(hours=1),
        prune_every=timedelta(seconds=0.05),
    )

    async def run() -> None:
        keeper.start()
        deadline = time.monotonic() + 10
        while keeper.pruned < len(old) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        await keeper.stop()

    asyncio.run(run())
    assert keeper.pruned == len(old)
    with store.engine.connect() as conn:
        left = conn.execute(sa.select(t.decisions.c.id).order_by(t.decisions.c.id)).scalars()
        assert list(left) == ids[len(old) :]
    rolled = position(store)
    assert rolled is not None and rolled.last_id >= ids[len(old) - 1]  # held before deleted
    assert [b.instance for b in heartbeats(store)] == ["test"]


def test_log_retention_must_be_a_day_or_more() -> None:
    from typer.testing import CliRunner

    result = CliRunner().invoke(cli_app, ["serve", "--policy", "p.yaml", "--log-retention", "0"])
    assert result.exit_code == 2 and "--log-retention" in result.output


def test_a_vlan_id_is_ascii_digits() -> None:
    from typer.testing import CliRunner

    for vlan in ("²", "0", "4095", "abc"):
        result = CliRunner().invoke(
            cli_app, ["serve", "--policy", "p.yaml", "--radius-quarantine-vlan", vlan]
        )
        # a usage error with a one-line reason (the `devicegate` entry point exits 2 on it)
        assert result.exit_code != 0
        assert "is not a VLAN id" in f"{result.exception}{result.output}", result.output
