"""The bundled critical-infrastructure rule (`cii-domestic-only`: `only: {platform: [Aurora,
Linux]}`, `on_unidentified: block`) lets each approved domestic platform in and keeps Apple
devices out — through `devicegate check` and through a real `devicegate serve` process.

Signals are what the platforms' clients send (tests/identify/cases/domestic.yaml says where
each form comes from); the Aurora device and its client certificate are k.belov's in the
bundled inventory (examples/apple-ban/devices.csv).
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.server import procs

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "apple-ban"
POLICY = EXAMPLE / "policy.yaml"
DIRECTORY = EXAMPLE / "directory.csv"
DEVICES = EXAMPLE / "devices.csv"
CII_USER = "k.belov@rostec.example"
AT = "2025-02-03T09:00"  # the rule is in force from 2025-01-01 (and `serve` runs now)
AURORA_MDM_ID = "mdm-b00fd1e95e7d"
AURORA_CERT = "91ca402ed5763be88059c9a6a47052d83e23c21d3f7b5e40770b7c0ec27173dd"

SAILFISH_ENGINE = "Mozilla/5.0 (Mobile; rv:78.0) Gecko/78.0 Firefox/78.0"
LINUX_FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:115.0) Gecko/20100101 Firefox/115.0"
IPHONE_SAFARI = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.2 Mobile/15E148 Safari/604.1"
)


def _eas_base64(device_type: str) -> str:
    """[MS-ASHTTP] base64 query (14.1, Sync, en-US, no policy key), percent-encoded as
    clients and proxies send it."""
    import base64

    device_id = b"EXAMPLEDEVICE01"
    raw = bytes([141, 0]) + (0x0409).to_bytes(2, "little")
    raw += bytes([len(device_id)]) + device_id + bytes([0])
    raw += bytes([len(device_type)]) + device_type.encode()
    return quote(base64.b64encode(raw).decode(), safe="")


@dataclass(frozen=True)
class Case:
    name: str
    resource: str
    signals: dict[str, str] = field(default_factory=dict)
    action: str = "allow"
    rule: str | None = None
    served: bool = True  # the signals can reach `serve` through forward-auth


def blocked(name: str, resource: str, signals: dict[str, str]) -> Case:
    """An Apple device: blocked by the critical-infrastructure rule."""
    return Case(name, resource, signals, action="block", rule="cii-domestic-only")


APPROVED = [
    Case("aurora: MDM inventory record (attested)", "web", {"mdm_id": AURORA_MDM_ID}, served=False),
    Case(
        "aurora: Sailfish-engine browser with the device's client certificate",
        "web",
        {"user_agent": SAILFISH_ENGINE, "tls_fingerprint": AURORA_CERT},
    ),
    Case(
        "aurora: app naming Aurora OS",
        "web",
        {"user_agent": "ExampleMail/2.1 (Linux; Aurora OS 5.1.0; Mobile)"},
    ),
    Case(
        "aurora: mail client's IMAP ID naming Aurora OS",
        "email",
        {"imap_id": '("name" "ExampleMail" "os" "Aurora OS" "os-version" "5.1.0")'},
        served=False,
    ),
    Case(
        "aurora: ActiveSync DeviceType naming Aurora",
        "email",
        {"activesync_query": f"Cmd=Sync&User={CII_USER}&DeviceId=EXAMPLE0001&DeviceType=AuroraOS"},
    ),
    Case("astra linux: Firefox ESR (generic Linux agent)", "web", {"user_agent": LINUX_FIREFOX}),
    Case(
        "astra linux: Firefox naming the distribution",
        "web",
        {"user_agent": LINUX_FIREFOX.replace("X11; ", "X11; Astra Linux; ")},
    ),
    Case(
        "alt linux: Chromium (generic Linux agent)",
        "web",
        {
            "user_agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/120.0.0.0 Safari/537.36"
        },
    ),
    Case(
        "red os: Firefox naming the distribution",
        "web",
        {"user_agent": LINUX_FIREFOX.replace("X11; ", "X11; RED OS; ")},
    ),
    Case("linux desktop: Evolution (Exchange/CalDAV)", "email", {"user_agent": "Evolution/3.46.4"}),
    Case(
        "astra linux: mail client's IMAP ID",
        "email",
        {"imap_id": '("name" "ExampleMail" "os" "Astra Linux" "os-version" "1.7.5")'},
        served=False,
    ),
]

APPLE = [
    blocked("apple: iPhone Safari", "web", {"user_agent": IPHONE_SAFARI}),
    blocked("apple: iPhone Exchange agent", "email", {"user_agent": "Apple-iPhone14C2/2006.66"}),
    blocked(
        "apple: in-app agent with a hardware id",
        "web",
        {"user_agent": "ExampleChat/10.5.2 (iOS 17.2.1; iPhone14,2)"},
    ),
    blocked("apple: app naming macOS", "web", {"user_agent": "ExampleSync/5.0 macOS/14.2"}),
    blocked(
        "apple: iPad in desktop mode (macOS or iPadOS)",
        "web",
        {
            "user_agent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 "
            "(KHTML, like Gecko) Version/17.2 Safari/605.1.15"
        },
    ),
    blocked(
        "apple: media framework",
        "web",
        {"user_agent": "AppleCoreMedia/1.0.0.21C66 (iPhone; U; CPU OS 17_2_1 like Mac OS X)"},
    ),
    blocked(
        "apple: percent-encoded base64 ActiveSync query of an iPhone",
        "email",
        {"activesync_query": _eas_base64("iPhone")},
    ),
]

UNPROVEN = Case(
    "sailfish family: Sailfish-engine browser alone", "web", {"user_agent": SAILFISH_ENGINE}
)

CLI_FLAGS = {
    "user_agent": "--user-agent",
    "mdm_id": "--mdm-id",
    "tls_fingerprint": "--tls-fingerprint",
    "imap_id": "--imap-id",
    "activesync_query": "--activesync-query",
}


def check(
    case: Case, policy: Path = POLICY, user: str = CII_USER, at: str = AT
) -> dict[str, object]:
    """`devicegate check --json` as an operator runs it (a real process)."""
    argv = [procs.DEVICEGATE, "check", "-p", str(policy), "-d", str(DIRECTORY)]
    argv += ["--devices", str(DEVICES), "--user", user, "--resource", case.resource]
    argv += ["--at", at, "--json"]
    for key, value in case.signals.items():
        argv += [CLI_FLAGS[key], value]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout)
    return result


def assert_identified(case: Case, decision: dict[str, object]) -> None:
    """Not merely unknown (which the rule blocks too): Apple devices are named Apple, and
    an approved device's every platform claim is the approved platform."""
    device = decision["device"]
    assert isinstance(device, dict)
    claims = device["claims"]
    if case in APPLE:
        assert "Apple" in claims.get("vendor", []), (case.name, device)
    else:
        wanted = "Aurora" if case.name.startswith("aurora") else "Linux"
        assert claims.get("platform") == [wanted], (case.name, device)


