"""Decision-log rows written straight into a store, for the rollup and retention tests: the
two tables `serve`'s writer fills (details once, one narrow row a decision), without a
server, so the tests choose every id, time and detail."""

from __future__ import annotations

import json
import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from devicegate.store import Store
from devicegate.store import tables as t


@dataclass(frozen=True)
class Said:
    """What one decision said (a `decision_details` row)."""

    user: str
    action: str
    rule: str | None
    resource: str = "email"
    adapter: str = "forward-auth"
    vendor: str | None = "Apple"
    platform: str | None = "iOS"
    device_ref: str | None = None
    matched: tuple[str, ...] = ()
    excepted: tuple[str, ...] = ()
    report_only: tuple[str, ...] = ()
    extra: dict[str, object] = field(default_factory=dict)

    def values(self) -> dict[str, object]:
        detail = {
            "message": "",
            "matched": list(self.matched),
            "report_only": list(self.report_only),
            "excepted": list(self.excepted),
            **self.extra,
        }
        row: dict[str, object] = {
            "user": self.user,
            "resource": self.resource,
            "adapter": self.adapter,
            "action": self.action,
            "rule": self.rule,
            "policy_version": "v1",
            "device_ref": self.device_ref,
            "vendor": self.vendor,
            "platform": self.platform,
            "detail": detail,
        }
        text = json.dumps(detail, ensure_ascii=False)
        row["digest"] = t.detail_digest(tuple([*list(row.values())[:-1], text]))
        return row


def write(
    store: Store, decisions: Iterable[tuple[datetime, Said]], *, first_id: int | None = None
) -> list[int]:
    """Write decisions (time, details) in order; their ids (consecutive from `first_id` when
    given, else the database's)."""
    ids: list[int] = []
    known: dict[str, int] = {}
    with store.engine.begin() as conn:
        for n, (at, said) in enumerate(decisions):
            values = said.values()
            digest = str(values["digest"])
            if digest not in known:
                found = conn.execute(
                    sa.select(t.decision_details.c.id).where(t.decision_details.c.digest == digest)
                ).scalar()
                if found is None:
                    found = conn.execute(
                        t.decision_details.insert().values(**values)
                    ).inserted_primary_key[0]
                known[digest] = int(found)
            row: dict[str, object] = {
                "request_id": f"test-{random.getrandbits(60):016x}",
                "at": at,
                "detail_id": known[digest],
            }
            if first_id is not None:
                row["id"] = first_id + n
            ids.append(
                int(conn.execute(t.decisions.insert().values(**row)).inserted_primary_key[0])
            )
    return ids


UNITS = {
    "a1@x": "gov/a",
    "a2@x": "gov/a",
    "b1@x": "gov/b/lab",
    "b2@x": "gov/b",
    "c1@x": "rostec",
}


def random_log(seed: int, count: int, start: datetime | None = None) -> list[tuple[datetime, Said]]:
    """A fortnight of varied decisions: blocks, warnings, exceptions, allow-overrides,
    report-only hits, builtin rules, unknown users, across midnight in Moscow."""
    rng = random.Random(seed)
    start = start or datetime(2023, 7, 10, 20, 0, tzinfo=UTC)
    users = [*UNITS, "nobody@x"]
    shapes = [
        lambda u: Said(u, "block", "wave-1", matched=("wave-1",)),
        lambda u: Said(u, "warn", "wave-1", matched=("wave-1",), resource="web"),
        lambda u: Said(u, "allow", None, excepted=("wave-1",)),
        lambda u: Said(u, "allow", "lab", matched=("lab", "wave-1")),  # a deeper allow
        lambda u: Said(u, "allow", None, vendor="Samsung", platform="Android"),
        lambda u: Said(u, "allow", None, report_only=("preview",), resource="vpn"),
        lambda u: Said(u, "quarantine", "builtin:quarantine-hold"),
        lambda u: Said(u, "block", "wave-2", matched=("wave-2", "wave-1"), resource="web"),
    ]
    out = []
    for _ in range(count):
        at = start + timedelta(seconds=rng.randrange(0, 14 * 86400))
        out.append((at, rng.choice(shapes)(rng.choice(users))))
    out.sort(key=lambda pair: pair[0])
    return out
