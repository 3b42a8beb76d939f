"""The store's tables (SQLAlchemy Core). Alembic migrations in `store/migrations` create them.

A *device* is whatever several identifiers point at: `device_keys` maps (kind, value) — an
ActiveSync DeviceId, a MAC, a serial, a UDID, an MDM id — to one `device_ref`, so a verdict
recorded by serial reaches the mail server that sees only the ActiveSync DeviceId.
"""

from __future__ import annotations

import hashlib
import json

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
    # migration 0005: whose request caused the hold, what it carried (`seen_json`: signals
    # and the device profile summary), and who set it (an adapter, or "operator NAME")
    Column("user", String(320)),
    Column("seen", JSON),
    Column("created_by", String(320)),
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

# The decision log in two tables. What a decision says (who, which resource, the action,
# the rule, the device, the explanation) repeats for every request of the same user and
# device under the same policy, so it is kept once in `decision_details`; each decision is
# a narrow row of its request id, its time and the details it had. Measured in the writer
# process (benchmarks/decision_log.py): 0.63× the CPU and a quarter of the bytes
# of one wide row a decision. No foreign key: PostgreSQL would check it with a trigger
# on every insert, and details rows are never updated or deleted.
DETAIL_COLUMNS = (
    "user",
    "resource",
    "adapter",
    "action",
    "rule",
    "policy_version",
    "device_ref",
    "vendor",
    "platform",
    "detail",
)

decision_details = Table(
    "decision_details",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("digest", String(64), nullable=False),
    Column("user", String(320), nullable=False, index=True),
    Column("resource", String(64), nullable=False),
    Column("adapter", String(32), nullable=False),
    Column("action", String(16), nullable=False),
    Column("rule", String(128)),
    Column("policy_version", String(32), nullable=False),
    Column("device_ref", String(64)),
    Column("vendor", String(64)),
    Column("platform", String(64)),
    Column("detail", JSON, nullable=False),
    sa.UniqueConstraint("digest", name="uq_decision_details_digest"),
)

decisions = Table(
    "decisions",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("request_id", String(64), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False, index=True),
    Column("detail_id", Id, nullable=False),
    sa.UniqueConstraint("request_id", name="uq_decisions_request_id"),
)

#: One row a decision with everything it said (also a view of that name in the database,
#: for SQL clients: `SELECT * FROM decision_log`).
decision_log = (
    sa.select(
        decisions.c.id,
        decisions.c.request_id,
        decisions.c.at,
        *(decision_details.c[name] for name in DETAIL_COLUMNS),
    )
    .join_from(decisions, decision_details, decisions.c.detail_id == decision_details.c.id)
    .subquery("decision_log")
)


def detail_digest(values: tuple[object, ...]) -> str:
    """The key under which details are kept once: SHA-256 of the DETAIL_COLUMNS values, the
    explanation as its JSON text."""
    text = json.dumps(list(values), ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


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

# Directory and inventory sources (migration 0006). Every version a sync accepted, its
# content as zlib-compressed canonical JSON (`devicegate.sources.state.encode`), so every
# server on the store serves the same one and a restart during an outage starts from it.
source_versions = Table(
    "source_versions",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("source", String(64), nullable=False),
    Column("version", String(32), nullable=False),
    Column("kind", String(16), nullable=False),  # directory | inventory
    Column("accepted_at", DateTime(timezone=True), nullable=False),
    Column("size", Integer, nullable=False),  # users or devices served
    Column("added", Integer, nullable=False),
    Column("removed", Integer, nullable=False),
    Column("changed", Integer, nullable=False),
    Column("forced", sa.Boolean, nullable=False),
    Column("accepted_by", String(320), nullable=False),
    Column("content", sa.LargeBinary, nullable=False),
    Index("ix_source_versions_source_id", "source", "id"),
)

# One row a source: the last attempt and why it was refused, the delta watermark (valid for
# `watermark_version` only) and the lease that lets one server at a time read the source.
source_status = Table(
    "source_status",
    metadata,
    Column("source", String(64), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("last_attempt_at", DateTime(timezone=True)),
    Column("last_outcome", String(16)),  # accepted | unchanged | refused
    Column("last_reason", Text),
    Column("last_success_at", DateTime(timezone=True)),
    Column("refusals", Integer, nullable=False),
    Column("watermark", String(64)),
    Column("watermark_version", String(32)),
    Column("lease_owner", String(128)),
    Column("lease_until", DateTime(timezone=True)),
)
