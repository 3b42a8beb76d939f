"""HTTP User-Agent: our rules for what generic parsers get wrong, then ua-parser.

Generic parsers are built for browsers. Work services mostly see *other* clients: Apple's
mail and calendar daemons, Exchange ActiveSync agents, CFNetwork apps, Office for Mac and
Microsoft's Outlook cloud. ua-parser reads several of these wrongly (a Mac's
`CFNetwork … Darwin/22.6.0 (x86_64)` becomes "iOS 16"; `Outlook-iOS-Android/1.0`, a server
in Microsoft's cloud, becomes an Android phone), so the rules below run first, each named,
in order; the first that recognises the agent decides. Everything else goes to ua-parser
with its Rust accelerator (`ua_parser.regex.Resolver`), built once, lazily.

ua-parser's answer is checked, not trusted blindly: its device patterns find `iPhone` inside
other words, so an Apple claim stands only beside an Apple platform or a whole Apple token.
Agents that are neither browsers nor Apple's own clients — in-app browsers, third-party
apps, media players, developer tools — carry Apple's names in forms of their own; the rules
for them (apple_agents.py) run where ua-parser knows nothing or says Apple about a
non-browser agent, so browsers, most of the traffic, never pay for them. The domestic
platforms (domestic.py) are named where ua-parser says Maemo, Firefox OS, Linux or nothing.

A User-Agent is chosen by the client, so every claim here is `reported`.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Mapping
from typing import Any

from devicegate.identify import apple, apple_agents, domestic
from devicegate.identify.base import NOTHING, Extracted, agent_evidence, clean, clip, make_evidence
from devicegate.identify.names import (
    APPLE_PLATFORMS,
    canonical_platform,
    canonical_vendor,
    excludes_apple,
    implied_vendor,
)
from devicegate.model import DeviceKind, Evidence, Signals, Trust

SIGNAL = "user_agent"
MAX_LENGTH = 2048

_OUTLOOK_SERVICE = re.compile(r"^Outlook-iOS-Android/", re.IGNORECASE)
_OUTLOOK_APP = re.compile(r"^Outlook-(iOS|Android)/\S*(?:\s|$)", re.IGNORECASE)
_EXCHANGE_APPLE = re.compile(
    r"^Apple-(iPhone|iPad|iPod|Watch|AppleTV|RealityDevice|Mac\w*)(?:(\d{1,3})C(\d{1,3}))?/(\S+)"
)
_APPLE_DAEMON = re.compile(
    r"^(iOS|iPadOS|iPhone OS|watchOS|tvOS|visionOS|xrOS|macOS|Mac OS X|Mac_OS_X|Mac OS|OS X)"
    r"/(\d{1,2}(?:[._]\d{1,4}){0,3})(?:\s*\(([0-9A-Za-z]{3,12})\))?"
)
_OFFICE_MAC = re.compile(r"^(?:Microsoft Office|Outlook-Mac|MacOutlook|Microsoft Outlook)/")
_MAC_OS_VERSION = re.compile(r"Mac OS X (\d{1,2}(?:[._]\d{1,4}){0,3})(?: \(Build (\w{3,12})\))?")
_DARWIN = re.compile(r"\bDarwin/(\d{1,2})(?:\.\d+){0,3}")
_ARCH = re.compile(r"[(;]\s*(x86_64|arm64e?|i386|ppc)\b")
_OS_TOKEN = re.compile(
    r"\b(iOS|iPadOS|iPhone OS|watchOS|tvOS|visionOS|macOS|Mac OS X)[ /_;]+"
    r"(\d{1,2}(?:[._]\d{1,4}){0,3})"
)
_DIGIT_COMMA = re.compile(r"\d,\d")
_BUILD_TOKEN = re.compile(r"\bbuild/(\w{3,12})", re.IGNORECASE)
_DESKTOP_MAC = re.compile(r"\(Macintosh; Intel Mac OS X 10_15(?:_\d+)?\)")
_SAFARI_VERSION = re.compile(r"\bVersion/(\d{1,2}(?:\.\d{1,3}){0,2}) (?:Mobile/\w+ )?Safari/")
_OTHER_BROWSER = re.compile(
    r"Chrome/|Chromium/|CriOS/|Firefox/|FxiOS/|Edg\w*/|OPR/|Opera|YaBrowser/|Vivaldi/|EdgiOS/"
)


def _dotted(version: str) -> str:
    return version.replace("_", ".")


def _outlook(ua: str) -> Evidence | None:
    if not ua.startswith(("Outlook", "outlook", "OUTLOOK")):
        return None
    if _OUTLOOK_SERVICE.match(ua):
        return agent_evidence(
            "outlook-service",
            [("kind", DeviceKind.SERVICE.value)],
            0.95,
            "Outlook for iOS/Android syncs through Microsoft's cloud: this agent is a "
            "server, not the phone; it claims no vendor or platform",
        )
    match = _OUTLOOK_APP.match(ua)
    if match is None:
        return None
    if match.group(1).lower() == "android":
        return agent_evidence("outlook-app", [("platform", "Android")], 0.8)
    ipad = "ipad" in ua.lower()
    return agent_evidence(
        "outlook-app",
        [
            ("vendor", "Apple"),
            ("platform", "iPadOS" if ipad else "iOS"),
            ("kind", (DeviceKind.TABLET if ipad else DeviceKind.HANDSET).value),
        ],
        0.8,
    )


def _exchange_apple(ua: str) -> Evidence | None:
    if not ua.startswith("Apple-"):
        return None
    match = _EXCHANGE_APPLE.match(ua)
    if match is None:
        return None
    family, major, minor, build_text = match.groups()
    model: str | None = None
    if major is not None:
        decoded_hw = apple.hardware(f"{family}{major},{minor}")
        model = decoded_hw[0] if decoded_hw else None
    cls = apple.hardware_class(family) or apple.hardware_class("Mac")
    assert cls is not None
    platform, kind = cls
    version: str | None = None
    note = ""
    decoded = apple.decode_exchange_build(build_text)
    if decoded is not None:
        build, train, letter = decoded
        version = apple.version_from_train(train, letter, platform)
        note = f"Exchange build `{clean(build_text, 24)}` = Apple build {build}"
    if family == "iPad":
        platform = apple.ipad_platform(version)
    return agent_evidence(
        "exchange-activesync",
        [
            ("vendor", "Apple"),
            ("platform", platform),
            ("model", model),
            ("os_version", version),
            ("kind", kind.value),
        ],
        0.9,
        note,
    )


def _apple_daemon(ua: str) -> Evidence | None:
    if ua[:1] not in "iIwtvxmMO":
        return None
    match = _APPLE_DAEMON.match(ua)
    if match is None:
        return None
    name, version, build = match.groups()
    platform = canonical_platform(name) or "iOS"
    version = _dotted(version)
    kind = apple.platform_kind(platform)
    model = None
    hw = apple.HARDWARE_ID.search(ua)
    if hw is not None:
        decoded = apple.hardware(hw.group(0))
        if decoded is not None:
            model, _, hw_kind = decoded
            kind = hw_kind
    note = f"build {clean(build, 12)}" if build else ""
    return agent_evidence(
        "apple-daemon",
        [
            ("vendor", "Apple"),
            ("platform", platform),
            ("model", model),
            ("os_version", version),
            ("kind", kind.value if kind else None),
        ],
        0.9,
        note,
    )


def _office_mac(ua: str) -> Evidence | None:
    if not ua.startswith(("Microsoft", "Outlook-Mac", "MacOutlook")) or not _OFFICE_MAC.match(ua):
        return None
    match = _MAC_OS_VERSION.search(ua)
    if match is None:
        return None
    version, build = _dotted(match.group(1)), match.group(2)
    note = "Office for Mac reports the real macOS version (browsers freeze it at 10.15.7)"
    if build and apple.is_build(build):
        note += f"; build {build}"
    return agent_evidence(
        "office-mac",
        [
            ("vendor", "Apple"),
            ("platform", "macOS"),
            ("os_version", version),
            ("kind", DeviceKind.DESKTOP.value),
        ],
        0.85,
        note,
    )


def _darwin(ua: str) -> Evidence | None:
    if "Darwin/" not in ua:
        return None
    match = _DARWIN.search(ua)
    if match is None or apple_agents.non_apple(ua):
        return None  # no kernel, or Darwin named in passing by another platform's agent
    kernel = int(match.group(1))
    if _ARCH.search(ua, match.end()):
        version = apple.darwin_version(kernel, "macOS")
        return agent_evidence(
            "cfnetwork-darwin",
            [
                ("vendor", "Apple"),
                ("platform", "macOS"),
                ("os_version", version),
                ("kind", DeviceKind.DESKTOP.value),
            ],
            0.85,
            f"Darwin {kernel} with an architecture suffix: a Mac",
        )
    version = apple.darwin_version(kernel, "iOS")
    return agent_evidence(
        "cfnetwork-darwin",
        [
            ("vendor", "Apple"),
            ("platform", "iOS"),
            ("platform", "iPadOS"),
            ("os_version", version),
        ],
        0.8,
        f"Darwin {kernel} without an architecture suffix: an iPhone or iPad, not a Mac",
    )


def _hardware_id(ua: str) -> Evidence | None:
    commas = ua.count(",")
    if commas == 1 and "KHTML, like" in ua:
        commas = 0  # every WebKit browser's one comma: not worth a search
    if not ((commas and _DIGIT_COMMA.search(ua)) or "%2C" in ua or "%2c" in ua):
        return None
    match = apple.HARDWARE_ID.search(ua)
    if match is None or apple_agents.non_apple(ua):
        return None  # no id, or an Android/Windows/… agent that borrows one
    decoded = apple.hardware(match.group(0))
    if decoded is None:  # pragma: no cover - HARDWARE_ID only matches known families
        return None
    model, platform, kind = decoded
    version = None
    token = _OS_TOKEN.search(ua)
    if token is not None:
        version = _dotted(token.group(2))
    else:
        build = _BUILD_TOKEN.search(ua)
        if build is not None and platform is not None:
            version = apple.version_from_build(build.group(1), platform)
    if model.startswith("iPad"):
        platform = apple.ipad_platform(version)
    return agent_evidence(
        "apple-hardware-id",
        [
            ("vendor", "Apple"),
            ("platform", platform),
            ("model", model),
            ("os_version", version),
            ("kind", kind.value if kind is not DeviceKind.UNKNOWN else None),
        ],
        0.85,
        f"token `{clean(match.group(0), 24)}`: Apple's hardware id",
    )


def _desktop_mode(ua: str) -> Evidence | None:
    if "Macintosh; Intel Mac OS X 10_15" not in ua or not _DESKTOP_MAC.search(ua):
        return None
    safari = _SAFARI_VERSION.search(ua)
    if safari is None or _OTHER_BROWSER.search(ua):
        return None
    return agent_evidence(
        "safari-mac-or-ipad",
        [("vendor", "Apple"), ("platform", "macOS"), ("platform", "iPadOS")],
        0.6,
        f"Safari {safari.group(1)} with the frozen `Intel Mac OS X 10_15_7` token is what "
        "both a Mac and an iPad (or iPhone) in desktop mode send: the platform cannot be "
        "told apart; the vendor can",
    )


#: Our rules, in order. The first that recognises the agent decides.
RULES: tuple[tuple[str, Callable[[str], Evidence | None]], ...] = (
    ("outlook", _outlook),
    ("exchange-activesync", _exchange_apple),
    ("apple-daemon", _apple_daemon),
    ("office-mac", _office_mac),
    ("cfnetwork-darwin", _darwin),
    ("apple-compact", apple_agents.compact),
    ("apple-hardware-id", _hardware_id),
    ("safari-mac-or-ipad", _desktop_mode),
)

#: Browsers (`Mozilla/…`) are most traffic; of our rules only these two can apply to them,
#: and the last (Safari's frozen Mac agent) applies to nothing else.
_BROWSER_RULES = (_hardware_id, _desktop_mode)
_ALL_RULES = tuple(rule for _, rule in RULES if rule is not _desktop_mode)


class _Parser:
    """ua-parser's Rust-backed resolver, built on first use (it compiles ~1,000 regexes).

    We call the resolver's OS and device extractors (`ua_parser.regex.Resolver.os` / `.de`,
    both `ua_parser_rs` objects) directly: the browser domain is never needed, and skipping
    the intermediate `PartialResult` halves the Python overhead around the Rust matching.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._extractors: tuple[Any, Any] | None = None

    def extractors(self) -> tuple[Any, Any]:
        found = self._extractors
        if found is not None:
            return found
        with self._lock:
            if self._extractors is None:
                from ua_parser import load_lazy_builtins
                from ua_parser.regex import Resolver

                resolver = Resolver(load_lazy_builtins())
                self._extractors = (resolver.os, resolver.de)
            return self._extractors


