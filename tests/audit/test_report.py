"""report.html renders offline in Debian's Chromium and its charts draw."""

from __future__ import annotations

import re
import subprocess
import tempfile
from pathlib import Path

import pyarrow as pa
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


def html_table(page: str, caption: str) -> list[dict[str, str]]:
    """The rows of the report's table with this caption, as {heading: text}."""
    import html

    found = re.search(rf"<table><caption>{caption}</caption>(.*?)</table>", page, re.S)
    assert found, f"no table `{caption}`"
    cells = [
        [html.unescape(c) for c in re.findall(r"<t[hd]>(.*?)</t[hd]>", row)]
        for row in re.findall(r"<tr>(.*?)</tr>", found.group(1))
    ]
    return [dict(zip(cells[0], row, strict=True)) for row in cells[1:]]


def test_compliant_share_counts_violations_only(report: Path) -> None:
    """A warning before the date is compliant: a unit with warnings and no violation is
    100 % compliant, not 97 %."""
    units = html_table(report.read_text(encoding="utf-8"), "Units")
    assert any(int(u["warned"]) > 0 for u in units)
    for unit in units:
        events, violations = int(unit["events"]), int(unit["violations"])
        assert unit["compliant share"] == f"{100 * (1 - violations / events):.1f} %"


def test_devices_are_listed_once_each(report: Path) -> None:
    """`ABC123` is one ActiveSync device, whatever User-Agent each sync claimed: one row per
    user and device, naming the other profiles it was seen as. The top list is of devices;
    the by-model view adds up to every violation."""
    import json

    page = report.read_text(encoding="utf-8")
    for caption in ("Devices still to replace", "Devices"):
        rows = html_table(page, caption)
        keys = [(r["user"], r["device id"]) for r in rows]
        assert rows and len(keys) == len(set(keys)), caption
        assert any(r["device id"] == "ABC123" and r["also seen as"] != "—" for r in rows)
    top = html_table(page, "Devices")
    assert {"user", "device", "device id", "violations", "events"} <= set(top[0])
    models = html_table(page, "Models")
    summary = json.loads((report.parent / "summary.json").read_text(encoding="utf-8"))
    assert sum(int(m["violations"]) for m in models) == summary["violations"] > 0


ROW = {
    "unit": "gov/x",
    "os_version": None,
    "events": 10,
    "violations": 1,
    "warned": 1,
    "excepted": 0,
    "first_seen": None,
    "last_seen": None,
    "last_flagged": None,
}


def row(user: str, vendor: str | None, platform: str | None, model: str | None, did: str | None):  # type: ignore[no-untyped-def]
    label = " ".join(x for x in (vendor, platform, model) if x) or "unidentified"
    return ROW | {
        "user": user,
        "device": label,
        "vendor": vendor,
        "platform": platform,
        "model": model,
        "device_id": did,
    }


def test_one_phone_seen_four_ways_is_one_device() -> None:
    from devicegate.report.devices import fold_devices

    rows = [
        row("u1", "Apple", None, None, None),  # RADIUS: the MAC's vendor
        row("u1", "Apple", "iOS", None, None),  # IMAP ID
        row("u1", "Apple", "iOS", "iPhone", None),  # Safari
        row("u1", "Apple", "iOS", "iPhone14,5", "X1"),  # ActiveSync, with its DeviceId
        row("u1", "Samsung", "Android", "SM-S911B", "S1"),  # the replacement
        row("u1", None, None, None, None),  # unidentified: could be anything
    ]
    folded = fold_devices(pa.Table.from_pylist(rows))
    assert sorted(d["device"] for d in folded) == [
        "Apple iOS iPhone14,5",
        "Samsung Android SM-S911B",
        "unidentified",
    ]
    iphone = next(d for d in folded if d["device_id"] == "X1")
    assert iphone["violations"] == 4 and iphone["events"] == 40
    assert iphone["also_seen_as"] == ["Apple iOS iPhone", "Apple iOS", "Apple"]


def test_two_phones_are_not_guessed_together() -> None:
    from devicegate.report.devices import fold_devices

    rows = [
        row("u2", "Apple", "iOS", "iPhone14,5", "A"),
        row("u2", "Apple", "iOS", "iPhone12,1", "B"),
        row("u2", "Apple", "iOS", None, None),  # either of them: kept apart
        row("u2", "Apple", "iOS", "iPhone12", None),  # only B's family
        row("u2", "Apple", "iPadOS", "iPhone12,1", "B"),  # B again, whatever it claimed
        row("u3", "Apple", "iOS", None, None),  # another user's device is never folded in
    ]
    folded = {(d["user"], d["device"]): d for d in fold_devices(pa.Table.from_pylist(rows))}
    assert set(folded) == {
        ("u2", "Apple iOS iPhone14,5"),
        ("u2", "Apple iOS iPhone12,1"),
        ("u2", "Apple iOS"),
        ("u3", "Apple iOS"),
    }
    assert folded[("u2", "Apple iOS iPhone12,1")]["also_seen_as"] == [
        "Apple iPadOS iPhone12,1",
        "Apple iOS iPhone12",
    ]


def test_each_mark_lists_the_devices_it_alone_would() -> None:
    """The report folds the rows of every marked user once for both of its lists (devices
    still to replace, devices that drew a violation): each list is what folding that mark's
    users alone gives — a device counts its vaguer profiles whichever mark they carry, and
    a user only the other mark names adds nothing."""
    from devicegate.report.devices import devices_of

    rows = [
        row("u1", "Apple", "iOS", "iPhone14,5", "X1"),
        row("u1", "Apple", "iOS", None, None),
        row("u1", "Samsung", "Android", "SM-S911B", None),
        row("u2", "Apple", "iOS", "iPhone12,1", None),
        row("u2", "Apple", None, None, None),
        row("u3", "Apple", "iOS", "iPhone", None),
    ]
    table = pa.Table.from_pylist(rows)
    recent = pa.array([False, True, False, True, False, False])
    violating = pa.array([True, False, False, False, True, True])
    both = devices_of(table, {"recent": recent, "violating": violating})

    def alone(name: str, mask: pa.Array) -> list[tuple[str, str, int, list[str]]]:
        found = devices_of(table, {name: mask})[name]
        return sorted((d["user"], d["device"], d["events"], d["also_seen_as"]) for d in found)

    for name, mask in (("recent", recent), ("violating", violating)):
        listed = sorted(
            (d["user"], d["device"], d["events"], d["also_seen_as"]) for d in both[name]
        )
        assert listed == alone(name, mask)
    assert alone("recent", recent) == [
        ("u1", "Apple iOS iPhone14,5", 20, ["Apple iOS"]),
        ("u2", "Apple iOS iPhone12,1", 20, ["Apple"]),
    ]
    assert [d["user"] for d in both["violating"]].count("u3") == 1
    assert all(not d["recent"] for d in both["violating"] if d["user"] == "u3")
    assert devices_of(table, {"none": pa.array([False] * 6)}) == {"none": []}
