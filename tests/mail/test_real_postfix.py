"""Real Postfix submission with SASL through real Dovecot, checked by devicegate's policy
service (`check_policy_service`) from the user's recent IMAP sightings."""

from __future__ import annotations

import contextlib
import imaplib
import smtplib
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from devicegate.adapters.base import LocalService
from tests.mail.conftest import BANNED, IOS_MAIL, THUNDERBIRD
from tests.mail.harness import Endpoints, endpoints, free_port, workdir
from tests.mail.servers import PASSWORD, Dovecot, Postfix, real_dovecot, real_postfix

pytestmark = [pytest.mark.integration, pytest.mark.slow]

imaplib.Commands.setdefault("ID", ("NONAUTH", "AUTH", "SELECTED"))  # RFC 2971
MESSAGE = "Subject: quarterly report\r\n\r\nfigures attached\r\n"


def imap_login(port: int, user: str, imap_id: str) -> None:
    imap = imaplib.IMAP4("127.0.0.1", port, timeout=20)
    try:
        imap._simple_command("ID", imap_id)  # type: ignore[attr-defined]
        try:
            imap.login(user, PASSWORD)
            imap.logout()
        except imaplib.IMAP4.error:
            pass  # refused or not: the sighting is what this helper is for
    finally:
        with contextlib.suppress(OSError):
            imap.shutdown()


def submit(port: int, user: str) -> dict[str, tuple[int, bytes]]:
    """Authenticated submission; the refused recipients (empty when accepted)."""
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as smtp:
        smtp.login(user, PASSWORD)
        try:
            return smtp.sendmail(user, ["colleague@example.org"], MESSAGE)
        except smtplib.SMTPRecipientsRefused as exc:
            return dict(exc.recipients)


def delivered(mailbox: Path, count: int, timeout: float = 15.0) -> list[Path]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        files = sorted((mailbox / "new").glob("*")) if (mailbox / "new").is_dir() else []
        if len(files) >= count:
            return files
        time.sleep(0.1)
    return sorted((mailbox / "new").glob("*")) if (mailbox / "new").is_dir() else []


@pytest.fixture
def stack(service: LocalService) -> Iterator[tuple[Endpoints, Dovecot, Postfix]]:
    with (
        workdir("dg-mail-") as base,
        endpoints(service) as ep,
        real_dovecot(base, ep.url + "/v1/dovecot/auth-policy") as dc,
        real_postfix(base, policy_port=ep.postfix_port, auth_port=dc.auth_port) as pf,
    ):
        yield ep, dc, pf


def test_submission_follows_the_users_recent_device(
    stack: tuple[Endpoints, Dovecot, Postfix], service: LocalService
) -> None:
    _, dc, pf = stack
    imap_login(dc.imap_port, BANNED, IOS_MAIL)  # refused on IMAP, but seen
    refused = submit(pf.submission_port, BANNED)
    code, text = refused["colleague@example.org"]
    assert code == 554
    assert text.startswith(b"5.7.1 <colleague@example.org>: Recipient address rejected")
    assert b"Apple devices may no longer be used for work" in text
    assert b"(Apple iOS" in text and b"seen via dovecot" in text
    postfix_log = [entry for entry in service.log if entry[0] == "postfix"]
    assert postfix_log and postfix_log[-1][3].action.value == "block"
    # the same user also reads mail in Thunderbird: the phone seen today still counts
    imap_login(dc.imap_port, BANNED, THUNDERBIRD)
    assert submit(pf.submission_port, BANNED)["colleague@example.org"][0] == 554
    # SMTP created no sightings of its own, and Thunderbird identified no device
    assert [s.adapter for s in service.sightings["m.sokolova"]] == ["dovecot"]
    # once the phone is no longer seen (a day later), mail flows
    service.sightings.clear()
    assert submit(pf.submission_port, BANNED) == {}
    (message,) = delivered(pf.mailbox, 1)
    assert b"quarterly report" in message.read_bytes()


def test_devicegate_down_defers_submission(service: LocalService) -> None:
    dead = free_port()
    with (
        workdir("dg-mail-") as base,
        endpoints(service) as ep,
        real_dovecot(base, ep.url + "/v1/dovecot/auth-policy") as dc,
        real_postfix(base, policy_port=dead, auth_port=dc.auth_port) as pf,
    ):
        refused = submit(pf.submission_port, BANNED)
        code, text = refused["colleague@example.org"]
        assert 400 <= code < 500, (code, text)  # deferred: the client retries; never accepted
        assert delivered(pf.mailbox, 1, timeout=1.0) == []
