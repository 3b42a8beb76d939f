"""UTC timestamps, one way everywhere: what is stored and compared is timezone-aware UTC."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from devicegate.errors import UsageError


def utc_now() -> datetime:
    """The current time, aware, in UTC."""
    return datetime.now(UTC)


def assume_utc(value: datetime) -> datetime:
    """`value` with UTC attached when it is naive (SQLite returns naive datetimes for what
    was written as UTC); an aware value is returned unchanged, not converted."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def parse_at(text: str | None, tz: ZoneInfo | None = None) -> datetime:
    """A moment given as text (`--at`, the `at` of `/v1/check`): a date means local midnight
    in the policy's zone, a naive time is local too; None means now."""
    if text is None:
        return datetime.now(UTC)
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(
            f"`{text}` is not an ISO-8601 date or time", hint="e.g. 2023-07-17 or 2023-07-17T09:00"
        ) from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=tz or UTC)
    return value


def when(moment: datetime | None) -> str:
    """A moment as people read it in listings: `2023-07-17 09:00:12 UTC`."""
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC") if moment is not None else "-"


__all__ = ["assume_utc", "parse_at", "utc_now", "when"]
