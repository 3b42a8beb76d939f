"""Defaults the command line shows in its options, in a module that imports nothing: the
`devicegate` command registers every sub-command at start, and importing the store (and
SQLAlchemy with it) just to print a default URL cost each invocation ≈ 0.17 s."""

from __future__ import annotations

#: The store `serve`, `devices`, `decisions`, `notify` and triage use unless told otherwise.
DEFAULT_STORE_URL = "sqlite:///devicegate.db"

#: The environment variable every command that uses a store reads when `--store` is not given.
STORE_ENV = "DEVICEGATE_STORE"

#: How old a device sighting an SMTP submission may be decided from (`serve` and `audit`).
POSTFIX_WINDOW = "24h"
#: Which sightings in that window count: `any` identified device, or the `newest` only.
POSTFIX_MATCH = "any"
#: The values `--postfix-match` takes.
POSTFIX_MATCHES = ("any", "newest")

#: Answers each `serve` endpoint keeps for replay (`--replay-cache`); a full cache is emptied
#: whole (`BoundedCache`), so it should hold the distinct requests of a working day
#: (docs/scale.md).
REPLAY_CACHE = 100_000

#: The environment variable that makes triage read message text (links) by default.
TRIAGE_MESSAGE_TEXT = "DEVICEGATE_TRIAGE_MESSAGE_TEXT"

__all__ = [
    "DEFAULT_STORE_URL",
    "POSTFIX_MATCH",
    "POSTFIX_MATCHES",
    "POSTFIX_WINDOW",
    "REPLAY_CACHE",
    "STORE_ENV",
    "TRIAGE_MESSAGE_TEXT",
]
