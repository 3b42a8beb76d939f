"""Source versions in the store: every accepted version, the last attempt, the lease.

A version is written once and never changed; the current one is the newest row of the
source. `source_status` carries what changes between versions: the last attempt's outcome and
refusal reason, the delta watermark (valid only while `watermark_version` is current) and the
lease with which one server at a time reads a source that several share.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from devicegate.store import Store
from devicegate.store import tables as t
from devicegate.timeutil import assume_utc, utc_now


@dataclass(frozen=True, slots=True)
class SourceVersion:
    """One accepted version of a source: what a decision names beside the policy version."""

    row: int
    source: str
    version: str
    kind: str
    accepted_at: datetime
    size: int
    added: int
    removed: int
    changed: int
    forced: bool
    accepted_by: str

    def as_json(self) -> dict[str, object]:
        return {
            "source": self.source,
            "version": self.version,
            "kind": self.kind,
            "accepted_at": self.accepted_at.isoformat(),
            "size": self.size,
            "added": self.added,
            "removed": self.removed,
            "changed": self.changed,
            "forced": self.forced,
            "accepted_by": self.accepted_by,
        }


@dataclass(frozen=True, slots=True)
class SourceStatus:
    source: str
    kind: str
    last_attempt_at: datetime | None
    last_outcome: str | None
    last_reason: str | None
    last_success_at: datetime | None
    refusals: int
    watermark: str | None
    watermark_version: str | None


_VERSION_COLUMNS = [c for c in t.source_versions.c if c.name != "content"]


def _when(value: Any) -> datetime | None:
    return assume_utc(value) if value is not None else None


def _version(row: sa.RowMapping) -> SourceVersion:
    return SourceVersion(
        row=int(row["id"]),
        source=row["source"],
        version=row["version"],
        kind=row["kind"],
        accepted_at=assume_utc(row["accepted_at"]),
        size=int(row["size"]),
        added=int(row["added"]),
        removed=int(row["removed"]),
        changed=int(row["changed"]),
        forced=bool(row["forced"]),
        accepted_by=row["accepted_by"],
    )


class VersionStore:
    """The source tables of one store."""

    def __init__(self, store: Store) -> None:
        self.engine = store.engine

    def latest(self, source: str) -> SourceVersion | None:
        with self.engine.connect() as conn:
            row = (
                conn.execute(
                    sa.select(*_VERSION_COLUMNS)
                    .where(t.source_versions.c.source == source)
                    .order_by(t.source_versions.c.id.desc())
                    .limit(1)
                )
                .mappings()
                .first()
            )
        return _version(row) if row is not None else None

    def history(self, source: str, limit: int = 20) -> list[SourceVersion]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(*_VERSION_COLUMNS)
                .where(t.source_versions.c.source == source)
                .order_by(t.source_versions.c.id.desc())
                .limit(limit)
            ).mappings()
            return [_version(r) for r in rows]

    def content(self, row: int) -> bytes:
        with self.engine.connect() as conn:
            blob = conn.execute(
                sa.select(t.source_versions.c.content).where(t.source_versions.c.id == row)
            ).scalar_one()
        return bytes(blob)

    def accept(
        self,
        *,
        source: str,
        kind: str,
        version: str,
        content: bytes,
        size: int,
        added: int,
        removed: int,
        changed: int,
        forced: bool,
        accepted_by: str,
        watermark: str | None,
    ) -> SourceVersion:
        """Write a new version and mark the attempt a success, in one transaction."""
        now = utc_now()
        with self.engine.begin() as conn:
            row = conn.execute(
                t.source_versions.insert().values(
                    source=source,
                    version=version,
                    kind=kind,
                    accepted_at=now,
                    size=size,
                    added=added,
                    removed=removed,
                    changed=changed,
                    forced=forced,
                    accepted_by=accepted_by,
                    content=content,
                )
            ).inserted_primary_key
            assert row is not None
            self._status(
                conn,
                source,
                kind,
                last_attempt_at=now,
                last_outcome="accepted",
                last_reason=None,
                last_success_at=now,
                watermark=watermark,
                watermark_version=version,
            )
        return SourceVersion(
            int(row[0]), source, version, kind, now, size, added, removed, changed, forced,
            accepted_by,
        )  # fmt: skip

    def record(
        self,
        source: str,
        kind: str,
        outcome: str,
        reason: str | None = None,
        *,
        watermark: str | None = None,
        watermark_version: str | None = None,
    ) -> None:
        """The outcome of an attempt that wrote no version: `unchanged` (a success that may
        move the watermark on) or `refused` (counted; the watermark stays where it was)."""
        now = utc_now()
        values: dict[str, Any] = {
            "last_attempt_at": now,
            "last_outcome": outcome,
            "last_reason": reason,
        }
        if outcome == "unchanged":
            values["last_success_at"] = now
            if watermark is not None:
                values["watermark"] = watermark
                values["watermark_version"] = watermark_version
        with self.engine.begin() as conn:
            self._status(conn, source, kind, refused=outcome == "refused", **values)

    def _status(
        self, conn: sa.Connection, source: str, kind: str, *, refused: bool = False, **values: Any
    ) -> None:
        table = t.source_status
        exists = conn.execute(
            sa.select(table.c.refusals).where(table.c.source == source)
        ).scalar_one_or_none()
        if exists is None:
            conn.execute(
                table.insert().values(source=source, kind=kind, refusals=int(refused), **values)
            )
            return
        conn.execute(
            table.update()
            .where(table.c.source == source)
            .values(refusals=table.c.refusals + int(refused), **values)
        )

    def status(self, source: str) -> SourceStatus | None:
        table = t.source_status
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(table).where(table.c.source == source)).mappings().first()
        if row is None:
            return None
        return SourceStatus(
            source=row["source"],
            kind=row["kind"],
            last_attempt_at=_when(row["last_attempt_at"]),
            last_outcome=row["last_outcome"],
            last_reason=row["last_reason"],
            last_success_at=_when(row["last_success_at"]),
            refusals=int(row["refusals"]),
            watermark=row["watermark"],
            watermark_version=row["watermark_version"],
        )

    def take_lease(self, source: str, kind: str, owner: str, seconds: float) -> bool:
        """Whether `owner` may read the source now: the lease is free, expired or its own.
        One conditional UPDATE, so two servers cannot both win."""
        now = utc_now()
        table = t.source_status
        with self.engine.begin() as conn:
            if (
                conn.execute(sa.select(table.c.source).where(table.c.source == source)).first()
                is None
            ):
                self._status(conn, source, kind)
        with self.engine.begin() as conn:
            result = conn.execute(
                table.update()
                .where(
                    table.c.source == source,
                    sa.or_(
                        table.c.lease_until.is_(None),
                        table.c.lease_until < now,
                        table.c.lease_owner == owner,
                    ),
                )
                .values(lease_owner=owner, lease_until=now + timedelta(seconds=seconds))
            )
            return bool(result.rowcount)

    def release_lease(self, source: str, owner: str) -> None:
        table = t.source_status
        with self.engine.begin() as conn:
            conn.execute(
                table.update()
                .where(table.c.source == source, table.c.lease_owner == owner)
                .values(lease_owner=None, lease_until=None)
            )


__all__ = ["SourceStatus", "SourceVersion", "VersionStore"]
