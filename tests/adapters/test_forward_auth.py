"""The forward-auth adapter: the request shapes each proxy sends, and hostile input."""

from __future__ import annotations

import base64
import contextlib
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devicegate.adapters import forward_auth as fa
from devicegate.errors import SignalError
from devicegate.model import Action, Decision
from devicegate.model import DeviceProfile as Profile
from tests.server.scenario import ANDROID_EAS, IPHONE_SAFARI, base64_eas, plain_eas


def basic(user: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:secret".encode()).decode()


def test_nginx_auth_request_shape() -> None:
    """nginx: GET, client headers, X-Original-URI and X-Forwarded-For set by the config."""
    req = fa.parse(
        "web",
        {
            "x-devicegate-user": "alice@ops.example",
            "user-agent": IPHONE_SAFARI,
            "x-original-uri": "/intranet/page?x=1",
            "x-forwarded-for": "198.51.100.7",
        },
        peer="127.0.0.1",
    )
    assert req.user == "alice@ops.example"
    assert req.resource == "web"
    assert req.signals.user_agent == IPHONE_SAFARI
    assert req.signals.client_ip == "198.51.100.7"
    assert req.signals.activesync_query is None


def test_traefik_forward_auth_shape() -> None:
    """Traefik ForwardAuth: GET with the client's headers plus X-Forwarded-Uri/-Method/-For;
    the user header set by an earlier (authenticating) middleware."""
    headers = {
        "x-devicegate-user": "alice@ops.example",
        "user-agent": ANDROID_EAS,
        "x-forwarded-method": "POST",
        "x-forwarded-proto": "https",
        "x-forwarded-host": "mail.example.org",
        "x-forwarded-uri": plain_eas("DEV9", "Android"),
        "x-forwarded-for": "198.51.100.8, 10.0.0.1",
    }
    req = fa.parse("email", headers)
    assert req.user == "alice@ops.example"
    # the nearest hop is not a trusted proxy: the client is what it says, 10.0.0.1
    assert req.signals.client_ip == "10.0.0.1"
    assert req.signals.activesync_query == plain_eas("DEV9", "Android").split("?", 1)[1]
    inner = fa.HeaderNames(trusted=lambda address: address.startswith("10."))
    assert fa.parse("email", headers, names=inner).signals.client_ip == "198.51.100.8"


def test_envoy_ext_authz_http_shape() -> None:
    """Envoy ext_authz (HTTP service): the original path is appended to path_prefix, the
    original method kept; Authorization and x-forwarded-for are passed by default. For
    ActiveSync (Exchange verifies Basic itself) the Basic name may stand in, unverified."""
    target = base64_eas("ENVOY1", "iPhone")
    path, _, query = target.partition("?")
    headers = {"authorization": basic("bob@lab.example"), "x-forwarded-for": "198.51.100.9"}
    names = fa.HeaderNames(basic_resources=frozenset({"email"}))
    req = fa.parse("email", headers, extra_path=path, query=query, names=names)
    assert req.user == "bob@lab.example" and not req.user_verified
    assert req.signals.activesync_query == query


def test_the_user_comes_only_from_the_configured_header() -> None:
    headers = {"x-devicegate-user": "a@x", "remote-user": "b@x", "authorization": basic("c@x")}
    assert fa.parse("web", headers).user == "a@x"
    del headers["x-devicegate-user"]
    with pytest.raises(fa.MissingUser):  # a client's Remote-User never names the user
        fa.parse("web", headers)
    names = fa.HeaderNames(user="x-auth-request-email")
    assert fa.parse("web", {"x-auth-request-email": "d@x"}, names=names).user == "d@x"


def test_a_basic_name_stands_in_only_where_configured_and_never_overrides() -> None:
    headers = {"authorization": basic("c@x"), "remote-user": "b@x"}
    with pytest.raises(fa.MissingUser):
        fa.parse("web", headers)  # no resource allows the Basic name by default
    names = fa.HeaderNames(basic_resources=frozenset({"email"}))
    with pytest.raises(fa.MissingUser):
        fa.parse("web", headers, names=names)  # `web` is not one of them
    req = fa.parse("email", headers, names=names)
    assert (req.user, req.user_verified) == ("c@x", False)
    # a user the proxy verified outranks the Basic name, and is verified
    req = fa.parse("email", {**headers, "x-devicegate-user": "a@x"}, names=names)
    assert (req.user, req.user_verified) == ("a@x", True)


def test_the_activesync_user_query_never_names_the_user() -> None:
    with pytest.raises(fa.MissingUser):
        fa.parse("email", {"x-original-uri": plain_eas("D1", "iPhone", user="carol")})
    names = fa.HeaderNames(basic_resources=frozenset({"email"}))
    uri = plain_eas("D1", "iPhone", user="carol")
    req = fa.parse("email", {"x-original-uri": uri, "authorization": basic("dave")}, names=names)
    assert req.user == "dave"


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        (b"\xff\xfeuser", "not UTF-8"),
        ("и.петров@minfin.example".encode(), None),
    ],
)
def test_a_user_header_is_utf8_text(raw: bytes, why: str | None) -> None:
    headers = {"x-devicegate-user": raw.decode("latin-1")}
    if why is None:
        assert fa.parse("web", headers).user == raw.decode()
        return
    with pytest.raises(SignalError, match=why):
        fa.parse("web", headers)


