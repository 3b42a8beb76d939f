"""Decision-log rows as tuples, written with multi-row INSERT statements.

The hot path cannot afford SQLAlchemy's per-row bind processing (≈40 µs a row measured
here, more than the decision itself), so rows are plain tuples in the tables' column order,
JSON already serialised, and the writer sends them on one kept DBAPI connection inside one
transaction. The columns are those of `devicegate.store.tables`;
a test writes through here and reads back through the store's own API.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime
from itertools import chain
from typing import Any

import sqlalchemy as sa

from devicegate.store import Store
from devicegate.store import tables as t

DECISION_COLUMNS = ("request_id", "at", "detail_id")
DETAIL_COLUMNS = ("digest", *t.DETAIL_COLUMNS)
SIGHTING_COLUMNS = (
    "at",
    "user",
    "resource",
    "adapter",
    "device_ref",
    "vendor",
    "platform",
    "signals",
)
Row = tuple[Any, ...]
log = logging.getLogger("devicegate.server")
CHUNK = 256  # rows per statement: 12 columns × 256 stays far below SQLite's 32,766 variables
# What a request appends to the log (see decision_log.py): its counter, the decision's time and the
# time it was made (epoch seconds), its template id and whether it records a sighting.
Record = tuple[int, float, float, int, bool]
# A template: what the decision says (`tables.DETAIL_COLUMNS`, the explanation as JSON text)
# and the sighting row without time (None if the adapter records no sightings).
Template = tuple[Row, Row | None]


class RowWriter:
    """Turns records into rows and inserts them; durable when `write` returns."""

    def __init__(self, store: Store, id_prefix: str, *, checkpoint_thread: bool = True) -> None:
        """`checkpoint_thread=False` leaves SQLite's WAL to SQLite's own checkpoint at
        commit (the baseline of `benchmarks/decision_log.py`)."""
        self.engine = store.engine
        self.id_prefix = id_prefix
        dialect = self.engine.dialect
        self.sqlite = dialect.name == "sqlite"
        self.decisions_sql = self._insert(t.decisions, DECISION_COLUMNS, dialect)
        self.details_sql = self._insert(t.decision_details, DETAIL_COLUMNS, dialect)
        self.sightings_sql = self._insert(t.sightings, SIGHTING_COLUMNS, dialect)
        self._decision_values = self._values(DECISION_COLUMNS)
        self._detail_values = self._values(DETAIL_COLUMNS, "detail")
        self._sighting_values = self._values(SIGHTING_COLUMNS, "signals")
        self._mark = "?" if self.sqlite else "%s"
        self._statements: dict[tuple[str, int], str] = {}
        # template id → its row in decision_details (template ids are never reused by a
        # server; `forget` when the server starts its templates over)
        self._detail_ids: dict[int, int] = {}
        self._conn: Any = None
        use_thread = self.sqlite and checkpoint_thread
        self.checkpointer = Checkpointer(self.engine) if use_thread else None
        self._second = -1
        self._second_text = ""

    @staticmethod
    def _insert(table: sa.Table, columns: tuple[str, ...], dialect: Any) -> str:
        quote = dialect.identifier_preparer.quote
        return f"INSERT INTO {quote(table.name)} ({', '.join(quote(c) for c in columns)}) VALUES "

    def _values(self, columns: tuple[str, ...], json_col: str | None = None) -> str:
        """One row's placeholders, e.g. `(?, ?, ?)`."""
        mark = "?" if self.sqlite else "%s"
        return (
            "("
            + ", ".join(
                f"CAST({mark} AS JSON)" if c == json_col and not self.sqlite else mark
                for c in columns
            )
            + ")"
        )

    def _time(self, ts: float) -> Any:
        """SQLite: SQLAlchemy's DateTime text (UTC, no offset), the second's text reused;
        PostgreSQL: an aware datetime."""
        if not self.sqlite:
            return datetime.fromtimestamp(ts, UTC)
        second = int(ts)
        if second != self._second:
            self._second = second
            self._second_text = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(second))
        return f"{self._second_text}.{int((ts - second) * 1_000_000):06d}"

    def sightings(self, records: list[Record], templates: dict[int, Template]) -> list[Row]:
        """The sighting rows of the records that carry one."""
        stamp = self._time
        rows: list[Row] = []
        for _, _, now, tid, with_sighting in records:
            sighting = templates[tid][1]
            if with_sighting and sighting is not None:
                rows.append((stamp(now), *sighting))
        return rows

    def forget(self) -> None:
        """The server starts its templates over: drop what they resolved to."""
        self._detail_ids.clear()

    def write(self, records: list[Record], templates: dict[int, Template]) -> None:
        """Insert and commit: details first seen in this batch, then one narrow decision row a
        record. A request id is the server's prefix and its counter in fixed-width hex: ids of
        one server sort in the order they are written, so the unique index grows at one place
        (unpadded, inserts landed all over it: ≈ 2 µs a row more).

        One DBAPI connection is kept for the writer's life (a pool checkout, reset and return
        per batch cost more than the inserts); after an error it is rolled back, or replaced
        if it broke."""
        if self._conn is None:
            self._conn = self.engine.raw_connection()
            if self.checkpointer is not None:  # commits leave the WAL to the checkpointer
                self._conn.cursor().execute(f"PRAGMA wal_autocheckpoint={BACKSTOP_PAGES}")
        conn = self._conn
        ids = self._detail_ids
        fresh: dict[int, int] = {}
        try:
            cursor = conn.cursor()
            missing = {record[3] for record in records if record[3] not in ids}
            if missing:
                fresh = self._resolve(cursor, missing, templates)
                ids.update(fresh)
            prefix, stamp = self.id_prefix, self._time
            decisions = [(f"{prefix}{n:010x}", stamp(at), ids[tid]) for n, at, _, tid, _ in records]
            self._insert_rows(
                cursor,
                self.sightings_sql,
                self._sighting_values,
                self.sightings(records, templates),
            )
            self._insert_rows(cursor, self.decisions_sql, self._decision_values, decisions)
            conn.commit()
            if self.checkpointer is not None:
                self.checkpointer.touch()
        except Exception:
            for tid in fresh:  # rolled back with the batch
                ids.pop(tid, None)
            self._conn = None
            try:
                conn.rollback()
                self._conn = conn
            except Exception:
                conn.invalidate()
            raise

    def _resolve(
        self, cursor: Any, tids: set[int], templates: dict[int, Template]
    ) -> dict[int, int]:
        """The decision_details ids of these templates: inserted unless a row with the same
        digest exists (written earlier, or by another server sharing the store), then read
        back by digest."""
        digests = {tid: t.detail_digest(templates[tid][0]) for tid in tids}
        rows = [(digest, *templates[tid][0]) for tid, digest in digests.items()]
        self._insert_rows(
            cursor, self.details_sql, self._detail_values, rows, " ON CONFLICT (digest) DO NOTHING"
        )
        wanted = sorted(set(digests.values()))
        found: dict[str, int] = {}
        for start in range(0, len(wanted), CHUNK):
            chunk = wanted[start : start + CHUNK]
            marks = ", ".join([self._mark] * len(chunk))
            cursor.execute(
                f"SELECT digest, id FROM decision_details WHERE digest IN ({marks})", tuple(chunk)
            )
            found.update(cursor.fetchall())
        return {tid: found[digest] for tid, digest in digests.items()}

    def close(self) -> None:
        """Stop the checkpointer and close the connection (the store's engine stays)."""
        if self.checkpointer is not None:
            self.checkpointer.stop()
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _insert_rows(
        self, cursor: Any, head: str, values: str, rows: list[Row], tail: str = ""
    ) -> None:
        """Multi-row INSERTs of up to CHUNK rows: one statement per chunk, not per row.

        With `executemany` the driver releases and retakes the GIL around every row; the
        event loop holds it meanwhile, so each retake waits — measured here, that convoy
        halved the server's throughput. One statement binds all values in C and steps once."""
        for start in range(0, len(rows), CHUNK):
            chunk = rows[start : start + CHUNK]
            key = (head, len(chunk))
            sql = self._statements.get(key)
            if sql is None:
                sql = self._statements[key] = head + ", ".join([values] * len(chunk)) + tail
            cursor.execute(sql, tuple(chain.from_iterable(chunk)))


