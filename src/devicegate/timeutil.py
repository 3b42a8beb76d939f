"""UTC timestamps, one way everywhere: what is stored and compared is timezone-aware UTC."""

from __future__ import annotations

from datetime import UTC, datetime


def utc_now() -> datetime:
    """The current time, aware, in UTC."""
    return datetime.now(UTC)


def assume_utc(value: datetime) -> datetime:
    """`value` with UTC attached when it is naive (SQLite returns naive datetimes for what
    was written as UTC); an aware value is returned unchanged, not converted."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


__all__ = ["assume_utc", "utc_now"]
