"""Postfix submissions in the audit are judged as `devicegate serve` decides them: from the
user's identified sightings within `--postfix-window` (24 hours by default) — with `any`
(the default) the most severe decision over every identified device, with `newest` the
newest identified sighting's — and on no device signals without one."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from devicegate.audit import AuditOptions, read_events, run_audit
from devicegate.errors import UsageError
from devicegate.policy import Snapshot
from tests.audit.logs import MSK

DOVECOT = [
    # ivanov (wave 1, from 17 July) logs in with iOS Mail on 18 July
    "2023-07-18T09:00:00+03:00 mail dovecot: imap-login: ID sent: name=iPhone Mail, "
    "version=20C65, os=iOS, os-version=16.2 (20C65): user=<>, rip=198.51.100.7, "
    "lip=192.0.2.1, session=<AbC>",
    "2023-07-18T09:00:01+03:00 mail dovecot: imap-login: Login: user=<ivanov@minpromtorg.example>, "
    "method=PLAIN, rip=198.51.100.7, lip=192.0.2.1, mpid=42, TLS, session=<AbC>",
]


def submission(at: str, user: str) -> str:
    return (
        f"{at} mail postfix/submission/smtpd[1201]: 4F3A1: client=unknown[198.51.100.7], "
        f"sasl_method=PLAIN, sasl_username={user}"
    )


def test_submissions_take_a_sighting_within_the_window(tmp_path: Path, snapshot: Snapshot) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "dovecot.log").write_text("\n".join(DOVECOT) + "\n", encoding="utf-8")
    (logs / "postfix.log").write_text(
        "\n".join(
            [
                submission("2023-07-18T08:59:00+03:00", "ivanov@minpromtorg.example"),  # before
                submission("2023-07-18T09:05:00+03:00", "ivanov@minpromtorg.example"),  # after
                submission("2023-07-19T09:00:02+03:00", "ivanov@minpromtorg.example"),  # > 24 h
                submission("2023-07-18T09:06:00+03:00", "sidorova@minfin.example"),  # never seen
            ]
        )
        + "\n",
        encoding="utf-8",
    )
    out = tmp_path / "out"
    result = run_audit(snapshot, AuditOptions(logs=[logs], out=out, format="auto"))
    smtp = [e for e in read_events(out).to_pylist() if e["file"].endswith("postfix.log")]
    by_line = {e["line"]: e for e in smtp}
    assert by_line[2]["vendor"] == "Apple" and by_line[2]["action"] == "block"
    assert by_line[1]["vendor"] is None  # no sighting before it
    assert by_line[3]["vendor"] is None  # the sighting is older than the window
    assert by_line[4]["vendor"] is None
    assert result.summary["violations"] >= 2  # the IMAP login and the inferred submission

    narrow = run_audit(
        snapshot,
        AuditOptions(logs=[logs], out=tmp_path / "narrow", smtp_window=timedelta(minutes=1)),
    )
    assert narrow.summary["violations"] == result.summary["violations"] - 1


def imap_login(at: str, user: str, ident: str, session: str) -> list[str]:
    return [
        f"{at} mail dovecot: imap-login: ID sent: {ident}: user=<>, rip=198.51.100.7, "
        f"session=<{session}>",
        f"{at} mail dovecot: imap-login: Login: user=<{user}>, method=PLAIN, "
        f"rip=198.51.100.7, session=<{session}>",
    ]


def radius_login(at: datetime, user: str, station: str) -> list[str]:
    return [
        at.astimezone(MSK).strftime("%a %b %d %H:%M:%S %Y"),
        f'\tUser-Name = "{user}"',
        f'\tCalling-Station-Id = "{station}"',
        f"\tTimestamp = {int(at.timestamp())}",
        "",
    ]


IPHONE_ID = "name=iPhone Mail, os=iOS, os-version=16.5 (20F66)"
ANDROID_ID = "name=K-9 Mail, os=Android"
NOTHING_ID = "name=x"  # identifies no device: no sighting


def smtp_audit(
    tmp_path: Path, snapshot: Snapshot, name: str, imap: list[str], postfix: list[str], **opts: Any
) -> dict[int, dict[str, Any]]:
    """The submissions' judged events by line, auditing `imap`, `postfix` and what
    `radius.detail` holds in `tmp_path`."""
    logs = tmp_path / "logs"
    logs.mkdir(exist_ok=True)
    (logs / "dovecot.log").write_text("\n".join(imap) + "\n", encoding="utf-8")
    (logs / "postfix.log").write_text("\n".join(postfix) + "\n", encoding="utf-8")
    out = tmp_path / name
    run_audit(snapshot, AuditOptions(logs=[logs], out=out, **opts))
    return {e["line"]: e for e in read_events(out).to_pylist() if e["file"].endswith("postfix.log")}


def test_a_sighting_that_identifies_nothing_hides_no_banned_phone(
    tmp_path: Path, snapshot: Snapshot
) -> None:
    """Issue 15 finding 4, replayed from logs: after an iPhone IMAP login, an IMAP ID that
    identifies nothing and a VPN login whose Calling-Station-Id is an address are no
    sightings; the submission is refused, as online."""
    user = "ivanov@minpromtorg.example"
    imap = [
        *imap_login("2023-07-18T09:00:00+03:00", "ivanov", IPHONE_ID, "a"),
        *imap_login("2023-07-18T09:10:00+03:00", user, NOTHING_ID, "b"),
    ]
    (tmp_path / "logs").mkdir()
    at = datetime(2023, 7, 18, 9, 20, tzinfo=MSK)
    (tmp_path / "logs" / "detail").write_text(
        "\n".join(radius_login(at, "IVANOV", "198.51.100.7")) + "\n", encoding="utf-8"
    )
    postfix = [submission("2023-07-18T09:30:00+03:00", user)]
    for match in ("any", "newest"):
        (row,) = smtp_audit(tmp_path, snapshot, match, imap, postfix, smtp_match=match).values()
        assert (row["action"], row["rule"], row["vendor"]) == ("block", "wave-1", "Apple"), match


def test_any_refuses_while_the_banned_phone_is_seen_newest_takes_the_last_device(
    tmp_path: Path, snapshot: Snapshot
) -> None:
    user = "ivanov@minpromtorg.example"
    imap = [
        *imap_login("2023-07-18T09:00:00+03:00", user, IPHONE_ID, "a"),
        *imap_login("2023-07-18T10:00:00+03:00", user, ANDROID_ID, "b"),
    ]
    postfix = [
        submission("2023-07-18T10:30:00+03:00", user),  # both devices within 24 h
        submission("2023-07-19T09:30:00+03:00", user),  # the iPhone is 24.5 h old
        submission("2023-07-20T11:00:00+03:00", user),  # neither within 24 h
    ]
    any_ = smtp_audit(tmp_path, snapshot, "any", imap, postfix)  # the default
    newest = smtp_audit(tmp_path, snapshot, "newest", imap, postfix, smtp_match="newest")
    assert (any_[1]["action"], any_[1]["vendor"]) == ("block", "Apple")
    assert (newest[1]["action"], newest[1]["platform"]) == ("allow", "Android")
    for rows in (any_, newest):
        assert (rows[2]["action"], rows[2]["platform"]) == ("allow", "Android")
        assert (rows[3]["action"], rows[3]["device"]) == ("allow", "unidentified device")
    week = smtp_audit(tmp_path, snapshot, "week", imap, postfix, smtp_window=timedelta(days=7))
    assert [week[n]["action"] for n in (1, 2, 3)] == ["block", "block", "block"]


def test_sightings_meet_under_the_directory_user(tmp_path: Path, snapshot: Snapshot) -> None:
    """The IMAP login as `ivanov`, the submission as his address in another case: one user,
    as `serve` records and finds sightings (`Snapshot.canonical_user`)."""
    imap = imap_login("2023-07-18T09:00:00+03:00", "ivanov", IPHONE_ID, "a")
    postfix = [submission("2023-07-18T09:30:00+03:00", "Ivanov@MinPromTorg.example")]
    (row,) = smtp_audit(tmp_path, snapshot, "out", imap, postfix).values()
    assert (row["action"], row["vendor"]) == ("block", "Apple")


def test_a_bad_match_is_a_usage_error(tmp_path: Path, snapshot: Snapshot) -> None:
    log = tmp_path / "postfix.log"
    log.write_text(submission("2023-07-18T09:30:00+03:00", "ivanov") + "\n", encoding="utf-8")
    with pytest.raises(UsageError, match="postfix-match"):
        run_audit(snapshot, AuditOptions(logs=[log], smtp_match="oldest"))


def test_a_postfix_log_without_submissions(tmp_path: Path, snapshot: Snapshot) -> None:
    """Only queue-manager lines: nothing to infer, nothing judged, no error."""
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "postfix.log").write_text(
        "Jul 17 09:00:01 mail postfix/qmgr[1]: 4F3A1: removed\n", encoding="utf-8"
    )
    (logs / "dovecot.log").write_text(
        "\n".join(imap_login("2023-07-18T09:00:00+03:00", "ivanov", IPHONE_ID, "a")) + "\n",
        encoding="utf-8",
    )
    result = run_audit(snapshot, AuditOptions(logs=[logs], out=tmp_path / "out"))
    assert (result.summary["events"], result.summary["violations"]) == (1, 1)  # the IMAP login
