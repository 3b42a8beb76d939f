"""Read configuration files only once they have stopped changing.

A reload (SIGHUP, `POST /v1/admin/reload`) can arrive while an operator's editor or a
deployment tool is still writing the policy in place. A file cut at a rule boundary is valid
YAML, and no reader can tell it from an intended edit, so validation alone cannot refuse it:
the only defence the reader has is to wait until the files stop changing, and to check that
they did not change while they were read. (The writer's defence is better: write a new file
and rename it over the old one — docs/reliability.md.)

`load_settled` stats every file (following symlinks, so a swapped link shows as another
inode), waits `settle` seconds, stats again, and loads only when nothing moved; then it stats
once more and starts over if anything changed during the load. Inode, size, modification and
change time together: `ctime` cannot be set back by tools that restore `mtime` (`cp -p`,
`touch -d`). A file still changing after `timeout` seconds is refused, and the caller keeps
what it had.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from devicegate.errors import InputError

T = TypeVar("T")

#: seconds a file must stay unchanged before a reload reads it
SETTLE = 0.5
#: seconds a reload waits for files to settle before it is refused
TIMEOUT = 10.0

FileState = tuple[int, int, int, int, int]


class FileUnsettled(InputError):
    """A configuration file kept changing (or vanished) while a reload waited for it."""


def file_state(path: Path) -> FileState:
    """What changes when `path`'s content or identity changes (raises `FileUnsettled`)."""
    try:
        st = os.stat(path)
    except OSError as exc:
        raise FileUnsettled(f"cannot read `{path}`: {exc.strerror}") from None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def load_settled(
    load: Callable[[], T],
    paths: Sequence[Path],
    *,
    settle: float = SETTLE,
    timeout: float = TIMEOUT,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> T:
    """`load()` once every file in `paths` has been unchanged for `settle` seconds and stayed
    so while `load` ran. Raises `FileUnsettled` when that does not happen within `timeout`."""
    deadline = clock() + timeout
    before = [file_state(p) for p in paths]
    while True:
        sleep(settle)
        now = [file_state(p) for p in paths]
        if now == before:
            result = load()
            after = [file_state(p) for p in paths]
            if after == now:
                return result
            now = after
        if clock() >= deadline:
            moving = [str(p) for p, a, b in zip(paths, before, now, strict=True) if a != b]
            raise FileUnsettled(
                f"`{', '.join(moving) or paths[0]}` kept changing for {timeout:g} s; "
                "reload refused",
                hint="write the new file beside the old one, then rename it over it",
            )
        before = now