def test_missing_user_is_401() -> None:
    with pytest.raises(fa.MissingUser) as info:
        fa.parse("web", {"user-agent": IPHONE_SAFARI})
    assert fa.render_error(info.value)[0] == 401


@pytest.mark.parametrize(
    "headers",
    [
        {"x-devicegate-user": "a" * 400},
        {"x-devicegate-user": "a\x01b"},
        {"x-devicegate-user": "a", "user-agent": "x" * 5000},
        {"x-devicegate-user": "a", "x-forwarded-for": "not-an-ip"},
        {"x-devicegate-user": "a", "x-client-cert-fingerprint": "zz:zz"},
        {"authorization": "Basic !!!notbase64"},
        {"x-devicegate-user": "a", "x-original-uri": "/Microsoft-Server-ActiveSync?%%%%"},
        {"x-devicegate-user": "a", "x-original-uri": "/Microsoft-Server-ActiveSync?AAAA"},
    ],
)
def test_malformed_headers_are_400(headers: dict[str, str]) -> None:
    with pytest.raises(SignalError) as info:
        fa.parse("web", headers)
    status, _, body = fa.render_error(info.value)
    assert status in (400, 401)
    assert json.loads(body)["error"]


def test_fingerprint_normalised() -> None:
    req = fa.parse("web", {"x-devicegate-user": "a", "x-client-cert-fingerprint": "AB:CD:01"})
    assert req.signals.tls_fingerprint == "abcd01"


def _decision(action: Action, message: str = "") -> Decision:
    return Decision(action, "r1", message, (), Profile(), "v1")


def test_render_allow_warn_block() -> None:
    assert fa.render(_decision(Action.ALLOW))[0] == 200
    status, headers, _ = fa.render(_decision(Action.WARN, "soon — «x»"))
    assert status == 200
    warning = dict(headers)["x-devicegate-warning"]
    assert warning.isascii() and "%C2%AB" in warning
    for action in (Action.BLOCK, Action.QUARANTINE):
        status, headers, body = fa.render(_decision(action, "no"))
        assert status == 403
        assert json.loads(body) == {"action": action.value, "rule": "r1", "message": "no"}
        assert all(v.isascii() for _, v in headers)


header_text = st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=255), max_size=300)


