"""Shared state: devices and their identifiers, compromise verdicts, quarantine holds,
sightings and the decision log. SQLite (WAL, one file) by default; PostgreSQL when several
decision servers share state. The schema is created and upgraded by Alembic on open.

Durability: every write method commits before it returns, and SQLite runs with
`synchronous=FULL`, so a record a caller has seen acknowledged survives `kill -9` (and a
power cut, as far as the disk honours fsync). Batching happens *above* this API: a caller
that batches must acknowledge only after `write_*` returned.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from devicegate.defaults import DEFAULT_STORE_URL, STORE_ENV
from devicegate.errors import StoreError
from devicegate.inventory import KEY_KINDS, normalise_key
from devicegate.model import DeviceState
from devicegate.store import tables as t
from devicegate.store.records import (
    COMPROMISED,
    DeviceRecord,
    HoldRecord,
    VerdictRecord,
    describe_hold,
    describe_seen,
    describe_verdict,
    device_record_json,
    seen_device,
    seen_json,
    when,
)
from devicegate.timeutil import assume_utc, utc_now

DEFAULT_URL = DEFAULT_STORE_URL
#: Every kind of identifier a device can be known by in `device_keys` (the inventory's
#: `device_id` too: triage links a verdict to it with `--device`).
IDENTIFIER_KINDS = ("device_id", *KEY_KINDS)


def _at_in_utc(row: sa.RowMapping) -> dict[str, Any]:
    """A sighting or decision row as a dict, its `at` aware (SQLite returns it naive)."""
    return dict(row) | {"at": assume_utc(row["at"])}


def _clear_verdicts(conn: sa.Connection, device_ref: str, *, by: str, now: datetime) -> int:
    """Clear the device's standing verdicts; how many were cleared."""
    result = conn.execute(
        t.verdicts.update()
        .where(t.verdicts.c.device_ref == device_ref, t.verdicts.c.cleared_at.is_(None))
        .values(cleared_at=now, cleared_by=by)
    )
    return int(result.rowcount or 0)


def identifier_pairs(identifier: str) -> set[tuple[str, str]]:
    """The (kind, normalised value) pairs an identifier typed by a person may stand for:
    `kind=value` names one kind; a bare value could be any (a MAC in any notation, an
    ActiveSync id in any case)."""
    text = identifier.strip()
    kind, sep, value = text.partition("=")
    if sep and kind.strip() in IDENTIFIER_KINDS:
        return {(kind.strip(), normalise_key(kind.strip(), value))}
    return {(k, normalise_key(k, text)) for k in IDENTIFIER_KINDS}


def _text(value: object) -> str | None:
    """A profile attribute from `seen` for the devices table (bounded like its columns)."""
    return value[:64] if isinstance(value, str) and value else None


def _hold_record(row: sa.RowMapping) -> HoldRecord:
    seen = row["seen"]
    return HoldRecord(
        id=int(row["id"]),
        resource=row["resource"],
        rule=row["rule"],
        reason=row["reason"],
        user=row["user"],
        seen=seen if isinstance(seen, Mapping) else None,
        created_at=assume_utc(row["created_at"]),
        created_by=row["created_by"],
        released_at=assume_utc(row["released_at"]) if row["released_at"] else None,
        released_by=row["released_by"],
    )


def _verdict_record(row: sa.RowMapping) -> VerdictRecord:
    evidence = row["evidence"]
    return VerdictRecord(
        id=int(row["id"]),
        verdict=row["verdict"],
        scan_id=row["scan_id"],
        source=row["source"],
        evidence=tuple(e for e in evidence if isinstance(e, Mapping))
        if isinstance(evidence, list)
        else (),
        created_at=assume_utc(row["created_at"]),
        cleared_at=assume_utc(row["cleared_at"]) if row["cleared_at"] else None,
        cleared_by=row["cleared_by"],
    )


def _standing_verdict(standing: Sequence[VerdictRecord]) -> str | None:
    """The verdict that speaks for the device now: compromised if any standing one says so,
    else the newest standing one."""
    if any(v.verdict == COMPROMISED for v in standing):
        return COMPROMISED
    return standing[0].verdict if standing else None


