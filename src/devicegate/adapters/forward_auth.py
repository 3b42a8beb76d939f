"""Forward-auth: what nginx `auth_request`, HAProxy, Traefik ForwardAuth and Envoy ext_authz
send, turned into (user, resource, Signals); a Decision turned back into status and headers.

The proxies differ only in where they put the original request:

    nginx auth_request   GET, client headers, `X-Original-URI` and `X-Forwarded-For` if the
                         config passes them
    HAProxy (our Lua)    GET, `X-Original-URI`, `X-Forwarded-For`, client headers
    Traefik ForwardAuth  GET, `X-Forwarded-Uri`, `X-Forwarded-Method`, `X-Forwarded-For`
    Envoy ext_authz HTTP the original method, the original path appended to `path_prefix`
                         (so `/v1/forward-auth/web` + `/owa/?x=1`), `x-forwarded-for`

The user comes from one place only: the header the proxy sets after it authenticated the
user (default `X-Devicegate-User`, `--user-header`). A client's own `Remote-User`, the
ActiveSync `User=` query (part of the client's URI, which no proxy checks) and any header the
proxy did not set are never read as the user. For the resources named in `basic_resources`
(ActiveSync to Exchange: the backend itself verifies that very `Authorization` header, but only
*after* devicegate has answered) the Basic-auth name may stand in when the proxy set no user;
such a request is marked unverified, and the service records no evidence for it (no sighting,
no hold). Anything malformed raises `SignalError` (a 400 with a JSON error); no user at all
raises `MissingUser` (a 401).
This module knows no policy: it never looks at what the decision means beyond its action.
"""

from __future__ import annotations

import base64
import binascii
import html
import ipaddress
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import quote

from devicegate.adapters.base import Adapter, DecisionRequest
from devicegate.boundedcache import BoundedCache
from devicegate.errors import SignalError, error_json
from devicegate.identify import parse_activesync_query
from devicegate.model import Decision, Signals

ADAPTER = Adapter("forward-auth")
MAX_USER = 320
MAX_HEADER = 4096
MAX_URI = 8192
MAX_RESOURCE = 64
DEFAULT_USER_HEADER = "x-devicegate-user"
DEFAULT_FINGERPRINT_HEADER = "x-client-cert-fingerprint"
ACTIVESYNC_PATH = "/microsoft-server-activesync"
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # control characters but TAB


class MissingUser(SignalError):
    """No header named the user: the proxy must authenticate before asking (answered 401)."""


def _never_trusted(_: str) -> bool:
    return False


@dataclass(frozen=True, slots=True)
class HeaderNames:
    """Which request headers carry the user and the client-certificate fingerprint, for which
    resources a Basic-auth name may stand in for the user, and which `X-Forwarded-For` hops
    are trusted proxies (the client address is the hop the nearest trusted proxy saw)."""

    user: str = DEFAULT_USER_HEADER
    fingerprint: str = DEFAULT_FINGERPRINT_HEADER
    basic_resources: frozenset[str] = frozenset()
    trusted: Callable[[str], bool] = _never_trusted

    def decisive(self) -> tuple[str, ...]:
        """Every header whose value can change (user, resource, Signals) — what a cache of
        parse results or of answers must key on — except the original URI, which is keyed
        by what `select_uri` makes of it (see `ParseCache`)."""
        return (
            self.user,
            "authorization",
            "user-agent",
            "x-forwarded-for",
            "x-real-ip",
            self.fingerprint,
        )


def _text(name: str, value: str | None, limit: int = MAX_HEADER) -> str | None:
    """A header value, refused when oversized or carrying control characters."""
    if value is None:
        return None
    if len(value) > limit:
        raise SignalError(f"header `{name}` is longer than {limit} characters")
    if _CONTROL.search(value):
        raise SignalError(f"header `{name}` contains control characters")
    value = value.strip()
    return value or None


def _utf8(name: str, value: str) -> str:
    """A header value as UTF-8 text: HTTP carries bytes (read here as Latin-1), and a user
    name arrives UTF-8 encoded. Anything else is refused rather than guessed at."""
    if value.isascii():
        return value
    try:
        return value.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        raise SignalError(f"header `{name}` is not UTF-8 text") from None


