"""Forward-auth: what nginx `auth_request`, HAProxy, Traefik ForwardAuth and Envoy ext_authz
send, turned into (user, resource, Signals); a Decision turned back into status and headers.

The proxies differ only in where they put the original request:

    nginx auth_request   GET, client headers, `X-Original-URI` and `X-Forwarded-For` if the
                         config passes them
    HAProxy (our Lua)    GET, `X-Original-URI`, `X-Forwarded-For`, client headers
    Traefik ForwardAuth  GET, `X-Forwarded-Uri`, `X-Forwarded-Method`, `X-Forwarded-For`
    Envoy ext_authz HTTP the original method, the original path appended to `path_prefix`
                         (so `/v1/forward-auth/web` + `/owa/?x=1`), `x-forwarded-for`

The user is the configured header (default `X-Devicegate-User`), else `Remote-User`, else the
Basic-auth user name, else the ActiveSync `User` query parameter. Anything malformed raises
`SignalError` (a 400 with a JSON error); no user at all raises `MissingUser` (a 401).
This module knows no policy: it never looks at what the decision means beyond its action.
"""

from __future__ import annotations

import base64
import binascii
import html
import ipaddress
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote

from devicegate.errors import SignalError
from devicegate.identify import parse_activesync_query
from devicegate.model import Decision, Signals

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


@dataclass(frozen=True, slots=True)
class ForwardAuthRequest:
    user: str
    resource: str
    signals: Signals


@dataclass(frozen=True, slots=True)
class HeaderNames:
    """Which request headers carry the user and the client-certificate fingerprint."""

    user: str = DEFAULT_USER_HEADER
    fingerprint: str = DEFAULT_FINGERPRINT_HEADER

    def decisive(self) -> tuple[str, ...]:
        """Every header whose value can change (user, resource, Signals) — what a cache of
        parse results or of answers must key on — except the original URI, which only
        matters for ActiveSync (see `ParseCache`)."""
        return (
            self.user,
            "remote-user",
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


def _basic_user(authorization: str | None) -> str | None:
    if not authorization or authorization[:6].lower() != "basic ":
        return None
    try:
        raw = base64.b64decode(authorization[6:].strip(), validate=True)
    except (binascii.Error, ValueError):
        raise SignalError("`Authorization` Basic credentials are not valid base64") from None
    user = raw.decode("utf-8", "replace").partition(":")[0]
    return user or None


def _client_ip(headers: Mapping[str, str], peer: str | None) -> str | None:
    """The first X-Forwarded-For hop the proxy recorded, else X-Real-IP, else the peer."""
    for name in ("x-forwarded-for", "x-real-ip"):
        value = _text(name, headers.get(name))
        if value:
            first = value.split(",", 1)[0].strip()
            try:
                return str(ipaddress.ip_address(first))
            except ValueError:
                raise SignalError(f"header `{name}` is not an IP address") from None
    return peer


def _fingerprint(name: str, value: str | None) -> str | None:
    text = _text(name, value, 256)
    if text is None:
        return None
    digits = text.replace(":", "").lower()
    if not digits or any(ch not in "0123456789abcdef" for ch in digits):
        raise SignalError(f"header `{name}` is not a hexadecimal fingerprint")
    return digits


def original_uri(headers: Mapping[str, str], extra_path: str, query: str) -> str | None:
    """The URI the client asked the proxy for (Envoy: the path after the resource)."""
    for name in ("x-original-uri", "x-forwarded-uri"):
        value = _text(name, headers.get(name), MAX_URI)
        if value:
            return value
    if extra_path:
        uri = extra_path + (f"?{query}" if query else "")
        return _text("path", uri, MAX_URI)
    return None


def _check_resource(resource: str) -> None:
    if not resource or len(resource) > MAX_RESOURCE or not resource.replace("-", "").isalnum():
        raise SignalError(f"resource `{resource[:MAX_RESOURCE]}` is not a resource name")


def _is_activesync(uri: str) -> bool:
    return "?" in uri and ACTIVESYNC_PATH in uri.split("?", 1)[0].lower()


def parse(
    resource: str,
    headers: Mapping[str, str],
    *,
    extra_path: str = "",
    query: str = "",
    peer: str | None = None,
    names: HeaderNames = HeaderNames(),
) -> ForwardAuthRequest:
    """Headers (lower-case names) and the request target → (user, resource, Signals)."""
    _check_resource(resource)
    uri = original_uri(headers, extra_path, query)
    activesync_query = None
    activesync_user = None
    if uri is not None and _is_activesync(uri):
        parsed = parse_activesync_query(uri)
        activesync_query = uri.split("?", 1)[1]
        activesync_user = parsed.user
    user = (
        _text(names.user, headers.get(names.user), MAX_USER)
        or _text("remote-user", headers.get("remote-user"), MAX_USER)
        or _basic_user(_text("authorization", headers.get("authorization")))
        or activesync_user
    )
    if not user:
        raise MissingUser(
            "no user in the request",
            hint=f"the proxy must pass `{names.user}`, `Remote-User` or Basic credentials",
        )
    if len(user) > MAX_USER:
        raise SignalError(f"user is longer than {MAX_USER} characters")
    signals = Signals(
        user_agent=_text("user-agent", headers.get("user-agent")),
        activesync_query=activesync_query,
        client_ip=_client_ip(headers, peer),
        tls_fingerprint=_fingerprint(names.fingerprint, headers.get(names.fingerprint)),
    )
    return ForwardAuthRequest(user=user, resource=resource.lower(), signals=signals)


class ParseCache:
    """`parse` with memory: proxies repeat the same user, agent and device for every page, so
    the result is kept per distinct input. The original URI takes part in the key only when it
    is an ActiveSync request (otherwise it does not change the result); it is still checked on
    every request. Errors are never cached. Cleared when full: a hit stays one dict look-up."""

    def __init__(self, names: HeaderNames = HeaderNames(), size: int = 100_000) -> None:
        self.names = names
        self.size = size
        self._headers = names.decisive()
        self._cache: dict[tuple[str | None, ...], ForwardAuthRequest] = {}

    def parse(
        self,
        resource: str,
        headers: Mapping[str, str],
        *,
        extra_path: str = "",
        query: str = "",
        peer: str | None = None,
    ) -> ForwardAuthRequest:
        _check_resource(resource)
        uri = original_uri(headers, extra_path, query)
        device_uri = uri if uri is not None and _is_activesync(uri) else None
        key = (resource, device_uri, peer, *(headers.get(name) for name in self._headers))
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        result = parse(
            resource, headers, extra_path=extra_path, query=query, peer=peer, names=self.names
        )
        if len(self._cache) >= self.size:
            self._cache.clear()
        self._cache[key] = result
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
    body = json.dumps({"error": error.message, "hint": error.hint}).encode()
    return status, [("content-type", "application/json")], body
