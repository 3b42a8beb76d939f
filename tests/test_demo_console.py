"""The console part of `make demo` (examples/apple-ban/demo_console.py) on a few days: the
simulation goes through the real `ServerService` and its decision-log writer, and the rollups
hold every decision it made. (`make demo` itself runs the fortnight.)"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "apple-ban"


def test_the_demo_console_store_is_filled_and_rolled_up(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.syspath_prepend(str(EXAMPLE))
    sys.modules.pop("demo_console", None)
    import demo_console

    store = demo_console.OUT / f"test-console-demo-{os.getpid()}.db"
    monkeypatch.setattr(demo_console, "STORE", store)
    monkeypatch.setattr(demo_console, "DAYS", 3)
    try:
        demo_console.run()
        out = capsys.readouterr().out
        found = re.search(r"(\d+) decisions by the serve service's writer, (\d+) rolled up", out)
        assert found and int(found[1]) > 0 and found[1] == found[2], out
        assert f"--store sqlite:///{store.relative_to(ROOT)}" in out
    finally:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{store}{suffix}").unlink(missing_ok=True)
