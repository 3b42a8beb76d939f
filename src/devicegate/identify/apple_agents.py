"""Apple's names inside agents that are neither browsers nor Apple's own mail clients.

An iPhone that reaches a work service through an in-app browser, a third-party client or a
media player is still an iPhone. Such agents rarely look like Safari's: they carry Apple's
names in whatever form their developers chose. These rules recognise those names, written
from Apple's public naming (OS names, hardware ids, target triples, framework names):

    rule                  recognises                                           kind from
    apple-media           `AppleCoreMedia/…`, `Apple iPhone v… CoreMedia v…`,  the device word
                          `AirPlay/…`, `QuickTime/… (…os=Mac …)`
    apple-build-triple    `aarch64-apple-darwin`, `arm64-apple-ios17.0`, …      the OS part
    apple-compact         UC Browser's `dv(iPh4,1);ov(7_1_2)` fields and its     the model code
                          compact agent `UCWEB/2.0 (iOS; U; iPh OS 6_1; …)`
    apple-os-token        iOS, iPadOS, macOS, watchOS, tvOS, visionOS, Mac      the OS, or a
                          Catalyst: alone (`(iOS 17.2; iPad)`) or attached to    device word
                          an app's name (`Example.iOS/5.17`, `App-macOS`)
    darwin-token          `Darwin 23.2.0 arm64`, `darwin/arm64`, `darwin-x64`   the architecture

Precision comes first, because a false "Apple" blocks someone's work:

- a name counts only as a whole token, never inside a word (`BIOS`, `DarwinCore`,
  `MiPhone12,1`, `SailfishBrowser`);
- an agent that also names a platform Apple hardware does not run — Android, Windows, Linux,
  HarmonyOS… — mentions Apple in passing (iTunes for Windows, an AirPlay receiver on Android
  TV, a Linux tool cross-compiling for an Apple target) and is not claimed here;
- text inside URLs (`+https://example.org/ios-help`) is ignored;
- `IOS` in capitals is Cisco's router OS, bare `Catalyst` is Perl's web framework, bare
  `QuickTime` also ran on Windows: none of them claims anything.

Every claim is `reported` and its note names the token that decided. An OS name attached to
an app's name (`ExampleMeet.iOS/5.17.0`: one RFC 9110 token) takes no version: the number after it
is the app's.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from devicegate.identify import apple
from devicegate.identify.base import agent_evidence, clean
from devicegate.model import DeviceKind, Evidence

_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]{1,15}://\S*")

#: Platforms Apple hardware does not run, named as tokens of their own (`Outlook-iOS-Android`
#: is a product's name); `like Android` (Sailfish's old agent) is a comparison, not a claim.
#: Linux (`X11`, `CrOS`) is among them for our own rules; ua-parser's iOS answers tolerate it
#: (see `non_apple`).
_NON_APPLE = re.compile(
    r"(?<![A-Za-z0-9._-])(?<!like )([Aa]ndroid|Adr|HarmonyOS|OpenHarmony|[Ww]indows"
    r"|Win(?:32|64)|WOW64|Sailfish|Tizen|KaiOS|BlackBerry|BB10|SymbianOS|Symbian|webOS"
    r"|(?P<linux>[Ll]inux|X11|CrOS))(?![A-Za-z_-])"
)

#: A substring of every token `_NON_APPLE` matches.
_NON_APPLE_HINTS = (
    "ndroid",
    "Adr",
    "armony",
    "indows",
    "Win32",
    "Win64",
    "WOW64",
    "Sailfish",
    "Tizen",
    "KaiOS",
    "BlackBerry",
    "BB10",
    "Symbian",
    "webOS",
    "inux",
    "X11",
    "CrOS",
)

#: RFC 9110 `tchar`: the characters of one product token (`ExampleMeet.iOS`, `MyApp-macOS`).
_TCHAR = frozenset("!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")

_VERSION_AFTER = re.compile(r"\s*[/:;=,_-]?\s*v?(\d{1,2}(?:[._]\d{1,4}){0,3})(?![\d])")
_DEVICE_WORD = re.compile(r"(?<![A-Za-z0-9])(iPad|iPhone|iPod)(?![a-z])")
_DEVICE_KIND = {"iPad": DeviceKind.TABLET, "iPhone": DeviceKind.HANDSET, "iPod": DeviceKind.HANDSET}


def non_apple(ua: str, *, linux: bool = True) -> str | None:
    """The token naming a platform Apple hardware does not run, if the agent has one.

    With `linux=False` a Linux desktop token does not count: some Apple clients send a
    desktop Linux agent (Facebook's iOS app, Puffin's cloud browser) and name the iPhone
    elsewhere, which ua-parser knows."""
    if not any(hint in ua for hint in _NON_APPLE_HINTS):
        return None  # the usual case, at a fraction of the pattern's cost
    for found in _NON_APPLE.finditer(ua):
        if linux or found.group("linux") is None:
            return found.group(1)
    return None


def _dotted(version: str) -> str:
    return version.replace("_", ".")


def _without_urls(ua: str) -> str:
    return _URL.sub(" ", ua) if "://" in ua else ua


def _apple(
    rule: str,
    platform: str | None,
    version: str | None,
    kind: DeviceKind | None,
    confidence: float,
    note: str,
    model: str | None = None,
) -> Evidence:
    """Evidence that the device is Apple's, with what else the token told."""
    shown_kind = kind.value if kind is not None and kind is not DeviceKind.UNKNOWN else None
    return agent_evidence(
        rule,
        [
            ("vendor", "Apple"),
            ("platform", platform),
            ("model", model),
            ("os_version", version),
            ("kind", shown_kind),
        ],
        confidence,
        note,
    )


