"""The store's tables (SQLAlchemy Core). Alembic migrations in `store/migrations` create them.

A *device* is whatever several identifiers point at: `device_keys` maps (kind, value) — an
ActiveSync DeviceId, a MAC, a serial, a UDID, an MDM id — to one `device_ref`, so a verdict
recorded by serial reaches the mail server that sees only the ActiveSync DeviceId.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()

# SQLite only auto-increments INTEGER PRIMARY KEY; PostgreSQL gets BIGINT identity.
Id = BigInteger().with_variant(Integer(), "sqlite")

devices = Table(
    "devices",
    metadata,
    Column("device_ref", String(64), primary_key=True),
    Column("user", String(320)),
    Column("vendor", String(64)),
    Column("platform", String(64)),
    Column("model", String(128)),
    Column("first_seen", DateTime(timezone=True), nullable=False),
    Column("last_seen", DateTime(timezone=True), nullable=False),
)

device_keys = Table(
    "device_keys",
    metadata,
    Column("kind", String(32), primary_key=True),
    Column("value", String(256), primary_key=True),
    Column("device_ref", String(64), nullable=False, index=True),
)

verdicts = Table(
    "verdicts",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("device_ref", String(64), nullable=False, index=True),
    Column("verdict", String(32), nullable=False),
    Column("evidence", JSON, nullable=False),
    Column("scan_id", String(128), nullable=False),
    Column("source", String(256), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("cleared_at", DateTime(timezone=True)),
    Column("cleared_by", String(320)),
)

holds = Table(
    "holds",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("device_ref", String(64), nullable=False, index=True),
    Column("resource", String(64), nullable=False),
    Column("rule", String(128)),
    Column("reason", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("released_at", DateTime(timezone=True)),
    Column("released_by", String(320)),
)

sightings = Table(
    "sightings",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("user", String(320), nullable=False),
    Column("resource", String(64), nullable=False),
    Column("adapter", String(32), nullable=False),
    Column("device_ref", String(64)),
    Column("vendor", String(64)),
    Column("platform", String(64)),
    Column("signals", JSON, nullable=False),
    Index("ix_sightings_user_at", "user", "at"),
)
# what `Store.recent_sightings` filters on (migration 0002)
Index("ix_sightings_lower_user_at", sa.func.lower(sightings.c.user), sightings.c.at)

decisions = Table(
    "decisions",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("request_id", String(64), nullable=False, unique=True),
    Column("at", DateTime(timezone=True), nullable=False, index=True),
    Column("user", String(320), nullable=False),
    Column("resource", String(64), nullable=False),
    Column("adapter", String(32), nullable=False),
    Column("action", String(16), nullable=False),
    Column("rule", String(128)),
    Column("policy_version", String(32), nullable=False),
    Column("device_ref", String(64)),
    Column("vendor", String(64)),
    Column("platform", String(64)),
    Column("detail", JSON, nullable=False),
)

notices = Table(
    "notices",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("user", String(320), nullable=False),
    Column("rule", String(128), nullable=False),
    Column("device_id", String(128), nullable=False),
    Column("status", String(16), nullable=False),  # sent | failed
    Column("attempts", Integer, nullable=False),
    Column("last_error", Text),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("ux_notices_subject", "user", "rule", "device_id", unique=True),
)
