"""A PostgreSQL cluster the fault tests can stop and start again on the same port (the
suite's `procs.postgres` runs one for a test's whole life)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.conftest import require
from tests.server import procs


class Cluster:
    """initdb once; `start` and `stop` (fast shutdown) as often as a test likes."""

    def __init__(self, log: Path) -> None:
        initdb = procs.PG_BIN / "initdb"
        require(initdb.exists(), "PostgreSQL 15 is not installed (bash scripts/system-deps.sh)")
        self.base = Path(tempfile.mkdtemp(prefix="devicegate-pg-"))
        self.data = self.base / "pgdata"
        self.sock = self.base / "pgsock"
        self.data.mkdir()
        self.sock.mkdir()
        self.log = log
        self.as_pg: list[str] = []
        if os.getuid() == 0:  # postgres refuses to run as root
            for path in (self.base, self.data, self.sock):
                shutil.chown(path, "postgres")
            self.as_pg = ["setpriv", "--reuid=postgres", "--regid=postgres", "--clear-groups", "--"]
        subprocess.run(
            [*self.as_pg, str(initdb), "-D", str(self.data), "-U", "devicegate", "--auth=trust"],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=self.base,
        )
        self.port = procs.free_port()
        self.url = f"postgresql://devicegate@127.0.0.1:{self.port}/postgres"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                *self.as_pg,
                str(procs.PG_BIN / "postgres"),
                "-D",
                str(self.data),
                "-p",
                str(self.port),
                "-h",
                "127.0.0.1",
                "-k",
                str(self.sock),
                "-c",
                "max_connections=50",
            ],
            stdout=subprocess.DEVNULL,
            stderr=self.log.open("ab"),
            cwd=self.base,
        )
        procs.wait_port(self.port, self.proc, timeout=30)
        procs._wait_accepting(self.port, self.proc, timeout=30)

    def stop(self) -> None:
        """Fast shutdown (SIGINT): clients are disconnected, nothing new is accepted."""
        if self.proc is not None:
            procs.stop(self.proc, signal.SIGINT, timeout=30)
            self.proc = None

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.base, ignore_errors=True)


@contextmanager
def cluster(tmp: Path) -> Iterator[Cluster]:
    tmp.mkdir(parents=True, exist_ok=True)
    pg = Cluster(tmp / "postgres.log")
    try:
        pg.start()
        yield pg
    finally:
        pg.remove()
