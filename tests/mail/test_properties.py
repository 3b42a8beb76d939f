"""Hostile input: no parser of a mail or network adapter raises anything but SignalError, and
no handler raises at all, whatever bytes arrive."""

from __future__ import annotations

import contextlib
import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devicegate.adapters import dovecot, postfix, radius
from devicegate.adapters.base import LocalService
from devicegate.errors import SignalError
from devicegate.model import Signals
from devicegate.policy import Snapshot
from tests.mail.conftest import BANNED, IOS_MAIL
from tests.mail.fakes import FakeTransport

FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)
imap_ids = st.lists(
    st.sampled_from(
        ['"name"', '"iPhone Mail"', "NIL", "(", ")", "{5}\r\n", '"os"', " ", '\\"', "iOS"]
    ),
    max_size=12,
).map("".join)


def dovecot_bodies() -> st.SearchStrategy[bytes]:
    objects = st.fixed_dictionaries(
        {"login": st.text(max_size=30) | json_values},
        optional={"device_id": imap_ids | json_values, "remote": json_values, "tls": json_values},
    ).map(lambda d: json.dumps(d).encode())
    return st.binary(max_size=200) | objects


def radius_bodies() -> st.SearchStrategy[bytes]:
    attribute = (
        st.fixed_dictionaries({"type": st.text(max_size=8), "value": json_values}) | json_values
    )
    objects = st.dictionaries(
        st.sampled_from([*radius.READ, "User-Password", "Other"]), attribute, max_size=6
    ).map(lambda d: json.dumps(d).encode())
    return st.binary(max_size=200) | objects


@FAST
@given(dovecot_bodies())
def test_dovecot_parser_raises_only_signal_error(body: bytes) -> None:
    try:
        parsed = dovecot.parse_request(body)
    except SignalError:
        return
    assert parsed.login and parsed.login == parsed.login.strip()


@FAST
@given(dovecot_bodies(), st.sampled_from(["allow", "report", "x"]))
def test_dovecot_handler_always_answers(snapshot: Snapshot, body: bytes, command: str) -> None:
    status, answer = dovecot.answer(LocalService(snapshot), command, body)
    assert status in (200, 400) and answer["status"] in (0, -1)


@FAST
@given(radius_bodies())
def test_radius_handler_always_answers(snapshot: Snapshot, body: bytes) -> None:
    with contextlib.suppress(SignalError):
        radius.parse_request(body)
    status, reply = radius.answer(LocalService(snapshot), body)
    assert status in (200, 401)
    assert all(key.startswith("reply:") for key in reply)


@FAST
@given(st.lists(st.binary(max_size=60), max_size=30))
def test_postfix_parser_raises_only_signal_error(lines: list[bytes]) -> None:
    try:
        parsed = postfix.parse_request(lines)
    except SignalError:
        return
    assert parsed.request == "smtpd_access_policy"


@FAST
@given(st.binary(max_size=600))
def test_postfix_stream_never_crashes(snapshot: Snapshot, data: bytes) -> None:
    """Arbitrary bytes on the policy port: every answer is a well-formed action."""
    server = postfix.PostfixPolicyServer(LocalService(snapshot), "127.0.0.1", 0)
    out = _feed(server, [data[: len(data) // 2], data[len(data) // 2 :]])  # split across reads
    for chunk in out:
        assert chunk.startswith(b"action=") and chunk.endswith(b"\n\n")


def _feed(
    server: postfix.PostfixPolicyServer, chunks: list[bytes], late: list[object] | None = None
) -> list[bytes]:
    """Feed chunks to one connection, then EOF; with `late`, verdicts wait in that list."""
    transport = FakeTransport()
    connection = postfix._PolicyConnection(server)
    connection.connection_made(transport)  # type: ignore[arg-type]
    for chunk in chunks:
        connection.data_received(chunk)
    connection.eof_received()
    for done in late or ():
        done(True)  # type: ignore[operator]
    return transport.out


requests = st.lists(
    st.sampled_from([None, BANNED, "nobody@example.org", " "]).map(
        lambda user: (
            b"request=smtpd_access_policy\nprotocol_state=RCPT\n"
            + (b"" if user is None else b"sasl_username=" + user.encode() + b"\n")
            + b"\n"
        )
    ),
    min_size=1,
    max_size=8,
)


@FAST
@given(requests, st.lists(st.integers(min_value=0, max_value=400), max_size=6), st.booleans())
def test_postfix_answers_do_not_depend_on_how_the_stream_is_cut(
    snapshot: Snapshot, stream: list[bytes], cuts: list[int], wait: bool
) -> None:
    """Pipelined requests cut anywhere into reads, with verdicts at once or later: the same
    answers, one a request, in request order."""
    data = b"".join(stream)
    service = LocalService(snapshot)
    service.decide(BANNED, "email", Signals(imap_id=IOS_MAIL), adapter=dovecot.ADAPTER)  # REJECT
    expected = _feed(postfix.PostfixPolicyServer(service, "127.0.0.1", 0), [data])
    assert len(expected) == len(stream)
    late: list[object] = []

    def durable(done: object) -> bool:
        if wait:
            late.append(done)
        return not wait

    server = postfix.PostfixPolicyServer(
        service,
        "127.0.0.1",
        0,
        durable=durable,  # type: ignore[arg-type]
    )
    points = sorted({min(c, len(data)) for c in cuts})
    chunks = [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]
    assert _feed(server, chunks, late) == expected
