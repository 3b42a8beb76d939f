"""Time: decisions at a wave's `from` boundary in a zone with daylight saving, and with the
clock stepped backwards by a minute, are right.

The clock stepped is the one `serve` sees, never the machine's: Debian's libfaketime
(`faketime` package) is preloaded into the server with an offset file it re-reads on every
call, so the test moves the server's wall clock while it runs. The monotonic clock is left
alone, as an NTP step leaves it. What is checked is the decision log itself: every decision
made (by the server's clock) before the boundary allows with a warning, every one after
blocks — and after the clock steps back over the boundary, answers follow the clock, not
the replayed answer made "in the future"."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from devicegate.store import open_store
from devicegate.store import tables as t
from tests.conftest import require
from tests.faults.population import IPHONE_SAFARI, ops
from tests.server import procs

pytestmark = [pytest.mark.integration]

LIBFAKETIME = Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1")
ZONE = "Europe/Berlin"
#: 2024-03-31 in Berlin: 02:00 CET jumps to 03:00 CEST, i.e. 01:00 UTC
SPRING_FROM = "2024-03-31T03:00"
SPRING_INSTANT = datetime(2024, 3, 31, 1, 0, tzinfo=UTC)
APPLE = {"X-Devicegate-User": ops(1), "User-Agent": IPHONE_SAFARI.format(5, 5)}


def wave_policy(start: str) -> str:
    return f"""version: 1
name: time
timezone: {ZONE}
units: [corp/ops]
resources: {{web: {{description: intranet}}}}
rules:
  - id: wave
    scope: {{units: [corp/ops]}}
    when: {{vendor: [Apple]}}
    resources: [web]
    from: {start}
    notice: 1d
    effect: block
    message: Apple devices leave work use.
"""


def world(tmp: Path, start: str) -> tuple[Path, Path]:
    tmp.mkdir(parents=True, exist_ok=True)
    policy = tmp / "policy.yaml"
    policy.write_text(wave_policy(start))
    directory = tmp / "directory.csv"
    directory.write_text(f"user,unit,groups,email,name\nops1,corp/ops,,{ops(1)},Ops\n")
    return policy, directory


class FakeClock:
    """The offset file libfaketime reads: the server's wall clock is ours plus `offset`."""

    def __init__(self, path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        require(LIBFAKETIME.exists(), "libfaketime is not installed (bash scripts/system-deps.sh)")
        self.path = path
        self.set_now(time.time())
        monkeypatch.setenv("LD_PRELOAD", str(LIBFAKETIME))
        monkeypatch.setenv("FAKETIME_TIMESTAMP_FILE", str(path))
        monkeypatch.setenv("FAKETIME_NO_CACHE", "1")
        monkeypatch.setenv("FAKETIME_DONT_FAKE_MONOTONIC", "1")

    def set_now(self, target: float) -> None:
        """Step the server's clock so that it reads `target` now."""
        self.offset = round(target - time.time())
        self.path.write_text(f"{self.offset:+d}\n")

    def step(self, seconds: int) -> None:
        self.offset += seconds
        self.path.write_text(f"{self.offset:+d}\n")

    def now(self) -> float:
        return time.time() + self.offset


def decisions(store_url: str) -> list[tuple[float, str]]:
    """(time by the server's clock, action) of every logged decision, in log order."""
    store = open_store(store_url)
    log = t.decision_log
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(log.c.at, log.c.action).order_by(log.c.id)).all()
    store.engine.dispose()
    return [(at.replace(tzinfo=at.tzinfo or UTC).timestamp(), action) for at, action in rows]


def test_wave_starts_exactly_at_a_daylight_saving_boundary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = FakeClock(tmp_path / "faketime", monkeypatch)
    boundary = SPRING_INSTANT.timestamp()
    clock.set_now(boundary - 25)  # start-up takes a while on a busy machine
    policy, directory = world(tmp_path / "world", SPRING_FROM)
    url = f"sqlite:///{tmp_path}/time.db"
    with procs.devicegate(tmp_path, policy, directory, url) as server, server.client() as c:
        assert clock.now() < boundary - 2, "start-up took too long to see the boundary"
        while clock.now() < boundary + 3:
            status = c.get("/v1/forward-auth/web", headers=APPLE).status_code
            assert status in (200, 403)
            time.sleep(0.05)
    logged = decisions(url)
    before = {action for at, action in logged if at < boundary}
    after = {action for at, action in logged if at >= boundary}
    assert before == {"warn"} and after == {"block"}, (before, after)


def test_clock_stepped_back_over_the_boundary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A replayed `block` decided after the boundary must not outlive a step of the clock
    back before it: the decision is the policy's at the time the server reads."""
    clock = FakeClock(tmp_path / "faketime", monkeypatch)
    boundary = SPRING_INSTANT.timestamp()
    clock.set_now(boundary + 20)
    policy, directory = world(tmp_path / "world", SPRING_FROM)
    url = f"sqlite:///{tmp_path}/time.db"
    with procs.devicegate(tmp_path, policy, directory, url) as server, server.client() as c:
        for _ in range(5):  # decided once, then replayed
            assert c.get("/v1/forward-auth/web", headers=APPLE).status_code == 403
        clock.step(-60)  # NTP steps the clock back a minute: before the boundary again
        assert clock.now() < boundary
        stepped = [c.get("/v1/forward-auth/web", headers=APPLE) for _ in range(5)]
        assert [r.status_code for r in stepped] == [200] * 5, [r.text for r in stepped]
        assert stepped[0].headers["x-devicegate-action"] == "warn"
        clock.step(+60)
        assert c.get("/v1/forward-auth/web", headers=APPLE).status_code == 403
    logged = decisions(url)
    assert all((action == "block") == (at >= boundary) for at, action in logged), logged


@pytest.mark.parametrize(
    ("start", "instant"),
    [
        # spring forward: 03:00 CEST is the jump itself, 01:00 UTC
        ("2024-03-31T03:00", datetime(2024, 3, 31, 1, 0, tzinfo=UTC)),
        # a bare date: local midnight, CET, 23:00 UTC the day before
        ("2024-03-31", datetime(2024, 3, 30, 23, 0, tzinfo=UTC)),
        # a time the jump skips (02:30 does not exist): read with the offset before the
        # jump (PEP 495), 01:30 UTC = 03:30 CEST
        ("2024-03-31T02:30", datetime(2024, 3, 31, 1, 30, tzinfo=UTC)),
        # fall back: 02:30 happens twice; the first one (CEST, 00:30 UTC) counts
        ("2024-10-27T02:30", datetime(2024, 10, 27, 0, 30, tzinfo=UTC)),
    ],
)
def test_boundaries_in_a_daylight_saving_zone(
    tmp_path: Path, start: str, instant: datetime
) -> None:
    """The engine's side of the same: a second before the instant warns, the instant and
    an hour after (the repeated hour of the fall-back night included) block."""
    from devicegate.adapters.base import LocalService
    from devicegate.model import Action, Signals
    from devicegate.policy.loading import load_snapshot

    policy, directory = world(tmp_path, start)
    service = LocalService(load_snapshot([policy], directory, None))
    signals = Signals(user_agent=APPLE["User-Agent"])

    def action(at: float) -> Action:
        moment = datetime.fromtimestamp(at, UTC)
        return service.check(ops(1), "web", signals, at=moment).action

    ts = instant.timestamp()
    assert action(ts - 1) is Action.WARN
    assert action(ts) is Action.BLOCK
    assert action(ts + 3600) is Action.BLOCK
