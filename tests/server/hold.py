"""Holding the decision-log writer before it commits (`log_writer.HOLD_ENV`), so that a test
kills it — or the whole server — with a batch in flight every time, not when timing allows."""

from __future__ import annotations

import time
from pathlib import Path

from devicegate.server.log_writer import HOLD_ENV


class WriterHold:
    """`env()` goes into the server's environment; `engage()` makes the writer hold the next
    batch it receives; `wait()` returns once it holds one (its number and record count)."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / "writer-hold"
        self.marker = folder / "writer-hold.held"

    def env(self) -> dict[str, str]:
        return {HOLD_ENV: str(self.path)}

    def engage(self) -> None:
        self.path.touch()

    def wait(self, timeout: float = 20.0) -> tuple[int, int]:
        deadline = time.monotonic() + timeout
        while not self.marker.exists():
            assert time.monotonic() < deadline, "the writer never held a batch"
            time.sleep(0.005)
        number, records = self.marker.read_text(encoding="ascii").split()
        return int(number), int(records)

    def release(self) -> None:
        self.path.unlink(missing_ok=True)
        self.marker.unlink(missing_ok=True)  # a killed writer leaves it behind
