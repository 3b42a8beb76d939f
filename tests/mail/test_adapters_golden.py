"""The four adapters — forward-auth, Dovecot, Postfix, RADIUS — in process, through the one
adapter contract (`adapters.base`: `parse` to a `DecisionRequest`, `render` a `Decision`,
`answer` through a `DecisionService`): every outcome of parsing a request (or the exact error
and hint refusing it), of rendering each kind of decision, of answering through the
in-process service, and of the Postfix connection framing byte streams cut every way; against
`golden/adapters.json` (written by `python -m tests.golden`). Times in answers are replaced
by `<time>`: sightings are made relative to now."""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from devicegate.adapters import dovecot, forward_auth, postfix, radius
from devicegate.adapters.base import Adapter, LocalService, Sighting
from devicegate.defaults import POSTFIX_MATCHES
from devicegate.errors import SignalError
from devicegate.model import DeviceState, Signals
from devicegate.policy import Snapshot
from tests.golden import Case, assert_family, assert_same_cases, params
from tests.mail.conftest import (
    APPLE_MAC,
    BANNED,
    DEVICES,
    DIRECTORY,
    IOS_MAIL,
    OTHER_MAC,
    POLICY,
    RANDOM_MAC,
    THUNDERBIRD,
)
from tests.mail.fakes import FakeTransport

GOLDEN = Path(__file__).with_name("golden") / "adapters.json"
AT = datetime(2023, 8, 1, 9, 0, tzinfo=UTC)
NOTICE_AT = datetime(2023, 7, 10, 9, 0, tzinfo=UTC)
IPHONE_UA = "Mozilla/5.0 (iPhone; CPU iPhone OS 16_5 like Mac OS X) AppleWebKit/605.1.15"
ANDROID_UA = "Mozilla/5.0 (Linux; Android 14; SM-S911B) AppleWebKit/537.36 Chrome/120.0"
TIME = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d(:\d\d)?")


@cache
def snapshot() -> Snapshot:
    from devicegate.cli.common import load_snapshot

    return load_snapshot([POLICY], DIRECTORY, DEVICES, quiet=True)


def service() -> LocalService:
    """A fresh in-process service (sightings, states and log start empty)."""
    return LocalService(snapshot())


def untimed(value: Any) -> Any:
    return json.loads(TIME.sub("<time>", json.dumps(value, default=str)))


DECISIONS = {
    "block": (BANNED, "web", Signals(user_agent=IPHONE_UA), AT),
    "warn": (BANNED, "web", Signals(user_agent=IPHONE_UA), NOTICE_AT),
    "allow": (BANNED, "web", Signals(user_agent=ANDROID_UA), AT),
    "quarantine": (BANNED, "wifi", Signals(mac=APPLE_MAC), AT),
    "unknown user": ("nobody@nowhere.example", "web", Signals(user_agent=IPHONE_UA), AT),
}


def decision(name: str) -> Any:
    user, resource, signals, at = DECISIONS[name]
    local = service()
    if name == "quarantine":
        local.states["mac:" + APPLE_MAC] = DeviceState(compromised=True, verdict="compromised")
    return local.check(user, resource, signals, at=at)


def with_message(name: str, message: str) -> Any:
    from dataclasses import replace

    return replace(decision(name), message=message)


# ---- forward-auth ----------------------------------------------------------------------------

BASIC = {"email"}
TRUSTED = ("10.0.0.1", "10.0.0.2", "::1")


def names(**over: Any) -> forward_auth.HeaderNames:
    settings: dict[str, Any] = {
        "basic_resources": frozenset(BASIC),
        "trusted": lambda address: address in TRUSTED,
    }
    settings.update(over)
    return forward_auth.HeaderNames(**settings)


def basic(text: str) -> str:
    return "Basic " + base64.b64encode(text.encode()).decode()


