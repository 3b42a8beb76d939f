"""Timestamp conversions for Apple artefacts, tolerant of junk.

Apple databases store Cocoa time (seconds since 2001-01-01), sometimes in nanoseconds
(sms.db since iOS 11), MBFile metadata Unix seconds. A corrupt value must turn into "no
time", never an exception that loses the whole artefact.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

COCOA_EPOCH = 978307200  # 2001-01-01T00:00:00Z in Unix seconds

_MIN_UNIX = 0.0  # nothing Apple wrote predates 1970
_MAX_UNIX = 4102444800.0  # 2100-01-01: later values are corruption


def from_unix(value: object) -> datetime | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    seconds = float(value)
    if not math.isfinite(seconds) or not _MIN_UNIX <= seconds <= _MAX_UNIX:
        return None
    return datetime.fromtimestamp(seconds, tz=UTC)


def from_cocoa(value: object) -> datetime | None:
    """Cocoa seconds, or nanoseconds when the magnitude says so (sms.db, iOS 11+)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    seconds = float(value)
    if not math.isfinite(seconds):
        return None
    if abs(seconds) > 1e11:  # more than ~3000 years of seconds: nanoseconds
        seconds /= 1e9
    return from_unix(seconds + COCOA_EPOCH)


def iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z") if value else None
