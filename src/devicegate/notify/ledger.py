"""What was sent: the store's `notices` table, one row per (user, rule, device).

States: `sending` (written before the SMTP transaction), `sent`, `failed` (retried by the
next run). A row still `sending` means a run died mid-delivery: the message may or may not
have left, so it is reported as uncertain and not resent automatically — never twice.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from devicegate.store import Store
from devicegate.store import tables as t
from devicegate.timeutil import utc_now

SENDING = "sending"
SENT = "sent"
FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Entry:
    status: str
    attempts: int
    last_error: str | None


class Ledger:
    def __init__(self, store: Store) -> None:
        self.engine = store.engine

    def get(self, user: str, rule: str, device_id: str) -> Entry | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(t.notices.c.status, t.notices.c.attempts, t.notices.c.last_error).where(
                    t.notices.c.user == user,
                    t.notices.c.rule == rule,
                    t.notices.c.device_id == device_id,
                )
            ).first()
        return Entry(row[0], int(row[1]), row[2]) if row is not None else None

    def mark(
        self, user: str, rule: str, device_id: str, status: str, error: str | None = None
    ) -> None:
        """Set the state (committed before returning); `sending` counts an attempt."""
        now = utc_now()
        where = (
            (t.notices.c.user == user)
            & (t.notices.c.rule == rule)
            & (t.notices.c.device_id == device_id)
        )
        with self.engine.begin() as conn:
            exists = conn.execute(sa.select(t.notices.c.id).where(where)).first()
            if exists is None:
                conn.execute(
                    t.notices.insert().values(
                        user=user,
                        rule=rule,
                        device_id=device_id,
                        status=status,
                        attempts=1 if status == SENDING else 0,
                        last_error=error,
                        updated_at=now,
                    )
                )
                return
            values: dict[str, object] = {"status": status, "updated_at": now}
            if status == SENDING:
                values["attempts"] = t.notices.c.attempts + 1
            if status != SENDING:
                values["last_error"] = error
            conn.execute(t.notices.update().where(where).values(**values))

    def failed(self) -> list[tuple[str, str, str, int, str | None]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(
                    t.notices.c.user,
                    t.notices.c.rule,
                    t.notices.c.device_id,
                    t.notices.c.attempts,
                    t.notices.c.last_error,
                ).where(t.notices.c.status == FAILED)
            ).all()
        return [(r[0], r[1], r[2], int(r[3]), r[4]) for r in rows]