EAS = "/Microsoft-Server-ActiveSync?Cmd=Sync&DeviceId=ABC&DeviceType=iPhone"
USER = {"x-devicegate-user": "alice@ops.example"}
HEADERS: dict[str, dict[str, str]] = {
    "user and agent": {**USER, "user-agent": IPHONE_UA},
    "user padded": {"x-devicegate-user": "  alice@ops.example  "},
    "user blank": {"x-devicegate-user": "   "},
    "user utf8": {"x-devicegate-user": "пётр@ops.example".encode().decode("latin-1")},
    "user latin1": {"x-devicegate-user": "p\xe9ter"},
    "user 320": {"x-devicegate-user": "u" * 320},
    "user 321": {"x-devicegate-user": "u" * 321},
    "user 1281": {"x-devicegate-user": "u" * 1281},
    "user control": {"x-devicegate-user": "al\x01ice"},
    "user tab": {"x-devicegate-user": "al\tice"},
    "no user": {"user-agent": IPHONE_UA},
    "basic on email": {"authorization": basic("bob@ops.example:pw")},
    "basic with user header": {**USER, "authorization": basic("bob@ops.example:pw")},
    "basic lower scheme": {"authorization": "basic " + basic("bob:pw")[6:]},
    "basic not base64": {"authorization": "Basic !!!"},
    "basic not utf8": {"authorization": "Basic " + base64.b64encode(b"\xff\xfe:pw").decode()},
    "basic control": {"authorization": basic("bo\x01b:pw")},
    "basic long": {"authorization": basic("b" * 321 + ":pw")},
    "basic 320": {"authorization": basic("b" * 320 + ":pw")},
    "basic colon in name": {"authorization": basic("bob:x:pw")},
    "basic empty name": {"authorization": basic(":pw")},
    "bearer": {"authorization": "Bearer abc"},
    "xff one": {**USER, "x-forwarded-for": "198.51.100.7"},
    "xff trusted chain": {**USER, "x-forwarded-for": "198.51.100.9, 198.51.100.7, 10.0.0.2"},
    "xff all trusted": {**USER, "x-forwarded-for": "10.0.0.1, 10.0.0.2"},
    "xff spoofed left": {**USER, "x-forwarded-for": "1.2.3.4, 198.51.100.7"},
    "xff empty hops": {**USER, "x-forwarded-for": " , 198.51.100.7 ,"},
    "xff not ip": {**USER, "x-forwarded-for": "198.51.100.7, nope"},
    "xff ipv6": {**USER, "x-forwarded-for": "2001:db8::1"},
    "xff control": {**USER, "x-forwarded-for": "198.51.100.7\x01"},
    "xff 4097": {**USER, "x-forwarded-for": "1" * 4097},
    "real ip control": {**USER, "x-real-ip": "198.51.100.8\x01"},
    "real ip": {**USER, "x-real-ip": "198.51.100.8"},
    "real ip bad": {**USER, "x-real-ip": "x"},
    "xff and real ip": {**USER, "x-forwarded-for": "198.51.100.7", "x-real-ip": "198.51.100.8"},
    "fingerprint": {**USER, "x-client-cert-fingerprint": "AA:bb:CC:dd"},
    "fingerprint bad": {**USER, "x-client-cert-fingerprint": "zz"},
    "fingerprint colons": {**USER, "x-client-cert-fingerprint": ":::"},
    "fingerprint 257": {**USER, "x-client-cert-fingerprint": "a" * 257},
    "agent 4096": {**USER, "user-agent": "a" * 4096},
    "agent 4097": {**USER, "user-agent": "a" * 4097},
    "agent control": {**USER, "user-agent": "a\nb"},
    "agent blank": {**USER, "user-agent": "  "},
    "activesync original": {**USER, "x-original-uri": EAS},
    "activesync forwarded": {**USER, "x-forwarded-uri": EAS},
    "activesync query with ?": {**USER, "x-original-uri": EAS + "&x=a?b"},
    "authorization control": {"authorization": "Basic \x01"},
    "activesync both": {**USER, "x-original-uri": "/owa/", "x-forwarded-uri": EAS},
    "activesync blank original": {**USER, "x-original-uri": "  ", "x-forwarded-uri": EAS},
    "activesync malformed": {**USER, "x-original-uri": "/Microsoft-Server-ActiveSync?Cmd"},
    "activesync no query": {**USER, "x-original-uri": "/Microsoft-Server-ActiveSync"},
    "activesync in query only": {**USER, "x-original-uri": "/x?/Microsoft-Server-ActiveSync"},
    "uri 8193": {**USER, "x-original-uri": "/" + "a" * 8192},
}
RESOURCES = ("web", "email", "WEB", "my-app", "", "a" * 65, "we b", "-")


def fa_parse(header_set: str, resource: str, extra: str, query: str, peer: str | None) -> Any:
    return forward_auth.parse(
        resource,
        HEADERS[header_set],
        extra_path=extra,
        query=query,
        peer=peer,
        names=names(),
    )


def fa_cache(sequence: tuple[tuple[Any, ...], ...]) -> Any:
    """`ParseCache.parse` over a sequence: each result, and whether it was the kept object."""
    parser = forward_auth.ParseCache(names(), size=4)
    seen: list[Any] = []
    out = []
    for header_set, extra, *query in sequence:
        # an omitted path or query is left out of the call: the defaults are what it reads
        given = {"extra_path": extra} if extra is not None else {}
        given.update({"query": query[0]} if query else {})
        try:
            result = parser.parse("email", HEADERS[header_set], peer="10.0.0.1", **given)
        except SignalError as exc:
            out.append(["error", exc.message])
            continue
        out.append([result, any(result is s for s in seen)])
        seen.append(result)
    return out


def fa_render(name: str, message: str | None) -> Any:
    made = decision(name) if message is None else with_message(name, message)
    return forward_auth.render(made)