@settings(max_examples=300, deadline=None)
@given(
    resource=st.text(max_size=80),
    headers=st.dictionaries(
        st.sampled_from(
            [
                "x-devicegate-user",
                "remote-user",
                "authorization",
                "user-agent",
                "x-original-uri",
                "x-forwarded-uri",
                "x-forwarded-for",
                "x-real-ip",
                "x-client-cert-fingerprint",
            ]
        ),
        header_text,
    ),
    extra=st.text(max_size=100),
    query=st.text(max_size=200),
)
def test_parse_never_raises_anything_but_signal_error(
    resource: str, headers: dict[str, str], extra: str, query: str
) -> None:
    try:
        req = fa.parse(resource, headers, extra_path=extra, query=query)
    except SignalError:
        return
    assert req.user and len(req.user) <= fa.MAX_USER


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=120))
def test_base64_activesync_of_arbitrary_bytes(raw: bytes) -> None:
    uri = "/Microsoft-Server-ActiveSync?" + base64.b64encode(raw).decode()
    with contextlib.suppress(SignalError):
        fa.parse("email", {"x-devicegate-user": "a", "x-original-uri": uri})


CACHE = fa.ParseCache()


@settings(max_examples=300, deadline=None)
@given(
    resource=st.sampled_from(["web", "email", "w b"]),
    headers=st.dictionaries(
        st.sampled_from(
            [
                "x-devicegate-user",
                "authorization",
                "user-agent",
                "x-original-uri",
                "x-forwarded-for",
            ]
        ),
        st.one_of(
            st.sampled_from(
                [
                    "a@x",
                    "b@x",
                    IPHONE_SAFARI,
                    plain_eas("D1", "iPhone"),
                    "/page?x=1",
                    "198.51.100.1",
                ]
            ),
            header_text,
        ),
    ),
)
def test_parse_cache_answers_like_parse(resource: str, headers: dict[str, str]) -> None:
    """Twice through the cache (miss, then hit) and once uncached: the same answer or error."""
    outcomes = []
    for call in (CACHE.parse, CACHE.parse, fa.parse):
        try:
            outcomes.append(call(resource, headers))
        except SignalError as exc:
            outcomes.append(type(exc).__name__ + exc.message)  # type: ignore[arg-type]
    assert outcomes[0] == outcomes[1] == outcomes[2]


def test_parse_cache_keys_activesync_uris_but_not_web_pages() -> None:
    cache = fa.ParseCache()
    base = {"x-devicegate-user": "a@x", "user-agent": ANDROID_EAS}
    one = cache.parse("web", {**base, "x-original-uri": "/page/1"})
    assert cache.parse("web", {**base, "x-original-uri": "/page/2"}) is one
    eas1 = cache.parse("email", {**base, "x-original-uri": plain_eas("D1", "iPhone")})
    eas2 = cache.parse("email", {**base, "x-original-uri": plain_eas("D2", "Android")})
    assert eas1.signals.activesync_query != eas2.signals.activesync_query
    with pytest.raises(SignalError):  # a hostile page URI is still refused on a warm cache
        cache.parse("web", {**base, "x-original-uri": "/page/\x01"})


def test_a_resource_name_of_the_longest_length_is_taken_one_longer_is_refused() -> None:
    headers = {"x-devicegate-user": "alice@ops.example"}
    assert fa.parse("w" * fa.MAX_RESOURCE, headers).resource == "w" * fa.MAX_RESOURCE
    with pytest.raises(SignalError, match="is not a resource name"):
        fa.parse("w" * (fa.MAX_RESOURCE + 1), headers)


def test_a_refused_forwarded_uri_is_named_in_the_reason() -> None:
    """Traefik's `X-Forwarded-Uri` (read when `X-Original-URI` is absent) with a control
    character: the reason names that header, so the operator knows which proxy sent it."""
    headers = {"x-devicegate-user": "alice@ops.example", "x-forwarded-uri": "/owa/\x01"}
    with pytest.raises(SignalError, match="header `x-forwarded-uri` contains control"):
        fa.parse("web", headers)


def test_without_a_path_the_query_is_not_read_and_without_a_query_there_is_none() -> None:
    """`extra_path` and `query` default to nothing: a query with no path is not a URI, and an
    Envoy path to ActiveSync without a query carries no device query."""
    headers = {"x-devicegate-user": "alice@ops.example"}
    assert fa.parse("email", headers, query="Cmd=\x01").signals.activesync_query is None
    bare = fa.parse("email", headers, extra_path="/Microsoft-Server-ActiveSync")
    assert bare.signals.activesync_query is None
