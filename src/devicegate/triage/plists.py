"""Defensive property-list loading.

plistlib trusts its input: a hostile binary plist can recurse until `RecursionError`,
claim absurd object counts (`struct.error`, `MemoryError`), carry dates out of range
(`OverflowError`) or, in XML, declare entities. Every one of those must become one clear
`ArtefactError` naming the file, never a traceback and never a silently empty result.
"""

from __future__ import annotations

import plistlib
import struct
from datetime import UTC, datetime
from typing import Any
from xml.parsers.expat import ExpatError

from devicegate.triage.errors import ArtefactError

#: Largest plist we parse at all. Real artefacts are kilobytes; Info.plist with app icons a
#: few megabytes.
MAX_PLIST_BYTES = 64 * 1024 * 1024

_PLIST_FAILURES = (
    plistlib.InvalidFileException,
    ValueError,
    TypeError,
    KeyError,
    IndexError,
    AttributeError,
    OverflowError,
    RecursionError,
    MemoryError,
    struct.error,
    ExpatError,
    UnicodeError,
    LookupError,  # an XML declaration naming an encoding Python does not know
)


def load_plist(data: bytes, what: str) -> Any:
    """Parse `data` (binary or XML plist); any malformation is an `ArtefactError`."""
    if len(data) > MAX_PLIST_BYTES:
        raise ArtefactError(f"`{what}` is {len(data)} bytes, larger than a plist can sensibly be")
    try:
        return plistlib.loads(data)
    except _PLIST_FAILURES as exc:
        raise ArtefactError(f"`{what}` is not a valid property list ({_short(exc)})") from None


def load_plist_dict(data: bytes, what: str) -> dict[str, Any]:
    """Parse a plist whose top level must be a dictionary with string keys."""
    value = load_plist(data, what)
    if not isinstance(value, dict):
        raise ArtefactError(f"`{what}` holds a {type(value).__name__}, expected a dictionary")
    return value


def as_str(value: object) -> str | None:
    """The value if it is a non-empty string, else None (plists carry anything)."""
    return value if isinstance(value, str) and value else None


def as_utc(value: object) -> datetime | None:
    """A plist date (naive UTC in plistlib) as an aware datetime; anything else is None."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return None


def _short(exc: BaseException) -> str:
    text = str(exc).replace("\n", " ").strip()
    name = type(exc).__name__
    return f"{name}: {text[:120]}" if text else name