def _product_token(text: str, start: int, end: int) -> str:
    """The whole RFC 9110 token around `text[start:end]`."""
    while start > 0 and text[start - 1] in _TCHAR:
        start -= 1
    while end < len(text) and text[end] in _TCHAR:
        end += 1
    return text[start:end]


# apple-os-token

#: Spellings apps use for Apple's OS names → canonical platform (`catalyst`: a Mac).
_OS_SPELLINGS: dict[str, str] = {
    "iOS": "iOS",
    "ios": "iOS",
    "iPhone OS": "iOS",
    "iPhoneOS": "iOS",
    "iPadOS": "iPadOS",
    "iPad OS": "iPadOS",
    "ipados": "iPadOS",
    "macOS": "macOS",
    "MacOS": "macOS",
    "macos": "macOS",
    "MACOS": "macOS",
    "Mac OS X": "macOS",
    "MacOSX": "macOS",
    "Mac_OS_X": "macOS",
    "Mac OS": "macOS",
    "OS X": "macOS",
    "OSX": "macOS",
    "watchOS": "watchOS",
    "WatchOS": "watchOS",
    "watchos": "watchOS",
    "tvOS": "tvOS",
    "tvos": "tvOS",
    "TVOS": "tvOS",
    "visionOS": "visionOS",
    "visionos": "visionOS",
    "xrOS": "visionOS",
    "Mac Catalyst": "catalyst",
    "macCatalyst": "catalyst",
    "MacCatalyst": "catalyst",
    "maccatalyst": "catalyst",
    "Catalyst": "catalyst",
}
_OS_NAME = re.compile(
    r"(?<![A-Za-z0-9])("
    + "|".join(re.escape(name) for name in sorted(_OS_SPELLINGS, key=len, reverse=True))
    + r")(?![A-Za-z])"
)


def _os_token(ua: str) -> Evidence | None:
    text = _without_urls(ua)
    for match in _OS_NAME.finditer(text):
        name = match.group(1)
        start, end = match.span(1)
        if text[max(0, start - 5) : start] == "like ":
            continue  # `CPU OS 17_2 like Mac OS X`: an iPhone or iPad comparing itself
        token = _product_token(text, start, end)
        if token.casefold().startswith("cisco"):
            continue  # Cisco IOS, whatever its case
        if "-apple-" in token:
            continue  # a target triple: apple-build-triple decides
        platform = _OS_SPELLINGS[name]
        if name == "Catalyst" and (start == 0 or text[start - 1] not in "-._("):
            continue  # bare `Catalyst` is Perl's web framework; only `App-Catalyst` counts
        if non_apple(text):
            return None
        standalone = (
            token.startswith(name) and not token[len(name) :].lstrip("/:;=,_-")[:1].isalpha()
        )
        version = None
        if standalone:
            after = _VERSION_AFTER.match(text, end)
            version = _dotted(after.group(1)) if after else None
        return _os_evidence(text, token, name, platform, version, standalone)
    return None


