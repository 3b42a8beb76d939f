"""Every event's decision in the audit equals the online decision for the same request.

The audit's events table is compared, row by row, with `decide` on a freshly compiled
snapshot (what `LocalService` and every adapter call), and a sample of distinct requests
with `devicegate check --json` itself.
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq
from typer.testing import CliRunner

from devicegate.audit import AuditOptions, read_events, run_audit
from devicegate.cli import app
from devicegate.directory import Directory
from devicegate.model import Request, Signals
from devicegate.policy import compile_policy, decide, load_policy
from devicegate.policy.compile import Snapshot
from tests.audit.conftest import USERS
from tests.audit.logs import MSK, W3C_FIELDS, nginx_log, w3c_header, w3c_line

SIGNAL_KEYS = (
    "user_agent",
    "activesync_query",
    "activesync_device_id",
    "activesync_device_type",
    "imap_id",
    "mac",
)


def write_logs(root: Path) -> None:
    """One month of mixed traffic in four formats, crossing wave 1's notice and start."""
    rnd = random.Random(5)
    (root / "access.log").write_text("\n".join(nginx_log(600, seed=3)) + "\n", encoding="utf-8")
    start = datetime(2023, 7, 1, tzinfo=MSK)
    w3c = w3c_header(W3C_FIELDS)
    imap = []
    radius = []
    for i in range(300):
        user = rnd.choice(USERS)
        at = start + timedelta(seconds=rnd.randrange(31 * 86400))
        apple = rnd.random() < 0.5
        w3c.append(
            w3c_line(
                at,
                user.email or user.id,
                f"DEV{i % 17:04d}",
                "iPhone" if apple else "SAMSUNGSMS911B",
                "Apple-iPhone14C5/2006.2" if apple else "Android-Mail/2023.06",
            )
        )
        ident = "name=iPhone Mail, os=iOS, os-version=16.5 (20F66)" if apple else "name=K-9 Mail"
        imap.append(
            f"{at.isoformat()} mail dovecot: imap-login: ID sent: {ident}: user=<>, "
            f"rip=198.51.100.3, session=<s{i}>"
        )
        imap.append(
            f"{at.isoformat()} mail dovecot: imap-login: Login: user=<{user.id}>, "
            f"method=PLAIN, rip=198.51.100.3, session=<s{i}>"
        )
        mac = "3c-22-fb-00-00-01" if apple else "00-16-32-00-00-01"
        radius += [
            at.astimezone(MSK).strftime("%a %b %d %H:%M:%S %Y"),
            f'\tUser-Name = "{user.id}"',
            f'\tCalling-Station-Id = "{mac}"',
            f"\tTimestamp = {int(at.timestamp())}",
            "",
        ]
    (root / "u_ex2307.log").write_text("\n".join(w3c) + "\n", encoding="utf-8")
    (root / "dovecot.log").write_text("\n".join(imap) + "\n", encoding="utf-8")
    (root / "detail").write_text("\n".join(radius) + "\n", encoding="utf-8")


def fresh(policy: Path) -> Snapshot:
    return compile_policy(load_policy([policy]), Directory(USERS))


def test_every_event_matches_decide_and_check(
    tmp_path: Path, world: tuple[Path, Path], snapshot: Snapshot
) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    write_logs(logs)
    out = tmp_path / "out"
    result = run_audit(snapshot, AuditOptions(logs=[logs], out=out))
    events = read_events(out).to_pylist()
    signals = {row["sid"]: row for row in pq.read_table(out / "signals.parquet").to_pylist()}
    assert len(events) == result.summary["events"] > 1000
    online = fresh(world[0])  # a different snapshot object: no shared caches
    actions = set()
    for row in events:
        sig = signals[row["sid"]]
        request = Request(
            row["user"],
            row["resource"],
            row["ts"],
            Signals(**{k: sig[k] for k in SIGNAL_KEYS if sig[k] is not None}),
        )
        decision = decide(online, request)
        assert (row["action"], row["rule"]) == (decision.action.value, decision.rule), row
        assert row["excepted"] == (",".join(decision.excepted) or None)
        assert row["violation"] == (decision.action.value in ("block", "quarantine"))
        actions.add(row["action"])
        if row["action"] == "warn" and row["excepted"] == row["rule"]:
            actions.add("warn: exception ends")
    assert {"allow", "warn", "block"} <= actions  # the log crosses notice and start
    assert "warn: exception ends" in actions  # and petrov's exception's last days

    runner = CliRunner()
    policy, directory = world
    seen: set[tuple[object, ...]] = set()
    for row in events:
        key = (row["user"], row["resource"], row["sid"], row["action"], row["rule"])
        if key in seen or len(seen) >= 25:
            continue
        seen.add(key)
        sig = signals[row["sid"]]
        args = [
            "check",
            "--json",
            "-p",
            str(policy),
            "-d",
            str(directory),
            "--user",
            row["user"],
            "--resource",
            row["resource"],
            "--at",
            row["ts"].astimezone(UTC).isoformat(),
        ]
        for name in SIGNAL_KEYS:
            if sig[name] is not None:
                args += ["--" + name.replace("_", "-"), sig[name]]
        done = runner.invoke(app, args)
        assert done.exit_code == 0, done.output
        answer = json.loads(done.stdout)
        assert (answer["action"], answer["rule"]) == (row["action"], row["rule"]), args
    assert len(seen) >= 10