def fa_error(kind: str) -> Any:
    error = (
        forward_auth.MissingUser("no user", hint="pass it")
        if kind == "missing"
        else SignalError("bad header", hint=None if kind == "plain" else "fix it")
    )
    return forward_auth.render_error(error)


URIS = (
    (None, None, "", ""),
    ("/a", "/b", "/c", "q=1"),
    (" ", "/b", "", ""),
    (None, " ", "/owa", "x=1"),
    (None, None, "/owa", ""),
    (None, None, "", "x=1"),
    ("a" * 8193, None, "", ""),
    (None, None, "/" + "a" * 8192, "q"),
)


# ---- Dovecot ---------------------------------------------------------------------------------


def dovecot_body(**fields: object) -> bytes:
    base: dict[str, object] = {"login": BANNED, "remote": "198.51.100.7", "protocol": "IMAP"}
    base.update(fields)
    return json.dumps(base).encode()


DOVECOT_BODIES: dict[str, bytes] = {
    "ios mail": dovecot_body(device_id=IOS_MAIL, session_id="s1", tls=True),
    "thunderbird": dovecot_body(device_id=THUNDERBIRD, tls=False),
    "no id": dovecot_body(),
    "empty id": dovecot_body(device_id=""),
    "tls text": dovecot_body(tls="TLSv1.3"),
    "tls empty text": dovecot_body(tls=""),
    "tls long": dovecot_body(tls="t" * 33),
    "tls 32": dovecot_body(tls="t" * 32),
    "no protocol": json.dumps({"login": BANNED}).encode(),
    "tls number": dovecot_body(tls=1),
    "tls null": dovecot_body(tls=None),
    "login padded": dovecot_body(login="  " + BANNED + " "),
    "login blank": dovecot_body(login="  "),
    "login missing": json.dumps({"remote": "x"}).encode(),
    "login number": dovecot_body(login=5),
    "login 320": dovecot_body(login="l" * 320),
    "login 321": dovecot_body(login="l" * 321),
    "protocol 33": dovecot_body(protocol="p" * 33),
    "remote 65": dovecot_body(remote="r" * 65),
    "session 129": dovecot_body(session_id="s" * 129),
    "device id 8192": dovecot_body(device_id="d" * 8192),
    "device id 8193": dovecot_body(device_id="d" * 8193),
    "not json": b"{nope",
    "not utf8": b'{"login": "\xff"}',
    "a list": b"[]",
    "deep": b"[" * 100_000,
    "too big": b" " * (64 * 1024 + 1),
    "just fits": dovecot_body(pad=" " * (64 * 1024 - 100)),
}


def dovecot_answer(body: str, command: str | None) -> Any:
    """One policy request through `dovecot.answer`; the command as Dovecot's URL carries it
    (None: no query at all)."""
    local = service()
    query = b"" if command is None else f"command={command}".encode()
    status, answer = dovecot.answer(local, dovecot.command_of(query), DOVECOT_BODIES[body])
    return {"status": status, "answer": answer, "logged": [e[:3] for e in local.log]}


# ---- RADIUS ----------------------------------------------------------------------------------


def radius_body(
    user: object = BANNED, mac: object = None, port: object = "Wireless-802.11"
) -> bytes:
    attrs: dict[str, object] = {
        "User-Name": {"type": "string", "value": [user]},
        "User-Password": {"type": "string", "value": ["s3cret"]},
        "NAS-Port-Type": {"type": "integer", "value": [port]},
        "NAS-Identifier": {"type": "string", "value": ["ap-1"]},
        "NAS-IP-Address": {"type": "ipaddr", "value": ["127.0.0.1"]},
    }
    if mac is not None:
        attrs["Calling-Station-Id"] = {"type": "string", "value": [mac]}
    return json.dumps(attrs).encode()


RADIUS_BODIES: dict[str, bytes] = {
    "apple mac": radius_body(mac=APPLE_MAC.upper().replace(":", "-")),
    "random mac": radius_body(mac=RANDOM_MAC),
    "other mac": radius_body(mac=OTHER_MAC),
    "mac dots": radius_body(mac="3c22.fb02.8f01"),
    "mac 11 digits": radius_body(mac="3c:22:fb:02:8f:0"),
    "mac 13 digits": radius_body(mac="3c:22:fb:02:8f:011"),
    "mac not hex": radius_body(mac="3c:22:fb:02:8f:0g"),
    "address": radius_body(mac="198.51.100.9"),
    "vpn": radius_body(mac="198.51.100.9", port="Virtual"),
    "vpn lower": radius_body(port="virtual"),
    "no port": radius_body(port=None),
    "int value": radius_body(port=15),
    "bool value": radius_body(port=True),
    "dict value": radius_body(port={"x": 1}),
    "plain value": json.dumps({"User-Name": BANNED}).encode(),
    "empty list": json.dumps({"User-Name": {"value": []}}).encode(),
    "user blank": radius_body(user="  "),
    "user padded": radius_body(user=f" {BANNED} "),
    "value 253": radius_body(mac="m" * 253),
    "value 254": radius_body(mac="m" * 254),
    "no user": json.dumps({"NAS-Port-Type": {"value": ["Virtual"]}}).encode(),
    "not json": b"nope",
    "a list": b"[]",
    "deep": b"[" * 100_000,
    "too big": b" " * (64 * 1024 + 1),
    "not utf8": b'{"User-Name": "\xff"}',
    "cii unidentified": radius_body(user="k.belov@rostec.example", mac=RANDOM_MAC),
    "cii aurora": radius_body(user="k.belov@rostec.example", mac="00:e0:4c:11:22:33"),
}


