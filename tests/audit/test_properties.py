"""Hostile input: no format parser raises anything but LineError; round trips hold."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from devicegate.audit.events import LineError
from devicegate.audit.formats import FORMATS
from devicegate.audit.formats.base import ParseContext
from devicegate.audit.formats.dovecot import imap_id_list
from devicegate.identify import parse_imap_id

CTX = ParseContext("h.log", None, ZoneInfo("Europe/Moscow"), 2023)
PREFIXES = st.sampled_from(
    [
        "",
        '198.51.100.1 - bob [17/Jul/2023:09:00:00 +0300] "',
        "#Fields: date time cs-username\n",
        "2023-07-17T09:00:00+03:00 mail dovecot: imap-login: ",
        "Jul 17 09:00:01 mail postfix/smtpd[1]: ",
        "Mon Jul 17 09:00:01 2023",
        "\t",
        '{"at": ',
    ]
)


@settings(max_examples=300, deadline=None)
@given(prefix=PREFIXES, lines=st.lists(st.text(max_size=200), min_size=1, max_size=8))
def test_parsers_never_raise_on_arbitrary_text(prefix: str, lines: list[str]) -> None:
    for module in FORMATS.values():
        parser = module.parser(CTX)
        for number, line in enumerate([prefix + lines[0], *lines[1:]], start=1):
            with contextlib.suppress(LineError):
                parser.feed(line, number)
        with contextlib.suppress(LineError):
            parser.finish()


_visible = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x2FF, exclude_characters='"\\'),
    min_size=1,
    max_size=60,
)


def _nginx_escape(text: str) -> str:
    out = []
    for ch in text:
        if ch in '"\\' or ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\x{ord(ch):02X}")
        else:
            out.append(ch)
    return "".join(out)


@settings(max_examples=200, deadline=None)
@given(
    agent=st.text(max_size=80).filter(
        lambda s: s.strip() not in ("", "-") and "\r" not in s and "\n" not in s
    ),
    user=st.from_regex(r"[a-z][a-z0-9.]{0,15}(@[a-z]{1,8}\.example)?", fullmatch=True),
    seconds=st.integers(0, 10**8),
    offset=st.integers(-12, 14),
)
def test_nginx_round_trip(agent: str, user: str, seconds: int, offset: int) -> None:
    at = (datetime(2020, 1, 1, tzinfo=UTC) + timedelta(seconds=seconds)).astimezone(
        timezone(timedelta(hours=offset))
    )
    line = (
        f'2001:db8::1 - {user} [{at:%d/%b/%Y:%H:%M:%S %z}] "GET /x HTTP/1.1" 200 1 "-" '
        f'"{_nginx_escape(agent)}"'
    )
    (event,) = FORMATS["nginx"].parser(CTX).feed(line, 1)
    assert event.user == user
    assert event.ts == at
    assert event.user_agent == agent.encode("utf-8", "surrogatepass").decode("utf-8", "replace")


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.from_regex(r"[a-z][a-z0-9_-]{0,12}", fullmatch=True),
        _visible.filter(lambda v: ", " not in v and "=" not in v and v == v.strip()),
        min_size=1,
        max_size=6,
    )
)
def test_dovecot_id_rebuilds_the_rfc2971_list(fields: dict[str, str]) -> None:
    logged = ", ".join(f"{k}={v}" for k, v in fields.items())
    assert parse_imap_id(imap_id_list(logged)) == fields