def make_engine(url: str) -> Engine:
    try:
        if url.startswith("sqlite"):
            engine = sa.create_engine(url, connect_args={"timeout": 30})

            @sa.event.listens_for(engine, "connect")
            def _pragmas(dbapi_conn: Any, _record: Any) -> None:
                cursor = dbapi_conn.cursor()
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute("PRAGMA synchronous=FULL")
                cursor.execute("PRAGMA busy_timeout=30000")
                cursor.close()

            return engine
        if url.startswith("postgresql://"):
            url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
        return sa.create_engine(url, pool_pre_ping=True)
    except ValueError:  # a part SQLAlchemy cannot read (its message quotes the URL's text)
        raise StoreError(
            f"cannot use store `{without_password(url)}`: it is not a valid URL",
            hint="sqlite:///FILE or postgresql://USER:PASSWORD@HOST/DB (`@` in a password: %40)",
        ) from None
    except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError) as exc:
        shown = without_password(url)
        raise StoreError(
            f"cannot use store `{shown}`: {str(exc).replace(url, shown)}",
            hint="sqlite:///FILE or postgresql://…",
        ) from None
    except ModuleNotFoundError as exc:
        raise StoreError(
            f"store `{without_password(url)}` needs `{exc.name}`",
            hint="pip install 'devicegate[postgres]'",
        ) from None


def without_password(url: str) -> str:
    """A store URL fit for a message or a log: its password replaced by `***`, also when
    the URL is too malformed for SQLAlchemy to read (a typo must not print a secret)."""
    return re.sub(r"(://[^/@:]*:)[^/]*@", r"\1***@", url)


def alembic_config(connection: sa.Connection) -> Any:
    """Alembic's configuration for running this package's migrations on `connection`."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    config.attributes["connection"] = connection
    return config


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest Alembic revision (idempotent)."""
    from alembic import command

    with engine.begin() as connection:
        command.upgrade(alembic_config(connection), "head")