def radius_answer(body: str, vlan: str | None, compromised: bool) -> Any:
    local = service()
    if compromised:
        local.states["mac:" + APPLE_MAC] = DeviceState(compromised=True, verdict="compromised")
    kwargs = {} if vlan is None else {"quarantine_vlan": vlan}
    status, reply = radius.answer(local, RADIUS_BODIES[body], **kwargs)
    return {"status": status, "reply": reply, "logged": [e[:3] for e in local.log]}


def radius_render(name: str, message: str | None) -> Any:
    made = decision(name) if message is None else with_message(name, message)
    return radius.render(made, quarantine_vlan="42")


# ---- Postfix ---------------------------------------------------------------------------------


def postfix_lines(*lines: str) -> list[bytes]:
    return [line.encode("utf-8", errors="surrogateescape") for line in lines]


POSTFIX_LINES: dict[str, list[bytes]] = {
    "full": postfix_lines(
        "request=smtpd_access_policy",
        "protocol_state=RCPT",
        "sasl_username= alice@ops.example ",
        "client_address=198.51.100.7",
    ),
    "crlf": [b"request=smtpd_access_policy\r", b"sasl_username=bob\r"],
    "upper name": postfix_lines("REQUEST=smtpd_access_policy", " Sasl_Username =bob"),
    "repeated": postfix_lines("request=smtpd_access_policy", "sasl_username=a", "sasl_username=b"),
    "empty values": postfix_lines(
        "request=smtpd_access_policy", "sasl_username=", "client_address="
    ),
    "blank user": postfix_lines("request=smtpd_access_policy", "sasl_username=   "),
    "bad utf8": [b"request=smtpd_access_policy", b"sasl_username=\xff\xfe"],
    "other request": postfix_lines("request=junk", "sasl_username=a"),
    "no request": postfix_lines("sasl_username=a"),
    "no equals": postfix_lines("request=smtpd_access_policy", "junk"),
    "no name": postfix_lines("request=smtpd_access_policy", "=x"),
    "trailing space and X": postfix_lines(
        "request=smtpd_access_policy", "sasl_username=boX", "client_address=198.51.100.7  "
    ),
    "200 attributes": postfix_lines(
        "request=smtpd_access_policy", *[f"a{i}=1" for i in range(199)]
    ),
    "201 attributes": postfix_lines(
        "request=smtpd_access_policy", *[f"a{i}=1" for i in range(200)]
    ),
    "equals in values": postfix_lines(
        "request=smtpd_access_policy", "sasl_username=bob=x", "client_address=a=b"
    ),
}


def sightings_of(
    local: LocalService, *signals: tuple[Signals, float, str], user: str = BANNED
) -> None:
    """Record sightings of `user` `hours` ago."""
    name = snapshot().canonical_user(user).lower()
    for sig, hours, adapter in signals:
        profile = snapshot().identifier.profile(sig)
        at = datetime.now(UTC) - timedelta(hours=hours)
        local.sightings.setdefault(name, []).append(Sighting(at, adapter, sig, profile))


SIGHTINGS = {
    "none": (),
    "iphone": ((Signals(imap_id=IOS_MAIL), 1.0, "dovecot"),),
    "android newest": (
        (Signals(imap_id=IOS_MAIL), 2.0, "dovecot"),
        (Signals(user_agent=ANDROID_UA), 1.0, "forward-auth"),
    ),
    "old iphone": ((Signals(imap_id=IOS_MAIL), 30.0, "dovecot"),),
    "unidentified": ((Signals(imap_id='("name" "x'), 1.0, "dovecot"),),
}


def postfix_window(seen: str, match: str, window_hours: float) -> Any:
    """A submission answered by a server deciding from the sightings within `window_hours`:
    the action, the recorded decision's reasons, and (in the log) the sighting it used."""
    local = service()
    sightings_of(local, *SIGHTINGS[seen])
    server = postfix.PostfixPolicyServer(
        local, "127.0.0.1", 0, window=timedelta(hours=window_hours), match=match, sighting_ttl=0
    )
    request = postfix.PolicyRequest("smtpd_access_policy", BANNED, "198.51.100.7", "RCPT")
    return untimed(
        {
            "answer": server.answer(request),
            "reasons": [e[3].reasons for e in local.log],
            "logged": [e[:3] for e in local.log],
        }
    )


