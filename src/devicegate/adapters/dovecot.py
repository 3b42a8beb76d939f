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
from urllib.parse import parse_qsl

from devicegate.adapters.base import Adapter, DecisionRequest, DecisionService
from devicegate.errors import SignalError
from devicegate.model import Decision, Signals

log = logging.getLogger("devicegate.adapters.dovecot")

ADAPTER = Adapter("dovecot")
RESOURCE = "email"
MAX_BODY = 64 * 1024
MAX_LOGIN = 320
MAX_DEVICE_ID = 8 * 1024
#: The message a refused login sees when the request itself cannot be used.
MALFORMED_MESSAGE = "devicegate: malformed policy request"
ALLOW: dict[str, object] = {"status": 0, "msg": ""}

#: An answer: the HTTP status and Dovecot's JSON.
Answer = tuple[int, dict[str, object]]
#: `command=report`: Dovecot ignores the answer; the decision was logged on `allow`.
REPORTED: Answer = (200, ALLOW)
#: An unknown command (not Dovecot's): refused.
UNKNOWN_COMMAND: Answer = (400, {"status": -1, "msg": MALFORMED_MESSAGE})
#: A body that cannot be used: the login is refused (a policy hook fails closed).
MALFORMED: Answer = (200, {"status": -1, "msg": MALFORMED_MESSAGE})


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

    def decision_request(self) -> DecisionRequest:
        return DecisionRequest(self.login, RESOURCE, self.signals())

    @property
    def replay_key(self) -> tuple[str, str | None, str | None]:
        """The raw fields the decision depends on (`signals` is a function of the last two):
        what `serve` keeps an answer under, found before any signals are built."""
        return self.login, self.device_id, self.remote


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


def command_of(query: bytes) -> str:
    """`?command=allow|report` of the request URL (`allow` when absent)."""
    if query in (b"", b"command=allow"):
        return "allow"
    return dict(parse_qsl(query.decode("latin-1"))).get("command", "allow")


def read(command: str, body: bytes) -> PolicyRequest | Answer:
    """`parse` up to the fields: a login to decide, or the answer to a request that needs no
    decision (a report, an unknown command, a malformed body — logged and refused)."""
    if command == "report":
        return REPORTED
    if command != "allow":
        return UNKNOWN_COMMAND
    try:
        return parse_request(body)
    except SignalError as exc:
        log.warning("dovecot: refused a malformed policy request: %s", exc.message)
        return MALFORMED


def parse(command: str, body: bytes) -> DecisionRequest | Answer:
    """The adapter's `parse`: a request to decide, or the answer to a request that needs no
    decision (see `read`)."""
    request = read(command, body)
    return request.decision_request() if isinstance(request, PolicyRequest) else request


def render(decision: Decision) -> Answer:
    """The adapter's `render`: allow and warn pass, block and quarantine refuse."""
    if decision.allowed:
        return 200, dict(ALLOW)
    message = " ".join(decision.message.split()) or "access refused by device policy"
    return 200, {"status": -1, "msg": message}


def answer(service: DecisionService, command: str, body: bytes) -> Answer:
    """One policy request through any `DecisionService` (`devicegate serve` adds replay and
    the decision log's wait around the same `parse` and `render`: server/dovecot_endpoint.py)."""
    parsed = parse(command, body)
    if not isinstance(parsed, DecisionRequest):
        return parsed
    decision = service.decide(parsed.user, parsed.resource, parsed.signals, adapter=ADAPTER)
    return render(decision)
