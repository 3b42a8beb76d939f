"""The audit end to end: summary keys, fast path = reference path, incremental re-runs."""

from __future__ import annotations

import csv
import gzip
import json
import os
import subprocess
import sys
from datetime import UTC
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from devicegate.audit import AuditOptions, read_events, run_audit
from devicegate.audit import ingest as ingest_module
from devicegate.cli import app
from devicegate.errors import UsageError
from devicegate.policy.compile import Snapshot
from tests.audit.logs import nginx_log

SUMMARY_KEYS = {
    "events",
    "bad_lines",
    "violations",
    "excepted",
    "report_only_hits",
    "by_unit",
    "first_event",
    "last_event",
    "policy_version",
}

AWKWARD = [
    '2001:db8::1 - ivanov [17/Jul/2023:09:00:00 +0300] "GET / HTTP/1.1" 200 1 "-" '
    '"Mozilla/5.0 (iPhone; CPU iPhone OS 16_5 like Mac OS X) \\x22x\\x22"',
    # an Apache `\\"` escape: DuckDB's reader rejects the line, the reference reads it
    '198.51.100.1 - ivanov [18/Jul/2023:09:00:00 +0300] "GET / HTTP/1.1" 200 1 "-" '
    '"Mozilla/5.0 (iPhone; CPU iPhone OS 16_5 like Mac OS X) \\"y\\" z"',
    '198.51.100.1 - GOV\\x5Cpetrov [18/Jul/2023:09:00:00 +0300] "GET / HTTP/1.1" 200 1 "-" "UA"',
    '198.51.100.1 - ivanov [18/Jul/2023:09:00:00 +0300] "GET / HTTP/1.1" 200 1 "-" "UA" "xff"',
    "garbage line",
    "",
]


def _key(row: dict[str, object]) -> tuple[object, ...]:
    return (row["ts"], row["user"], row["resource"], row["device"], row["action"], row["rule"])


def test_fast_path_equals_reference_parser(
    tmp_path: Path, snapshot: Snapshot, monkeypatch: pytest.MonkeyPatch
) -> None:
    lines = nginx_log(3000, seed=9)
    lines[100:100] = AWKWARD
    log = tmp_path / "access.log.gz"
    with gzip.open(log, "wt", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
    monkeypatch.setattr(ingest_module, "FAST_MIN_BYTES", 0)
    fast = run_audit(snapshot, AuditOptions(logs=[log], out=tmp_path / "fast"))
    slow = run_audit(snapshot, AuditOptions(logs=[log], out=tmp_path / "slow", fast=False))
    # the log stays on the fast path (else this compares the reference with itself)
    assert fast.ingested[0].parquet[0].endswith(".fast.parquet")
    fast_rows = sorted(map(_key, read_events(tmp_path / "fast").to_pylist()))
    slow_rows = sorted(map(_key, read_events(tmp_path / "slow").to_pylist()))
    assert fast_rows == slow_rows
    # GOV\x5Cpetrov unescaped and kept as presented: this policy maps no login domain
    assert any(row[1] == "GOV\\petrov" for row in fast_rows)
    for key in ("events", "bad_lines", "violations", "excepted", "skipped_lines"):
        assert fast.summary[key] == slow.summary[key], key
    assert fast.summary["bad_lines"] == 1
    (bad,) = fast.summary["bad_line_sample"]
    assert (bad["file"], bad["line"]) == (str(log), 105)


def test_incremental_only_new_files(tmp_path: Path, snapshot: Snapshot) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "a.log").write_text("\n".join(nginx_log(200, seed=1)) + "\n", encoding="utf-8")
    out = tmp_path / "out"
    first = run_audit(snapshot, AuditOptions(logs=[logs], out=out))
    assert first.reused == []
    (logs / "b.log").write_text("\n".join(nginx_log(300, seed=2)) + "\n", encoding="utf-8")
    second = run_audit(snapshot, AuditOptions(logs=[logs], out=out))
    assert second.reused == [str(logs / "a.log")]
    assert second.summary["events"] > first.summary["events"]
    alone = run_audit(snapshot, AuditOptions(logs=[logs / "b.log"]))
    assert second.summary["events"] == first.summary["events"] + alone.summary["events"]
    third = run_audit(snapshot, AuditOptions(logs=[logs], out=out))
    assert sorted(third.reused) == [str(logs / "a.log"), str(logs / "b.log")]
    assert third.summary["events"] == second.summary["events"]
    with (logs / "a.log").open("a", encoding="utf-8") as handle:  # a file that grew
        handle.write("not a log line\n")
    fourth = run_audit(snapshot, AuditOptions(logs=[logs], out=out))
    assert fourth.reused == [str(logs / "b.log")]
    assert fourth.summary["bad_lines"] == 1


