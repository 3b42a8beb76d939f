"""Artefact contents for synthetic backups, in the real layouts (table and key names)."""

from __future__ import annotations

import plistlib
from datetime import datetime, timedelta

from .builder import BASE, cocoa, sqlite_bytes

DATAUSAGE_SCHEMA = """
CREATE TABLE ZPROCESS (Z_PK INTEGER PRIMARY KEY, Z_ENT INTEGER, Z_OPT INTEGER,
  ZFIRSTTIMESTAMP TIMESTAMP, ZTIMESTAMP TIMESTAMP, ZBUNDLENAME VARCHAR, ZPROCNAME VARCHAR);
CREATE TABLE ZLIVEUSAGE (Z_PK INTEGER PRIMARY KEY, Z_ENT INTEGER, Z_OPT INTEGER,
  ZKIND INTEGER, ZMETADATA INTEGER, ZTAG INTEGER, ZHASPROCESS INTEGER,
  ZBILLCYCLEEND TIMESTAMP, ZTIMESTAMP TIMESTAMP, ZWIFIIN FLOAT, ZWIFIOUT FLOAT,
  ZWWANIN FLOAT, ZWWANOUT FLOAT);
"""


def datausage(processes: list[tuple[str, datetime]]) -> bytes:
    """One ZPROCESS row and one ZLIVEUSAGE row (some traffic) per (name, time)."""
    rows: list[tuple[str, tuple[object, ...]]] = []
    for pk, (name, when) in enumerate(processes, start=1):
        bundle = name.split("/", 1)[1] if "/" in name else None
        rows.append(
            (
                "INSERT INTO ZPROCESS VALUES (?,?,?,?,?,?,?)",
                (pk, 1, 1, cocoa(when - timedelta(days=2)), cocoa(when), bundle, name),
            )
        )
        rows.append(
            (
                "INSERT INTO ZLIVEUSAGE VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (pk, 2, 1, 0, 0, 0, pk, None, cocoa(when), 1024.0, 512.0, 0.0, 0.0),
            )
        )
    return sqlite_bytes(DATAUSAGE_SCHEMA, rows)


def addaily(processes: list[tuple[str, datetime]]) -> bytes:
    baseline = {name: [when.replace(tzinfo=None), 1000, 200, 0, 0] for name, when in processes}
    return plistlib.dumps(
        {"netUsageBaseline": baseline, "lastSubmission": BASE.replace(tzinfo=None)}
    )


def locationd(stopped: dict[str, datetime]) -> bytes:
    clients: dict[str, object] = {
        "com.apple.Maps": {"Authorized": True, "LocationTimeStopped": cocoa(BASE)},
    }
    for bundle, when in stopped.items():
        clients[bundle] = {"LocationTimeStopped": cocoa(when), "Registered": ""}
    return plistlib.dumps(clients, fmt=plistlib.FMT_BINARY)


HISTORY_SCHEMA = """
CREATE TABLE history_items (id INTEGER PRIMARY KEY AUTOINCREMENT, url TEXT NOT NULL UNIQUE,
  domain_expansion TEXT NULL, visit_count INTEGER NOT NULL DEFAULT 0);
CREATE TABLE history_visits (id INTEGER PRIMARY KEY AUTOINCREMENT,
  history_item INTEGER NOT NULL REFERENCES history_items(id), visit_time REAL NOT NULL,
  title TEXT NULL, load_successful BOOLEAN NOT NULL DEFAULT 1, redirect_source INTEGER NULL,
  redirect_destination INTEGER NULL);
"""


def history(visits: list[tuple[str, datetime]]) -> bytes:
    rows: list[tuple[str, tuple[object, ...]]] = []
    for n, (url, when) in enumerate(visits, start=1):
        rows.append(("INSERT INTO history_items (id, url, visit_count) VALUES (?,?,1)", (n, url)))
        rows.append(
            ("INSERT INTO history_visits (history_item, visit_time) VALUES (?,?)", (n, cocoa(when)))
        )
    return sqlite_bytes(HISTORY_SCHEMA, rows)


