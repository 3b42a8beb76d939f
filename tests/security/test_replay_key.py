"""The replay cache could be keyed on something other than what was decided: with
`X-Original-URI: \\xa0` the parser read `X-Forwarded-Uri`, while the answer's key kept the
`\\xa0` and left `X-Forwarded-Uri` out — prime with `DeviceType=Android`, then send
`DeviceType=iPhone`, and the Android answer came back. The key is now made from the parser's
own choice of URI (`forward_auth.select_uri`)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devicegate.adapters import forward_auth as fa
from devicegate.boundedcache import BoundedCache
from devicegate.errors import SignalError
from devicegate.server.forward_auth_endpoint import PREFIX, answer_key
from tests.server import procs
from tests.server.scenario import ANDROID_EAS, OPS, write_scenario

NAMES = fa.HeaderNames()
ENCODED = tuple(name.encode() for name in NAMES.decisive())
EAS = "/Microsoft-Server-ActiveSync?Cmd=Sync&DeviceId=R1&DeviceType="


def raw_get(port: int, headers: list[tuple[bytes, bytes]]) -> int:
    head = b"".join(name + b": " + value + b"\r\n" for name, value in headers)
    request = b"GET /v1/forward-auth/email HTTP/1.1\r\nHost: x\r\n" + head + b"\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        reply = sock.recv(65536)
    return int(reply.split(b" ", 2)[1])


@pytest.mark.integration
def test_a_primed_answer_is_never_replayed_for_other_signals(tmp_path: Path) -> None:
    """Through a real `devicegate serve`, whose HTTP protocol replays kept answers itself."""
    policy, directory = write_scenario(tmp_path / "s")
    with procs.devicegate(tmp_path, policy, directory, f"sqlite:///{tmp_path}/dg.db") as dg:
        base = [(b"x-devicegate-user", OPS.encode()), (b"user-agent", ANDROID_EAS.encode())]
        for n, blank in enumerate((b"\xa0", b" ", b"\x85")):
            uri = f"/Microsoft-Server-ActiveSync?Cmd=Sync&DeviceId=R{n}&DeviceType="
            prime = [
                *base,
                (b"x-original-uri", blank),
                (b"x-forwarded-uri", f"{uri}Android".encode()),
            ]
            attack = [
                *base,
                (b"x-original-uri", blank),
                (b"x-forwarded-uri", f"{uri}iPhone".encode()),
            ]
            assert raw_get(dg.port, prime) == 200
            assert raw_get(dg.port, prime) == 200  # replayed
            # the iPhone claim under an Android agent: `spoof-hold` quarantines it
            assert raw_get(dg.port, attack) == 403, blank


HEADER_VALUES = {
    b"x-original-uri": st.sampled_from(
        [
            None,
            b"",
            b" ",
            b"\xa0",
            b"\x85",
            b"/",
            EAS.encode() + b"iPhone",
            b" " + EAS.encode() + b"iPhone",
        ]
    ),
    b"x-forwarded-uri": st.sampled_from(
        [None, b"\xa0", EAS.encode() + b"iPhone", EAS.encode() + b"Android", b"/owa/"]
    ),
    b"x-devicegate-user": st.sampled_from([None, b"a@x", b" a@x", b"b@x", b"a@x\xa0"]),
    b"authorization": st.sampled_from([None, b"Basic YTpi", b"Basic Yjpi"]),
    b"user-agent": st.sampled_from([None, ANDROID_EAS.encode(), b"x", b" x"]),
    b"x-forwarded-for": st.sampled_from([None, b"198.51.100.1", b"198.51.100.1, 10.0.0.1"]),
    b"x-real-ip": st.sampled_from([None, b"198.51.100.2"]),
    b"x-client-cert-fingerprint": st.sampled_from([None, b"ab" * 20, b"AB" * 20]),
    b"remote-user": st.sampled_from([None, b"c@x"]),
}
requests = st.fixed_dictionaries(
    {
        "resource": st.sampled_from(["email", "web"]),
        "extra": st.sampled_from(["", "/Microsoft-Server-ActiveSync", "/owa"]),
        "query": st.sampled_from([b"", b"Cmd=Sync&DeviceId=E1&DeviceType=iPhone"]),
        "headers": st.fixed_dictionaries(HEADER_VALUES),
    }
)


#: the URI readings `serve` keeps, shared across examples as across requests
URIS: BoundedCache[tuple[object, ...], object] = BoundedCache(64)


def _key_and_parse(request: dict[str, object]) -> tuple[object, object]:
    headers = {k: v for k, v in request["headers"].items() if v is not None}  # type: ignore[attr-defined]
    extra = str(request["extra"])
    path = PREFIX + str(request["resource"]) + extra
    query = request["query"]
    assert isinstance(query, bytes)
    key = answer_key(ENCODED, path, query, "127.0.0.1", list(headers.items()), URIS)
    # the reading kept in URIS (shared by every example) is the one made afresh
    assert key == answer_key(ENCODED, path, query, "127.0.0.1", list(headers.items()))
    text = {k.decode(): v.decode("latin-1") for k, v in headers.items()}
    names = fa.HeaderNames(basic_resources=frozenset({"email"}))
    try:
        parsed: object = fa.parse(
            str(request["resource"]),
            text,
            extra_path=extra,
            query=query.decode() if extra else "",
            peer="127.0.0.1",
            names=names,
        )
    except SignalError as exc:
        parsed = type(exc)
    return key, parsed


@settings(max_examples=3000, deadline=None)
@given(requests, st.sampled_from(sorted(HEADER_VALUES)), st.data())
def test_two_requests_that_parse_differently_never_share_a_key(
    first: dict[str, object], changed: bytes, data: st.DataObject
) -> None:
    second_headers = dict(first["headers"])  # type: ignore[call-overload]
    second_headers[changed] = data.draw(HEADER_VALUES[changed])
    second = {**first, "headers": second_headers}
    key_a, parsed_a = _key_and_parse(first)
    key_b, parsed_b = _key_and_parse(second)
    if key_a is not None and key_a == key_b:
        assert parsed_a == parsed_b