#: between the e-mail wave (14 August) and the all-resources wave (4 September) in minfin:
#: only e-mail refuses the iPhone, so which resource a candidate is judged for shows
EMAIL_ONLY_AT = datetime(2023, 8, 20, 9, 0, tzinfo=UTC)


def postfix_choose_at(seen: str, user: str, at: datetime = NOTICE_AT) -> Any:
    """The sighting a submission is decided from, and its decision, as of a past moment
    (`at`; by default in the wave-1 notice period, when the iPhone is the worse device of
    two and is warned about, while now both are refused)."""
    local = service()
    sightings_of(local, *SIGHTINGS[seen], user=user)
    sightings = local.recent_sightings(user, window=postfix.DEFAULT_WINDOW)
    made, sighting = postfix.choose(local, user, sightings, at=at)
    return untimed(
        {
            "action": postfix.render(made),
            "sighting": sighting and [sighting.adapter, sighting.profile.label],
        }
    )


def postfix_choose_unseen(user: str) -> Any:
    """No sighting: the decision `choose` gives is the e-mail one on no device signals."""
    made, sighting = postfix.choose(service(), user, [], at=EMAIL_ONLY_AT)
    return {
        "decision": made.action,
        "rule": made.rule,
        "reasons": made.reasons,
        "sighting": sighting,
    }


def postfix_answer(seen: str, user: str | None, match: str) -> Any:
    local = service()
    sightings_of(local, *SIGHTINGS[seen])
    server = postfix.PostfixPolicyServer(local, "127.0.0.1", 0, match=match, sighting_ttl=0)
    request = postfix.PolicyRequest("smtpd_access_policy", user, "198.51.100.7", "RCPT")
    return untimed({"answer": server.answer(request), "logged": [e[:3] for e in local.log]})


def sized(total: int) -> bytes:
    """A well-formed request of exactly `total` octets, its final empty line included."""
    out = b"request=smtpd_access_policy\nsasl_username=bob\n"
    while total - len(out) - 1 > 4000 + 3:
        out += b"x=" + b"y" * 3997 + b"\n"
    out += b"x=" + b"y" * (total - len(out) - 4) + b"\n\n"
    assert len(out) == total
    return out


STREAMS: dict[str, tuple[bytes, ...]] = {
    "one": (b"request=smtpd_access_policy\nsasl_username=bob\n\n",),
    "unauthenticated": (b"request=smtpd_access_policy\nclient_address=x\n\n",),
    "two in one read": (b"request=smtpd_access_policy\n\nrequest=smtpd_access_policy\n\n",),
    "cut in the middle": (b"request=smtpd_acc", b"ess_policy\n", b"\n"),
    "cut at the blank line": (b"request=smtpd_access_policy\n", b"\n"),
    "leading blank lines": (b"\n\n\nrequest=smtpd_access_policy\n\n",),
    "stray blank between": (b"request=smtpd_access_policy\n\n\nrequest=smtpd_access_policy\n\n",),
    "malformed then more": (b"junk\n\nrequest=smtpd_access_policy\n\n",),
    "malformed partial": (b"junk\n",),
    "not a request": (b"request=other\n\n",),
    "long line partial": (b"x" * 4097,),
    "long line ok length": (b"x" * 4096,),
    "long line complete": (b"request=smtpd_access_policy\nx=" + b"y" * 4095 + b"\n\n",),
    "long line at limit": (b"request=smtpd_access_policy\nx=" + b"y" * 4094 + b"\n\n",),
    "huge request": (b"request=smtpd_access_policy\n" + b"a=b\n" * 16400 + b"\n",),
    "huge partial": (b"a=" + b"b" * (64 * 1024),),
    "partial then eof": (b"request=smtpd_access_policy\n",),
    "after eof": (b"request=smtpd_access_policy\n\n",),
    "a value with spaces": (b"request=smtpd_access_policy\nsasl_username=bob\nhelo_name=a b\n\n",),
    "request at the size limit": (sized(64 * 1024),),
    "request over the size limit": (sized(64 * 1024 + 1),),
}


def postfix_stream(name: str, eof: bool, durable: str) -> Any:
    """Feed a byte stream (chunk by chunk) to one connection; what it writes and does."""
    local = service()
    verdicts: list[Any] = []

    def held(done: Any) -> bool:
        verdicts.append(done)
        return False

    chosen: Any = {"none": None, "at once": lambda done: True, "held": held}[durable]
    server = postfix.PostfixPolicyServer(local, "127.0.0.1", 0, durable=chosen, sighting_ttl=0)
    transport = FakeTransport()
    connection = postfix._PolicyConnection(server)
    connection.connection_made(transport)  # type: ignore[arg-type]
    kept = []
    for chunk in STREAMS[name]:
        connection.data_received(chunk)
        kept.append(len(connection.buffer))
    if eof:
        kept.append(connection.eof_received())
    written_before = list(transport.out)
    for done in verdicts:
        done(len(verdicts) % 2 == 0)  # the last verdict alternates: commit or failure
    return {
        "before verdicts": written_before,
        "out": [chunk.decode() for chunk in transport.out],
        "closed": transport.closed,
        "closing": connection.closing,
        "buffered": kept,
        "partial": bool(connection.started),
        "open": connection in server._open,
    }


