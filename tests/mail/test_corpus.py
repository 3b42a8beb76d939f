"""The shared decision corpus (tests/corpus/cases.yaml) through each adapter's wire format.

Each adapter can carry only some signals: Dovecot an IMAP ID on `email`, RADIUS a MAC on
`wifi`/`vpn`; Postfix carries none, so every `email` case becomes a sighting that the
submission is decided from. For each case an adapter can express, its answer must be the
rendering of exactly the decision `decide` gives, and match the corpus expectation.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from devicegate.adapters import dovecot, postfix, radius
from devicegate.adapters.base import LocalService, Sighting
from devicegate.model import Decision, Signals
from devicegate.policy import decide
from devicegate.serialize import decision_json
from tests.corpus.loader import Case, cases, check_expectation, corpus_snapshot

CASES = cases()
SNAPSHOT = corpus_snapshot()


@dataclass
class AtService(LocalService):
    """The in-process service with the clock pinned to the case's time."""

    now: datetime | None = None

    def decide(
        self,
        user: str,
        resource: str,
        signals: Signals,
        *,
        adapter: str,
        at: datetime | None = None,
    ) -> Decision:
        return super().decide(user, resource, signals, adapter=adapter, at=at or self.now)

    def check(
        self, user: str, resource: str, signals: Signals, *, at: datetime | None = None
    ) -> Decision:
        return super().check(user, resource, signals, at=at or self.now)

    def recent_sightings(self, user: str, *, window: timedelta) -> list[Sighting]:
        seen = self.sightings.get(self.snapshot.canonical_user(user).lower(), [])
        return sorted(seen, key=lambda s: s.at, reverse=True)


def expected(case: Case) -> Decision:
    decision = decide(SNAPSHOT, case.request())
    check_expectation(case, decision_json(decision))
    return decision


def only(case: Case, *signals: str) -> bool:
    return set(case.signals) <= set(signals)


DOVECOT = [c for c in CASES if c.resource == "email" and only(c, "imap_id")]
RADIUS = [c for c in CASES if c.resource in ("wifi", "vpn") and only(c, "mac")]
POSTFIX = [c for c in CASES if c.resource == "email"]


def test_every_adapter_gets_cases() -> None:
    assert len(DOVECOT) >= 4 and len(RADIUS) >= 2 and len(POSTFIX) >= 10


@pytest.mark.parametrize("case", DOVECOT, ids=[c.name for c in DOVECOT])
def test_dovecot_wire_format(case: Case) -> None:
    service = AtService(SNAPSHOT, now=case.at)
    body = {"login": case.user, "protocol": "imap", "remote": "198.51.100.7", "tls": False}
    if "imap_id" in case.signals:  # Dovecot sends the list without its parentheses
        body["device_id"] = case.signals["imap_id"].strip()[1:-1]
    status, answer = dovecot.answer(service, "allow", json.dumps(body).encode())
    want = expected(case)
    assert (status, answer) == dovecot.render(want)
    assert service.log[-1][3].action is want.action and service.log[-1][3].rule == want.rule


@pytest.mark.parametrize("case", RADIUS, ids=[c.name for c in RADIUS])
def test_radius_wire_format(case: Case) -> None:
    service = AtService(SNAPSHOT, now=case.at)
    attrs = {
        "User-Name": {"type": "string", "value": [case.user]},
        "User-Password": {"type": "string", "value": ["secret"]},
        "NAS-Port-Type": {
            "type": "integer",
            "value": ["Virtual" if case.resource == "vpn" else "Wireless-802.11"],
        },
    }
    if "mac" in case.signals:
        attrs["Calling-Station-Id"] = {"type": "string", "value": [case.signals["mac"]]}
    got = radius.answer(service, json.dumps(attrs).encode())
    want = expected(case)
    assert got == radius.render(want, quarantine_vlan=radius.DEFAULT_QUARANTINE_VLAN)
    assert service.log[-1][3].action is want.action and service.log[-1][3].rule == want.rule


@pytest.mark.parametrize("case", POSTFIX, ids=[c.name for c in POSTFIX])
def test_postfix_wire_format(case: Case) -> None:
    service = AtService(SNAPSHOT, now=case.at)
    signals = Signals(**case.signals)
    sighting = None
    if not signals.is_empty():
        profile = SNAPSHOT.identifier.profile(signals)
        sighting = Sighting(case.at, "corpus", signals, profile)
        service.sightings[SNAPSHOT.canonical_user(case.user).lower()] = [sighting]
    payload = (
        "request=smtpd_access_policy\nprotocol_state=RCPT\nclient_address=198.51.100.7\n"
        f"sasl_username={case.user}\nrecipient=x@example.org\n\n"
    ).encode()

    async def main() -> bytes:
        server = postfix.PostfixPolicyServer(service, "127.0.0.1", 0)
        await server.start()
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(payload)
            answer = await asyncio.wait_for(reader.readuntil(b"\n\n"), 5)
            writer.close()
            return answer
        finally:
            await server.close()

    want = expected(case)
    action = postfix.render(want)
    if sighting is not None and not want.allowed:
        at = case.at.astimezone(UTC)
        action += f" ({sighting.profile.label} seen via corpus {at:%Y-%m-%d %H:%M} UTC)"
    assert asyncio.run(main()) == f"action={action}\n\n".encode()
    assert service.log[-1][3].action is want.action and service.log[-1][3].rule == want.rule
