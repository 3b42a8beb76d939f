"""PostgreSQL stopped for 10 s under the mixed load.

`--log-ack durable`: every answer during the outage fails closed (503, Postfix DEFER), never
allows, and no acknowledged decision is missing from the log. `--log-ack buffered`: the
decisions answered before their commit and then lost are bounded by the buffer and counted
(`devicegate_log_lost_records_total`, equal to what is missing). Within 2 s of PostgreSQL's
return `serve` answers normally, without a restart."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from devicegate.server.decision_log import BUFFER_MAX
from tests.faults import pg
from tests.faults.conftest import Record
from tests.faults.population import CLOSED
from tests.faults.soak import logged_decisions
from tests.faults.underload import last_closed, lost_metric, outcomes_between, under_load

pytestmark = [pytest.mark.integration, pytest.mark.slow]

OUTAGE = 10.0
RECOVERY = 2.0
GRACE = 0.5  # an answer committed just before the stop may reach the client just after


@pytest.mark.parametrize("ack", ["durable", "buffered"])
def test_postgres_stopped_for_ten_seconds(tmp_path: Path, ack: str, record: Record) -> None:
    with pg.cluster(tmp_path / "pg") as cluster:
        with under_load(tmp_path, cluster.url, extra=("--log-ack", ack)) as run:
            time.sleep(3)
            down = time.monotonic()
            run.windows.append((down, down + 3600))
            cluster.stop()
            stopped = time.monotonic()
            time.sleep(OUTAGE - (stopped - down))
            # PostgreSQL accepts connections before `start` returns: the outage ends here
            restarting = time.monotonic()
            cluster.start()
            up = time.monotonic()
            run.windows[0] = (down, up + RECOVERY)
            time.sleep(5)
            lost = lost_metric(run.server.url)
        stats = run.running.stats
        assert stats is not None
        logged = logged_decisions(cluster.url)
    acknowledged = run.warm.acknowledged + stats.acknowledged
    answers = stats.timeline
    during = outcomes_between(answers, stopped + GRACE, restarting)
    after = outcomes_between(answers, up + RECOVERY, float("inf"))
    recovered = last_closed(answers)
    assert stats.errors == 0 and stats.unexpected == 0, stats.examples
    assert during[CLOSED] > 0, "no request was answered during the outage"
    assert after[CLOSED] == 0, f"still failing closed {RECOVERY} s after PostgreSQL returned"
    assert sum(after.values()) > 0, "nothing answered after the outage"
    if ack == "durable":
        assert set(during) == {CLOSED}, f"answered normally with the log down: {during}"
        assert logged == acknowledged, f"{acknowledged - logged} acknowledged decisions lost"
        assert lost == 0
    else:
        # answered before their commit, then the commit failed: missing, bounded, counted
        assert acknowledged - logged == lost, (acknowledged, logged, lost)
        assert 0 <= lost <= 2 * BUFFER_MAX
        normal_during = sum(n for outcome, n in during.items() if outcome != CLOSED)
        assert normal_during <= lost
    record(
        f"postgres_outage_{ack}",
        outage_s=OUTAGE,
        answered_during=sum(during.values()),
        failed_closed_during=during[CLOSED],
        allowed_during=sum(n for o, n in during.items() if o != CLOSED),
        acknowledged=acknowledged,
        logged=logged,
        lost=int(lost),
        normal_after_s=round(max(0.0, (recovered or up) - up), 3),
    )
