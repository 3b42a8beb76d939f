"""The Alembic migrations build exactly the schema `store/tables.py` describes, on SQLite and
on PostgreSQL; and every migration can be undone and redone."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from devicegate.store import alembic_config, make_engine, migrate, open_store
from devicegate.store import tables as t
from tests.server import procs


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
        store = open_store(url)
        try:
            assert schema_diff(store.engine) == []
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
