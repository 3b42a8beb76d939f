"""The decision-log writer's rows: what it inserts reads back through the store's own API,
request ids sort in writing order, and SQLite's WAL is checkpointed off the commit path."""

from __future__ import annotations

import json
import sqlite3
import time
from datetime import timedelta
from pathlib import Path

import pytest

from devicegate.server.log_rows import BACKSTOP_PAGES, RowWriter, Template
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


OTHER: Template = (
    ("o.morozova@minenergo.example", "email", "dovecot", "allow", None, "v1", None, None, None,
     json.dumps({"signals": {"user_agent": "Thunderbird"}})),
    None,
)  # fmt: skip


def test_details_are_kept_once_across_servers_sharing_a_store(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'gate.db'}")
    first, second = RowWriter(store, "aaaa-"), RowWriter(store, "bbbb-")
    try:
        now = time.time()
        first.write([(n, now, now, 1, False) for n in range(3)], {1: TEMPLATE})
        second.write([(n, now, now, 7, False) for n in range(2)], {7: TEMPLATE, 8: OTHER})
        second.write([(2, now, now, 8, False)], {7: TEMPLATE, 8: OTHER})
    finally:
        first.close()
        second.close()
    assert store.count("decision_details") == 2 and store.count("decisions") == 6
    users = [row["user"] for row in store.iter_decisions()]
    assert users == [USER] * 5 + ["o.morozova@minenergo.example"]


def test_a_failed_batch_forgets_the_details_it_inserted(tmp_path: Path) -> None:
    """The details a batch inserted roll back with it; the next batch inserts them again
    instead of pointing at a row that is not there."""
    store = open_store(f"sqlite:///{tmp_path / 'gate.db'}")
    writer = RowWriter(store, "abcd-")
    templates = {1: TEMPLATE, 2: OTHER}
    try:
        now = time.time()
        writer.write([(1, now, now, 1, False)], templates)
        with pytest.raises(sqlite3.IntegrityError):  # request id abcd-…01 again
            writer.write([(1, now, now, 2, False)], templates)
        writer.write([(2, now, now, 2, False)], templates)
    finally:
        writer.close()
    actions = [(row["request_id"], row["action"]) for row in store.iter_decisions()]
    assert actions == [("abcd-0000000001", "block"), ("abcd-0000000002", "allow")]