def _os_evidence(
    text: str, token: str, name: str, platform: str, version: str | None, standalone: bool
) -> Evidence:
    shown = clean(token, 40)
    note = f"token `{shown}`"
    if not standalone:
        note += ": the OS name is part of the app's name, so the number after it is the app's"
    kind = apple.platform_kind(platform)
    if platform == "catalyst":
        platform, kind = "macOS", DeviceKind.DESKTOP
        note += "; Mac Catalyst: an iPad app running on a Mac"
    elif platform == "iOS":
        word = _DEVICE_WORD.search(text)
        if word is not None:
            kind = _DEVICE_KIND[word.group(1)]
            note += f", device `{word.group(1)}`"
            if kind is DeviceKind.TABLET:
                platform = apple.ipad_platform(version)
    return _apple("apple-os-token", platform, version, kind, 0.8, note)


# darwin-token

_DARWIN = re.compile(
    r"(?<![A-Za-z0-9])([Dd]arwin)(?:[ /;]+(\d{1,2})(?:\.\d{1,3}){0,3})?"
    r"(?:[ /_;,(-]+(arm64e?|aarch64|x86_64|amd64|x64|i386|i686|universal|ppc))?(?![A-Za-z0-9])"
)


def _darwin_token(ua: str) -> Evidence | None:
    if "arwin" not in ua:
        return None
    text = _without_urls(ua)
    for match in _DARWIN.finditer(text):
        major, arch = match.group(2), match.group(3)
        if major is None and arch is None:
            continue  # `Release/Darwin`, `Charles Darwin`: a name, not a kernel
        if non_apple(text):
            return None
        shown = clean(match.group(0), 40)
        if arch is not None:
            version = apple.darwin_version(int(major), "macOS") if major else None
            return _apple(
                "darwin-token",
                "macOS",
                version,
                DeviceKind.DESKTOP,
                0.75,
                f"token `{shown}`: Darwin with an architecture, as Go, Node and uname name a Mac",
            )
        return agent_evidence(
            "darwin-token",
            [("vendor", "Apple"), ("platform", "macOS"), ("platform", "iOS")],
            0.7,
            f"token `{shown}`: Apple's kernel, without an architecture: a Mac, iPhone or iPad",
        )
    return None


# apple-build-triple

_TRIPLE = re.compile(
    r"(?<![A-Za-z0-9])(x86_64h?|aarch64|arm64e?|arm64_32|armv7[ks]?|i[36]86|powerpc(?:64)?"
    r"|ppc(?:64)?)-apple-(darwin|macosx?|ios|tvos|watchos|xros|visionos)"
    r"(\d{1,2}(?:\.\d{1,3}){0,2})?(-simulator|-macabi)?(?![A-Za-z0-9])"
)
_OTHER_TRIPLE = re.compile(
    r"-(?:unknown-)?(?:linux|windows|android|w64|mingw32|freebsd|wasi|none)(?![A-Za-z])"
)
_TRIPLE_OS: dict[str, tuple[str, DeviceKind | None]] = {
    "darwin": ("macOS", DeviceKind.DESKTOP),
    "macos": ("macOS", DeviceKind.DESKTOP),
    "macosx": ("macOS", DeviceKind.DESKTOP),
    "ios": ("iOS", None),
    "tvos": ("tvOS", DeviceKind.TV),
    "watchos": ("watchOS", DeviceKind.WATCH),
    "xros": ("visionOS", None),
    "visionos": ("visionOS", None),
}


def _build_triple(ua: str) -> Evidence | None:
    if "-apple-" not in ua:
        return None
    match = _TRIPLE.search(ua)
    if match is None:
        return None
    if _OTHER_TRIPLE.search(ua) or non_apple(ua):
        return None  # an Apple target named by a tool that runs elsewhere
    _, os_name, number, variant = match.groups()
    platform, kind = _TRIPLE_OS[os_name]
    version = number
    note = f"token `{clean(match.group(0), 48)}`: an Apple target triple"
    if os_name == "darwin":
        version = apple.darwin_version(int(number.split(".")[0]), "macOS") if number else None
    if variant is not None:
        platform, kind, version = "macOS", DeviceKind.DESKTOP, None
        note += (
            "; a simulator runs on a Mac"
            if variant == "-simulator"
            else "; Mac Catalyst runs on a Mac"
        )
    return _apple("apple-build-triple", platform, version, kind, 0.8, note)