def seen_since() -> Any:
    """A sighting recorded at the very time an answer was made makes that answer stale."""
    local = service()
    sightings_of(local, (Signals(imap_id=IOS_MAIL), 1.0, "dovecot"))
    server = postfix.PostfixPolicyServer(local, "127.0.0.1", 0)
    seen = local.seen_at(BANNED)
    assert seen is not None
    return [server.seen_since(BANNED, made) for made in (seen - 1, seen, seen + 1)] + [
        server.seen_since("nobody@nowhere.example", seen)
    ]


@dataclass
class ReplayingLocal(LocalService):
    """The in-process service that can replay a prepared decision, as `serve`'s does: what
    it prepared and replayed is kept for the outcome."""

    valid: bool = True
    prepared: list[tuple[str, str, str | None]] = field(default_factory=list)
    replays: int = 0

    def prepare(
        self,
        user: str,
        resource: str,
        signals: Signals,
        *,
        adapter: Adapter,
        basis: str | None = None,
    ) -> tuple[Any, object]:
        decision = self.decide(user, resource, signals, adapter=adapter)
        self.prepared.append((user, resource, basis))
        return SimpleNamespace(decision=decision), "batch"

    def replay_if_valid(self, prepared: Any, now: float) -> object | None:
        if not self.valid or not isinstance(now, float):
            return None
        self.replays += 1
        return "batch"


def postfix_replays(ttl: float) -> Any:
    """Submissions answered again from the kept answer while it holds: not after the TTL,
    not once the user was seen again, not when the service says it no longer holds."""
    local = ReplayingLocal(snapshot())
    sightings_of(local, (Signals(imap_id=IOS_MAIL), 1.0, "dovecot"))
    server = postfix.PostfixPolicyServer(local, "127.0.0.1", 0, sighting_ttl=ttl)
    request = postfix.PolicyRequest("smtpd_access_policy", BANNED, "198.51.100.7", "RCPT")
    answers = [server.answer(request), server.answer(request)]
    sightings_of(local, (Signals(user_agent=ANDROID_UA), 0.0, "forward-auth"))
    answers.append(server.answer(request))  # seen again since: decided anew
    answers.append(server.answer(request))
    local.valid = False
    answers.append(server.answer(request))  # the service says it no longer holds
    other = postfix.PolicyRequest("smtpd_access_policy", "e.lebedeva@minfin.example", None, None)
    answers.append(server.answer(other))
    return untimed(
        {
            "answers": answers,
            "prepared": local.prepared,
            "replays": local.replays,
            "logged": [e[:3] for e in local.log],
        }
    )


class PeerTransport(FakeTransport):
    def __init__(self, peer: object) -> None:
        super().__init__()
        self.peer = peer

    def get_extra_info(self, name: str) -> object:
        return self.peer if name == "peername" else None


def postfix_connections(limit: int) -> Any:
    """Who may connect: a trusted address only, and no more than `limit` at once."""
    server = postfix.PostfixPolicyServer(
        service(), "127.0.0.1", 0, trusted=lambda a: a == "127.0.0.1", max_connections=limit
    )
    out = []
    for peer in (("127.0.0.1", 5), ("198.51.100.7", 5), None, "", ("127.0.0.1", 6)):
        transport = PeerTransport(peer)
        connection = postfix._PolicyConnection(server)
        connection.connection_made(transport)  # type: ignore[arg-type]
        out.append([peer, transport.closed, connection.closing, len(server._open)])
    connection.connection_lost(None)
    out.append(["lost", connection.closing, connection.transport is None, len(server._open)])
    return out


def peer_shapes() -> Any:
    """Only an address in a (host, port) tuple is one: any other shape is refused."""
    server = postfix.PostfixPolicyServer(service(), "127.0.0.1", 0, trusted=lambda a: a == "1")
    out = []
    for peer in (["1", 5], "1", ("1", 5)):
        transport = PeerTransport(peer)
        postfix._PolicyConnection(server).connection_made(transport)  # type: ignore[arg-type]
        out.append([peer, transport.closed])
    return out


def spans() -> Any:
    windows = (86400, 3600, 60, 90, 7 * 86400, 86400 + 3600, 59, 0, 2 * 60)
    return [postfix._span(timedelta(seconds=s)) for s in windows]


def framing() -> Any:
    buffers = (b"", b"x" * 4096, b"x" * 4097, b"a=b\nc", b"ab\nc", b"a" * (64 * 1024 + 1),
               b"=\n", b"a=b\n" + b"c" * (64 * 1024 - 4), b"ab\nc=d\n", b"\nabc")  # fmt: skip
    return [postfix._framing_problem(b) for b in buffers]


