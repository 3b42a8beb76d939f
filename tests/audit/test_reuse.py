"""Re-audits: unchanged inputs reuse the last run's results; a changed policy re-judges the
stored groups without re-reading the logs; the day arithmetic equals the zone conversion."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from devicegate.audit import AuditOptions, pipeline, read_events, run, run_audit
from devicegate.audit.events import LineError
from devicegate.audit.formats.base import ParseContext, syslog_line
from devicegate.cli import app
from devicegate.directory import Directory
from devicegate.policy import compile_policy, load_policy
from devicegate.policy.compile import Snapshot
from tests.audit.conftest import POLICY, USERS
from tests.audit.logs import nginx_log


def _outputs(out: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in out.iterdir() if p.is_file()}


def test_unchanged_inputs_reuse_the_last_run(tmp_path: Path, snapshot: Snapshot) -> None:
    log = tmp_path / "access.log"
    log.write_text("\n".join(nginx_log(500, seed=3)) + "\n", encoding="utf-8")
    out = tmp_path / "out"
    first = run_audit(snapshot, AuditOptions(logs=[log], out=out))
    written = _outputs(out)
    again = run_audit(snapshot, AuditOptions(logs=[log], out=out))
    assert _outputs(out) == written  # nothing rewritten
    assert again.reused == [str(log)]
    for key in ("events", "violations", "excepted", "by_unit", "policy_version"):
        assert again.summary[key] == first.summary[key], key
    for name in ("daily", "devices", "units", "report_only"):
        assert getattr(again.tables, name).equals(getattr(first.tables, name)), name
    assert again.tables.totals == first.tables.totals


def test_a_changed_input_is_never_reused(tmp_path: Path, snapshot: Snapshot) -> None:
    log = tmp_path / "access.log"
    log.write_text("\n".join(nginx_log(500, seed=3)) + "\n", encoding="utf-8")
    out = tmp_path / "out"
    first = run_audit(snapshot, AuditOptions(logs=[log], out=out))
    # a draft policy without the wave-1 ban: re-judged from the stored groups
    draft = dict(POLICY, rules=[r for r in POLICY["rules"] if r["id"] != "wave-1"])
    path = tmp_path / "draft.yaml"
    path.write_text(yaml.safe_dump(draft, sort_keys=False), encoding="utf-8")
    changed = compile_policy(load_policy([path]), Directory(USERS))
    what_if = run_audit(changed, AuditOptions(logs=[log], out=out))
    assert what_if.reused == [str(log)]  # ingestion reused …
    assert what_if.summary["policy_version"] != first.summary["policy_version"]
    assert what_if.summary["violations"] < first.summary["violations"]  # … judging redone
    assert not any(r["rule"] == "wave-1" for r in read_events(out).to_pylist())
    # a directory change (a user moved) with the same policy is not reused either
    moved = [USERS[0].__class__(u.id, "gov/mincult", u.groups, u.email) for u in USERS]
    elsewhere = compile_policy(load_policy([tmp_path / "draft.yaml"]), Directory(moved))
    units = run_audit(elsewhere, AuditOptions(logs=[log], out=out)).summary["by_unit"]
    assert set(units) == {"gov/mincult"}
    # and a grown log file is read again
    extra = tmp_path / "extra.log"
    extra.write_text("\n".join(nginx_log(40, seed=4)) + "\n", encoding="utf-8")
    with log.open("a", encoding="utf-8") as handle:
        handle.write(extra.read_text(encoding="utf-8"))
    grown = run_audit(elsewhere, AuditOptions(logs=[log], out=out))
    added = run_audit(elsewhere, AuditOptions(logs=[extra])).summary["events"]
    assert grown.reused == [] and grown.summary["events"] == first.summary["events"] + added > 0


def test_cli_reuses_without_loading_the_policy(
    tmp_path: Path, world: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    policy, directory = world
    log = tmp_path / "access.log"
    log.write_text("\n".join(nginx_log(300, seed=5)) + "\n", encoding="utf-8")
    out = tmp_path / "out"
    args = ["audit", "--json", "-q", "-p", str(policy), "-d", str(directory), "-o", str(out)]
    first = CliRunner().invoke(app, [*args, str(log)])
    assert first.exit_code == 0, first.output

    def no_load(*_args: object, **_kwargs: object) -> Snapshot:
        raise AssertionError("the snapshot was loaded")

    monkeypatch.setattr("devicegate.cli.audit_cmd.load_snapshot", no_load)
    again = CliRunner().invoke(app, [*args, str(log)])
    assert again.exit_code == 0, again.output
    before, after = json.loads(first.stdout), json.loads(again.stdout)
    assert after["events"] == before["events"] and after["by_unit"] == before["by_unit"]
    assert [f["reused"] for f in after["files"]] == [True]
    # an edited policy file (even a comment) is a changed input: loaded again
    policy.write_text(policy.read_text(encoding="utf-8") + "# edited\n", encoding="utf-8")
    edited = CliRunner().invoke(app, [*args, str(log)])
    assert isinstance(edited.exception, AssertionError)


def test_the_code_digest_covers_what_an_audit_runs(tmp_path: Path) -> None:
    package = tmp_path / "devicegate"
    for name in ("audit/judge.py", "identify/data/oui.tsv", "triage/data/x.stix2", "console/a.js"):
        (package / name).parent.mkdir(parents=True, exist_ok=True)
        (package / name).write_text("1", encoding="utf-8")
    before = run.files_digest(package)
    for name in ("triage/data/x.stix2", "console/a.js", "audit/judge.cpython-311.pyc"):
        (package / name).write_text("2", encoding="utf-8")
    assert run.files_digest(package) == before  # neither triage nor the console judges
    for name in ("audit/judge.py", "identify/data/oui.tsv", "identify/new.py"):
        (package / name).write_text("2", encoding="utf-8")
        assert run.files_digest(package) != before, name
        before = run.files_digest(package)
    (package / "identify/new.py").rename(package / "identify/renamed.py")
    assert run.files_digest(package) != before


def test_deleted_output_is_not_reused(tmp_path: Path, snapshot: Snapshot) -> None:
    log = tmp_path / "access.log"
    log.write_text("\n".join(nginx_log(200, seed=6)) + "\n", encoding="utf-8")
    out = tmp_path / "out"
    run_audit(snapshot, AuditOptions(logs=[log], out=out))
    (out / "violations.csv").unlink()
    run_audit(snapshot, AuditOptions(logs=[log], out=out))
    assert (out / "violations.csv").exists()


@settings(max_examples=40, deadline=None)
@given(
    zone=st.sampled_from(["Europe/Moscow", "Europe/Berlin", "America/New_York", "UTC"]),
    start=st.datetimes(min_value=datetime(2015, 1, 1), max_value=datetime(2030, 1, 1)),
    days=st.integers(min_value=0, max_value=400),
)
def test_day_arithmetic_equals_the_zone_conversion(zone: str, start: datetime, days: int) -> None:
    first = start.replace(tzinfo=UTC)
    last = first + timedelta(days=days, hours=7)
    times = [first + (last - first) * i / 50 for i in range(51)]
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    expr = pipeline.day_sql("t", zone, (first, last))
    exact = pipeline.day_sql("t", zone, None)
    for at in times:
        row = con.execute(
            f"SELECT {expr}, {exact} FROM (SELECT ?::TIMESTAMPTZ AS t)", [at]
        ).fetchone()
        assert row is not None and row[0] == row[1] == at.astimezone(pipeline.ZoneInfo(zone)).date()


def test_syslog_preamble() -> None:
    ctx = ParseContext("mail.log", None, ZoneInfo("Europe/Moscow"), 2023)
    assert syslog_line("  \n", ctx) is None
    at, rest = syslog_line("Jul 17 09:00:01 mx postfix/smtpd[1]: hello\n", ctx) or (None, "")
    assert at == datetime(2023, 7, 17, 9, 0, 1, tzinfo=ZoneInfo("Europe/Moscow"))
    assert rest.endswith("hello")
    with pytest.raises(LineError, match="not a syslog line"):
        syslog_line("garbage", ctx)
