"""`Reporter`: the audit's progress callbacks, in a module that imports nothing heavy, so
that the command line can define its rich progress bars without loading DuckDB and Arrow
for every `devicegate` invocation."""

from __future__ import annotations

from pathlib import Path


class Reporter:
    """Progress callbacks (the CLI draws rich bars; tests and `--quiet` pass nothing)."""

    def start(self, total_bytes: int, files: int) -> None: ...

    def file(self, path: Path, fmt: str) -> None: ...

    def advance(self, done: int) -> None: ...

    def phase(self, text: str) -> None: ...

    def stop(self) -> None: ...


__all__ = ["Reporter"]