SMS_SCHEMA = """
CREATE TABLE handle (ROWID INTEGER PRIMARY KEY AUTOINCREMENT UNIQUE, id TEXT NOT NULL,
  country TEXT, service TEXT NOT NULL, uncanonicalized_id TEXT);
CREATE TABLE message (ROWID INTEGER PRIMARY KEY AUTOINCREMENT, guid TEXT UNIQUE NOT NULL,
  text TEXT, handle_id INTEGER DEFAULT 0, service TEXT, account TEXT, date INTEGER,
  is_from_me INTEGER DEFAULT 0, cache_has_attachments INTEGER DEFAULT 0);
CREATE TABLE attachment (ROWID INTEGER PRIMARY KEY AUTOINCREMENT, guid TEXT UNIQUE NOT NULL,
  created_date INTEGER DEFAULT 0, filename TEXT, mime_type TEXT, transfer_name TEXT);
CREATE TABLE message_attachment_join (message_id INTEGER, attachment_id INTEGER);
"""


def sms(
    messages: list[tuple[str, str, datetime]],
    attachments: list[tuple[str | None, str | None, datetime]] | None = None,
) -> bytes:
    """(sender handle, text, time) per message; dates in nanoseconds as iOS 11+ writes.

    `attachments` are (transfer_name, filename, time) rows of the `attachment` table, each
    joined to the first message, as iOS keeps them (filename under
    `~/Library/SMS/Attachments/`, created_date in Cocoa seconds).
    """
    rows: list[tuple[str, tuple[object, ...]]] = []
    for n, (sender, text, when) in enumerate(messages, start=1):
        rows.append(
            ("INSERT INTO handle (ROWID, id, service) VALUES (?,?,?)", (n, sender, "iMessage"))
        )
        rows.append(
            (
                "INSERT INTO message (guid, text, handle_id, service, account, date) "
                "VALUES (?,?,?,?,?,?)",
                (f"guid-{n}", text, n, "iMessage", "e:owner@example.org", int(cocoa(when) * 1e9)),
            )
        )
    for n, (transfer_name, filename, when) in enumerate(attachments or [], start=1):
        rows.append(
            (
                "INSERT INTO attachment (ROWID, guid, created_date, filename, transfer_name) "
                "VALUES (?,?,?,?,?)",
                (n, f"at-{n}", int(cocoa(when)), filename, transfer_name),
            )
        )
        rows.append(("INSERT INTO message_attachment_join VALUES (1, ?)", (n,)))
    return sqlite_bytes(SMS_SCHEMA, rows)


def attachment(name: str, when: datetime) -> tuple[str | None, str | None, datetime]:
    """An attachment row as iOS writes it: the sent name and its path in the backup."""
    return (name, f"~/Library/SMS/Attachments/0a/10/AB12-{name}/{name}", when)


def profile(uuid: str, name: str = "Example Wi-Fi") -> bytes:
    return plistlib.dumps(
        {
            "PayloadDisplayName": name,
            "PayloadIdentifier": "org.example.wifi",
            "PayloadUUID": uuid,
            "PayloadType": "Configuration",
            "InstallDate": BASE.replace(tzinfo=None),
            "PayloadContent": [
                {
                    "PayloadType": "com.apple.wifi.managed",
                    "PayloadUUID": "0F0E0D0C-0000-4000-8000-000000000001",
                }
            ],
        }
    )


def global_prefs(lockdown: bool | None) -> bytes:
    prefs: dict[str, object] = {"AppleLanguages": ["en-US"]}
    if lockdown is not None:
        prefs["LDMGlobalEnabled"] = lockdown
    return plistlib.dumps(prefs, fmt=plistlib.FMT_BINARY)