PARSER = _Parser()

_GENERIC_MODELS = frozenset(
    {"smartphone", "feature phone", "ios-device", "tablet", "other", "browser"}
)


def _frozen(ua: str, platform: str | None, version: str, model: str | None) -> bool:
    """Browsers freeze the OS version they send (User-Agent reduction): a Mac says
    10.15.7 whatever it runs, Windows 11 says NT 10.0, reduced Android says `10; K`."""
    if not ua.startswith("Mozilla/"):
        return False
    if platform == "macOS":
        return version == "10.15.7" and "Mac OS X 10_15_7" in ua
    if platform == "Windows":
        return version == "10" and "Windows NT 10.0" in ua
    if platform == "Android":
        return model == "K" or "Android 10; K)" in ua
    return False


def _version(os: Any) -> str | None:
    major: str | None = os.major
    if not major or not major.isdigit():
        return None
    minor = os.minor
    if not minor or not minor.isdigit():
        return major
    patch = os.patch
    if not patch or not patch.isdigit():
        return f"{major}.{minor}"
    return f"{major}.{minor}.{patch}"


_DESKTOP_PLATFORMS = frozenset({"macOS", "Windows", "Linux", "ChromeOS", "BSD"})


def _uaparser(ua: str) -> Evidence | None:
    os_extractor, device_extractor = PARSER.extractors()
    os = os_extractor.extract(ua)
    device = device_extractor.extract(ua)
    platform = canonical_platform(os.family) if os is not None else None
    version = _version(os) if platform else None
    family = vendor = model = None
    if device is not None:
        family = device.family
        if family == "Spider":
            return Evidence(
                SIGNAL,
                Trust.REPORTED,
                "useragent/ua-parser",
                (("kind", DeviceKind.SERVICE.value),),
                "a crawler or bot: any device named in it is borrowed",
                0.7,
            )
        vendor = canonical_vendor(device.brand)
        raw_model = device.model
        if raw_model and raw_model.lower() not in _GENERIC_MODELS:
            model = clean(raw_model, 64)
    if vendor is None:
        vendor = implied_vendor(platform)
        if vendor is None:
            model = None
    note = ""
    if platform == "Android" and "HarmonyOS" in ua:
        platform, vendor, version = "HarmonyOS", vendor or "Huawei", None
    if version is not None and _frozen(ua, platform, version, model):
        note = f"{platform} {version} is a frozen browser value, not the real version"
        version = None
        if model == "K":
            model = None
    kind: DeviceKind | None = None
    if platform == "iOS" and family == "iPad":
        platform, kind = apple.ipad_platform(version), DeviceKind.TABLET
    elif platform == "iOS" and family in ("iPhone", "iPod"):
        kind = DeviceKind.HANDSET
    elif platform in _DESKTOP_PLATFORMS:
        kind = DeviceKind.DESKTOP
    elif platform == "watchOS":
        kind = DeviceKind.WATCH
    elif platform == "tvOS":
        kind = DeviceKind.TV
    elif platform in ("Windows Phone", "Windows Mobile"):
        kind = DeviceKind.HANDSET
    elif platform == "Android" and ua.startswith("Mozilla/"):
        kind = DeviceKind.HANDSET if "Mobile" in ua else DeviceKind.TABLET
    if vendor == "Apple" and not _apple_claim_stands(platform, ua):
        note = (
            f"`{clean(model or 'Apple', 32)}` appears only inside another word"
            + (f"; the agent runs {platform}" if platform not in APPLE_PLATFORMS else "")
            + ": not an Apple device"
        )
        vendor = model = None
        if platform in APPLE_PLATFORMS:  # the Apple platform came from the same word
            platform = version = kind = None
        if platform is None:
            return agent_evidence("ua-parser", [], 0.0, note)
    if platform in _SAILFISH_SUSPECTS or (
        platform == "Android" and ("Sailfish" in ua or "Aurora" in ua)
    ):
        sailfish = domestic.sailfish_family(ua)
        if sailfish is not None:
            return sailfish
    if platform is None and vendor is None:
        return None
    says = []
    if vendor:
        says.append(("vendor", vendor))
    if platform:
        says.append(("platform", platform))
    if model:
        says.append(("model", model))
    if version:
        says.append(("os_version", version))
    if kind:
        says.append(("kind", kind.value))
    if platform == "Linux":
        named = domestic.distribution(ua)
        if named is not None:
            says.append(("distribution", named[0]))
            note = f"distribution named by token `{clean(named[1], 24)}`"
    return Evidence(
        SIGNAL,
        Trust.REPORTED,
        "useragent/ua-parser",
        tuple(says),
        note,
        0.7 if platform and vendor else 0.6,
    )


