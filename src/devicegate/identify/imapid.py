"""IMAP ID (RFC 2971): parse the client's field list, then recognise client families.

Grammar (RFC 2971 §4, strings per RFC 3501/9051)::

    id_params_list ::= "(" #(string SPACE nstring) ")" / nil
    string         ::= quoted / literal      ; quoted escapes only \\" and \\\\
    literal        ::= "{" number ["+"] "}" CRLF *CHAR8

Limits from the RFC: at most 30 field-value pairs, field names at most 30 octets, values
at most 1024 octets (we count characters: a header decoded as Latin-1 has one per octet);
names are case-insensitive. Dovecot's `%{client_id}` (with `imap_id_retain = yes`) hands
its auth policy server the same list *without* the parentheses — `"name" "iPhone Mail"
"os" "iOS"` — and that form is accepted too, as is a whole `tag ID (…)` command line.

Clients name themselves, and Apple has renamed its mail client between releases
(`iPhone Mail`, `com.apple.email.maild`, `Mac OS X Mail`, `macOS Mail`…), so we match name
*families* and read `os` / `os-version` (`18.2.1 (22C161)`) wherever a client sends them.
The `vendor` field names the *software* vendor (Thunderbird says Mozilla), so it never
makes a device-vendor claim on its own.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from devicegate.errors import SignalError
from devicegate.identify import apple
from devicegate.identify.base import NOTHING, Extracted, clean, make_evidence, note_only
from devicegate.identify.names import (
    APPLE_PLATFORMS,
    canonical_platform,
    implied_vendor,
    linux_distribution,
    platform_family,
)
from devicegate.model import DeviceKind, Evidence, Signals, Trust

SIGNAL = "imap_id"
MAX_PAIRS = 30
MAX_FIELD = 30
MAX_VALUE = 1024
MAX_TEXT = MAX_PAIRS * (MAX_FIELD + MAX_VALUE + 24) + 64

_COMMAND = re.compile(r"^(?:[^\s\"(){]+\s+)?ID\s+", re.IGNORECASE)
_LITERAL = re.compile(r"\{(\d{1,5})\+?\}\r\n")
_TRAILING_LITERAL = re.compile(r"\{\d{1,5}\+?\}\r\n$")


class _Scanner:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def skip_space(self) -> None:
        text, pos = self.text, self.pos
        while pos < len(text) and text[pos] in " \t":
            pos += 1
        self.pos = pos

    def at_end(self) -> bool:
        return self.pos >= len(self.text)

    def nstring(self, what: str, limit: int) -> str | None:
        text, pos = self.text, self.pos
        if pos >= len(text):
            raise SignalError(f"imap id list ends where a {what} was expected")
        char = text[pos]
        if char == '"':
            return self._quoted(what, limit)
        if char == "{":
            return self._literal(what, limit)
        if text[pos : pos + 3].upper() == "NIL" and (
            pos + 3 == len(text) or text[pos + 3] in " \t)"
        ):
            self.pos = pos + 3
            return None
        raise SignalError(
            f"imap id {what} at offset {pos} is not a quoted string, literal or NIL",
            hint='fields look like "name" "iPhone Mail"',
        )

    def _quoted(self, what: str, limit: int) -> str:
        text = self.text
        pos = self.pos + 1
        out: list[str] = []
        start = pos
        while True:
            end = pos
            while end < len(text) and text[end] not in '"\\\r\n':
                end += 1
            if end >= len(text):
                raise SignalError(f"imap id {what} starting at offset {start - 1} is unterminated")
            out.append(text[pos:end])
            char = text[end]
            if char == '"':
                self.pos = end + 1
                break
            if char in "\r\n":
                raise SignalError(f"imap id {what} contains a line break")
            escaped = text[end + 1 : end + 2]
            if escaped not in ('"', "\\"):
                raise SignalError(f"imap id {what} has an invalid escape `\\{clean(escaped, 1)}`")
            out.append(escaped)
            pos = end + 2
        value = "".join(out)
        if len(value) > limit:
            raise SignalError(f"imap id {what} is longer than {limit} octets")
        return value

    def _literal(self, what: str, limit: int) -> str:
        match = _LITERAL.match(self.text, self.pos)
        if match is None:
            raise SignalError(f"imap id {what} has a malformed literal header")
        size = int(match.group(1))
        if size > limit:
            raise SignalError(f"imap id {what} is longer than {limit} octets")
        start = match.end()
        if start + size > len(self.text):
            raise SignalError(f"imap id {what} literal is shorter than its {size} octets")
        self.pos = start + size
        return self.text[start : start + size]


def parse_imap_id(text: str) -> dict[str, str]:
    """RFC 2971 ID parameter list → {lower-case field: value}; SignalError when malformed.

    `NIL` values are left out (they say nothing); a repeated field keeps its first value.
    """
    if len(text) > MAX_TEXT:
        raise SignalError(f"imap id list is longer than {MAX_TEXT} characters")
    body = text.lstrip().rstrip(" \t")
    if body.endswith("\r\n") and not _TRAILING_LITERAL.search(body):
        body = body[:-2].rstrip(" \t")  # the command's own line end, not a literal's
    command = _COMMAND.match(body)
    if command is not None:
        body = body[command.end() :]
    if body.upper() == "NIL" or body == "":
        return {}
    if body.startswith("("):
        if not body.endswith(")"):
            raise SignalError("imap id list opens with `(` but does not close")
        body = body[1:-1]
    scanner = _Scanner(body)
    fields: dict[str, str] = {}
    pairs = 0
    scanner.skip_space()
    while not scanner.at_end():
        key = scanner.nstring("field name", MAX_FIELD)
        if key is None:
            raise SignalError("imap id field name is NIL")
        if scanner.at_end() or scanner.text[scanner.pos] not in " \t":
            raise SignalError(f"imap id field `{clean(key, 30)}` has no value")
        scanner.skip_space()
        value = scanner.nstring("value", MAX_VALUE)
        pairs += 1
        if pairs > MAX_PAIRS:
            raise SignalError(f"imap id list has more than {MAX_PAIRS} field-value pairs")
        if value is not None:
            fields.setdefault(key.lower(), value)
        if not scanner.at_end() and scanner.text[scanner.pos] not in " \t":
            raise SignalError(f"imap id list has junk at offset {scanner.pos}")
        scanner.skip_space()
    return fields


# Recognising clients.

_APPLE_NAME = re.compile(
    r"^(?:com\.apple\.|i(?:phone|pad|pod) ?mail|mac ?os ?x? mail|macos mail|os x mail|"
    r"apple ?mail|mail$|watch ?mail|vision ?mail)",
    re.IGNORECASE,
)
_ANDROID_NAME = re.compile(
    r"^(?:k-?9|fairemail|samsung ?email|com\.samsung\.android|com\.google\.android\.gm|"
    r"aqua ?mail|android)",
    re.IGNORECASE,
)
_SERVICE_NAME = re.compile(r"outlook-ios-android", re.IGNORECASE)
_OS_VERSION = re.compile(r"^\s*(\d{1,2}(?:\.\d{1,4}){0,3})?\s*(?:\(?([0-9A-Za-z]{3,12})\)?)?\s*$")


def _name_platform(name: str) -> str | None:
    lowered = name.lower()
    if "iphone" in lowered or "ipod" in lowered:
        return "iOS"
    if "ipad" in lowered:
        return "iPadOS"
    if "mac" in lowered or "os x" in lowered:
        return "macOS"
    if "watch" in lowered:
        return "watchOS"
    if "vision" in lowered:
        return "visionOS"
    return None


def _version(fields: Mapping[str, str], platform: str | None) -> tuple[str | None, str | None]:
    text = fields.get("os-version")
    if not text:
        return None, None
    match = _OS_VERSION.match(text)
    if match is None:
        return None, None
    version, build = match.groups()
    if build and not apple.is_build(build):
        build = None
    if version is None and build and platform:
        version = apple.version_from_build(build, platform)
    return version, build


def identify_imap_id(fields: Mapping[str, str]) -> tuple[Evidence, ...]:
    """Evidence from parsed ID fields (already lower-cased keys)."""
    name = clean(fields.get("name", ""), 64)
    shown = f"client `{name}`" if name else "client without a name"
    if name and _SERVICE_NAME.search(name):
        return (
            make_evidence(
                SIGNAL,
                Trust.REPORTED,
                "imapid/outlook-service",
                [("kind", DeviceKind.SERVICE.value)],
                confidence=0.9,
                note=f"{shown}: Microsoft's cloud, not a device",
            ),
        )
    os_platform = canonical_platform(fields.get("os")) if fields.get("os") else None
    name_platform: str | None = None
    family = None
    if name and _APPLE_NAME.match(name):
        family = "apple-mail"
        name_platform = _name_platform(name)
    elif name and _ANDROID_NAME.match(name):
        family = "android-mail"
        name_platform = "Android"
    if os_platform == "iOS" and name_platform == "iPadOS":
        os_platform = "iPadOS"
    out: list[Evidence] = []
    if (
        os_platform is not None
        and name_platform is not None
        and platform_family(os_platform) != platform_family(name_platform)
    ):
        out.append(
            make_evidence(
                SIGNAL,
                Trust.REPORTED,
                f"imapid/{family}",
                [("vendor", implied_vendor(name_platform)), ("platform", name_platform)],
                confidence=0.6,
                note=f"{shown} belongs to {name_platform}",
            )
        )
        name_platform = None
    platform = os_platform or name_platform
    version, build = _version(fields, platform)
    # A bare `Mail` is Apple's name only where the `os` field does not name another platform.
    apple_name = family == "apple-mail" and (platform is None or platform in APPLE_PLATFORMS)
    vendor = implied_vendor(platform) or ("Apple" if apple_name else None)
    if platform is None and vendor is None:
        if out:
            return tuple(out)
        return (
            make_evidence(
                SIGNAL,
                Trust.REPORTED,
                "imapid",
                (),
                confidence=0.0,
                note=f"{shown} names no device or platform",
            ),
        )
    kind = apple.platform_kind(platform)
    if platform == "iOS" and name_platform == "iOS":
        kind = DeviceKind.HANDSET
    confidence = 0.85 if (os_platform and family) else 0.7 if (os_platform or family) else 0.5
    if family == "android-mail" and not os_platform:
        confidence = 0.6
    note = shown + (f", build {build}" if build else "")
    source = "imapid/" + (family or "os-field")
    out.append(
        make_evidence(
            SIGNAL,
            Trust.REPORTED,
            source,
            [
                ("vendor", vendor),
                ("platform", platform),
                ("os_version", version),
                ("kind", kind.value if kind else None),
                ("distribution", linux_distribution(fields.get("os"))),
            ],
            confidence=confidence,
            note=note,
        )
    )
    return tuple(out)


def extract_imap_id(signals: Signals, keys: Mapping[str, str]) -> Extracted:
    """Extractor: `Signals.imap_id`, the raw list or Dovecot's retained form."""
    raw = signals.imap_id
    if not raw or raw.isspace():
        return NOTHING
    if len(raw) > MAX_TEXT:
        return note_only(
            SIGNAL,
            Trust.REPORTED,
            "imapid",
            f"imap id of {len(raw)} characters exceeds RFC 2971 limits: not parsed",
        )
    try:
        fields = parse_imap_id(raw)
    except SignalError as exc:
        return note_only(SIGNAL, Trust.REPORTED, "imapid", f"malformed imap id: {exc.message}")
    if not fields:
        return note_only(SIGNAL, Trust.REPORTED, "imapid", "empty imap id (NIL)")
    return Extracted(evidence=identify_imap_id(fields))
