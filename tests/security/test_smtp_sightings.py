"""SMTP enforcement was reset by any sighting that identified nothing: after an iPhone IMAP
login (→ SMTP refused), one login with a malformed IMAP ID, or a VPN login whose
Calling-Station-Id is only an address, turned the user's submissions back into DUNNO — and the
iPhone's next login, within a minute, did not restore it. Replayed here through real Dovecot,
Postfix and FreeRADIUS in front of a real `devicegate serve` (docs/mail.md, "Postfix")."""

from __future__ import annotations

import contextlib
import imaplib
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from devicegate.store import Store, open_store
from tests.mail.conftest import BANNED, DEVICES, DIRECTORY, IOS_MAIL, POLICY
from tests.mail.harness import foreground, free_port, wait_port, workdir
from tests.mail.servers import (
    PASSWORD,
    Dovecot,
    Postfix,
    Radius,
    real_dovecot,
    real_freeradius,
    real_postfix,
)
from tests.mail.test_real_freeradius import access
from tests.mail.test_real_postfix import submit

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ANDROID_MAIL = '("name" "SomeClient" "os" "Android" "os-version" "13")'
#: an ID list cut off inside a string: Dovecot refuses it, the login carries no ID
MALFORMED = '("name" "iPhone Mail'
#: a well-formed ID that identifies no device (Dovecot passes it on)
NOTHING = '("name" "Thunderbird" "version" "115.3.1")'
LOGIN = "m.sokolova"  # the same official as BANNED (her e-mail address), by login


@dataclass
class Mail:
    dovecot: Dovecot
    postfix: Postfix
    radius: Radius
    store: Store

    def imap(self, user: str, imap_id: str | None) -> None:
        """Log in over IMAP, sending `imap_id` raw before LOGIN (Dovecot may refuse a malformed
        one, and the login then carries no ID at all: either way it identifies nothing)."""
        imap = imaplib.IMAP4("127.0.0.1", self.dovecot.imap_port, timeout=20)
        try:
            if imap_id is not None:
                with contextlib.suppress(imaplib.IMAP4.error):
                    imap._simple_command("ID", imap_id)  # type: ignore[attr-defined]
            with contextlib.suppress(imaplib.IMAP4.error):
                imap.login(user, PASSWORD)
                imap.logout()
        finally:
            with contextlib.suppress(OSError):
                imap.shutdown()

    def submission(self) -> int:
        """The reply code of an authenticated submission as BANNED (250 when accepted)."""
        refused = submit(self.postfix.submission_port, BANNED)
        return refused["colleague@example.org"][0] if refused else 250

    def vpn(self, address: str) -> str:
        return access(self.radius, BANNED, address, port_type="Virtual")


@contextlib.contextmanager
def mail_stack(*serve_flags: str) -> Iterator[Mail]:
    exe = Path(sys.executable).parent / "devicegate"
    with workdir("dg-smtp-") as base:
        http, policy_port = free_port(), free_port()
        url = f"sqlite:///{base}/store.db"
        argv = [str(exe), "serve", "--policy", str(POLICY), "--directory", str(DIRECTORY),
                "--devices", str(DEVICES), "--store", url, "--port", str(http),
                "--postfix-port", str(policy_port), *serve_flags]  # fmt: skip
        for sub in ("dc", "pf", "rad"):
            (base / sub).mkdir()
        with foreground(argv, port=http, log=base / "serve.log"):
            wait_port(policy_port)
            dg = f"http://127.0.0.1:{http}"
            with (
                real_dovecot(base / "dc", dg + "/v1/dovecot/auth-policy") as dc,
                real_postfix(base / "pf", policy_port=policy_port, auth_port=dc.auth_port) as pf,
                real_freeradius(base / "rad", dg) as rad,
            ):
                yield Mail(dc, pf, rad, open_store(url))


def signals_reached(store: Store) -> list[str]:
    """The raw IMAP IDs Dovecot's policy requests carried, in order."""
    with store.engine.connect() as conn:
        details = conn.exec_driver_sql(
            "select detail from decision_log where adapter = 'dovecot' order by id"
        ).scalars()
        return [str(detail) for detail in details]


def test_any_match_keeps_refusing_while_the_banned_phone_is_seen() -> None:
    """The default (`--postfix-match any`, 24 hours): nothing that identifies no device — and
    no other device — makes the phone seen this morning stop counting."""
    with mail_stack() as mail:
        mail.imap(LOGIN, IOS_MAIL)  # the login form: the sighting meets the e-mail form
        assert mail.submission() == 554
        mail.imap(LOGIN, MALFORMED)
        assert mail.submission() == 554
        mail.imap(LOGIN, NOTHING)
        assert mail.submission() == 554
        assert "Access-Accept" in mail.vpn("198.51.100.23")  # VPN: an address, no device
        assert mail.submission() == 554
        mail.imap(BANNED, ANDROID_MAIL)  # a permitted, identified device as well
        assert mail.submission() == 554
        with mail.store.engine.connect() as conn:
            seen = conn.exec_driver_sql("select adapter, platform from sightings order by id").all()
        assert [tuple(row) for row in seen] == [("dovecot", "iOS"), ("dovecot", "Android")]
        # the ID that identifies nothing did reach devicegate, and was no sighting
        assert any("Thunderbird" in detail for detail in signals_reached(mail.store))


def test_newest_match_follows_the_newest_identified_device() -> None:
    """`--postfix-match newest`: a sighting without device evidence never hides the phone;
    a permitted, identified device does; the phone's next login counts again at once, even
    within the minute a repeated sighting is otherwise not recorded."""
    with mail_stack("--postfix-match", "newest") as mail:
        mail.imap(LOGIN, IOS_MAIL)
        assert mail.submission() == 554
        mail.imap(LOGIN, MALFORMED)
        mail.imap(LOGIN, NOTHING)
        assert "Access-Accept" in mail.vpn("198.51.100.23")
        assert mail.submission() == 554
        mail.imap(BANNED, ANDROID_MAIL)
        assert mail.submission() == 250
        mail.imap(LOGIN, IOS_MAIL)  # seconds after its first sighting
        assert mail.submission() == 554
