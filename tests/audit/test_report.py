"""report.html renders offline in Debian's Chromium and its charts draw."""

from __future__ import annotations

import re
import subprocess
import tempfile
from pathlib import Path

import pytest

from devicegate.audit import AuditOptions, run_audit
from devicegate.policy.compile import Snapshot
from tests.audit.conftest import require_binary
from tests.audit.logs import nginx_log

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium(args: list[str]) -> str:
    """Run headless Chromium with a throwaway profile; return stdout (bounded in time)."""
    binary = require_binary("chromium")
    with tempfile.TemporaryDirectory() as profile:
        done = subprocess.run(
            [binary, *FLAGS, f"--user-data-dir={profile}", *args],
            capture_output=True,
            text=True,
            timeout=90,
            check=False,
        )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from devicegate.directory import Directory
    from devicegate.policy import compile_policy, load_policy
    from tests.audit.conftest import USERS, write_world

    tmp = tmp_path_factory.mktemp("report")
    policy, _ = write_world(tmp)
    snap: Snapshot = compile_policy(load_policy([policy]), Directory(USERS))
    log = tmp / "access.log"
    log.write_text(
        "\n".join([*nginx_log(2000, seed=11), "junk <script>alert(1)</script>"]) + "\n",
        encoding="utf-8",
    )
    run_audit(snap, AuditOptions(logs=[log], out=tmp / "out"))
    return tmp / "out" / "report.html"


def test_report_is_self_contained(report: Path) -> None:
    page = report.read_text(encoding="utf-8")
    assert not re.search(r"(src|href)\s*=\s*['\"]?(https?:)?//", page)
    assert "<script>alert(1)</script>" not in page  # bad-line text is escaped
    assert "default-src 'none'" in page


@pytest.mark.slow
def test_charts_draw_in_headless_chromium(report: Path) -> None:
    dom = chromium(["--virtual-time-budget=5000", "--dump-dom", report.as_uri()])
    for chart in ("chart-units", "chart-trend", "chart-report-only"):
        match = re.search(rf'<div id="{chart}"[^>]*data-drawn="yes"[^>]*>(.*?)</div>', dom, re.S)
        assert match, f"{chart} did not draw"
        assert "<svg" in match.group(1)
    units = re.search(r'<div id="chart-units".*?</div>', dom, re.S)
    assert units and units.group(0).count('class="bar"') >= 3
    trend = re.search(r'<div id="chart-trend".*?</div>', dom, re.S)
    assert trend and trend.group(0).count('class="series"') == 3
    assert 'class="deadline"' in trend.group(0)


@pytest.mark.slow
def test_screenshot_is_not_blank(report: Path, tmp_path: Path) -> None:
    shot = tmp_path / "shot.png"
    chromium(["--window-size=1200,1600", f"--screenshot={shot}", report.as_uri()])
    data = shot.read_bytes()
    assert data.startswith(b"\x89PNG") and len(data) > 20_000
