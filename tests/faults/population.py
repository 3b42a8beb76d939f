"""The soak's world: a policy, a directory, and the requests of four protocols with the answer
each must get.

Every request template names its expected outcome from the policy's meaning (an operations
user on an Apple device is refused everywhere; the lab is never restricted; a clean Android
device is allowed), so "unexpected" is decided per answer, not by comparing runs. The policy
can be rewritten with a new `marker` rule — scoped to a unit nobody is in — so that a reload
changes the policy version without changing any expected answer.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from tests.server.scenario import base64_eas, plain_eas

APPLE_MAC = "3c:22:fb:{:02x}:{:02x}:{:02x}"  # Apple's MA-L prefix
REALTEK_MAC = "00:e0:4c:{:02x}:{:02x}:{:02x}"
IOS_MAIL = '("name" "iPhone Mail" "version" "20C65" "os" "iOS" "os-version" "16.2 (20C65)")'
THUNDERBIRD = '("name" "Thunderbird" "version" "115.3.{}")'
IPHONE_SAFARI = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 16_{} like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/16.{} Mobile/15E148 Safari/604.1"
)
ANDROID_CHROME = (
    "Mozilla/5.0 (Linux; Android 14; SM-S911B) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.6099.{} Mobile Safari/537.36"
)
ANDROID_EAS = "Android-Mail/2023.10.29.584035470.Release"
SPOOF_USER = "probe@probe.example"  # the hold-and-release probe's user, in no other request

#: what an answer means: a decision that lets the access through, one that refuses it, or
#: the server failing closed (no decision acknowledged)
ALLOW, DENY, CLOSED = "allow", "deny", "closed"


def policy_text(marker: int = 0) -> str:
    """The soak policy; `marker` only changes the version (its rule's unit has no users)."""
    return f"""version: 1
name: soak
timezone: UTC
units: [corp/ops, corp/lab, corp/probe, corp/nobody]
resources:
  web: {{description: intranet}}
  email: {{description: mail}}
  wifi: {{description: office Wi-Fi}}
rules:
  - id: no-apple
    scope: {{units: [corp/ops]}}
    when: {{vendor: [Apple]}}
    resources: [all]
    from: 2020-01-01
    effect: block
    message: Apple devices may no longer be used for work.
  - id: spoof-hold
    scope: {{units: [corp/probe]}}
    when: {{spoofing_suspected: true}}
    resources: [email]
    from: 2020-01-01
    effect: quarantine
    message: Conflicting device signals; the device is held for review.
  - id: marker-{marker}
    scope: {{units: [corp/nobody]}}
    when: {{vendor: [Apple]}}
    resources: [web]
    from: 2020-01-01
    effect: block
    message: reload marker {marker}
"""


def ops(i: int) -> str:
    return f"ops{i}@ops.example"


def lab(i: int) -> str:
    return f"lab{i}@lab.example"


def directory_text(users: int) -> str:
    rows = ["user,unit,groups,email,name"]
    rows += [f"ops{i},corp/ops,,{ops(i)},Ops {i}" for i in range(users)]
    rows += [f"lab{i},corp/lab,,{lab(i)},Lab {i}" for i in range(users)]
    rows.append(f"probe,corp/probe,,{SPOOF_USER},Probe")
    return "\n".join(rows) + "\n"


def write_world(root: Path, users: int = 500) -> tuple[Path, Path]:
    root.mkdir(parents=True, exist_ok=True)
    policy = root / "policy.yaml"
    policy.write_text(policy_text(), encoding="utf-8")
    directory = root / "directory.csv"
    directory.write_text(directory_text(users), encoding="utf-8")
    return policy, directory


@dataclass(frozen=True, slots=True)
class Template:
    """One request as bytes on the wire, its protocol, and the outcome it must get."""

    kind: str  # forward-auth | dovecot | postfix | radius
    raw: bytes
    expect: str  # ALLOW or DENY


def http(method: str, path: str, headers: dict[str, str], body: bytes = b"") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    if method == "POST":
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def forward_auth(user: str, agent: str, uri: str, resource: str = "web") -> bytes:
    headers = {"X-Devicegate-User": user, "User-Agent": agent, "X-Original-URI": uri}
    return http("GET", f"/v1/forward-auth/{resource}", headers)


def dovecot(user: str, imap_id: str) -> bytes:
    body = json.dumps({"login": user, "remote": "192.0.2.7", "device_id": imap_id}).encode()
    return http("POST", "/v1/dovecot/auth-policy?command=allow", {}, body)


def radius(user: str, mac: str) -> bytes:
    attrs = {
        "User-Name": {"type": "string", "value": [user]},
        "Calling-Station-Id": {"type": "string", "value": [mac]},
        "NAS-Port-Type": {"type": "integer", "value": ["Wireless-802.11"]},
    }
    return http("POST", "/v1/radius/authorize", {}, json.dumps(attrs).encode())


def postfix(user: str) -> bytes:
    lines = [
        "request=smtpd_access_policy",
        "protocol_state=RCPT",
        "protocol_name=ESMTP",
        "client_address=192.0.2.9",
        f"sasl_username={user}",
        "recipient=someone@example.org",
    ]
    return ("\n".join(lines) + "\n\n").encode()


def templates(users: int = 500) -> dict[str, list[Template]]:
    """Distinct requests per protocol over `users` operations and `users` lab users.

    Operations users with an even number are seen on Apple devices (refused on every
    protocol, SMTP included once the sighting exists: the warm-up pass makes it); odd ones on
    Android, Thunderbird or a Realtek adapter (allowed); the lab is allowed on anything."""
    fa: list[Template] = []
    dv: list[Template] = []
    pf: list[Template] = []
    rd: list[Template] = []
    for i in range(users):
        apple = i % 2 == 0
        minor = i % 7
        if apple:
            fa.append(
                Template(
                    "forward-auth",
                    forward_auth(ops(i), IPHONE_SAFARI.format(minor, minor), f"/p/{i}"),
                    DENY,
                )
            )
            dv.append(Template("dovecot", dovecot(ops(i), IOS_MAIL), DENY))
            rd.append(
                Template("radius", radius(ops(i), APPLE_MAC.format(1, i >> 8, i & 255)), DENY)
            )
        else:
            fa.append(
                Template(
                    "forward-auth",
                    forward_auth(ops(i), ANDROID_CHROME.format(minor), f"/p/{i}"),
                    ALLOW,
                )
            )
            eas = (
                plain_eas(f"DEV{i}", "Android", user="u")
                if i % 4 == 1
                else base64_eas(f"B64{i}", "SamsungSMS911B")
            )
            fa.append(
                Template("forward-auth", forward_auth(ops(i), ANDROID_EAS, eas, "email"), ALLOW)
            )
            dv.append(Template("dovecot", dovecot(ops(i), THUNDERBIRD.format(minor)), ALLOW))
            rd.append(
                Template("radius", radius(ops(i), REALTEK_MAC.format(1, i >> 8, i & 255)), ALLOW)
            )
        pf.append(Template("postfix", postfix(ops(i)), DENY if apple else ALLOW))
        fa.append(
            Template(
                "forward-auth",
                forward_auth(lab(i), IPHONE_SAFARI.format(minor, minor), f"/lab/{i}"),
                ALLOW,
            )
        )
        dv.append(Template("dovecot", dovecot(lab(i), IOS_MAIL), ALLOW))
        pf.append(Template("postfix", postfix(lab(i)), ALLOW))
    return {"forward-auth": fa, "dovecot": dv, "postfix": pf, "radius": rd}
