"""The soak's short form (the full one is `make soak`: a million requests): mixed load over
loopback through one `serve` — forward-auth 70 %, Dovecot 15 %, Postfix 10 %, RADIUS 5 % —
with a policy reload every second and a quarantine hold and release every second. No answer
other than the policy's, acknowledged decisions equal the rows in the log, and every
decision names a policy version in force when it was made. (Memory growth needs the long
run to mean anything; `benchmarks/soak.py` checks it.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.faults.conftest import Record
from tests.faults.soak import soak

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REQUESTS = 100_000  # about 12 s on an idle 2-core machine: enough reloads and holds


def test_soak_short(tmp_path: Path, record: Record) -> None:
    figures = soak(
        tmp_path,
        f"sqlite:///{tmp_path}/soak.db",
        requests=REQUESTS,
        seconds=240,
        users=100,
        reload_every=1.0,
        min_cycles=5,
        min_reloads=3,
    )
    assert figures["load_requests"] >= REQUESTS, "the load stopped before its budget"
    assert figures["unexpected"] == 0, figures["examples"]
    assert figures["acknowledged"] == figures["logged"]
    assert figures["version_violations"] == []
    assert figures["reloads"] >= 3 and figures["reload_failures"] == 0
    assert figures["hold_cycles"] >= 5
    record("soak_short", **{k: v for k, v in figures.items() if k != "examples"})