@pytest.mark.slow
@pytest.mark.parametrize("case", APPROVED + APPLE, ids=lambda c: c.name)
def test_check_cii_rule(case: Case) -> None:
    decision = check(case)
    assert (decision["action"], decision["rule"]) == (case.action, case.rule), decision["device"]
    assert_identified(case, decision)


@pytest.mark.slow
def test_check_sailfish_family_needs_proof_or_a_policy_naming_sailfish(tmp_path: Path) -> None:
    """The Sailfish engine's agent does not say Aurora: the bundled rule blocks it until the
    device proves Aurora (inventory, client certificate, a client naming Aurora) — or the
    policy also approves Sailfish."""
    decision = check(UNPROVEN)
    assert (decision["action"], decision["rule"]) == ("block", "cii-domestic-only")
    device = decision["device"]
    assert isinstance(device, dict) and device["claims"]["platform"] == ["Sailfish"]
    naming_sailfish = tmp_path / "policy.yaml"
    text = POLICY.read_text(encoding="utf-8")
    assert "only: {platform: [Aurora, Linux]}" in text
    naming_sailfish.write_text(
        text.replace(
            "only: {platform: [Aurora, Linux]}", "only: {platform: [Aurora, Sailfish, Linux]}"
        ),
        encoding="utf-8",
    )
    decision = check(UNPROVEN, policy=naming_sailfish)
    assert (decision["action"], decision["rule"]) == ("allow", None)


@pytest.mark.slow
def test_check_android_named_after_an_iphone_is_not_banned() -> None:
    """The look-alike false positive, at the policy: wave 1 bans Apple in the trade
    ministry; an Android clone whose model name contains `iPhone` is not Apple."""
    clone = Case(
        "android clone",
        "web",
        {
            "user_agent": "Mozilla/5.0 (Linux; Android 10; SOYES XS11 iPhone "
            "Build/QP1A.190711.020) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/96.0.4664.45 Mobile Safari/537.36"
        },
    )
    decision = check(clone, user="m.sokolova@minpromtorg.example", at="2023-08-01T09:00")
    assert (decision["action"], decision["rule"]) == ("allow", None)


@pytest.mark.integration
@pytest.mark.slow
def test_serve_cii_rule(tmp_path: Path) -> None:
    """The same decisions from a real `devicegate serve`: asked as nginx asks it
    (forward-auth), and as a what-if (`/v1/check`, which shows the device it identified)."""
    store = f"sqlite:///{tmp_path}/dg.db"
    cases = APPROVED + APPLE + [UNPROVEN]
    with (
        procs.devicegate(
            tmp_path, POLICY, DIRECTORY, store, extra=("--devices", str(DEVICES))
        ) as server,
        server.client() as client,
    ):
        for case in cases:
            if not case.served:  # no forward-auth header carries these: `/v1/check` only
                what_if = client.post(
                    "/v1/check",
                    json={"user": CII_USER, "resource": case.resource, "signals": case.signals},
                ).json()
                assert (what_if["action"], what_if["rule"]) == (case.action, case.rule)
                assert_identified(case, what_if)
                continue
            headers = {"X-Devicegate-User": CII_USER}
            if "user_agent" in case.signals:
                headers["User-Agent"] = case.signals["user_agent"]
            if "tls_fingerprint" in case.signals:
                headers["X-Client-Cert-Fingerprint"] = case.signals["tls_fingerprint"]
            uri = "/"
            if "activesync_query" in case.signals:
                uri = "/Microsoft-Server-ActiveSync?" + case.signals["activesync_query"]
            headers["X-Original-URI"] = uri
            answer = client.get(f"/v1/forward-auth/{case.resource}", headers=headers)
            expected = "block" if case is UNPROVEN else case.action
            if case is not UNPROVEN:
                body = {"user": CII_USER, "resource": case.resource, "signals": case.signals}
                what_if = client.post("/v1/check", json=body).json()
                assert (what_if["action"], what_if["rule"]) == (case.action, case.rule)
                assert_identified(case, what_if)
            if expected == "allow":
                assert answer.status_code == 200, (case.name, answer.text)
                assert answer.headers["x-devicegate-action"] == "allow", case.name
            else:
                assert answer.status_code == 403, (case.name, answer.text)
                body = answer.json()
                assert (body["action"], body["rule"]) == ("block", "cii-domestic-only"), case.name
