"""Apple's own numbering: hardware ids, OS builds, Darwin kernels, Exchange build strings.

Apple clients rarely say "iOS 16.5" in plain words to a mail server. They send a hardware
id (`iPhone14,2`, written `iPhone14C2` where a comma is not allowed), an OS *build*
(`20F66`), a Darwin kernel version (`Darwin/22.6.0`) or the build re-encoded for Exchange
(`Apple-iPhone14C2/2006.66`). This module turns each into (platform, version) with the
precision the number really carries, and no more.

Build trains. A build is `<major><letter><number>[<suffix>]`. The major is the OS release
(20 → iOS 16, 21 → iOS 17, 22 → iOS 18, 23 → iOS 26 after Apple's 2025 renumbering). From
iOS 15 (build 19) onwards the letter is the minor release (20A = 16.0 … 20F = 16.5,
23B = 26.1) — verified against the published build lists for iOS 15–18 and 26; earlier
trains skipped letters, so there we report the major only. macOS follows the same scheme
from macOS 14 (build 23) on; macOS 13 skipped a letter (22A = 13.0, 22C = 13.1).

Exchange format (Apple Platform Deployment guide, "Identify operating system versions"):
the build `NANNN[A]` is sent as `N` + two-digit letter position + `.` + the number padded
to three digits, and a trailing letter adds `000` and its two-digit position: 7E18 →
`705.018`, 15D100 → `1504.100`, 5H11A → `508.01100001`. Strings that do not follow it
(the `2003.1.1` form seen in some test fixtures) still yield the train from their leading
`MMLL` digits, so `2003.1.1` reads as train 20C: iOS 16.2, build number unknown.
"""

from __future__ import annotations

import re

from devicegate.model import DeviceKind

_BUILD = re.compile(r"^(\d{1,2})([A-Z])(\d{1,5})([a-z]?)$")

#: Hardware-id prefixes → (platform, kind). `Mac*` covers Mac14,2, MacBookPro18,1, iMac21,1…
_HARDWARE: tuple[tuple[str, str, DeviceKind], ...] = (
    ("iPhone", "iOS", DeviceKind.HANDSET),
    ("iPad", "iPadOS", DeviceKind.TABLET),
    ("iPod", "iOS", DeviceKind.HANDSET),
    ("Watch", "watchOS", DeviceKind.WATCH),
    ("AppleTV", "tvOS", DeviceKind.TV),
    ("RealityDevice", "visionOS", DeviceKind.UNKNOWN),
    ("MacBookPro", "macOS", DeviceKind.DESKTOP),
    ("MacBookAir", "macOS", DeviceKind.DESKTOP),
    ("MacBook", "macOS", DeviceKind.DESKTOP),
    ("Macmini", "macOS", DeviceKind.DESKTOP),
    ("MacPro", "macOS", DeviceKind.DESKTOP),
    ("iMacPro", "macOS", DeviceKind.DESKTOP),
    ("iMac", "macOS", DeviceKind.DESKTOP),
    ("Xserve", "macOS", DeviceKind.DESKTOP),
    ("Mac", "macOS", DeviceKind.DESKTOP),
)

#: Abbreviations clients use for a family (UC Browser writes `iPh4,1` for `iPhone4,1`).
_ABBREVIATED = {"iPh": "iPhone"}

#: `iPhone14,2` as Apple writes it, `iPhone14C2` where a comma is not allowed (Exchange),
#: `iPhone14%2C2` percent-encoded, `iPh14,2` abbreviated. A whole token only: `MiPhone12,1`
#: (an Android model) and `iPhone14,2x` are not hardware ids.
HARDWARE_ID = re.compile(
    r"(?<![A-Za-z0-9])(iPhone|iPad|iPod|Watch|AppleTV|RealityDevice|MacBookPro|MacBookAir"
    r"|MacBook|Macmini|MacPro|iMacPro|iMac|Xserve|Mac|iPh)(\d{1,3})(?:,|%2[Cc]|C)(\d{1,3})"
    r"(?![A-Za-z0-9])"
)


def hardware(model_id: str) -> tuple[str, str | None, DeviceKind] | None:
    """`iPhone14C2`, `iPhone14,2` or `iPh14%2C2` → (`iPhone14,2`, platform, kind); None if
    `model_id` is not one hardware id."""
    match = HARDWARE_ID.fullmatch(model_id.strip())
    if match is None:
        return None
    family, major, minor = match.groups()
    family = _ABBREVIATED.get(family, family)
    for prefix, platform, kind in _HARDWARE:
        if family == prefix:
            return f"{family}{int(major)},{int(minor)}", platform, kind
    return None  # pragma: no cover - the regex admits only listed families