def describe_in_zone() -> Any:
    """The sighting's time is written in UTC whatever the machine's zone."""
    import os
    import time

    sighting = Sighting(AT, "dovecot", Signals(imap_id=IOS_MAIL), snapshot().identifier.profile(
        Signals(imap_id=IOS_MAIL)))  # fmt: skip
    saved = os.environ.get("TZ")
    os.environ["TZ"] = "Asia/Tokyo"
    time.tzset()
    try:
        return postfix.describe_sighting(sighting, "bob", timedelta(hours=24))
    finally:
        if saved is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = saved
        time.tzset()


def flow() -> Any:
    """Reading stops at `MAX_WAITING` answers waiting for the log and resumes below half."""
    verdicts: list[Any] = []

    def held(done: Any) -> bool:
        verdicts.append(done)
        return False

    server = postfix.PostfixPolicyServer(service(), "127.0.0.1", 0, durable=held, sighting_ttl=0)
    transport = FakeTransport()
    connection = postfix._PolicyConnection(server)
    connection.connection_made(transport)  # type: ignore[arg-type]
    one = b"request=smtpd_access_policy\nsasl_username=" + BANNED.encode() + b"\n\n"
    connection.data_received(one * postfix.MAX_WAITING)
    states = [("all waiting", transport.reading, len(transport.out))]
    for count in (100, 29, 1):
        for done in verdicts[:count]:
            done(True)
        del verdicts[:count]
        states.append((f"{count} more answered", transport.reading, len(transport.out)))
    return states


# ---- the cases -------------------------------------------------------------------------------