#: Apple names one of which, as a whole token, must back any Apple claim ua-parser makes.
_APPLE_TOKEN = re.compile(
    r"(?<![A-Za-z])(?:iPhone|iPad|iPod|iPh|iOS|iPadOS|Macintosh|Mac|MacOS|macOS|OS ?X|Darwin"
    r"|CFNetwork|Apple|AppleTV|ATV|Watch|watchOS|WatchOS|tvOS|visionOS)(?![a-z])"
)

#: Browsers whose platform comment, first in the agent, names an Apple device.
_APPLE_BROWSERS = (
    "Mozilla/5.0 (iPhone;",
    "Mozilla/5.0 (iPad;",
    "Mozilla/5.0 (iPod",
    "Mozilla/5.0 (Macintosh;",
)

#: Puffin's device suffix: `IP` an iPhone, `IT` an iPad (CloudMosa's agent format).
_PUFFIN_APPLE = re.compile(r"Puffin/[\d.]{1,20}I[PT](?![A-Za-z])")

_APPLE = (("vendor", "Apple"),)

#: ua-parser platforms behind which a Sailfish-family agent may hide.
_SAILFISH_SUSPECTS = frozenset({"Maemo", "Firefox OS", "Linux", "Sailfish"})


def _apple_claim_stands(platform: str | None, ua: str) -> bool:
    """ua-parser's patterns find `iPhone` inside other words (`XiPhone13`, `HiPhone13,2`, an
    Android clone named `SOYES XS11 iPhone`). Its Apple claim stands only when an Apple name
    stands in the agent as a whole token and no platform Apple hardware never runs is named
    (Android, HarmonyOS, Windows…). A Linux desktop token does not refute an iOS answer:
    Facebook's iOS app and Puffin's cloud browser (`Puffin/3.10990IP`) send one."""
    if platform is None:
        return _APPLE_TOKEN.search(ua) is not None and not apple_agents.non_apple(ua)
    if platform in APPLE_PLATFORMS:
        if ua.startswith(_APPLE_BROWSERS):
            return True  # the browser's own platform comment is Apple's: no passing mention
        return _APPLE_TOKEN.search(ua) is not None and not apple_agents.non_apple(ua, linux=False)
    return not excludes_apple(platform) and _PUFFIN_APPLE.search(ua) is not None


