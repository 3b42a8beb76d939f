"""The Alembic migrations build exactly the schema `store/tables.py` describes, on SQLite and
on PostgreSQL; and every migration can be undone and redone."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from devicegate.errors import StoreError
from devicegate.store import alembic_config, make_engine, migrate, open_store
from devicegate.store import tables as t
from devicegate.store.rollups import RollupUpdater
from tests.server import procs
from tests.store.logrows import UNITS, random_log, write


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.integration)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database on each kind of store the migrations run on."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/store.db"
        return
    with procs.postgres(tmp_path / "pg") as url:
        yield url


def schema_diff(engine: sa.Engine) -> list[object]:
    with engine.connect() as conn, warnings.catch_warnings():
        # expression indexes (lower("user")) cannot be reflected: alembic says so and skips
        warnings.filterwarnings("ignore", message=".*expression-based index.*")
        return list(compare_metadata(MigrationContext.configure(conn), t.metadata))


def test_migrated_sqlite_matches_the_tables(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path}/store.db")
    assert schema_diff(store.engine) == []
    assert "scans" not in sa.inspect(store.engine).get_table_names()  # dropped by 0003


@pytest.mark.integration
def test_migrated_postgres_matches_the_tables(tmp_path: Path) -> None:
    with procs.postgres(tmp_path / "pg") as url:
        with pytest.raises(StoreError, match="no store at"):  # an empty database is no store
            open_store(url, create=False)
        store = open_store(url)
        try:
            assert schema_diff(store.engine) == []
            assert open_store(url, create=False).count("holds") == 0
        finally:
            store.engine.dispose()


def test_every_migration_downgrades_and_upgrades_again(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path}/store.db")
    migrate(engine)
    with engine.begin() as conn:
        config = alembic_config(conn)
        command.downgrade(config, "base")
        assert sa.inspect(conn).get_table_names() == ["alembic_version"]
        command.upgrade(config, "head")
    assert schema_diff(engine) == []


WIDE = [
    {
        "request_id": f"srv-{n:010x}",
        "at": f"2023-07-17 09:00:0{n}.000000",
        "user": user,
        "resource": "email",
        "adapter": "dovecot",
        "action": action,
        "rule": rule,
        "policy_version": "v1",
        "device_ref": None,
        "vendor": "Apple" if rule else None,
        "platform": "iOS" if rule else None,
        "detail": '{"message": "не для работы"}' if rule else "{}",
    }
    for n, (user, action, rule) in enumerate(
        [
            ("a@x.example", "block", "apple-wave-1"),
            ("b@x.example", "allow", None),
            ("a@x.example", "block", "apple-wave-1"),  # same details as the first
            ("a@x.example", "block", "apple-wave-1"),
            ("b@x.example", "allow", None),
        ]
    )
]
DETAIL_KEYS = ("user", "action", "rule", "vendor", "platform")


def _wide_rows(conn: sa.Connection) -> list[tuple[object, ...]]:
    columns = ", ".join(f'"{c}"' for c in ("request_id", "user", "action", "rule", "vendor"))
    return [tuple(r) for r in conn.execute(sa.text(f"SELECT {columns} FROM decisions ORDER BY id"))]


def _moves_the_decision_log(url: str) -> None:
    """0004 splits the wide decision rows into details and narrow rows, keeping every
    request id, its time and order; the view and the downgrade give the old rows back."""
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            command.upgrade(alembic_config(conn), "0003")
            wide = sa.table("decisions", *(sa.column(c) for c in WIDE[0]))
            for row in WIDE:
                conn.execute(wide.insert().values(**row))
            before = _wide_rows(conn)
            command.upgrade(alembic_config(conn), "head")
        assert schema_diff(engine) == []
        logged = list(open_store(url, migrate_schema=False).iter_decisions())
        assert [r["request_id"] for r in logged] == [r["request_id"] for r in WIDE]
        assert [tuple(r[k] for k in DETAIL_KEYS) for r in logged] == [
            tuple(r[k] for k in DETAIL_KEYS) for r in WIDE
        ]
        assert logged[0]["detail"] in ({"message": "не для работы"}, '{"message": "не для работы"}')
        assert [r["at"].second for r in logged] == [0, 1, 2, 3, 4]
        with engine.begin() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM decision_details")).scalar() == 2
            in_view = conn.execute(sa.text("SELECT request_id FROM decision_log ORDER BY id"))
            assert [r[0] for r in in_view] == [r["request_id"] for r in WIDE]
            command.downgrade(alembic_config(conn), "0003")
            assert _wide_rows(conn) == before
    finally:
        engine.dispose()


def test_0004_moves_the_decision_log(store_url: str) -> None:
    _moves_the_decision_log(store_url)


def test_0005_keeps_existing_holds(tmp_path: Path) -> None:
    """Holds set before 0005 keep everything they had; what they never recorded is NULL."""
    url = f"sqlite:///{tmp_path}/store.db"
    engine = make_engine(url)
    with engine.begin() as conn:
        command.upgrade(alembic_config(conn), "0004")
        conn.execute(
            sa.text(
                "INSERT INTO holds (device_ref, resource, rule, reason, created_at) "
                "VALUES ('d-1', 'email', 'r', 'why', '2023-07-17 09:00:00.000000')"
            )
        )
        command.upgrade(alembic_config(conn), "head")
    assert schema_diff(engine) == []
    with engine.connect() as conn:
        row = conn.execute(sa.text("SELECT rule, reason, user, seen, created_by FROM holds"))
        assert row.one() == ("r", "why", None, None, None)
    with engine.begin() as conn:
        command.downgrade(alembic_config(conn), "0004")
        assert "seen" not in {c["name"] for c in sa.inspect(conn).get_columns("holds")}
    engine.dispose()


def _fills_decision_refs(url: str) -> None:
    """0008 drops `decisions (detail_id, id)` and fills `decision_refs` for the decisions up
    to the rollups' position (the updater adds the rest, none twice); the downgrade builds the
    index again and drops the table."""
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            command.upgrade(alembic_config(conn), "0007")
        before = open_store(url, migrate_schema=False)
        log = random_log(8, 40)
        ids = write(before, log)
        with engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO rollup_state (name, last_id, timezone, updated_at) "
                    "VALUES ('decisions', :last, 'UTC', :at)"
                ),
                {"last": ids[24], "at": log[0][0]},
            )
            command.upgrade(alembic_config(conn), "head")
        assert schema_diff(engine) == []
        assert "ix_decisions_detail_id" not in {
            i["name"] for i in sa.inspect(engine).get_indexes("decisions")
        }
        with engine.connect() as conn:
            logged = {(int(a), int(b)) for a, b in conn.execute(sa.text(PAIRS))}
            refs = {(int(a), int(b)) for a, b in conn.execute(sa.text(REFS))}
        assert refs == {(detail, id_) for detail, id_ in logged if id_ <= ids[24]}
        store = open_store(url, migrate_schema=False)
        assert RollupUpdater(store, UNITS.get, "UTC").catch_up() == 15
        with engine.connect() as conn:
            assert {(int(a), int(b)) for a, b in conn.execute(sa.text(REFS))} == logged
        with engine.begin() as conn:
            command.downgrade(alembic_config(conn), "0007")
            inspect = sa.inspect(conn)
            assert "decision_refs" not in inspect.get_table_names()
            index = {i["name"]: i["column_names"] for i in inspect.get_indexes("decisions")}
            assert index["ix_decisions_detail_id"] == ["detail_id", "id"]
    finally:
        engine.dispose()


PAIRS = "SELECT detail_id, id FROM decisions"
REFS = "SELECT detail_id, decision_id FROM decision_refs"


def test_0008_fills_decision_refs(store_url: str) -> None:
    _fills_decision_refs(store_url)
