"""The Dovecot auth-policy adapter with the in-process service: wire format in, answer out."""

from __future__ import annotations

import json

from devicegate.adapters import dovecot
from devicegate.adapters.base import LocalService
from tests.mail.conftest import BANNED, IOS_MAIL, MACOS_MAIL, THUNDERBIRD


def body(**fields: object) -> bytes:
    base: dict[str, object] = {
        "login": BANNED,
        "pwhash": "0123abcd",
        "remote": "198.51.100.7",
        "protocol": "imap",
        "session_id": "abc",
        "tls": "",
    }
    base.update(fields)
    return json.dumps(base).encode()


def test_ios_mail_is_refused_with_the_rules_message(service: LocalService) -> None:
    status, answer = dovecot.answer(service, "allow", body(device_id=IOS_MAIL))
    assert status == 200
    assert answer["status"] == -1
    assert "Apple devices may no longer be used for work" in str(answer["msg"])
    assert "\n" not in str(answer["msg"])


def test_macos_mail_is_refused_and_thunderbird_accepted(service: LocalService) -> None:
    assert dovecot.answer(service, "allow", body(device_id=MACOS_MAIL))[1]["status"] == -1
    assert dovecot.answer(service, "allow", body(device_id=THUNDERBIRD))[1] == {
        "status": 0,
        "msg": "",
    }


def test_no_id_is_decided_by_on_unidentified(service: LocalService) -> None:
    # the wave-1 rule has no on_unidentified: a login without an ID passes
    assert dovecot.answer(service, "allow", body())[1]["status"] == 0
    # rostec/cii only admits approved platforms and blocks the unidentified
    cii = body(login="k.belov@rostec.example")
    status, answer = dovecot.answer(service, "allow", cii)
    assert (status, answer["status"]) == (200, -1)
    assert "domestic platforms" in str(answer["msg"])


def test_a_sighting_is_recorded_only_when_the_login_carries_an_id(service: LocalService) -> None:
    dovecot.answer(service, "allow", body())
    assert service.sightings == {}
    dovecot.answer(service, "allow", body(device_id=IOS_MAIL))
    (seen,) = service.sightings["m.sokolova"]  # the directory user BANNED names
    assert seen.adapter == "dovecot" and seen.signals.imap_id == IOS_MAIL
    assert seen.signals.client_ip == "198.51.100.7"


def test_report_is_acknowledged_without_a_decision(service: LocalService) -> None:
    report = body(device_id=IOS_MAIL, success=False, policy_reject=True)
    assert dovecot.answer(service, "report", report) == (200, {"status": 0, "msg": ""})
    assert service.log == []


def test_malformed_requests_are_refused(service: LocalService) -> None:
    for bad in (b"", b"{", b"[]", b'{"login": 5}', b'{"login": ""}', b"\xff\xfe", b"{}"):
        status, answer = dovecot.answer(service, "allow", bad)
        assert (status, answer["status"]) == (200, -1), bad
        assert answer["msg"] == dovecot.MALFORMED_MESSAGE
    assert dovecot.answer(service, "drop", body())[0] == 400
    assert service.log == []


def test_malformed_imap_id_counts_as_no_id(service: LocalService) -> None:
    status, answer = dovecot.answer(service, "allow", body(device_id='("name" "iPhone Mail'))
    assert (status, answer["status"]) == (200, 0)


def test_the_command_is_allow_unless_the_query_names_another() -> None:
    """`?command=` absent — an empty query, other parameters only — means `allow`."""
    queries = (b"", b"x=1", b"command=allow", b"command=report", b"x=1&command=drop")
    assert [dovecot.command_of(q) for q in queries] == ["allow", "allow", "allow", "report", "drop"]
