"""Dovecot auth policy (`auth_policy_server_url`): IMAP/POP3/submission logins.

Dovecot POSTs a flat JSON object built from `auth_policy_request_attributes` to
`…?command=allow` (decide) and `…?command=report` (the login's outcome, answer ignored).
With `imap_id_retain = yes` and `device_id=%{client_id}` the object carries the raw RFC 2971
ID list the client sent *before* LOGIN; that is the only device signal an IMAP login has.

Answers: `{"status": 0}` lets the login proceed; `{"status": -1, "msg": …}` refuses it and
Dovecot shows the message to the user (`NO [ALERT] …` / `[AUTHENTICATIONFAILED] …`).

Fail modes (documented in docs/mail.md):

* a body that is not a JSON object with a non-empty string `login` → refused (`status -1`):
  a policy hook fails closed, and only Dovecot talks to this endpoint;
* no `device_id` (a client that sends no ID, or sends it after LOGIN, and SMTP AUTH) → the
  login is decided on *no device signals*: each rule's `on_unidentified` answers. SMTP is
  decided again, from the user's recent sightings, by the Postfix policy service;
* a malformed ID list → identification finds nothing in it (the same as no ID); the raw
  value is still recorded with the sighting for the audit.

The password never reaches this adapter in clear: Dovecot sends at most a truncated salted
hash (`pwhash`), which is ignored and never logged.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass

from devicegate.adapters.base import DecisionService
from devicegate.errors import SignalError
from devicegate.model import Decision, Signals

log = logging.getLogger("devicegate.adapters.dovecot")

ADAPTER = "dovecot"
RESOURCE = "email"
MAX_BODY = 64 * 1024
MAX_LOGIN = 320
MAX_DEVICE_ID = 8 * 1024
#: The message a refused login sees when the request itself cannot be used.
MALFORMED_MESSAGE = "devicegate: malformed policy request"
ALLOW: dict[str, object] = {"status": 0, "msg": ""}


@dataclass(frozen=True, slots=True)
class PolicyRequest:
    """The fields of one Dovecot policy request devicegate uses."""

    login: str
    protocol: str
    remote: str | None
    session_id: str | None
    tls: str | None
    device_id: str | None

    def signals(self) -> Signals:
        """The device signals of this login; empty (no sighting) without an IMAP ID."""
        if not self.device_id:
            return Signals()
        return Signals(imap_id=self.device_id, client_ip=self.remote)


def _text(data: Mapping[str, object], key: str, limit: int) -> str | None:
    value = data.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise SignalError(f"dovecot policy field `{key}` is not a string")
    if len(value) > limit:
        raise SignalError(f"dovecot policy field `{key}` is longer than {limit} characters")
    return value


def _tls(value: object) -> str | None:
    """Dovecot 2.3 appends `"tls": true|false` itself; a configured attribute may be text."""
    if isinstance(value, bool):
        return "yes" if value else None
    if isinstance(value, str) and len(value) <= 32:
        return value or None
    if value is None:
        return None
    raise SignalError("dovecot policy field `tls` is neither a boolean nor a string")


def parse_request(body: bytes) -> PolicyRequest:
    """Dovecot's JSON → PolicyRequest; SignalError for anything unusable (never other errors)."""
    if len(body) > MAX_BODY:
        raise SignalError(f"dovecot policy request is longer than {MAX_BODY} bytes")
    try:
        data = json.loads(body.decode("utf-8"))
    except (ValueError, RecursionError):  # JSONDecodeError, bad UTF-8, a 5,000-digit number
        raise SignalError("dovecot policy request is not JSON") from None
    if not isinstance(data, dict):
        raise SignalError("dovecot policy request is not a JSON object")
    login = _text(data, "login", MAX_LOGIN)
    if login is None or not login.strip():
        raise SignalError("dovecot policy request has no `login`")
    return PolicyRequest(
        login=login.strip(),
        protocol=(_text(data, "protocol", 32) or "").lower(),
        remote=_text(data, "remote", 64),
        session_id=_text(data, "session_id", 128),
        tls=_tls(data.get("tls")),
        device_id=_text(data, "device_id", MAX_DEVICE_ID),
    )


def render(decision: Decision) -> dict[str, object]:
    """A decision as Dovecot's answer: allow and warn pass, block and quarantine refuse."""
    if decision.allowed:
        return dict(ALLOW)
    message = " ".join(decision.message.split()) or "access refused by device policy"
    return {"status": -1, "msg": message}


def handle(
    service: DecisionService, body: bytes, params: Mapping[str, str]
) -> tuple[int, dict[str, object]]:
    """`POST /v1/dovecot/auth-policy?command=allow|report` → (HTTP status, JSON answer)."""
    command = params.get("command", "allow")
    if command == "report":
        return 200, dict(ALLOW)  # Dovecot ignores the answer; the decision was logged on allow
    if command != "allow":
        return 400, {"status": -1, "msg": MALFORMED_MESSAGE}
    try:
        request = parse_request(body)
    except SignalError as exc:
        log.warning("dovecot: refused a malformed policy request: %s", exc.message)
        return 200, {"status": -1, "msg": MALFORMED_MESSAGE}
    decision = service.decide(request.login, RESOURCE, request.signals(), adapter=ADAPTER)
    log.debug(
        "dovecot: %s %s session=%s -> %s (%s)",
        request.protocol or "?",
        request.login,
        request.session_id or "-",
        decision.action.value,
        decision.rule or "default",
    )
    return 200, render(decision)