class Store:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # ---- devices and identifiers -------------------------------------------------------
    def _resolve(self, conn: sa.Connection, keys: Sequence[tuple[str, str]]) -> list[str]:
        refs: list[str] = []
        for kind, value in keys:
            row = conn.execute(
                sa.select(t.device_keys.c.device_ref).where(
                    t.device_keys.c.kind == kind,
                    t.device_keys.c.value == normalise_key(kind, value),
                )
            ).first()
            if row is not None and row[0] not in refs:
                refs.append(row[0])
        return refs

    def ensure_device(
        self,
        conn: sa.Connection,
        keys: Sequence[tuple[str, str]],
        *,
        user: str | None = None,
        vendor: str | None = None,
        platform: str | None = None,
        model: str | None = None,
    ) -> str:
        """The device these identifiers name, created if new; new identifiers are linked."""
        keys = [(k, v) for k, v in keys if v]
        if not keys:
            raise StoreError("a device needs at least one identifier")
        refs = self._resolve(conn, keys)
        now = utc_now()
        if refs:
            ref = refs[0]
            conn.execute(
                t.devices.update().where(t.devices.c.device_ref == ref).values(last_seen=now)
            )
        else:
            kind, value = keys[0]
            ref = (
                "d-"
                + hashlib.sha256(f"{kind}:{normalise_key(kind, value)}".encode()).hexdigest()[:20]
            )
            conn.execute(
                t.devices.insert().values(
                    device_ref=ref,
                    user=user,
                    vendor=vendor,
                    platform=platform,
                    model=model,
                    first_seen=now,
                    last_seen=now,
                )
            )
        for kind, value in keys:
            normal = normalise_key(kind, value)
            exists = conn.execute(
                sa.select(t.device_keys.c.device_ref).where(
                    t.device_keys.c.kind == kind, t.device_keys.c.value == normal
                )
            ).first()
            if exists is None:
                conn.execute(t.device_keys.insert().values(kind=kind, value=normal, device_ref=ref))
        return ref

    def device_state(self, keys: Iterable[tuple[str, str]]) -> DeviceState:
        """What the engine must know about the device these identifiers name."""
        keys = list(keys)
        if not keys:
            return DeviceState()
        with self.engine.connect() as conn:
            refs = self._resolve(conn, keys)
            if not refs:
                return DeviceState()
            verdict = conn.execute(
                sa.select(t.verdicts.c.verdict, t.verdicts.c.scan_id).where(
                    t.verdicts.c.device_ref.in_(refs),
                    t.verdicts.c.cleared_at.is_(None),
                    t.verdicts.c.verdict == COMPROMISED,
                )
            ).first()
            held = (
                conn.execute(
                    sa.select(t.holds.c.resource).where(
                        t.holds.c.device_ref.in_(refs), t.holds.c.released_at.is_(None)
                    )
                )
                .scalars()
                .all()
            )
        return DeviceState(
            compromised=verdict is not None,
            verdict=f"{verdict[0]} (scan {verdict[1]})" if verdict else None,
            held=frozenset(held),
            device_ref=refs[0],
        )

    # ---- triage verdicts -----------------------------------------------------------------
    def record_verdict(
        self,
        *,
        keys: Sequence[tuple[str, str]],
        verdict: str,
        evidence: list[dict[str, object]],
        scan_id: str,
        source: str,
    ) -> str:
        with self.engine.begin() as conn:
            ref = self.ensure_device(conn, keys)
            conn.execute(
                t.verdicts.insert().values(
                    device_ref=ref,
                    verdict=verdict,
                    evidence=evidence,
                    scan_id=scan_id,
                    source=source,
                    created_at=utc_now(),
                )
            )
        return ref

    def clear_verdict(self, device_ref: str, *, by: str = "operator") -> int:
        with self.engine.begin() as conn:
            return _clear_verdicts(conn, device_ref, by=by, now=utc_now())

    # ---- quarantine holds ----------------------------------------------------------------
    def hold(
        self,
        keys: Sequence[tuple[str, str]],
        *,
        resource: str,
        rule: str | None,
        reason: str,
        user: str | None = None,
        seen: Mapping[str, object] | None = None,
        created_by: str | None = None,
    ) -> str:
        """Put a device in quarantine for `resource` (`*`: all) until an operator releases it.

        `user` is whose request caused the hold, `seen` what that request carried
        (`records.seen_json`: signals and the device as identified), `created_by` who set it
        (the adapter, or "operator NAME"): what the help desk reads to explain the refusal.
        A device already held on `resource` keeps its first hold."""
        device = seen_device(seen)
        with self.engine.begin() as conn:
            ref = self.ensure_device(
                conn,
                keys,
                user=user,
                vendor=_text(device.get("vendor")),
                platform=_text(device.get("platform")),
                model=_text(device.get("model")),
            )
            active = conn.execute(
                sa.select(t.holds.c.id).where(
                    t.holds.c.device_ref == ref,
                    t.holds.c.resource == resource,
                    t.holds.c.released_at.is_(None),
                )
            ).first()
            if active is None:
                conn.execute(
                    t.holds.insert().values(
                        device_ref=ref,
                        resource=resource,
                        rule=rule,
                        reason=reason,
                        created_at=utc_now(),
                        user=user,
                        seen=dict(seen) if seen is not None else None,
                        created_by=created_by,
                    )
                )
        return ref

    def release(
        self,
        device_ref: str,
        *,
        by: str = "operator",
        record: Callable[[sa.Connection, int], None] | None = None,
    ) -> int:
        """Release every hold and clear every verdict on a device. Returns what changed.

        `record(conn, changed)` runs in the same transaction (the console's activity record:
        a release is never done unrecorded, nor recorded undone)."""
        now = utc_now()
        with self.engine.begin() as conn:
            holds = conn.execute(
                t.holds.update()
                .where(t.holds.c.device_ref == device_ref, t.holds.c.released_at.is_(None))
                .values(released_at=now, released_by=by)
            ).rowcount
            cleared = _clear_verdicts(conn, device_ref, by=by, now=now)
            changed = int(holds or 0) + cleared
            if record is not None:
                record(conn, changed)
        return changed

    # ---- the operator's view of devices ----------------------------------------------------
    def find(self, identifier: str) -> list[str]:
        """The devices `identifier` names: a device reference, or any identifier of a device
        (ActiveSync DeviceId, MAC in any notation, serial, UDID, MDM id, certificate
        fingerprint, inventory device id), optionally as `kind=value`. Usually one; several
        when the same text is, say, one device's serial and another's MDM id."""
        text = identifier.strip()
        if not text:
            return []
        pairs = identifier_pairs(text)
        with self.engine.connect() as conn:
            if conn.execute(
                sa.select(t.devices.c.device_ref).where(t.devices.c.device_ref == text)
            ).first():
                return [text]
            rows = conn.execute(
                sa.select(t.device_keys.c.device_ref)
                .where(
                    sa.or_(
                        *(
                            (t.device_keys.c.kind == k) & (t.device_keys.c.value == v)
                            for k, v in sorted(pairs)
                        )
                    )
                )
                .distinct()
            ).all()
        return sorted(row[0] for row in rows)

    def device(self, device_ref: str) -> DeviceRecord | None:
        """One device with its identifiers and every hold and verdict it has had."""
        found = self._records(t.devices.c.device_ref == device_ref)
        return found[0] if found else None

    def devices_of_user(self, user: str) -> list[DeviceRecord]:
        """The devices the store links to `user` (held or judged), most recently seen first."""
        return self._records(sa.func.lower(t.devices.c.user) == user.lower())

    def list_devices(self, *, only_restricted: bool = False) -> list[DeviceRecord]:
        """Every device the store links identifiers for (each was held or given a verdict),
        most recently seen first; `only_restricted`: those held or compromised now."""
        records = self._records(None)
        return [r for r in records if r.restricted] if only_restricted else records

    def _records(self, where: sa.ColumnElement[bool] | None) -> list[DeviceRecord]:
        query = sa.select(t.devices).order_by(t.devices.c.last_seen.desc())
        with self.engine.connect() as conn:
            rows = conn.execute(query if where is None else query.where(where)).all()
            refs = [row.device_ref for row in rows]
            only = (lambda c: c.in_(refs)) if where is not None else (lambda c: sa.true())
            keys: dict[str, list[tuple[str, str]]] = {}
            for kind, value, ref in conn.execute(
                sa.select(t.device_keys).where(only(t.device_keys.c.device_ref))
            ).all():
                keys.setdefault(ref, []).append((kind, value))
            holds: dict[str, list[HoldRecord]] = {}
            for h in conn.execute(
                sa.select(t.holds)
                .where(only(t.holds.c.device_ref))
                .order_by(t.holds.c.created_at.desc(), t.holds.c.id.desc())
            ).mappings():
                holds.setdefault(h["device_ref"], []).append(_hold_record(h))
            verdicts: dict[str, list[VerdictRecord]] = {}
            for v in conn.execute(
                sa.select(t.verdicts)
                .where(only(t.verdicts.c.device_ref))
                .order_by(t.verdicts.c.created_at.desc(), t.verdicts.c.id.desc())
            ).mappings():
                verdicts.setdefault(v["device_ref"], []).append(_verdict_record(v))
        out = []
        for row in rows:
            its_holds = tuple(holds.get(row.device_ref, ()))
            its_verdicts = tuple(verdicts.get(row.device_ref, ()))
            standing = [v for v in its_verdicts if v.active]
            out.append(
                DeviceRecord(
                    device_ref=row.device_ref,
                    user=row.user,
                    vendor=row.vendor,
                    platform=row.platform,
                    model=row.model,
                    keys=tuple(sorted(keys.get(row.device_ref, []))),
                    verdict=_standing_verdict(standing),
                    held=tuple(sorted({h.resource for h in its_holds if h.active})),
                    last_seen=assume_utc(row.last_seen),
                    first_seen=assume_utc(row.first_seen),
                    holds=its_holds,
                    verdicts=its_verdicts,
                )
            )
        return out

    # ---- sightings and decisions (batched by the caller) ----------------------------------
    def write_sightings(self, sightings: Sequence[dict[str, Any]]) -> None:
        """Insert sightings in one transaction; durable when this returns. (Decisions are
        written by the server's writer process, `devicegate.server.log_rows`.)"""
        if sightings:
            with self.engine.begin() as conn:
                conn.execute(t.sightings.insert(), list(sightings))

    def recent_sightings(
        self, user: str, *, since: timedelta, now: datetime | None = None, limit: int = 20
    ) -> list[dict[str, Any]]:
        """The user's devices seen on any adapter within `since` (newest first)."""
        cutoff = (now or utc_now()) - since
        with self.engine.connect() as conn:
            rows = (
                conn.execute(
                    sa.select(t.sightings)
                    .where(
                        sa.func.lower(t.sightings.c.user) == user.lower(),
                        t.sightings.c.at >= cutoff,
                    )
                    .order_by(t.sightings.c.at.desc())
                    .limit(limit)
                )
                .mappings()
                .all()
            )
        return [_at_in_utc(row) for row in rows]

    def recent_devices(
        self, user: str, *, since: timedelta, now: datetime | None = None, limit: int = 20
    ) -> list[dict[str, Any]]:
        """The user's distinct *identified* devices (by the signals seen, per adapter) within
        `since`, each with when it was last recorded, newest first: what an SMTP decision,
        which carries no device data of its own, is made from. A sighting that identified
        nothing is never among them."""
        cutoff = (now or utc_now()) - since
        signals = sa.cast(t.sightings.c.signals, sa.Text)
        last = sa.func.max(t.sightings.c.at).label("at")
        query = (
            sa.select(signals.label("signals"), t.sightings.c.adapter, last)
            .where(
                sa.func.lower(t.sightings.c.user) == user.lower(),
                t.sightings.c.at >= cutoff,
                sa.or_(t.sightings.c.vendor.is_not(None), t.sightings.c.platform.is_not(None)),
            )
            .group_by(signals, t.sightings.c.adapter)
            .order_by(last.desc())
            .limit(limit)
        )
        with self.engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
        return [
            {
                "at": assume_utc(row["at"]),
                "adapter": row["adapter"],
                "signals": json.loads(row["signals"]),
            }
            for row in rows
        ]

    def iter_decisions(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        chunk: int = 10_000,
    ) -> Iterator[dict[str, Any]]:
        """The decision log in order of writing, streamed in chunks of `chunk` rows (by id, so
        a log that grows meanwhile is read consistently up to where it was). Each row is a
        decision with its details (`tables.decision_log`)."""
        table = t.decision_log
        where = []
        if since is not None:
            where.append(table.c.at >= since)
        if until is not None:
            where.append(table.c.at < until)
        last = 0
        while True:
            with self.engine.connect() as conn:
                rows = (
                    conn.execute(
                        sa.select(table)
                        .where(table.c.id > last, *where)
                        .order_by(table.c.id)
                        .limit(chunk)
                    )
                    .mappings()
                    .all()
                )
            if not rows:
                return
            for row in rows:
                yield _at_in_utc(row)
            last = rows[-1]["id"]

    def count(self, table: str) -> int:
        with self.engine.connect() as conn:
            return int(
                conn.execute(
                    sa.select(sa.func.count()).select_from(t.metadata.tables[table])
                ).scalar_one()
            )


