"""The console follows the policy files (an invalid one is refused and the old kept), speaks the
reader's language from complete catalogs, and draws its charts with escaped text."""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path

from babel.messages.extract import extract_from_dir
from tests.console.world import write_world

from devicegate.charts import BarRow, Span, hbars, lines, spark, timeline
from devicegate.cli.common import load_snapshot
from devicegate.console import ConsoleConfig
from devicegate.console.i18n import Formats, negotiate, translations
from devicegate.console.runtime import Runtime
from devicegate.store import open_store

CONSOLE = Path(__file__).resolve().parents[2] / "src" / "devicegate" / "console"


def runtime(tmp: Path) -> tuple[Runtime, Path]:
    world = write_world(tmp)
    config = ConsoleConfig(
        policy=(world.policy,), directory=world.directory, devices=None, store_url=world.store_url
    )
    snapshot = load_snapshot([world.policy], world.directory, None, quiet=True)
    return Runtime(config, snapshot, open_store(world.store_url)), world.policy


def touch_later(path: Path) -> None:
    stat = path.stat()
    os.utime(path, (stat.st_atime + 5, stat.st_mtime + 5))


def test_a_policy_change_is_followed_and_a_broken_one_refused(tmp_path: Path) -> None:
    rt, policy = runtime(tmp_path)
    first = rt.snapshot.version
    assert rt.check_files() is False  # nothing changed
    policy.write_text(policy.read_text().replace("gov/b follows", "gov/b follows soon"))
    touch_later(policy)
    assert rt.check_files() is True
    second = rt.snapshot.version
    assert second != first and rt.refused is None
    policy.write_text(policy.read_text().replace("effect: block", "effect: explode", 1))
    touch_later(policy)
    assert rt.check_files() is False
    assert rt.snapshot.version == second  # the old policy keeps showing
    assert rt.refused is not None and "explode" in rt.refused.error


def _messages(folder: Path) -> set[str]:
    method_map = [("**.py", "python"), ("**/templates/**.html", "jinja2")]
    options = {"**/templates/**.html": {"extensions": "jinja2.ext.i18n"}}
    return {
        msg if isinstance(msg, str) else msg[0]
        for _file, _line, msg, _comments, _context in extract_from_dir(
            str(folder), method_map, options, keywords={"_": None}
        )
    }


def test_every_message_has_a_russian_translation() -> None:
    catalog = translations("ru")
    wanted = _messages(CONSOLE)
    assert len(wanted) > 150
    missing = sorted(m for m in wanted if catalog.gettext(m) == m)
    assert missing == []


def test_the_locale_comes_from_the_browser_or_the_setting() -> None:
    assert negotiate("ru-RU,ru;q=0.9,en;q=0.8") == "ru"
    assert negotiate("de-DE,en;q=0.5") == "en"
    assert negotiate("en;q=0.2, ru;q=0.9") == "ru"
    assert negotiate("ru", fixed="en") == "en"
    assert negotiate("xx;q=abc,,;;,ru-;q=1") in ("en", "ru")  # garbage never raises
    from zoneinfo import ZoneInfo

    ru = Formats("ru", ZoneInfo("Europe/Moscow"))
    assert ru.number(1234567) == "1\xa0234\xa0567"
    assert ru.percent(0.575) == "57,5\xa0%"


def test_charts_escape_their_text() -> None:
    hostile = '<script>alert(1)</script>"&'
    drawn = [
        hbars([BarRow(hostile, {"violations": 3})], ["violations"], label=hostile),
        lines(["2023-07-17"], {hostile: [1]}, label=hostile, marks=[("2023-07-17", hostile)]),
        timeline(
            [Span(hostile, date(2023, 7, 3), date(2023, 7, 17), None)],
            today=date(2023, 7, 10),
            label=hostile,
        ),
        spark([1, 2, 3], label=hostile),
    ]
    for svg in drawn:
        assert "<script" not in svg and "&lt;script&gt;" in svg
        assert svg.startswith("<svg") and 'role="img"' in svg