# apple-media

_CORE_MEDIA = re.compile(
    r"(?<![A-Za-z0-9])AppleCoreMedia/([0-9A-Za-z.]{1,40})(?:\s*\(([^)]{0,200})\))?"
)
_OLD_CORE_MEDIA = re.compile(
    r"(?<![A-Za-z0-9])Apple (iPhone|iPad|iPod touch|iPod|Mac OS X|TV) v(\d{1,2}(?:\.\d{1,3}){0,2})"
    r" CoreMedia v"
)
_MEDIA_DEVICES: tuple[tuple[str, str, DeviceKind], ...] = (
    ("iPhone", "iOS", DeviceKind.HANDSET),
    ("iPod", "iOS", DeviceKind.HANDSET),
    ("iPad", "iPadOS", DeviceKind.TABLET),
    ("Apple TV", "tvOS", DeviceKind.TV),
    ("AppleTV", "tvOS", DeviceKind.TV),
    ("TV", "tvOS", DeviceKind.TV),
    ("HomePod", "tvOS", DeviceKind.UNKNOWN),
    ("Apple Watch", "watchOS", DeviceKind.WATCH),
    ("Watch", "watchOS", DeviceKind.WATCH),
    ("Macintosh", "macOS", DeviceKind.DESKTOP),
    ("Mac OS X", "macOS", DeviceKind.DESKTOP),
)
_MEDIA_OS_VERSION = re.compile(r"(?:CPU (?:iPhone )?OS|Mac OS X) (\d{1,2}(?:_\d{1,4}){0,3})")
_AIRPLAY = re.compile(r"(?<![A-Za-z0-9])AirPlay/(\d{1,4}(?:\.\d{1,4}){0,3})(?![A-Za-z])")
_QUICKTIME_MAC = re.compile(
    r"(?<![A-Za-z0-9])QuickTime/[\d.]{1,12} \([^)]{0,80}\bos=Mac (\d{1,2}(?:\.\d{1,3}){0,2})"
)


def _media_device(text: str) -> tuple[str, str, DeviceKind] | None:
    first = text.split(";", 1)[0].strip()
    for word, platform, kind in _MEDIA_DEVICES:
        if first == word or first.startswith(word + " "):
            return word, platform, kind
    return None


def _media(ua: str) -> Evidence | None:
    core = _CORE_MEDIA.search(ua) if "CoreMedia" in ua else None
    old = _OLD_CORE_MEDIA.search(ua) if core is None and "CoreMedia" in ua else None
    airplay = _AIRPLAY.search(ua) if "AirPlay" in ua else None
    quicktime = _QUICKTIME_MAC.search(ua) if "QuickTime" in ua else None
    if not (core or old or airplay or quicktime) or non_apple(ua):
        return None
    if core is not None:
        return _core_media(core)
    if old is not None:
        device = _media_device(old.group(1))
        assert device is not None
        word, platform, kind = device
        version = old.group(2)
        if kind is DeviceKind.TABLET:
            platform = apple.ipad_platform(version)
        return _apple(
            "apple-media",
            platform,
            version,
            kind,
            0.85,
            f"token `Apple {word} v{version} CoreMedia`: Apple's media framework",
        )
    if airplay is not None:
        return _apple(
            "apple-media",
            None,
            None,
            None,
            0.75,
            f"token `{clean(airplay.group(0), 24)}`: an AirPlay sender (iPhone, iPad or Mac); "
            "the platform is not stated",
        )
    if quicktime is not None:
        return _apple(
            "apple-media",
            "macOS",
            quicktime.group(1),
            DeviceKind.DESKTOP,
            0.8,
            f"token `QuickTime` with `os=Mac {quicktime.group(1)}`: QuickTime Player on a Mac",
        )
    return None