def identify_user_agent(ua: str) -> Evidence | None:
    """Evidence for one User-Agent string, or None when nothing in it identifies a device.

    Order: our rules for Apple's clients (browsers skip all but two), then ua-parser, whose
    answer is checked (an Apple claim needs a whole token; a Sailfish-family agent or a
    Linux distribution is named). The rules for Apple's names in third-party agents run
    only where ua-parser knows nothing, or says Apple about an agent that is no browser
    (they read its version and kind better: `ExampleMeet.iOS/5.17.0` is no iOS 5.17); a crawler
    or a non-Apple answer from ua-parser stands. Last, for agents ua-parser does not know,
    the rules for domestic platforms and Linux mail clients."""
    browser = ua.startswith("Mozilla/")
    for rule in _BROWSER_RULES if browser else _ALL_RULES:
        found = rule(ua)
        if found is not None:
            return found
    found = _uaparser(ua)
    if found is None:
        return (
            apple_agents.recognise(ua) or domestic.sailfish_family(ua) or domestic.linux_agent(ua)
        )
    if not browser and found.says[:1] == _APPLE:
        return apple_agents.recognise(ua) or found
    return found


def user_agent_evidence(raw: str) -> Evidence:
    """The evidence one non-empty User-Agent gives: cut to `MAX_LENGTH`, NULs dropped."""
    ua, truncated = (raw, False) if len(raw) <= MAX_LENGTH else clip(raw, MAX_LENGTH)
    if "\x00" in ua:
        ua = ua.replace("\x00", "")
    found = identify_user_agent(ua.strip())
    if found is None:
        note = "no rule or parser recognised this agent"
        if truncated:
            note += f"; truncated to {MAX_LENGTH} characters"
        return make_evidence(SIGNAL, Trust.REPORTED, "useragent", (), note=note, confidence=0.0)
    if truncated:
        note = f"{found.note}; truncated" if found.note else "truncated"
        found = Evidence(
            found.signal,
            found.trust,
            found.source,
            found.says,
            note + f" to {MAX_LENGTH} characters",
            found.confidence,
        )
    return found


def extract_user_agent(signals: Signals, keys: Mapping[str, str]) -> Extracted:
    """Extractor: `Signals.user_agent` (and ActiveSync's own agent header is the same field)."""
    raw = signals.user_agent
    if not raw or raw.isspace():
        return NOTHING
    return Extracted(evidence=(user_agent_evidence(raw),))
