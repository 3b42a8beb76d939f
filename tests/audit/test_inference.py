"""Postfix submissions in the audit take the device of the user's newest sighting within the
window — as `devicegate serve` decides them — and stay unidentified without one."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from devicegate.audit import AuditOptions, read_events, run_audit
from devicegate.policy import Snapshot

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


def test_submissions_take_the_newest_sighting(tmp_path: Path, snapshot: Snapshot) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "dovecot.log").write_text("\n".join(DOVECOT) + "\n", encoding="utf-8")
    (logs / "postfix.log").write_text(
        "\n".join(
            [
                submission("2023-07-18T08:59:00+03:00", "ivanov@minpromtorg.example"),  # before
                submission("2023-07-18T09:05:00+03:00", "ivanov@minpromtorg.example"),  # after
                submission("2023-07-26T09:00:01+03:00", "ivanov@minpromtorg.example"),  # > 7 d
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
