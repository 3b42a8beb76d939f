"""The HTTP side every MDM reader shares (httpx): tokens, retries, JSON, and what not to trust.

- **Tokens.** OAuth 2 client credentials (Intune, Jamf Pro) are exchanged for a bearer token
  when first needed; a `401` gets a new token *once* and the request is repeated, a second
  `401` fails the pass. A static API token (Fleet) is sent as it is; its `401` fails at once.
- **Rate limits.** `429` (and `503`) wait for `Retry-After` (seconds or an HTTP date), at most
  `MAX_WAIT` seconds and `MAX_RETRIES` times; longer or more fails the pass, which the guard
  then refuses — the last good inventory keeps serving and the next interval tries again.
- **Answers.** A body that is not a JSON object is an error, not an empty page. A next-page
  link must point at the same origin as the configured API, so a response cannot send the
  bearer token to another host.
- **Secrets.** Client secrets and tokens live in `SecretStr` and in request headers or form
  bodies only; no error message here includes a header, a body sent, or a token received.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from pydantic import SecretStr

from devicegate.errors import SourceError

MAX_RETRIES = 5
MAX_WAIT = 120.0
#: a single response larger than this is refused (a page of devices is a few MB at most)
MAX_BODY_BYTES = 64 * 1024 * 1024

Sleep = Callable[[float], None]


def origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme.lower(), parts.netloc.lower()


def retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date)."""
    if value is None:
        return None
    text = value.strip()
    if text.isascii() and text.isdigit():  # `isdigit` admits "²", which float() refuses
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    current = datetime.fromtimestamp(now if now is not None else time.time(), UTC)
    return max(0.0, (when - current).total_seconds())


class OAuthClientCredentials:
    """An OAuth 2 client-credentials grant: `token_url`, `client_id`, the secret, a scope."""

    def __init__(
        self, token_url: str, client_id: str, secret: SecretStr, scope: str | None = None
    ) -> None:
        self.token_url = token_url
        self.client_id = client_id
        self.secret = secret
        self.scope = scope

    def fetch(self, client: httpx.Client, name: str) -> SecretStr:
        form = {
            "grant_type": "client_credentials",
            "client_id": self.client_id,
            "client_secret": self.secret.get_secret_value(),
        }
        if self.scope:
            form["scope"] = self.scope
        try:
            response = client.post(self.token_url, data=form)
        except httpx.HTTPError as exc:
            raise SourceError(f"{name}: cannot reach the token endpoint: {_what(exc)}") from None
        if response.status_code != 200:
            raise SourceError(
                f"{name}: the token endpoint answered {response.status_code}",
                hint="check the client id, the secret and the tenant",
            )
        data = _json_object(response, name, "the token endpoint")
        token = data.get("access_token")
        if not isinstance(token, str) or not token:
            raise SourceError(f"{name}: the token endpoint's answer has no access_token")
        return SecretStr(token)


def _what(exc: httpx.HTTPError) -> str:
    """An httpx error without its request (whose URL or headers could carry a token)."""
    return type(exc).__name__ + (f": {exc}" if isinstance(exc, httpx.TransportError) else "")


def _json_object(response: httpx.Response, name: str, what: str) -> dict[str, Any]:
    if len(response.content) > MAX_BODY_BYTES:
        raise SourceError(f"{name}: {what} answered more than 64 MiB")
    try:
        data = response.json()
    except ValueError:
        raise SourceError(f"{name}: {what} answered malformed JSON") from None
    if not isinstance(data, dict):
        raise SourceError(f"{name}: {what} answered JSON that is not an object")
    return data


class ApiClient:
    """GET JSON objects from one MDM API with its token, retries and origin check."""

    def __init__(
        self,
        name: str,
        base_url: str,
        *,
        timeout: float,
        ca_file: Path | None = None,
        oauth: OAuthClientCredentials | None = None,
        static_token: SecretStr | None = None,
        token_header: str = "Authorization",
        sleep: Sleep = time.sleep,
    ) -> None:
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.oauth = oauth
        self.static_token = static_token
        self.token_header = token_header
        self.sleep = sleep
        self._token: SecretStr | None = static_token
        verify: Any = str(ca_file) if ca_file is not None else True
        self.client = httpx.Client(timeout=timeout, verify=verify, follow_redirects=False)
        self.requests = 0

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.client.close()

    def _auth(self) -> dict[str, str]:
        if self._token is None:
            assert self.oauth is not None
            self._token = self.oauth.fetch(self.client, self.name)
        return {self.token_header: f"Bearer {self._token.get_secret_value()}"}

    def get(
        self, url: str, params: Mapping[str, str | int | list[str]] | None = None
    ) -> dict[str, Any]:
        """One JSON object from `url` (absolute, same origin as the API, or a path)."""
        if url.startswith("/"):
            url = self.base_url + url
        if origin(url) != origin(self.base_url):
            raise SourceError(
                f"{self.name}: a next-page link points away from `{self.base_url}`",
                hint="the answer is not followed: the token would go to another host",
            )
        refreshed = False
        waits = 0
        while True:
            try:
                response = self.client.get(url, params=params, headers=self._auth())
            except httpx.HTTPError as exc:
                raise SourceError(f"{self.name}: request failed: {_what(exc)}") from None
            self.requests += 1
            status = response.status_code
            if status == 401 and self.oauth is not None and not refreshed:
                refreshed = True
                self._token = None  # expired or revoked: one new token, then give up
                continue
            if status in (429, 503):
                wait = retry_after(response.headers.get("Retry-After"))
                waits += 1
                if waits > MAX_RETRIES:
                    raise SourceError(f"{self.name}: still rate-limited after {MAX_RETRIES} waits")
                wait = 1.0 if wait is None else wait
                if wait > MAX_WAIT:
                    raise SourceError(
                        f"{self.name}: asked to wait {wait:.0f} s (Retry-After); "
                        f"more than {MAX_WAIT:.0f} s, so this pass stops"
                    )
                self.sleep(wait)
                continue
            if status == 401:
                raise SourceError(
                    f"{self.name}: the API refused the credentials (401)",
                    hint="check the token or the client secret, and its permissions",
                )
            if status != 200:
                raise SourceError(f"{self.name}: `{urlsplit(url).path}` answered {status}")
            return _json_object(response, self.name, f"`{urlsplit(url).path}`")


__all__ = ["ApiClient", "OAuthClientCredentials", "origin", "retry_after"]