#: SQLite's own checkpoint at commit, as a backstop if the checkpointer falls behind (40 MB)
BACKSTOP_PAGES = 10_000


class Checkpointer:
    """Copies SQLite's write-ahead log into the database file from a thread of its own.

    By default the commit that takes the WAL past 1,000 pages runs the checkpoint itself:
    measured in the writer process, 1.4 % of group commits took 5–6 ms instead of 0.75 ms,
    and in `durable` mode every request of such a batch waited for it. A PASSIVE checkpoint
    on another connection runs beside the commits (SQLite lets one checkpointer and one
    writer work at once) and never waits for a lock; SQLite's own checkpoint stays as a
    backstop at `BACKSTOP_PAGES`."""

    def __init__(self, engine: Any, interval: float = 0.2) -> None:
        self.engine = engine
        self.interval = interval
        self._dirty = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="wal-checkpoint", daemon=True)
        self._thread.start()

    def touch(self) -> None:
        """A commit happened: checkpoint at the next tick."""
        self._dirty.set()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        conn: Any = None
        while not self._stop.wait(self.interval):
            if not self._dirty.is_set():
                continue
            self._dirty.clear()
            try:
                if conn is None:
                    conn = self.engine.raw_connection()
                conn.cursor().execute("PRAGMA wal_checkpoint(PASSIVE)")
            except Exception as exc:  # the backstop checkpoints; try again next tick
                log.warning("WAL checkpoint failed: %s", exc)
                conn = None
        if conn is not None:
            conn.close()