def test_cli_json_summary_and_outputs(tmp_path: Path, world: tuple[Path, Path]) -> None:
    policy, directory = world
    log = tmp_path / "access.log"
    log.write_text("\n".join([*nginx_log(400, seed=4), "junk"]) + "\n", encoding="utf-8")
    out = tmp_path / "out"
    done = CliRunner().invoke(
        app,
        [
            "audit",
            "--json",
            "--quiet",
            "-p",
            str(policy),
            "-d",
            str(directory),
            "--out",
            str(out),
            str(log),
        ],
    )
    assert done.exit_code == 0, done.output
    data = json.loads(done.stdout)
    assert set(data) >= SUMMARY_KEYS
    assert data["bad_lines"] == 1 and data["bad_line_sample"][0]["line"] == 401
    for unit in data["by_unit"].values():
        assert {"events", "violations", "users_violating"} <= set(unit)
    assert sum(u["events"] for u in data["by_unit"].values()) == data["events"]
    assert sum(u["violations"] for u in data["by_unit"].values()) == data["violations"]
    for name in (
        "events.parquet",
        "violations.parquet",
        "compliance_daily.parquet",
        "devices_per_user.parquet",
        "violations.csv",
        "compliance_daily.csv",
        "devices_per_user.csv",
        "report.html",
        "summary.json",
    ):
        assert (out / name).exists(), name
    violations = pq.read_table(out / "violations.parquet")
    assert violations.num_rows == data["violations"] > 0
    assert not any(pa.types.is_dictionary(f.type) for f in violations.schema)  # plain strings
    daily = pq.read_table(out / "compliance_daily.parquet").to_pylist()
    assert sum(r["events"] for r in daily) == data["events"]


def test_cli_rejects_unknown_resource_and_format(tmp_path: Path, world: tuple[Path, Path]) -> None:
    policy, directory = world
    log = tmp_path / "access.log"
    log.write_text("\n".join(nginx_log(5)) + "\n", encoding="utf-8")
    runner = CliRunner()
    for extra in (["--resource", "emial"], ["--format", "syslog"], ["--engine", "flink"]):
        done = runner.invoke(
            app, ["audit", "-q", "-p", str(policy), "-d", str(directory), *extra, str(log)]
        )
        assert done.exit_code != 0


def test_unknown_format_is_a_usage_error(tmp_path: Path, world: tuple[Path, Path]) -> None:
    policy, directory = world
    log = tmp_path / "mystery.txt"
    log.write_text("hello\nworld\n", encoding="utf-8")
    done = CliRunner().invoke(
        app, ["audit", "-q", "-p", str(policy), "-d", str(directory), str(log)]
    )
    assert isinstance(done.exception, UsageError)
    assert "cannot tell the format" in str(done.exception)


def test_quiet_prints_nothing_but_the_result(tmp_path: Path, world: tuple[Path, Path]) -> None:
    policy, directory = world
    log = tmp_path / "access.log"
    log.write_text("\n".join(nginx_log(50)) + "\n", encoding="utf-8")
    base = ["audit", "-p", str(policy), "-d", str(directory), str(log)]
    quiet = CliRunner().invoke(app, [*base, "--quiet"])
    loud = CliRunner().invoke(app, base)
    assert quiet.exit_code == loud.exit_code == 0
    assert quiet.stderr == ""
    assert "policy " in loud.stderr  # what was loaded, on stderr
    assert " events, " in quiet.stdout


def test_out_inside_the_log_directory_is_not_read_back(tmp_path: Path, snapshot: Snapshot) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "a.log").write_text("\n".join(nginx_log(100, seed=6)) + "\n", encoding="utf-8")
    first = run_audit(snapshot, AuditOptions(logs=[logs], out=logs / "out"))
    again = run_audit(snapshot, AuditOptions(logs=[logs], out=logs / "out"))
    assert [f["file"] for f in again.summary["files"]] == [str(logs / "a.log")]
    assert again.summary["events"] == first.summary["events"]


def test_outputs_are_in_utc_whatever_the_machine_zone(
    tmp_path: Path, world: tuple[Path, Path]
) -> None:
    """The files are written on cursors of their own (in threads), and a DuckDB cursor
    starts in the machine's zone: the times in the CSV must still be UTC, as in Parquet.
    A process of its own, since DuckDB reads the machine's zone once."""
    policy, directory = world
    log = tmp_path / "access.log"
    log.write_text("\n".join(nginx_log(300, seed=7)) + "\n", encoding="utf-8")
    out = tmp_path / "out"
    command = [sys.executable, "-m", "devicegate.cli", "audit", "--quiet", "--json"]
    command += ["-p", str(policy), "-d", str(directory), "--out", str(out), str(log)]
    done = subprocess.run(
        command, capture_output=True, text=True, env={**os.environ, "TZ": "Asia/Tokyo"}
    )
    assert done.returncode == 0, done.stderr
    with (out / "violations.csv").open(newline="", encoding="utf-8") as handle:
        written = [row["ts"] for row in csv.DictReader(handle)]
    times = pq.read_table(out / "violations.parquet").column("ts").to_pylist()
    assert written and len(written) == len(times)
    assert written == [f"{t.astimezone(UTC):%Y-%m-%d %H:%M:%S}+00" for t in times]