def _user_name(name: str, value: str | None) -> str | None:
    text = _text(name, value, MAX_USER * 4)
    if text is None:
        return None
    text = _utf8(name, text).strip()
    if len(text) > MAX_USER:
        raise SignalError(f"user is longer than {MAX_USER} characters")
    return text or None


def _basic_user(authorization: str | None) -> str | None:
    if not authorization or authorization[:6].lower() != "basic ":
        return None
    try:
        raw = base64.b64decode(authorization[6:].strip(), validate=True)
    except (binascii.Error, ValueError):
        raise SignalError("`Authorization` Basic credentials are not valid base64") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise SignalError("the Basic-auth user name is not UTF-8 text") from None
    user = text.partition(":")[0]
    if _CONTROL.search(user):
        raise SignalError("the Basic-auth user name contains control characters")
    user = user.strip()
    if len(user) > MAX_USER:
        raise SignalError(f"user is longer than {MAX_USER} characters")
    return user or None


def _ip(name: str, text: str) -> str:
    try:
        return str(ipaddress.ip_address(text.strip()))
    except ValueError:
        raise SignalError(f"header `{name}` is not an IP address") from None


def _client_ip(
    headers: Mapping[str, str], peer: str | None, trusted: Callable[[str], bool]
) -> str | None:
    """The client address: walking `X-Forwarded-For` from the nearest hop, the first address
    that is not a trusted proxy (what the nearest trusted proxy saw); a client's own entries
    further left are never believed. Else `X-Real-IP`, else the peer."""
    value = _text("x-forwarded-for", headers.get("x-forwarded-for"))
    if value:
        hops = [hop for hop in value.split(",") if hop.strip()]
        for position, hop in enumerate(reversed(hops)):
            address = _ip("x-forwarded-for", hop)
            if position == len(hops) - 1 or not trusted(address):
                return address
    real = _text("x-real-ip", headers.get("x-real-ip"))
    if real:
        return _ip("x-real-ip", real)
    return peer


def _fingerprint(name: str, value: str | None) -> str | None:
    text = _text(name, value, 256)
    if text is None:
        return None
    digits = text.replace(":", "").lower()
    if not digits or any(ch not in "0123456789abcdef" for ch in digits):
        raise SignalError(f"header `{name}` is not a hexadecimal fingerprint")
    return digits


def select_uri(
    x_original: str | None, x_forwarded: str | None, extra_path: str, query: str
) -> str | None:
    """The URI the client asked the proxy for: `X-Original-URI`, else `X-Forwarded-Uri`
    (Traefik), else the path after the resource (Envoy). A header counts only when it holds
    something besides white space. The one place this choice is made: the parser and the
    answer cache both call it, so they can never read different URIs."""
    for name, value in (("x-original-uri", x_original), ("x-forwarded-uri", x_forwarded)):
        text = _text(name, value, MAX_URI)
        if text:
            return text
    if extra_path:
        uri = extra_path + (f"?{query}" if query else "")
        return _text("path", uri, MAX_URI)
    return None


def original_uri(headers: Mapping[str, str], extra_path: str, query: str) -> str | None:
    """`select_uri` over a header mapping (lower-case names)."""
    return select_uri(
        headers.get("x-original-uri"), headers.get("x-forwarded-uri"), extra_path, query
    )


def _check_resource(resource: str) -> None:
    if not resource or len(resource) > MAX_RESOURCE or not resource.replace("-", "").isalnum():
        raise SignalError(f"resource `{resource[:MAX_RESOURCE]}` is not a resource name")


def is_activesync(uri: str) -> bool:
    """Whether a URI is an ActiveSync request with a query (the only URIs that carry device
    signals; every other URI leaves the decision unchanged)."""
    return "?" in uri and ACTIVESYNC_PATH in uri.split("?", 1)[0].lower()