#: What an Apple platform alone says of the device (iOS alone does not: iPhone or iPod).
_PLATFORM_KINDS = {
    "macOS": DeviceKind.DESKTOP,
    "iPadOS": DeviceKind.TABLET,
    "watchOS": DeviceKind.WATCH,
    "tvOS": DeviceKind.TV,
}


def platform_kind(platform: str | None) -> DeviceKind | None:
    """`macOS` → desktop, `iPadOS` → tablet, `watchOS` → watch, `tvOS` → TV; else None."""
    return _PLATFORM_KINDS.get(platform or "")


def hardware_class(family: str) -> tuple[str, DeviceKind] | None:
    """`iPhone` / `iPad` / `Watch` / `iPh` … → (platform, kind)."""
    family = _ABBREVIATED.get(family, family)
    for prefix, platform, kind in _HARDWARE:
        if family == prefix:
            return platform, kind
    return None


def ipad_platform(version: str | None) -> str:
    """iPads ran "iOS" until 12 and "iPadOS" from 13 on; unknown versions are current."""
    major = _major(version)
    return "iOS" if major is not None and major < 13 else "iPadOS"


def _major(version: str | None) -> int | None:
    if not version:
        return None
    head = version.split(".", 1)[0]
    return int(head) if head.isdigit() else None


def os_major_from_train(train: int, platform: str) -> str | None:
    """Build-train major (the `20` of `20F66`) → OS major version, per platform."""
    if platform in ("iOS", "iPadOS", "tvOS", "visionOS"):
        if train >= 23:
            return str(train + 3)
        return str(train - 4) if 5 <= train <= 22 else None
    if platform == "watchOS":
        if train >= 23:
            return str(train + 3)
        return str(train - 11) if 12 <= train <= 22 else None
    if platform == "macOS":
        if train >= 25:
            return str(train + 1)
        if train >= 20:
            return str(train - 9)
        return f"10.{train - 4}" if 5 <= train <= 19 else None
    return None


def version_from_train(train: int, letter: str, platform: str) -> str | None:
    """OS version a build train stands for: `major.minor` where the letter is reliable."""
    major = os_major_from_train(train, platform)
    if major is None:
        return None
    index = ord(letter.upper()) - ord("A")
    reliable = (platform in ("iOS", "iPadOS", "tvOS") and train >= 19) or (
        platform == "macOS" and train >= 23
    )
    if reliable and 0 <= index <= 12:
        return f"{major}.{index}"
    return major


def version_from_build(build: str, platform: str) -> str | None:
    """`20F66` → `16.5` for iOS; None if `build` is not an Apple build number."""
    match = _BUILD.match(build.strip())
    if match is None:
        return None
    return version_from_train(int(match.group(1)), match.group(2), platform)


def is_build(text: str) -> bool:
    return _BUILD.match(text.strip()) is not None


_EXCHANGE = re.compile(r"^(\d{1,2})(\d{2})(?:\.(\d+))?")


def decode_exchange_build(text: str) -> tuple[str, int, str] | None:
    """Exchange-format build (`2006.66`) → (build as Apple writes it, train, letter).

    The build is reconstructed only when the number follows Apple's documented encoding;
    otherwise it is just the train (`20C`). None when even the train cannot be read.
    """
    match = _EXCHANGE.match(text.strip())
    if match is None:
        return None
    train, position, number = int(match.group(1)), int(match.group(2)), match.group(3)
    if not 1 <= position <= 26 or train == 0:
        return None
    letter = chr(ord("A") + position - 1)
    build = f"{train}{letter}"
    rest = text.strip()[match.end() :]
    if number is not None and not rest:
        if len(number) > 5 and number[-5:-2] == "000" and 1 <= int(number[-2:]) <= 26:
            suffix = chr(ord("a") + int(number[-2:]) - 1)
            build += f"{int(number[:-5])}{suffix}"
        else:
            build += str(int(number))
    return build, train, letter


def darwin_version(darwin_major: int, platform: str) -> str | None:
    """OS major version for a Darwin kernel major: Darwin 22 → iOS 16 / macOS 13.

    Darwin minors track OS minors only loosely (Darwin 22.6 ships in iOS 16.6 *and* 16.7),
    so only the major is claimed.
    """
    if platform == "macOS":
        if darwin_major >= 25:
            return str(darwin_major + 1)
        if darwin_major >= 20:
            return str(darwin_major - 9)
        return f"10.{darwin_major - 4}" if 5 <= darwin_major <= 19 else None
    if platform == "watchOS":
        if darwin_major >= 25:
            return str(darwin_major + 1)
        return str(darwin_major - 13) if 15 <= darwin_major <= 24 else None
    if darwin_major >= 25:
        return str(darwin_major + 1)
    return str(darwin_major - 6) if 10 <= darwin_major <= 24 else None
