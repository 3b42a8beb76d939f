"""devicegate's own decision log: JSON lines, one decision per line.

    {"at": "2023-07-17T09:00:01+03:00", "user": "alice@minfin.example", "resource": "email",
     "adapter": "dovecot", "signals": {"imap_id": "(\\"name\\" \\"iPhone Mail\\")"},
     "action": "block", "rule": "apple-wave-1", "policy_version": "…"}

The audit re-judges every logged request under the policy being audited (that is the
"what if" question); the logged action is not trusted, only the request. Signals may also
appear at the top level (the `identify --jsonl` shape). Unknown signal keys are bad lines.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from devicegate.audit.events import SIGNAL_COLUMNS, Event, LineError
from devicegate.audit.formats.base import ParseContext

name = "decisions"
default_resource = "web"
#: its events carry device signals of their own (see `base.LogFormat`)
carries_device_data = True

_KNOWN_SIGNALS = {
    *SIGNAL_COLUMNS,
    "client_ip",
    "activesync_device_model",
    "activesync_device_os",
    "mdm_id",
    "tls_fingerprint",
}


def sniff(lines: Sequence[str]) -> bool:
    for line in lines:
        text = line.strip()
        if text:
            return text.startswith("{") and '"user"' in text and '"resource"' in text
    return False


def _text(data: dict[str, Any], key: str) -> str | None:
    value = data.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise LineError(f"`{key}` must be a string")
    return value


class Parser:
    def __init__(self, ctx: ParseContext) -> None:
        self.ctx = ctx
        self.skipped = 0

    def feed(self, line: str, number: int) -> Sequence[Event]:
        text = line.strip()
        if not text:
            return ()  # blank lines are nothing, not even skipped
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise LineError(f"invalid JSON: {exc.msg}") from None
        if not isinstance(data, dict):
            raise LineError("not a JSON object")
        nested = data.get("signals")
        if nested is not None and not isinstance(nested, dict):
            raise LineError("`signals` must be an object")
        signals: dict[str, Any] = dict(nested or {})
        for key in _KNOWN_SIGNALS:
            if key in data:
                signals.setdefault(key, data[key])
        unknown = set(signals) - _KNOWN_SIGNALS
        if unknown:
            raise LineError(f"unknown signal `{sorted(unknown)[0]}`")
        unsupported = {
            "activesync_device_model",
            "activesync_device_os",
            "mdm_id",
            "tls_fingerprint",
        } & {k for k, v in signals.items() if v}
        if unsupported:
            raise LineError(f"signal `{sorted(unsupported)[0]}` is not audited yet")
        user = _text(data, "user")
        stamp = _text(data, "at") or _text(data, "time")
        if user is None or stamp is None:
            raise LineError("needs `user` and `at`")
        try:
            at = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
        except ValueError:
            raise LineError(f"bad time `{stamp[:40]}`") from None
        if at.tzinfo is None:
            at = at.replace(tzinfo=self.ctx.tz)
        resource = self.ctx.resource or _text(data, "resource") or default_resource
        values = {key: _text(signals, key) for key in (*SIGNAL_COLUMNS, "client_ip")}
        return (Event(number, at, user, resource, **values),)

    def finish(self) -> Sequence[Event]:
        return ()


def parser(ctx: ParseContext) -> Parser:
    return Parser(ctx)