def parse(
    resource: str,
    headers: Mapping[str, str],
    *,
    extra_path: str = "",
    query: str = "",
    peer: str | None = None,
    names: HeaderNames = HeaderNames(),
) -> DecisionRequest:
    """Headers (lower-case names) and the request target → (user, resource, Signals)."""
    _check_resource(resource)
    resource = resource.lower()
    uri = original_uri(headers, extra_path, query)
    activesync_query = None
    if uri is not None and is_activesync(uri):
        parse_activesync_query(uri)  # refuses a malformed query with its reason
        activesync_query = uri.split("?", 1)[1]
    user = _user_name(names.user, headers.get(names.user))
    verified = True
    if user is None and resource in names.basic_resources:
        user = _basic_user(_text("authorization", headers.get("authorization")))
        verified = False
    if not user:
        raise MissingUser(
            "no user in the request",
            hint=f"the proxy must authenticate the user and pass `{names.user}`",
        )
    signals = Signals(
        user_agent=_text("user-agent", headers.get("user-agent")),
        activesync_query=activesync_query,
        client_ip=_client_ip(headers, peer, names.trusted),
        tls_fingerprint=_fingerprint(names.fingerprint, headers.get(names.fingerprint)),
    )
    return DecisionRequest(user=user, resource=resource, signals=signals, user_verified=verified)


class ParseCache:
    """`parse` with memory: proxies repeat the same user, agent and device for every page, so
    the result is kept per distinct input. The original URI takes part in the key only when it
    is an ActiveSync request (otherwise it does not change the result); it is still checked on
    every request. Errors are never cached. Bounded: a hit stays one dict look-up."""

    def __init__(self, names: HeaderNames = HeaderNames(), size: int = 100_000) -> None:
        self.names = names
        self._headers = names.decisive()
        self._cache: BoundedCache[tuple[str | None, ...], DecisionRequest] = BoundedCache(size)

    def parse(
        self,
        resource: str,
        headers: Mapping[str, str],
        *,
        extra_path: str = "",
        query: str = "",
        peer: str | None = None,
    ) -> DecisionRequest:
        _check_resource(resource)
        uri = original_uri(headers, extra_path, query)
        device_uri = uri if uri is not None and is_activesync(uri) else None
        key = (resource, device_uri, peer, *(headers.get(name) for name in self._headers))
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        result = parse(
            resource, headers, extra_path=extra_path, query=query, peer=peer, names=self.names
        )
        self._cache.put(key, result)
        return result


def _header_safe(text: str) -> str:
    """Header values must be visible ASCII: non-ASCII is percent-encoded (UTF-8)."""
    return quote(text.replace("\n", " "), safe=" !\"#$&'()*+,-./:;<=>?@[]^_`{|}~")


Rendered = tuple[int, list[tuple[str, str]], bytes]


def render(decision: Decision) -> Rendered:
    """Allow/warn → 200 with headers the proxy may pass on; block/quarantine → 403 + JSON."""
    headers = [
        ("x-devicegate-action", decision.action.value),
        ("x-devicegate-policy", decision.policy_version),
    ]
    if decision.rule:
        headers.append(("x-devicegate-rule", _header_safe(decision.rule)))
    if decision.allowed:
        if decision.message and decision.action.value == "warn":
            headers.append(("x-devicegate-warning", _header_safe(decision.message)))
        return 200, headers, b""
    body = json.dumps(
        {"action": decision.action.value, "rule": decision.rule, "message": decision.message},
        ensure_ascii=False,
    ).encode()
    headers.append(("x-devicegate-message", _header_safe(decision.message)))
    headers.append(("x-devicegate-block-html", block_html(decision.rule, decision.message)))
    headers.append(("content-type", "application/json"))
    return 403, headers, body


def block_html(rule: str | None, message: str) -> str:
    """The block page's body fragment, HTML-escaped and ASCII (numeric character references),
    for proxies that build the page themselves (deploy/nginx inserts it with `return 403`,
    which saves a second request to devicegate per blocked request)."""
    text = html.escape(
        _CONTROL.sub(" ", message or "Access from this device to this work service is not allowed.")
    )
    ref = f"<p><small>rule: {html.escape(rule)}</small></p>" if rule else ""
    return f"<p>{text}</p>{ref}".encode("ascii", "xmlcharrefreplace").decode("ascii")


def render_error(error: SignalError) -> Rendered:
    """A JSON error for a request the adapter could not read: 401 without a user, else 400."""
    status = 401 if isinstance(error, MissingUser) else 400
    body = json.dumps(error_json(error.message, error.hint)).encode()
    return status, [("content-type", "application/json")], body