def shown_url(url: str) -> str:
    """The store URL for messages: its password hidden."""
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return url


def store_exists(engine: Engine) -> bool:
    """Whether a devicegate store is there: for SQLite the file exists (connecting would
    create it) and for every database the schema's `alembic_version` table does."""
    url = engine.url
    if url.get_backend_name() == "sqlite":
        database = url.database or ""
        if database in ("", ":memory:") or not Path(database).is_file():
            return False
    with engine.connect() as conn:
        return sa.inspect(conn).has_table("alembic_version")


def open_store(
    url: str = DEFAULT_URL, *, create: bool = True, migrate_schema: bool = True
) -> Store:
    """Open the store at a SQLAlchemy URL and bring its schema up to date.

    `create=False` is for commands that *read* the store (`devices`, `decisions export`,
    `notify`, `check --store`): a store that is not there is an error, never a new empty one
    that would answer "nothing held" — a false all-clear. Only `serve` and
    `triage --quarantine` create stores."""
    engine = make_engine(url)
    try:
        if not create and not store_exists(engine):
            engine.dispose()
            raise StoreError(
                f"no store at `{shown_url(url)}`",
                hint=f"pass --store URL or set {STORE_ENV}",
            )
        if migrate_schema:
            migrate(engine)
    except sa.exc.DBAPIError as exc:
        engine.dispose()
        raise StoreError(f"cannot open store `{shown_url(url)}`: {exc.orig}") from None
    return Store(engine)


__all__ = [
    "COMPROMISED",
    "DEFAULT_URL",
    "IDENTIFIER_KINDS",
    "DeviceRecord",
    "HoldRecord",
    "Store",
    "VerdictRecord",
    "describe_hold",
    "describe_seen",
    "describe_verdict",
    "device_record_json",
    "identifier_pairs",
    "open_store",
    "seen_json",
    "shown_url",
    "when",
]
