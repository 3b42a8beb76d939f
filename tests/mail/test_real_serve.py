"""End to end through `devicegate serve` itself (HTTP endpoints and `--postfix-port` in one
process, one store) with real Dovecot, Postfix and FreeRADIUS in front of it."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from devicegate.store import Store, open_store
from tests.mail.conftest import APPLE_MAC, BANNED, DEVICES, DIRECTORY, IOS_MAIL, POLICY, RANDOM_MAC
from tests.mail.harness import foreground, free_port, wait_port, workdir
from tests.mail.servers import real_dovecot, real_freeradius, real_postfix
from tests.mail.test_real_dovecot import login
from tests.mail.test_real_freeradius import access
from tests.mail.test_real_postfix import submit

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@dataclass(frozen=True)
class Serve:
    url: str
    postfix_port: int
    store: Store


@pytest.fixture
def serve() -> Iterator[tuple[Serve, Path]]:
    exe = Path(sys.executable).parent / "devicegate"
    with workdir("dg-serve-") as base:
        http, policy = free_port(), free_port()
        store = f"sqlite:///{base}/store.db"
        argv = [str(exe), "serve", "--policy", str(POLICY), "--directory", str(DIRECTORY),
                "--devices", str(DEVICES), "--store", store, "--port", str(http),
                "--postfix-port", str(policy)]  # fmt: skip
        with foreground(argv, port=http, log=base / "serve.log"):
            wait_port(policy)
            yield Serve(f"http://127.0.0.1:{http}", policy, open_store(store)), base


def test_mail_and_wifi_through_devicegate_serve(serve: tuple[Serve, Path]) -> None:
    dg, base = serve
    (base / "dc").mkdir()
    (base / "pf").mkdir()
    (base / "rad").mkdir()
    with (
        real_dovecot(base / "dc", dg.url + "/v1/dovecot/auth-policy") as dc,
        real_postfix(base / "pf", policy_port=dg.postfix_port, auth_port=dc.auth_port) as pf,
        real_freeradius(base / "rad", dg.url) as rad,
    ):
        ok, text = login(dc.imap_port, BANNED, IOS_MAIL)
        assert not ok and "Apple devices may no longer be used for work" in text
        # SMTP: decided from the IMAP sighting that devicegate serve stored
        code, reply = submit(pf.submission_port, BANNED)["colleague@example.org"]
        assert code == 554 and b"Apple devices" in reply and b"via dovecot" in reply
        assert "Received Access-Reject" in access(rad, BANNED, APPLE_MAC)
        assert "Received Access-Accept" in access(rad, BANNED, RANDOM_MAC)
    with dg.store.engine.connect() as conn:
        decisions = conn.exec_driver_sql(
            "select adapter, action, rule from decision_log order by id"
        ).all()
        seen = conn.exec_driver_sql("select adapter, vendor from sightings order by id").all()
    assert [tuple(d) for d in decisions] == [
        ("dovecot", "block", "apple-wave-1"),  # IMAP login (after the password check)
        ("dovecot", "allow", None),  # SMTP AUTH through Dovecot: no device data
        ("postfix", "block", "apple-wave-1"),  # RCPT: from the IMAP sighting
        ("radius", "block", "apple-wave-1"),
        ("radius", "allow", None),
    ]
    assert ("dovecot", "Apple") in [tuple(s) for s in seen]
    assert ("radius", "Apple") in [tuple(s) for s in seen]
