"""Canonical platform and vendor names, so that every signal speaks the same words.

Policies say `vendor: [Apple]` and `platform: [iOS, iPadOS]`; parsers say `Mac OS X`,
`iPhone OS`, `XiaoMi`, `HUAWEI TECHNOLOGIES CO.,LTD`. Everything an extractor claims goes
through this module first, so a rule written once matches whatever spelling a client used.

Two more ideas live here because combine needs them and extractors must agree on them:

- *implied vendor*: an Apple platform can only run on Apple hardware (and HarmonyOS only on
  Huawei's), so a signal that names the platform also names the vendor;
- *platform family*: iOS and iPadOS are one family (an iPad on iOS 12 said "iOS", an iPad
  mail daemon still says "iOS/17.0"), and Android, Linux, ChromeOS, HarmonyOS, Sailfish and
  Aurora are one family (Android Chrome's desktop mode sends a Linux User-Agent; HarmonyOS
  apps say Android; Aurora OS is built on Sailfish OS, whose browser tells some sites it is
  Android), so disagreement *inside* a family is not a spoofing suspicion.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache


@dataclass(frozen=True, slots=True)
class Platform:
    """A platform identification can name, and what it knows of the hardware that runs it.

    `vendor`: the one maker whose hardware runs it (iOS: Apple); None when several do.
    `never_on`: makers whose hardware never runs it (Android: not Apple). Windows, Linux
    and ChromeOS Flex do run on Macs (Boot Camp, installs), so they exclude nobody.
    """

    name: str
    vendor: str | None = None
    never_on: frozenset[str] = frozenset()


_NOT_APPLE = frozenset({"Apple"})

#: Every platform identification names: the one list, in canonical spelling. Policy
#: validation accepts exactly these in `platform:` (plus what a policy declares under
#: `platforms:`), and knows from it which maker's hardware runs which platform. A new
#: platform an extractor or `canonical_platform` may return is added here first
#: (tests/policy/test_vocabulary.py fails otherwise).
PLATFORMS: tuple[Platform, ...] = (
    Platform("iOS", vendor="Apple"),
    Platform("iPadOS", vendor="Apple"),
    Platform("macOS", vendor="Apple"),
    Platform("watchOS", vendor="Apple"),
    Platform("tvOS", vendor="Apple"),
    Platform("visionOS", vendor="Apple"),
    Platform("HarmonyOS", vendor="Huawei"),
    Platform("Android", never_on=_NOT_APPLE),
    Platform("Windows Phone", never_on=_NOT_APPLE),
    Platform("Windows Mobile", never_on=_NOT_APPLE),
    Platform("Aurora", never_on=_NOT_APPLE),
    Platform("Sailfish", never_on=_NOT_APPLE),
    Platform("KaiOS", never_on=_NOT_APPLE),
    Platform("Tizen", never_on=_NOT_APPLE),
    Platform("BlackBerry", never_on=_NOT_APPLE),
    Platform("Symbian", never_on=_NOT_APPLE),
    Platform("Firefox OS", never_on=_NOT_APPLE),
    Platform("webOS", never_on=_NOT_APPLE),
    Platform("Windows"),
    Platform("Linux"),
    Platform("ChromeOS"),
    Platform("BSD"),
)

#: Every device maker identification names, in canonical spelling: the one list policy
#: validation accepts in `vendor:` (plus what a policy declares under `vendors:`). The alias
#: and registry tables below map onto these names only.
VENDORS: tuple[str, ...] = (
    "Apple",
    "Samsung",
    "Google",
    "Huawei",
    "Honor",
    "Xiaomi",
    "Microsoft",
    "OPPO",
    "vivo",
    "OnePlus",
    "realme",
    "Motorola",
    "Lenovo",
    "LG",
    "HTC",
    "Nokia",
    "HMD",
    "Sony",
    "Sony Ericsson",
    "ZTE",
    "ASUS",
    "BlackBerry",
    "Amazon",
    "Meizu",
    "Fairphone",
    "Nothing",
    "TECNO",
    "Infinix",
    "itel",
    "Alcatel",
    "TCL",
)

_PLATFORM_BY_NAME = {platform.name: platform for platform in PLATFORMS}
PLATFORM_NAMES: tuple[str, ...] = tuple(_PLATFORM_BY_NAME)

#: Platforms only Apple hardware runs.
APPLE_PLATFORMS = frozenset(p.name for p in PLATFORMS if p.vendor == "Apple")

#: Platforms that never run on Apple hardware: a signal naming one says "not Apple".
NON_APPLE_PLATFORMS = frozenset(p.name for p in PLATFORMS if "Apple" in p.never_on)

_PLATFORM_EXACT: dict[str, str] = {
    "ios": "iOS",
    "iphone os": "iOS",
    "iphone": "iOS",
    "ipados": "iPadOS",
    "ipad os": "iPadOS",
    "mac os x": "macOS",
    "macos": "macOS",
    "mac os": "macOS",
    "macosx": "macOS",
    "mac_os_x": "macOS",
    "mac_os": "macOS",
    "os x": "macOS",
    "osx": "macOS",
    "macintosh": "macOS",
    "watchos": "watchOS",
    "watch os": "watchOS",
    "tvos": "tvOS",
    "atv os x": "tvOS",
    "visionos": "visionOS",
    "xros": "visionOS",
    "android": "Android",
    "windows phone": "Windows Phone",
    "windowsphone": "Windows Phone",
    "windows mobile": "Windows Mobile",
    "windows ce": "Windows Mobile",
    "chrome os": "ChromeOS",
    "chromeos": "ChromeOS",
    "chromium os": "ChromeOS",
    "harmonyos": "HarmonyOS",
    "harmony os": "HarmonyOS",
    "openharmony": "HarmonyOS",
    "aurora": "Aurora",
    "aurora os": "Aurora",
    "auroraos": "Aurora",
    "os aurora": "Aurora",
    "аврора": "Aurora",
    "ос аврора": "Aurora",
    "sailfish": "Sailfish",
    "sailfish os": "Sailfish",
    "sailfishos": "Sailfish",
    "kaios": "KaiOS",
    "tizen": "Tizen",
    "blackberry os": "BlackBerry",
    "blackberry tablet os": "BlackBerry",
    "blackberry": "BlackBerry",
    "rim os": "BlackBerry",
    "firefox os": "Firefox OS",
    "webos": "webOS",
    "web0s": "webOS",
    "linux": "Linux",
    "freebsd": "BSD",
    "openbsd": "BSD",
    "netbsd": "BSD",
    "dragonfly bsd": "BSD",
    "bsd": "BSD",
}

#: Linux distributions ua-parser names individually; for a device policy they are Linux.
_LINUX_DISTROS = frozenset(
    {
        "ubuntu",
        "kubuntu",
        "xubuntu",
        "lubuntu",
        "debian",
        "fedora",
        "red hat",
        "redhat",
        "centos",
        "gentoo",
        "mandriva",
        "mint",
        "linux mint",
        "arch linux",
        "slackware",
        "suse",
        "opensuse",
        "mageia",
        "pclinuxos",
        "knoppix",
        "elementary os",
        "manjaro",
        "rosa",
    }
)

#: The domestic Linux distributions a migration moves to, by the names their vendors and
#: clients use → the name devicegate records as the `distribution` of a `Linux` platform.
#: For a device policy they are Linux (so `only: {platform: [Linux]}` admits them); the
#: distribution is kept in the evidence for the reader.
_DISTRIBUTIONS: dict[str, str] = {
    "astra": "Astra Linux",
    "astra linux": "Astra Linux",
    "astralinux": "Astra Linux",
    "astra linux se": "Astra Linux",
    "astra linux ce": "Astra Linux",
    "astra linux special edition": "Astra Linux",
    "astra linux common edition": "Astra Linux",
    "астра линукс": "Astra Linux",
    "alt": "ALT Linux",
    "alt linux": "ALT Linux",
    "altlinux": "ALT Linux",
    "alt workstation": "ALT Linux",
    "alt server": "ALT Linux",
    "alt education": "ALT Linux",
    "simply linux": "ALT Linux",
    "альт": "ALT Linux",
    "альт линукс": "ALT Linux",
    "red os": "RED OS",
    "redos": "RED OS",
    "ред ос": "RED OS",
}

#: Values that mean "no idea" in parsers' vocabularies.
_UNKNOWN = frozenset({"", "other", "unknown", "generic", "none", "null", "(null)", "-"})


@lru_cache(maxsize=1024)
def canonical_platform(name: str | None) -> str | None:
    """The canonical platform for a name any parser or client used; None when unknown.

    Names we have no canonical spelling for pass through (trimmed): "Roku" is still more
    useful to an allow-list rule than "unknown".
    """
    if not name:
        return None
    text = " ".join(name.split())
    key = text.casefold()
    if key in _UNKNOWN:
        return None
    exact = _PLATFORM_EXACT.get(key)
    if exact is not None:
        return exact
    if key.startswith("windows"):
        if "phone" in key:
            return "Windows Phone"
        if "mobile" in key or key.startswith("windows ce"):
            return "Windows Mobile"
        return "Windows"
    if key.startswith("symbian") or key.startswith("nokia series"):
        return "Symbian"
    if key in _LINUX_DISTROS or key in _DISTRIBUTIONS:
        return "Linux"
    if key.startswith("blackberry"):
        return "BlackBerry"
    return text[:40]


def linux_distribution(name: str | None) -> str | None:
    """`Astra Linux SE`, `altlinux`, `РЕД ОС` … → `Astra Linux` / `ALT Linux` / `RED OS`."""
    if not name:
        return None
    return _DISTRIBUTIONS.get(" ".join(name.split()).casefold())


def implied_vendor(platform: str | None) -> str | None:
    """The only vendor whose hardware runs `platform`, if there is exactly one."""
    known = _PLATFORM_BY_NAME.get(platform) if platform else None
    return known.vendor if known is not None else None


def runs_on(platform: str, vendor: str) -> bool:
    """Whether `vendor`'s hardware can run `platform` as far as identification knows (a
    platform it does not know can run anywhere). Canonical spellings expected."""
    known = _PLATFORM_BY_NAME.get(platform)
    if known is None:
        return True
    return (known.vendor is None or known.vendor == vendor) and vendor not in known.never_on


def excludes_apple(platform: str | None) -> bool:
    """Whether a claim of `platform` says the device is *not* Apple hardware."""
    return platform in NON_APPLE_PLATFORMS


_FAMILY = {
    "iOS": "ios",
    "iPadOS": "ios",
    "Android": "linux",
    "Linux": "linux",
    "ChromeOS": "linux",
    "HarmonyOS": "linux",
    "Sailfish": "linux",
    "Aurora": "linux",
}


def platform_family(platform: str) -> str:
    """The family used to decide whether two platform claims really disagree."""
    return _FAMILY.get(platform, platform.casefold())


# Vendors: aliases parsers and registries use for the makers of whole devices.
_VENDOR_ALIASES: dict[str, str] = {
    "apple": "Apple",
    "apple inc": "Apple",
    "apple inc.": "Apple",
    "samsung": "Samsung",
    "google": "Google",
    "huawei": "Huawei",
    "honor": "Honor",
    "xiaomi": "Xiaomi",
    "redmi": "Xiaomi",
    "poco": "Xiaomi",
    "microsoft": "Microsoft",
    "oppo": "OPPO",
    "vivo": "vivo",
    "oneplus": "OnePlus",
    "realme": "realme",
    "motorola": "Motorola",
    "lenovo": "Lenovo",
    "lg": "LG",
    "lge": "LG",
    "htc": "HTC",
    "nokia": "Nokia",
    "hmd": "HMD",
    "hmd global": "HMD",
    "sony": "Sony",
    "sonyericsson": "Sony Ericsson",
    "sony ericsson": "Sony Ericsson",
    "zte": "ZTE",
    "asus": "ASUS",
    "blackberry": "BlackBerry",
    "rim": "BlackBerry",
    "amazon": "Amazon",
    "meizu": "Meizu",
    "fairphone": "Fairphone",
    "nothing": "Nothing",
    "tecno": "TECNO",
    "infinix": "Infinix",
    "itel": "itel",
    "alcatel": "Alcatel",
    "tcl": "TCL",
}

#: ua-parser's placeholders for "some device": they name no vendor.
_NO_VENDOR = frozenset(
    {
        "generic",
        "generic_android",
        "generic_android_tablet",
        "generic_inettv",
        "generic_smartphone",
        "generic_feature_phone",
        "spider",
        "other",
        "unknown",
    }
)


@lru_cache(maxsize=1024)
def canonical_vendor(name: str | None) -> str | None:
    """Canonical spelling of a device maker's name; unknown makers pass through trimmed."""
    if not name:
        return None
    text = " ".join(name.split())
    key = text.casefold()
    if key in _NO_VENDOR or key in _UNKNOWN:
        return None
    return _VENDOR_ALIASES.get(key, text[:40])


