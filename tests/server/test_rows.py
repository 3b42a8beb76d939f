"""The decision-log writer's rows: what it inserts reads back through the store's own API,
request ids sort in writing order, and SQLite's WAL is checkpointed off the commit path."""

from __future__ import annotations

import json
import sqlite3
import time
from datetime import timedelta
from pathlib import Path

from devicegate.server.rows import BACKSTOP_PAGES, RowWriter, Template
from devicegate.store import open_store

USER = "m.sokolova@minpromtorg.example"
DETAIL = json.dumps({"signals": {"user_agent": "iPhone Mail"}, "message": "not for work"})
TEMPLATE: Template = (
    (USER, "email", "dovecot", "block", "apple-wave-1", "v1", None, "Apple", "iOS", DETAIL),
    (USER, "email", "dovecot", None, "Apple", "iOS", json.dumps({"imap_id": "iOS"})),
)


def test_rows_read_back_through_the_store_and_ids_sort_in_writing_order(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'gate.db'}")
    writer = RowWriter(store, "abcdef0123456789-")
    try:
        now = time.time()
        # counters 9 → 10 and 15 → 16 change the number of hex digits unless ids are padded
        records = [(n, now + n / 1000, now, 1, n == 9) for n in range(8, 18)]
        writer.write(records, {1: TEMPLATE})
    finally:
        writer.close()
    logged = list(store.iter_decisions())
    assert [row["action"] for row in logged] == ["block"] * 10
    assert [row["user"] for row in logged] == [USER] * 10
    ids = [row["request_id"] for row in logged]
    assert ids == sorted(ids) and len(set(ids)) == 10
    (seen,) = store.recent_sightings(USER, since=timedelta(minutes=5))
    assert seen["adapter"] == "dovecot" and seen["vendor"] == "Apple"


def _in_database_file(path: Path) -> int:
    """Decisions in the database file itself, ignoring the WAL (`immutable`: no WAL read)."""
    conn = sqlite3.connect(f"file:{path}?immutable=1", uri=True)
    try:
        return int(conn.execute("SELECT count(*) FROM decisions").fetchone()[0])
    except sqlite3.OperationalError:  # not even the schema checkpointed yet
        return 0
    finally:
        conn.close()


def test_the_checkpointer_moves_committed_rows_into_the_database_file(tmp_path: Path) -> None:
    path = tmp_path / "gate.db"
    store = open_store(f"sqlite:///{path}")
    writer = RowWriter(store, "abcdef0123456789-")
    try:
        now = time.time()
        writer.write([(n, now, now, 1, False) for n in range(300)], {1: TEMPLATE})
        # far below the backstop: SQLite's own checkpoint would leave them in the WAL
        assert 10 * 300 * len(DETAIL) // 4096 <= BACKSTOP_PAGES
        deadline = time.monotonic() + 5
        while _in_database_file(path) < 300:
            assert time.monotonic() < deadline, "WAL not checkpointed by the writer's thread"
            time.sleep(0.05)
    finally:
        writer.close()