def cases() -> list[Case]:
    out: list[Case] = []
    for header_set in HEADERS:
        for resource in ("web", "email"):
            label = f"fa parse / {header_set} {resource}"
            out.append((label, fa_parse, (header_set, resource, "", "", "127.0.0.1")))
    for resource in RESOURCES:
        out.append((f"fa resource / {resource!r}", fa_parse, ("user and agent", resource, "", "",
                                                              None)))  # fmt: skip
    out.append(("fa envoy / path", fa_parse, ("user and agent", "email",
                                              "/Microsoft-Server-ActiveSync", "DeviceId=X&Cmd=Ping",
                                              "10.0.0.9")))  # fmt: skip
    out.append(("fa envoy / no query", fa_parse, ("user and agent", "email", "/owa", "", None)))
    sequences = {
        "same twice": (("user and agent", ""), ("user and agent", "")),
        "pages differ": (("user and agent", "/a"), ("user and agent", "/b")),
        "activesync keyed": (("activesync original", ""), ("activesync forwarded", "")),
        "envoy activesync keyed by query": (
            (
                "user and agent",
                "/Microsoft-Server-ActiveSync",
                "Cmd=Sync&DeviceId=A&DeviceType=iPhone",
            ),
            (
                "user and agent",
                "/Microsoft-Server-ActiveSync",
                "Cmd=Sync&DeviceId=B&DeviceType=iPad",
            ),
            (
                "user and agent",
                "/Microsoft-Server-ActiveSync",
                "Cmd=Sync&DeviceId=A&DeviceType=iPhone",
            ),
        ),
        "no path, no query": (
            ("user and agent", None),
            ("user and agent", None, "x=\x01"),
            ("user and agent", "/Microsoft-Server-ActiveSync"),
        ),
        "basic user": (("basic on email", ""), ("basic on email", "")),
        "errors not kept": (("no user", ""), ("no user", "")),
        "bounded": tuple(
            (h, "")
            for h in (
                "user padded",
                "user utf8",
                "real ip",
                "xff one",
                "fingerprint",
                "user padded",
            )
        ),
    }
    for name, sequence in sequences.items():
        out.append((f"fa cache / {name}", fa_cache, (sequence,)))
    for index, uri in enumerate(URIS):
        out.append((f"fa select_uri / {index}", forward_auth.select_uri, uri))
    for uri in (EAS, "/microsoft-server-activesync?x", "/owa/?x", "/Microsoft-Server-ActiveSync",
                "/owa?/Microsoft-Server-ActiveSync?x",
                "/a?/Microsoft-Server-ActiveSync", "?"):  # fmt: skip
        out.append((f"fa is_activesync / {uri}", forward_auth.is_activesync, (uri,)))
    messages = (None, "", "Nicht erlaubt: «Apple» — bitte\nIT fragen", "<b>x</b> & 'y'")
    for name in DECISIONS:
        for message in messages:
            out.append((f"fa render / {name} {message!r}", fa_render, (name, message)))
            out.append((f"radius render / {name} {message!r}", radius_render, (name, message)))
            out.append((f"dovecot render / {name} {message!r}", _dovecot_render, (name, message)))
            out.append((f"postfix render / {name} {message!r}", _postfix_render, (name, message)))
    for rule_id in (None, "", "r<1>"):
        out.append((f"fa block_html / {rule_id!r}", forward_auth.block_html, (rule_id, "a\x01<b>")))
    out.append(("fa block_html / empty message", forward_auth.block_html, ("r", "")))
    for kind in ("missing", "plain", "hinted"):
        out.append((f"fa render_error / {kind}", fa_error, (kind,)))
    out.append(("fa decisive / default", lambda: forward_auth.HeaderNames().decisive(), ()))
    custom = forward_auth.HeaderNames(user="remote-user", fingerprint="x-ssl-fp")
    out.append(("fa decisive / custom", custom.decisive, ()))
    for body in DOVECOT_BODIES:
        out.append((f"dovecot parse / {body}", _dovecot_parse, (body,)))
    for body in ("ios mail", "thunderbird", "no id", "not json", "login blank", "no protocol"):
        for command in (None, "allow", "report", "drop"):
            out.append((f"dovecot answer / {body} {command}", dovecot_answer, (body, command)))
    for body in RADIUS_BODIES:
        out.append((f"radius parse / {body}", _radius_parse, (body,)))
    for body in ("apple mac", "random mac", "other mac", "vpn", "not json", "cii unidentified",
                 "cii aurora", "no user"):  # fmt: skip
        for vlan, compromised in ((None, False), (None, True), ("13", True)):
            out.append((f"radius answer / {body} {vlan} {compromised}", radius_answer,
                        (body, vlan, compromised)))  # fmt: skip
    for text in ("aa:bb:cc:dd:ee:ff", "aabb.ccdd.eeff", "AA-BB-CC-DD-EE-F", "aa bb cc dd ee ff 0",
                 "aabbccddeeffX",
                 "gg:bb:cc:dd:ee:ff", ""):  # fmt: skip
        out.append((f"radius mac_shaped / {text!r}", radius._mac_shaped, (text,)))
    for name in POSTFIX_LINES:
        out.append((f"postfix parse / {name}", postfix.parse_request, (POSTFIX_LINES[name],)))
    for seen in SIGHTINGS:
        for match in POSTFIX_MATCHES:
            for hours in (24.0, 1.5):
                out.append((f"postfix window / {seen} {match} {hours}", postfix_window,
                            (seen, match, hours)))  # fmt: skip
            for user in (BANNED, None, "k.belov@rostec.example"):
                out.append((f"postfix answer / {seen} {match} {user}", postfix_answer,
                            (seen, user, match)))  # fmt: skip
    for name in STREAMS:
        for eof in (False, True):
            for durable in ("none", "at once", "held"):
                out.append((f"postfix stream / {name} {eof} {durable}", postfix_stream,
                            (name, eof, durable)))  # fmt: skip
    for seen in ("android newest", "iphone", "none"):
        for user in (BANNED, "k.belov@rostec.example"):
            label = f"postfix choose at / {seen} {user}"
            out.append((label, postfix_choose_at, (seen, user)))
        label = f"postfix choose at / {seen} e-mail wave"
        out.append((label, postfix_choose_at, (seen, "e.lebedeva@minfin.example", EMAIL_ONLY_AT)))
    out.append(("postfix seen_since / at the sighting's time", seen_since, ()))
    for ttl in (60.0, 0.0):
        out.append((f"postfix replays / ttl {ttl}", postfix_replays, (ttl,)))
    for limit in (1, 5):
        out.append((f"postfix connections / limit {limit}", postfix_connections, (limit,)))
    out.append(("postfix connections / peer shapes", peer_shapes, ()))
    for user in (BANNED, "e.lebedeva@minfin.example"):
        out.append((f"postfix choose unseen / {user}", postfix_choose_unseen, (user,)))
    out.append(("postfix span / windows", spans, ()))
    out.append(("postfix describe / in another zone", describe_in_zone, ()))
    out.append(("postfix flow / hysteresis", flow, ()))
    out.append(("postfix framing / buffers", framing, ()))
    out.append(("postfix describe / none", postfix.describe_sighting,
                (None, "bob", timedelta(hours=24))))  # fmt: skip
    return out


def _dovecot_parse(name: str) -> Any:
    return dovecot.parse_request(DOVECOT_BODIES[name])


def _radius_parse(name: str) -> Any:
    parsed = radius.parse_request(RADIUS_BODIES[name])
    return {"request": parsed, "resource": parsed.resource, "signals": parsed.signals()}


def _dovecot_render(name: str, message: str | None) -> Any:
    return dovecot.render(decision(name) if message is None else with_message(name, message))


def _postfix_render(name: str, message: str | None) -> Any:
    return postfix.render(decision(name) if message is None else with_message(name, message))


def test_the_file_holds_every_case() -> None:
    assert_same_cases(GOLDEN, cases())


@params(cases())
def test_outcomes_are_the_kept_ones(cases: list[Case]) -> None:
    assert_family(GOLDEN, cases)