def _core_media(core: re.Match[str]) -> Evidence:
    build = core.group(1).rsplit(".", 1)[-1]
    inside = core.group(2) or ""
    device = _media_device(inside)
    note = "token `AppleCoreMedia`: Apple's media framework"
    if device is None:
        return _apple("apple-media", None, None, None, 0.85, note)
    word, platform, kind = device
    found = _MEDIA_OS_VERSION.search(inside)
    version = _dotted(found.group(1)) if found else None
    if version is None and apple.is_build(build):
        version = apple.version_from_build(build, platform)
    if kind is DeviceKind.TABLET:
        platform = apple.ipad_platform(version)
    return _apple("apple-media", platform, version, kind, 0.85, f"{note}, device `{word}`")


# apple-compact

_COMPACT_MODEL = re.compile(r"(?<![A-Za-z0-9])dv\(([^();]{1,40})\)")
_COMPACT_VERSION = re.compile(r"(?<![A-Za-z0-9])ov\((\d{1,2}(?:[._]\d{1,4}){0,3})\)")
_UC_OS = re.compile(r"(?<![A-Za-z0-9])iPh OS (\d{1,2}(?:_\d{1,4}){0,3})(?![\d])")
_UC_MODEL = re.compile(r";\s*(iPh\d{1,2}(?:(?:,|%2[Cc])\d{1,2})?)\s*\)")
_ABBREVIATED_MAJOR = re.compile(r"iPh(\d{1,2})")


def compact(ua: str) -> Evidence | None:
    """apple-compact: UC Browser's `dv(…)`/`ov(…)` fields or its `iPh OS` compact agent.

    Runs before the hardware-id rule, which would otherwise take `iPh4,1` without the
    version these agents carry in their own fields."""
    if "dv(" not in ua and "iPh OS" not in ua:
        return None
    model_text: str | None = None
    version: str | None = None
    token = ""
    field = _COMPACT_MODEL.search(ua)
    if field is not None:
        model_text, token = field.group(1).strip(), field.group(0)
        found = _COMPACT_VERSION.search(ua)
        version = _dotted(found.group(1)) if found else None
    else:
        uc_os = _UC_OS.search(ua)
        if uc_os is None:
            return None
        version, token = _dotted(uc_os.group(1)), uc_os.group(0)
        uc_model = _UC_MODEL.search(ua, uc_os.end())
        model_text = uc_model.group(1) if uc_model else None
    if non_apple(ua):
        return None
    decoded = apple.hardware(model_text) if model_text else None
    if decoded is not None:
        model, platform, kind = decoded
    elif model_text and _ABBREVIATED_MAJOR.fullmatch(model_text):
        model, platform, kind = None, "iOS", DeviceKind.HANDSET
    elif field is None:
        model, platform, kind = None, "iOS", DeviceKind.HANDSET  # `iPh OS` names the iPhone
    else:
        return None  # a model code that is not Apple's: nothing for us to say
    if model is not None and model.startswith("iPad"):
        platform = apple.ipad_platform(version)
    shown = clean(model_text or token, 24)
    return _apple(
        "apple-compact",
        platform,
        version,
        kind,
        0.8,
        f"token `{clean(token, 40)}`: a compact agent's model code `{shown}`",
        model,
    )


#: The rules, in order; the first that recognises the agent decides.
RULES: tuple[tuple[str, Callable[[str], Evidence | None]], ...] = (
    ("apple-media", _media),
    ("apple-build-triple", _build_triple),
    ("apple-os-token", _os_token),
    ("darwin-token", _darwin_token),
)

#: Substrings at least one of which every agent these rules recognise contains: one cheap
#: test keeps the rules off the path of the many agents that name no Apple software.
HINTS = (
    "OS",
    "ios",
    "ados",
    "macos",
    "tvos",
    "watchos",
    "visionos",
    "atalyst",
    "arwin",
    "-apple-",
    "AirPlay",
    "QuickTime",
    "CoreMedia",
)


def hinted(ua: str) -> bool:
    """Whether `ua` contains anything `RULES` could recognise (most agents do not)."""
    return any(hint in ua for hint in HINTS)


#: Crawlers borrow device agents (`AdsBot-Google-Mobile … (iPhone; …)`): no device at all.
_CRAWLER = re.compile(r"(?i:bot|crawler|spider)\b|Slurp")


def recognise(ua: str) -> Evidence | None:
    """The first of `RULES` that recognises `ua`, else None (and None for a crawler)."""
    if not hinted(ua):
        return None
    for _, rule in RULES:
        found = rule(ua)
        if found is not None:
            return None if _CRAWLER.search(ua) else found
    return None
