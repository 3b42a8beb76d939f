"""A stand-in for the asyncio transport under `postfix._PolicyConnection`: no sockets, so a
test can feed bytes in any cut and hold the decision log's verdicts for as long as it likes."""

from __future__ import annotations


class FakeTransport:
    """Collects what is written; checks nothing is written after close and that reading is
    paused and resumed in turn."""

    def __init__(self) -> None:
        self.out: list[bytes] = []
        self.closed = False
        self.reading = True

    def write(self, chunk: bytes) -> None:
        assert not self.closed, "written after close"
        self.out.append(chunk)

    def close(self) -> None:
        self.closed = True

    def pause_reading(self) -> None:
        assert self.reading, "paused twice"
        self.reading = False

    def resume_reading(self) -> None:
        assert not self.reading, "resumed while reading"
        self.reading = True
