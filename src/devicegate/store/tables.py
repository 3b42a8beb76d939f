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

# ---- migration 0007: what the console reads instead of the raw log -----------------------
# Rollups are maintained from the decision log by id (`store.rollups`), never on the hot
# path: `rollup_counts` holds day × unit × rule × action counts (rule "" is the default;
# action "report-only" counts what a report-only rule would have done), `rollup_seen` the
# days each user was seen on a device a rule matched — distinct users over several days
# cannot be added up from daily distinct counts, so the days themselves are kept. Days are
# calendar days in `rollup_state.timezone`; units are the directory's at the time of rollup.
rollup_counts = Table(
    "rollup_counts",
    metadata,
    Column("day", sa.Date, primary_key=True),
    Column("unit", String(256), primary_key=True),
    Column("rule", String(128), primary_key=True),
    Column("action", String(16), primary_key=True),
    Column("decisions", BigInteger, nullable=False),
)

rollup_seen = Table(
    "rollup_seen",
    metadata,
    Column("day", sa.Date, primary_key=True),
    Column("rule", String(128), primary_key=True),
    Column("user", String(320), primary_key=True),
    Column("unit", String(256), nullable=False),
    Column("excepted_only", sa.Boolean, nullable=False),  # every such decision was excepted
    Column("decisions", BigInteger, nullable=False),
    Column("last_at", DateTime(timezone=True), nullable=False),
    Column("device", String(256), nullable=False),  # the newest: "Apple iOS" or a device_ref
    Column("device_ref", String(64)),
    Column("resources", String(512), nullable=False),  # sorted, comma-separated
    Index("ix_rollup_seen_unit_day", "unit", "day"),
)

#: users seen per day, unit and rule (each `rollup_seen` key counted once): the trend charts
rollup_daily = Table(
    "rollup_daily",
    metadata,
    Column("day", sa.Date, primary_key=True),
    Column("unit", String(256), primary_key=True),
    Column("rule", String(128), primary_key=True),
    Column("users", BigInteger, nullable=False),
)

#: per rule and user, the last day seen and the last day seen without an exception: who was
#: seen in a window ending at the newest rolled-up day, without scanning the days
rollup_users = Table(
    "rollup_users",
    metadata,
    Column("rule", String(128), primary_key=True),
    Column("user", String(320), primary_key=True),
    Column("unit", String(256), nullable=False),
    Column("last_day", sa.Date, nullable=False),
    Column("last_unexcepted_day", sa.Date),
    Index("ix_rollup_users_last_day", "last_day"),
)

#: where each rollup stands in the decision log (one row, name "decisions")
rollup_state = Table(
    "rollup_state",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("last_id", BigInteger, nullable=False),
    Column("timezone", String(64), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

#: every action an operator took in the console: who, when, what, on what, why
admin_actions = Table(
    "admin_actions",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False, index=True),
    Column("actor", String(320), nullable=False),
    Column("role", String(16), nullable=False),
    Column("action", String(64), nullable=False),
    Column("target", String(320), nullable=False),
    Column("reason", Text, nullable=False),
    Column("detail", JSON, nullable=False),
)

#: one row a `serve` instance: what it runs and when it last said so
heartbeats = Table(
    "heartbeats",
    metadata,
    Column("instance", String(64), primary_key=True),
    Column("host", String(256), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("software", String(64), nullable=False),
    Column("policy_version", String(32), nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("beat_at", DateTime(timezone=True), nullable=False),
)

# the raw-row pages: a user's or a device's details, a device's sightings
Index("ix_decision_details_device_ref", decision_details.c.device_ref)
Index("ix_sightings_device_ref_at", sightings.c.device_ref, sightings.c.at)

# ---- migration 0008: which decisions had which details, off the writer's path ------------
#: (details id, decision id) for every decision up to the rollups' position, written by the
#: rollup updater in the transaction that advances `rollup_state` and deleted by retention
#: with the decision. The user and device pages find a user's or a device's decisions here
#: (details by user or device, then refs by details id); an index on `decisions (detail_id,
#: id)` would do the same but cost `serve`'s writer a random leaf page a decision at every
#: commit (migration 0007 had one; 0008 drops it). Without rowid on SQLite: the key is the row.
decision_refs = Table(
    "decision_refs",
    metadata,
    Column("detail_id", Id, primary_key=True, autoincrement=False),
    Column("decision_id", Id, primary_key=True, autoincrement=False),
    sqlite_with_rowid=False,
)
