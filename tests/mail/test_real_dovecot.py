"""Real Dovecot 2.3: IMAP logins from iOS Mail, macOS Mail, Thunderbird and no ID, decided by
devicegate through `auth_policy_server_url` with the shipped deploy/dovecot configuration."""

from __future__ import annotations

import contextlib
import imaplib
from collections.abc import Iterator

import pytest

from devicegate.adapters.base import LocalService
from tests.mail.conftest import BANNED, IOS_MAIL, MACOS_MAIL, THUNDERBIRD
from tests.mail.harness import Endpoints, endpoints, free_port, workdir
from tests.mail.servers import PASSWORD, Dovecot, real_dovecot

pytestmark = [pytest.mark.integration, pytest.mark.slow]

imaplib.Commands.setdefault("ID", ("NONAUTH", "AUTH", "SELECTED"))  # RFC 2971


@pytest.fixture
def running(service: LocalService) -> Iterator[tuple[Endpoints, Dovecot]]:
    with (
        workdir("dg-dovecot-") as base,
        endpoints(service) as ep,
        real_dovecot(base, ep.url + "/v1/dovecot/auth-policy") as dc,
    ):
        yield ep, dc


def login(port: int, user: str, imap_id: str | None) -> tuple[bool, str]:
    """Connect, send ID (if any) before LOGIN, log in; (accepted, server text)."""
    imap = imaplib.IMAP4("127.0.0.1", port, timeout=20)
    try:
        if imap_id is not None:
            typ, _ = imap._simple_command("ID", imap_id)  # type: ignore[attr-defined]
            assert typ == "OK"
        try:
            typ, data = imap.login(user, PASSWORD)
        except imaplib.IMAP4.error as exc:
            return False, str(exc)
        imap.logout()
        return typ == "OK", b" ".join(data).decode()
    finally:
        with contextlib.suppress(OSError):
            imap.shutdown()


def test_logins_by_client(running: tuple[Endpoints, Dovecot], service: LocalService) -> None:
    _, dc = running
    ok, text = login(dc.imap_port, BANNED, IOS_MAIL)
    assert not ok
    assert "Apple devices may no longer be used for work" in text
    ok, text = login(dc.imap_port, BANNED, MACOS_MAIL)
    assert not ok and "Apple devices" in text
    assert login(dc.imap_port, BANNED, THUNDERBIRD)[0]
    assert login(dc.imap_port, BANNED, None)[0]  # no ID: the rule's on_unidentified (allow)
    # rostec/cii admits only approved platforms and blocks what it cannot identify
    ok, text = login(dc.imap_port, "k.belov@rostec.example", None)
    assert not ok and "domestic platforms" in text
    # what reached devicegate: the raw ID list, retained by Dovecot, as a sighting of the
    # directory user the login names — only where the ID identified a device
    seen = service.sightings["m.sokolova"]
    assert [s.profile.vendor for s in seen] == ["Apple", "Apple"]
    assert seen[0].signals.imap_id is not None and "iPhone Mail" in seen[0].signals.imap_id
    assert [entry[0] for entry in service.log] == ["dovecot"] * 5


def test_wrong_password_never_reaches_the_policy(
    running: tuple[Endpoints, Dovecot], service: LocalService
) -> None:
    _, dc = running
    imap = imaplib.IMAP4("127.0.0.1", dc.imap_port, timeout=20)
    with pytest.raises(imaplib.IMAP4.error):
        imap.login(BANNED, "wrong")
    imap.shutdown()
    assert service.log == []  # checked only after the password (check_before_auth = no)


def test_devicegate_down_refuses_the_login(service: LocalService) -> None:
    dead = f"http://127.0.0.1:{free_port()}/v1/dovecot/auth-policy"
    with workdir("dg-dovecot-") as base, real_dovecot(base, dead) as dc:
        ok, _ = login(dc.imap_port, BANNED, THUNDERBIRD)
        assert not ok
