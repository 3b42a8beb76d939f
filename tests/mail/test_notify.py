"""`devicegate notify`: who is due a notice, the message, the ledger, and delivery through the
real Postfix (sent once, never twice; a failed delivery is retried by the next run)."""

from __future__ import annotations

import email
import email.message
import json
import smtplib
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from devicegate.cli import main
from devicegate.cli.common import load_snapshot
from devicegate.directory import load_directory
from devicegate.notify import Ledger, compose, deliver, due_notices
from devicegate.notify.plan import Notice, inventory_devices, seen_devices
from devicegate.store import open_store
from tests.mail.conftest import IOS_MAIL, POLICY
from tests.mail.harness import free_port, workdir
from tests.mail.servers import real_postfix

AT = "2023-08-01T10:00"  # wave 2 (e-mail from 14 August) is in its 14-day notice period
DIRECTORY = """user,unit,groups,email,name
e.lebedeva,gov/minfin/budget,,e.lebedeva@minfin.example,Elena Lebedeva
s.volkova,gov/minfin/budget,,s.volkova@minfin.example,Svetlana Volkova
p.kuznetsov,gov/minenergo/grid,,p.kuznetsov@minenergo.example,Pavel Kuznetsov
o.morozova,gov/minenergo/grid,,o.morozova@minenergo.example,Olga Morozova
m.sokolova,gov/minpromtorg/industry,,m.sokolova@minpromtorg.example,Maria Sokolova
"""
DEVICES = (
    "device_id,user,vendor,platform,model,os_version,ownership,managed,"
    "serial,udid,mdm_id,activesync_id,mac,cert_fingerprint"
    """
DEV-LEB-1,e.lebedeva@minfin.example,Apple,iOS,"iPhone14,5",16.6,corporate,true,,,mdm-leb-1,,,
DEV-VOL-1,s.volkova@minfin.example,Apple,iOS,"iPhone12,1",16.6,corporate,true,,,mdm-vol-1,,,
DEV-KUZ-1,p.kuznetsov@minenergo.example,Samsung,Android,SM-S911B,14,corporate,true,,,mdm-kuz-1,,,
DEV-SOK-1,m.sokolova@minpromtorg.example,Apple,iOS,"iPhone13,2",16.6,corporate,true,,,mdm-sok-1,,,
"""
)


def files(base: Path) -> tuple[Path, Path, str]:
    (base / "directory.csv").write_text(DIRECTORY)
    (base / "devices.csv").write_text(DEVICES)
    store = f"sqlite:///{base}/store.db"
    # o.morozova's personal iPhone is in no inventory: IMAP saw it on 28 July
    opened = open_store(store)
    opened.write_sightings(
        [
            {
                "at": datetime(2023, 7, 28, 8, tzinfo=UTC),
                "user": "o.morozova@minenergo.example",
                "resource": "email",
                "adapter": "dovecot",
                "device_ref": None,
                "vendor": "Apple",
                "platform": "iOS",
                "signals": {"imap_id": IOS_MAIL},
            }
        ]
    )
    return base / "directory.csv", base / "devices.csv", store


def notify(base: Path, *extra: str) -> int:
    directory, devices, store = (
        files(base)
        if not (base / "store.db").exists()
        else (
            base / "directory.csv",
            base / "devices.csv",
            f"sqlite:///{base}/store.db",
        )
    )
    argv = [
        "notify",
        "--policy",
        str(POLICY),
        "--directory",
        str(directory),
        "--devices",
        str(devices),
        "--store",
        store,
        "--at",
        AT,
        "--from",
        "it@minfin.example",
        *extra,
    ]
    with pytest.raises(SystemExit) as exited:
        main(argv)
    return int(exited.value.code or 0)


def test_who_is_due(tmp_path: Path) -> None:
    directory, devices, store = files(tmp_path)
    snapshot = load_snapshot([POLICY], directory, devices, quiet=True)
    at = datetime.fromisoformat(AT).replace(tzinfo=snapshot.timezone)
    found = inventory_devices(snapshot) + seen_devices(
        open_store(store), snapshot, since=at - timedelta(days=30)
    )
    notices = due_notices(snapshot, at, found)
    got = {(n.user.id, n.rule, d.source) for n in notices for d in n.devices}
    # s.volkova holds an exception, p.kuznetsov has an Android, m.sokolova's wave is in force
    assert got == {
        ("e.lebedeva", "apple-wave-2-email", "inventory"),
        ("o.morozova", "apple-wave-2-email", "seen on dovecot"),
    }
    lebedeva = next(n for n in notices if n.user.id == "e.lebedeva")
    text = compose(lebedeva, sender="it@minfin.example", timezone=snapshot.timezone)
    body = text.get_content()
    assert text["To"] == "e.lebedeva@minfin.example"
    assert "Monday 14 August 2023" in text["Subject"] and "Apple iOS iPhone14,5" in text["Subject"]
    assert body.startswith("Dear Elena Lebedeva,")
    assert "apple-wave-2-email" in body and "Personal use of your device is not affected" in body
    assert body.count("Personal use") == 1  # said once, not again by the rule's message
    assert "email" in body and "your IT service desk will provide one" in body
    device = "Apple iOS iPhone14,5 (reference DEV-LEB-1, known from: the device inventory)"
    assert f"{device}: email" in body