# Registry organisations (IEEE MA-L/MA-M/MA-S) that make whole devices people carry. A MAC
# prefix of anyone else (Intel, Realtek, Murata, AzureWave…) names a chip or module maker,
# which says nothing about the device's brand, so the MAC extractor claims no vendor then.
_ORGANISATIONS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), vendor)
    for pattern, vendor in (
        (r"^apple[, ]", "Apple"),
        (r"^samsung electronics\b", "Samsung"),
        (r"^huawei (technologies|device)\b", "Huawei"),
        (r"^honor device\b", "Honor"),
        (r"\bxiaomi\b", "Xiaomi"),
        (r"^google,? inc", "Google"),
        (r"^microsoft( corp| mobile|$)", "Microsoft"),
        (r"^guangdong oppo mobile", "OPPO"),
        (r"^vivo mobile communication", "vivo"),
        (r"^oneplus\b", "OnePlus"),
        (r"^realme chongqing", "realme"),
        (r"^motorola (mobility|\(wuhan\) mobility)", "Motorola"),
        (r"^lenovo mobile", "Lenovo"),
        (r"^lg electronics", "LG"),
        (r"^htc corporation", "HTC"),
        (r"^(nokia corporation|nokia danmark|microsoft mobile oy)", "Nokia"),
        (r"^hmd global", "HMD"),
        (r"^sony (mobile|corporation)", "Sony"),
        (r"^zte corporation", "ZTE"),
        (r"^blackberry rts|^research in motion", "BlackBerry"),
        (r"^amazon technologies", "Amazon"),
        (r"^asustek computer", "ASUS"),
        (r"^meizu technology", "Meizu"),
        (r"^fairphone", "Fairphone"),
        (r"^nothing technology", "Nothing"),
    )
)


@lru_cache(maxsize=4096)
def vendor_from_organisation(organisation: str) -> str | None:
    """The device vendor a registry organisation name stands for, or None (not a device maker)."""
    text = " ".join(organisation.split())
    for pattern, vendor in _ORGANISATIONS:
        if pattern.search(text):
            return vendor
    return None
