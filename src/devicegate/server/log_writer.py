"""The decision-log writer process: `python -m devicegate.server.log_writer`.

The server's event loop holds the GIL nearly all the time under load; a writer *thread* had
to win it back around every database call, and the wait for the GIL, not the disk, set the
commit time (measured: 2.5 ms a commit in the server against 0.7 ms alone). In its own
process the writer builds rows, inserts and fsyncs on the other core, and the loop pays one
pickle and one pipe write per batch.

Protocol on stdin/stdout, frames of a 4-byte big-endian length and a pickle (both ends are
this program; nothing else writes to these pipes):

    first frame in      {"store": URL, "id_prefix": str}     (not on the command line: the
                                                              URL may carry a password)
    first frame out     ("ready", None) or ("error", message)
    then, per batch in  (number, reset, templates, records)
                        templates: [(tid, (decision_row, sighting_row | None))]
                        records:   [(counter, at, now, tid, with_sighting)]
    and out             (number, ok, error | None, seconds)

A batch is acknowledged only after its transaction committed (`RowWriter.write`). The
process exits when stdin closes, after finishing the batch it is writing; SIGINT and SIGTERM
are ignored so that a terminal's Ctrl-C or a service manager's stop cannot cut a commit
short — the server closes the pipe when it has drained.

For tests only: with `DEVICEGATE_LOGPROC_HOLD=PATH` in its environment, the writer holds a
batch it has received, uncommitted, for as long as the file PATH exists, and says so in
`PATH.held` (the batch's number and record count). A test makes the file, waits for the
`.held` file and then kills the writer or the server: the crash lands between the request
and its commit every time, not when the timing happens to allow it. The hold only ever
delays an acknowledgement, so a server started with it fails closed, never open.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
import struct
import sys
import time
from typing import IO, Any

HEADER = struct.Struct(">I")
MAX_FRAME = 1 << 30
HOLD_ENV = "DEVICEGATE_LOGPROC_HOLD"
HOLD_POLL = 0.01  # seconds between looks at the hold file


def write_frame(out: IO[bytes], payload: object) -> None:
    data = pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL)
    out.write(HEADER.pack(len(data)) + data)
    out.flush()


def read_frame(stream: IO[bytes]) -> Any:
    """The next frame, or None at end of input."""
    head = stream.read(HEADER.size)
    if len(head) < HEADER.size:
        return None
    (size,) = HEADER.unpack(head)
    if size > MAX_FRAME:
        raise ValueError(f"frame of {size} bytes")
    data = stream.read(size)
    if len(data) < size:
        return None
    return pickle.loads(data)


def serve(stdin: IO[bytes], stdout: IO[bytes]) -> int:
    from devicegate.server.log_rows import RowWriter
    from devicegate.store import open_store

    config = read_frame(stdin)
    if config is None:
        return 0
    try:
        store = open_store(config["store"], migrate_schema=False)
        writer = RowWriter(store, config["id_prefix"])
    except Exception as exc:
        write_frame(stdout, ("error", f"{type(exc).__name__}: {exc}"))
        return 1
    write_frame(stdout, ("ready", None))
    try:
        return _serve_batches(stdin, stdout, writer)
    finally:
        writer.close()


def hold(path: str, number: int, records: int) -> None:
    """While the file `path` exists, keep the batch uncommitted (tests: `HOLD_ENV`)."""
    if not os.path.exists(path):
        return
    marker = path + ".held"
    with open(marker + ".tmp", "w", encoding="ascii") as out:
        out.write(f"{number} {records}\n")
    os.replace(marker + ".tmp", marker)  # whole or absent: the test reads it as it appears
    while os.path.exists(path):
        time.sleep(HOLD_POLL)
    # the test's release removes a marker too (a killed writer leaves one behind), and may
    # do so while this writer holds the next batch: the marker is gone either way
    with contextlib.suppress(FileNotFoundError):
        os.unlink(marker)


def _serve_batches(stdin: IO[bytes], stdout: IO[bytes], writer: Any) -> int:
    templates: dict[int, Any] = {}
    held = os.environ.get(HOLD_ENV)
    while True:
        frame = read_frame(stdin)
        if frame is None:
            return 0
        number, reset, new, records = frame
        if held:
            hold(held, number, len(records))
        if reset:
            templates.clear()
            writer.forget()
        templates.update(new)
        started = time.perf_counter()
        try:
            writer.write(records, templates)
        except Exception as exc:
            reply: tuple[int, bool, str | None, float] = (
                number,
                False,
                f"{type(exc).__name__}: {exc}"[:500],
                0.0,
            )
        else:
            reply = (number, True, None, time.perf_counter() - started)
        try:
            write_frame(stdout, reply)
        except BrokenPipeError:  # the server is gone; what it did not see acknowledged
            return 0  # was never answered, so nothing acknowledged is lost


def main() -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if hasattr(os, "setpgrp"):
        os.setpgrp()  # not in the terminal's process group: Ctrl-C reaches only the server
    return serve(sys.stdin.buffer, sys.stdout.buffer)


if __name__ == "__main__":
    sys.exit(main())