EXAMPLE = POLICY.parent


def test_the_ios_lab_is_not_notified_of_wave_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 16 finding 3: in wave 1's notice period the bundled scenario's iOS lab (exempt
    by a deeper allow from the same day) is not told, while the rest of its ministry is."""
    store = f"sqlite:///{tmp_path}/s.db"
    open_store(store)  # an empty store: no sightings, the inventory only
    argv = ["notify", "--policy", str(POLICY), "--directory", str(EXAMPLE / "directory.csv")]
    argv += ["--devices", str(EXAMPLE / "devices.csv"), "--store", store]
    argv += ["--at", "2023-07-10T10:00", "--dry-run", "--json"]
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 0
    rows = json.loads(capsys.readouterr().out)
    units = {u.id: u.unit for u in load_directory(EXAMPLE / "directory.csv").users}
    notified = {units[row["user"]] for row in rows if row["rule"] == "apple-wave-1"}
    assert "gov/mintsifry/platforms" in notified
    assert "gov/mintsifry/ios-lab" not in notified


def test_an_ending_exception_is_notified(tmp_path: Path) -> None:
    """Issue 16 finding 4: s.volkova's exception to wave 2's e-mail rule runs to the end of
    1 September; in its last 14 days (the rule's notice) she is told when it ends."""
    directory, devices, _ = files(tmp_path)
    snapshot = load_snapshot([POLICY], directory, devices, quiet=True)

    def due(day: str) -> list[Notice]:
        at = datetime.fromisoformat(day).replace(tzinfo=snapshot.timezone)
        return [
            n
            for n in due_notices(snapshot, at, inventory_devices(snapshot))
            if (n.user.id, n.rule) == ("s.volkova", "apple-wave-2-email")
        ]

    assert due("2023-08-18T10:00") == []
    for day in ("2023-08-19T00:00", "2023-09-01T20:00"):
        (notice,) = due(day)
        assert [d.device_id for d in notice.devices] == ["DEV-VOL-1"]
        assert notice.effective_from == datetime(2023, 9, 2, tzinfo=snapshot.timezone)
        assert notice.exception is not None
        assert notice.exception.until == "2023-09-01"
        assert notice.exception.last_day.isoformat() == "2023-09-01"
        assert notice.exception.reason == "replacement device on order"
        assert notice.exception.approver == "ciso@minfin.example"
        assert notice.ledger_rule != notice.rule  # a rule notice sent earlier is not this one
        message = compose(notice, sender="it@minfin.example", timezone=snapshot.timezone)
        assert message["Subject"] == (
            "Your exception for rule apple-wave-2-email ends on Friday 1 September 2023"
        )
        assert "From Saturday 2 September 2023 (00:00 MSK)" in message.get_content()
    assert due("2023-09-02T00:00") == []  # the rule is in force: nothing left to announce


def test_dry_run_sends_and_records_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert notify(tmp_path, "--dry-run") == 0
    out = capsys.readouterr().out
    assert out.count("--- due ") == 2 and "e.lebedeva@minfin.example" in out
    # each message in full: its headers and its whole body
    assert (
        "To: e.lebedeva@minfin.example\n"
        "Subject: From Monday 14 August 2023: your Apple iOS iPhone14,5 can no longer be used for "
        "work\n\nDear Elena Lebedeva,\n"
    ) in out
    assert out.count("Personal use of your device is not affected") == 2
    assert "DEV-LEB-1" in out and "seen on dovecot" in out
    assert open_store(f"sqlite:///{tmp_path}/store.db").count("notices") == 0
    assert notify(tmp_path, "--dry-run", "--json") == 0
    due = json.loads(capsys.readouterr().out)
    assert [d["subject"].startswith("From Monday 14 August 2023") for d in due] == [True, True]
    assert all(d["body"].startswith("Dear ") for d in due)


def test_smtp_is_required_without_dry_run(tmp_path: Path) -> None:
    assert notify(tmp_path) == 2


def mailbox_files(mailbox: Path, count: int, timeout: float = 15.0) -> list[Path]:
    deadline = time.monotonic() + timeout
    while True:
        found = sorted((mailbox / "new").glob("*")) if (mailbox / "new").is_dir() else []
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


@pytest.mark.integration
@pytest.mark.slow
def test_delivery_through_real_postfix(capsys: pytest.CaptureFixture[str]) -> None:
    with workdir("dg-notify-") as base:
        data = base / "data-in"
        data.mkdir()
        # 1. the mail relay is down: nothing is lost, every notice is recorded as failed
        assert notify(data, "--smtp", f"smtp://127.0.0.1:{free_port()}") == 1
        assert "2 not delivered (failed ones are retried next run)" in capsys.readouterr().err
        store = open_store(f"sqlite:///{data}/store.db")
        with store.engine.connect() as conn:
            rows = conn.exec_driver_sql("select status, attempts from notices").all()
        assert sorted(rows) == [("failed", 1), ("failed", 1)]
        (base / "pf").mkdir()
        with real_postfix(base / "pf", policy_port=free_port(), auth_port=free_port()) as pf:
            url = f"smtp://127.0.0.1:{pf.smtp_port}"
            # 2. next run: the failed notices are retried and delivered
            assert notify(data, "--smtp", url) == 0
            assert "notices: 2 sent, 0 already sent" in capsys.readouterr().err
            delivered = mailbox_files(pf.mailbox, 2)
            assert len(delivered) == 2
            # 3. and never sent twice
            assert notify(data, "--smtp", url) == 0
            assert "notices: 0 sent, 2 already sent" in capsys.readouterr().err
            time.sleep(1.0)
            assert len(mailbox_files(pf.mailbox, 3, timeout=0.5)) == 2
        messages = [email.message_from_bytes(p.read_bytes()) for p in delivered]
        assert sorted(m["To"] for m in messages) == [
            "e.lebedeva@minfin.example",
            "o.morozova@minenergo.example",
        ]
        assert all(m["X-Devicegate-Rule"] == "apple-wave-2-email" for m in messages)
        with store.engine.connect() as conn:
            rows = conn.exec_driver_sql("select status, attempts from notices").all()
        assert sorted(rows) == [("sent", 2), ("sent", 2)]


class _Sink:
    """Stands in for an SMTP session: records messages, or refuses them all."""

    def __init__(self, refuse: bool = False) -> None:
        self.sent: list[email.message.EmailMessage] = []
        self.refuse = refuse

    def connect(self) -> _Sink:
        return self

    def send_message(self, message: email.message.EmailMessage) -> None:
        if self.refuse:
            raise smtplib.SMTPRecipientsRefused({message["To"]: (550, b"no such user")})
        self.sent.append(message)

    def quit(self) -> None:
        return None


def test_one_message_per_user_and_new_devices_only(tmp_path: Path) -> None:
    directory, devices, store = files(tmp_path)
    with devices.open("a") as out:  # a second Apple device for e.lebedeva
        out.write("DEV-LEB-2,e.lebedeva@minfin.example,Apple,iPadOS,iPad13,16.6,corporate,true,")
        out.write(",,mdm-leb-2,,,\n")
    snapshot = load_snapshot([POLICY], directory, devices, quiet=True)
    at = datetime.fromisoformat(AT).replace(tzinfo=snapshot.timezone)
    ledger = Ledger(open_store(store))

    def make(notice: Notice) -> email.message.EmailMessage:
        return compose(notice, sender="it@minfin.example", timezone=snapshot.timezone)

    inventory = inventory_devices(snapshot)
    first = [d for d in inventory if d.device_id != "DEV-LEB-2"]
    sink = _Sink()
    outcomes = deliver(due_notices(snapshot, at, first), sink, ledger, make)  # type: ignore[arg-type]
    assert [o.status for o in outcomes] == ["sent"]
    # the second device shows up later: one more message, naming only it
    outcomes = deliver(due_notices(snapshot, at, inventory), sink, ledger, make)  # type: ignore[arg-type]
    assert [o.status for o in outcomes] == ["sent"]
    assert [[d.device_id for d in o.notice.devices] for o in outcomes] == [["DEV-LEB-2"]]
    assert len(sink.sent) == 2 and "DEV-LEB-2" in sink.sent[1].get_content()
    assert "DEV-LEB-1" not in sink.sent[1].get_content()
    # and nothing twice
    outcomes = deliver(due_notices(snapshot, at, inventory), sink, ledger, make)  # type: ignore[arg-type]
    assert [o.status for o in outcomes] == ["already sent"] and len(sink.sent) == 2


def test_refused_recipient_is_recorded_and_retried(tmp_path: Path) -> None:
    directory, devices, store = files(tmp_path)
    snapshot = load_snapshot([POLICY], directory, devices, quiet=True)
    at = datetime.fromisoformat(AT).replace(tzinfo=snapshot.timezone)
    ledger = Ledger(open_store(store))
    notices = due_notices(snapshot, at, inventory_devices(snapshot))

    def make(notice: Notice) -> email.message.EmailMessage:
        return compose(notice, sender="it@minfin.example", timezone=snapshot.timezone)

    outcomes = deliver(notices, _Sink(refuse=True), ledger, make)  # type: ignore[arg-type]
    assert [o.status for o in outcomes] == ["failed"] and "550" in outcomes[0].detail
    assert ledger.failed()[0][:3] == ("e.lebedeva", "apple-wave-2-email", "DEV-LEB-1")
    sink = _Sink()
    assert [o.status for o in deliver(notices, sink, ledger, make)] == ["sent"]  # type: ignore[arg-type]
    assert ledger.failed() == []
