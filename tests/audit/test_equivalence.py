"""Every event's decision in the audit equals the online decision for the same request.

The audit's events table is compared, row by row, with `decide` on a freshly compiled
snapshot (what `LocalService` and every adapter call), and a sample of distinct requests
with `devicegate check --json` itself. SMTP submissions are compared with what the online
Postfix adapter decides (`adapters.postfix.choose`) from the sightings a service records
while the other logs' requests are replayed through it in time order.
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from devicegate.adapters.base import Adapter, LocalService, Sighting
from devicegate.adapters.postfix import DEFAULT_WINDOW, choose
from devicegate.audit import AuditOptions, read_events, run_audit
from devicegate.cli import app
from devicegate.directory import Directory
from devicegate.model import Request, Signals
from devicegate.policy import compile_policy, decide, load_policy
from devicegate.policy.compile import Snapshot
from devicegate.server.service import SIGHTINGS_CONSIDERED
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
    submissions = []
    for i in range(200):
        user = rnd.choice(USERS)
        at = start + timedelta(seconds=rnd.randrange(31 * 86400))
        name = rnd.choice([user.id, user.email or user.id, (user.email or user.id).upper()])
        submissions.append(
            f"{at.isoformat()} mail postfix/submission/smtpd[{1000 + i}]: Q{i:04X}: "
            f"client=unknown[198.51.100.3], sasl_method=PLAIN, sasl_username={name}"
        )
    (root / "postfix.log").write_text("\n".join(submissions) + "\n", encoding="utf-8")
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


def _sightings_as_of(
    service: LocalService, user: str, at: datetime, window: timedelta
) -> list[Sighting]:
    """What `server/service.recent_sightings` answers at `at`: the user's distinct
    identified devices (by signals) seen within `window` before it, newest first, at most
    `SIGHTINGS_CONSIDERED`."""
    newest: dict[Signals, Sighting] = {}
    for sighting in service.sightings.get(service.snapshot.canonical_user(user).lower(), []):
        current = newest.get(sighting.signals)
        if (
            sighting.at <= at
            and at - sighting.at <= window
            and (current is None or sighting.at > current.at)
        ):
            newest[sighting.signals] = sighting
    found = sorted(newest.values(), key=lambda s: s.at, reverse=True)
    return found[:SIGHTINGS_CONSIDERED]


@pytest.mark.parametrize("match", ["any", "newest"])
def test_smtp_submissions_match_the_postfix_adapter(
    tmp_path: Path, world: tuple[Path, Path], snapshot: Snapshot, match: str
) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    write_logs(logs)
    out = tmp_path / "out"
    run_audit(snapshot, AuditOptions(logs=[logs], out=out, smtp_match=match))
    events = sorted(read_events(out).to_pylist(), key=lambda r: (r["ts"], r["file"], r["line"]))
    signals = {row["sid"]: row for row in pq.read_table(out / "signals.parquet").to_pylist()}

    def signals_of(sid: int) -> Signals:
        return Signals(**{k: signals[sid][k] for k in SIGNAL_KEYS if signals[sid][k] is not None})

    online = LocalService(fresh(world[0]))
    # the replay's own clock decides; sightings and submissions at one instant: sightings
    # first, as the audit takes a sighting at the submission's own time
    events.sort(key=lambda r: (r["ts"], r["file"].endswith("postfix.log")))
    seen = Adapter("log", carries_device_data=True)
    checked = {"block": 0, "allow": 0, "sighting": 0}
    for row in events:
        if not row["file"].endswith("postfix.log"):
            online.decide(
                row["user"], row["resource"], signals_of(row["sid"]), adapter=seen, at=row["ts"]
            )
            continue
        found = _sightings_as_of(online, row["user"], row["ts"], DEFAULT_WINDOW)
        decision, sighting = choose(online, row["user"], found, match=match, at=row["ts"])
        assert (row["action"], row["rule"]) == (decision.action.value, decision.rule), row
        assert row["excepted"] == (",".join(decision.excepted) or None)
        if sighting is None:
            assert signals_of(row["sid"]) == Signals(), row
        else:
            # the audit's pick is the adapter's, or one as severe and seen at the same instant
            equal = [
                s.signals
                for s in found
                if s.at == sighting.at
                and online.check(row["user"], "email", s.signals, at=row["ts"]).action
                is decision.action
            ]
            assert signals_of(row["sid"]) in equal, row
            checked["sighting"] += 1
        checked[row["action"]] = checked.get(row["action"], 0) + 1
    # the replay reaches every case: refused, allowed, from a sighting and from none
    assert checked["block"] and checked["allow"] and checked["sighting"], checked
    assert sum(v for k, v in checked.items() if k != "sighting") == 200
