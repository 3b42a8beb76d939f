"""`assume_utc` reads a naive stored time as UTC and never shifts an aware one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from devicegate.timeutil import assume_utc, utc_now


def test_naive_is_read_as_utc() -> None:
    assert assume_utc(datetime(2023, 7, 17, 9, 0)) == datetime(2023, 7, 17, 9, 0, tzinfo=UTC)


def test_aware_is_kept_not_converted() -> None:
    moscow = datetime(2023, 7, 17, 12, 0, tzinfo=timezone(timedelta(hours=3)))
    kept = assume_utc(moscow)
    assert kept is moscow and kept.utcoffset() == timedelta(hours=3)


def test_now_is_aware_utc() -> None:
    before = datetime.now(UTC)
    now = utc_now()
    assert now.utcoffset() == timedelta(0) and before <= now <= datetime.now(UTC)
