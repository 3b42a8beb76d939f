"""Exchange ActiveSync: the request query (plain or base64) and the device fields.

The query names the device in one of two forms ([MS-ASHTTP] 2.2.1.1.1):

* plain text — `Cmd=Sync&User=…&DeviceId=…&DeviceType=iPhone` (all protocol versions);
* base64-encoded binary (versions 12.1–16.1), a byte sequence of
  ``protocol version (1) | command code (1) | locale (2, little-endian LCID) |
  device id length (1) | device id | policy key length (1: 0 or 4) | policy key (uint32 LE) |
  device type length (1) | device type | {tag (1) | length (1) | value}*`` where the
  parameter tags are 0 AttachmentName, 1 CollectionId, 3 ItemId, 4 LongId, 6 Occurrence,
  7 Options (a bitmask byte), 8 User. The spec's own example
  `jAAJBAp2MTQwRGV2aWNlAApTbWFydFBob25l` is version 140, Sync, locale 0x0409,
  DeviceId `v140Device`, no policy key, DeviceType `SmartPhone`.

The device id "is a string or a GUID": printable ids are kept as text, binary ones (Windows
Phone sends 16 raw bytes) become upper-case hex, the form Exchange shows administrators.
Model and OS travel only in the Settings command body (DeviceInformation); proxies and logs
that extract them pass them in `Signals.activesync_device_model` / `_device_os`.

Everything here is chosen by the client: `reported`. The DeviceId is still the best stable
key ActiveSync offers, so it becomes the profile's `device_id` and the `activesync_id` key.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import unquote, unquote_plus

from devicegate.errors import SignalError
from devicegate.identify import apple
from devicegate.identify.base import NOTHING, Extracted, clean, make_evidence
from devicegate.identify.names import (
    canonical_platform,
    canonical_vendor,
    implied_vendor,
    linux_distribution,
)
from devicegate.inventory import normalise_key
from devicegate.model import DeviceKind, Evidence, Signals, Trust

MAX_QUERY = 4096
MAX_FIELD = 256

#: [MS-ASHTTP] 2.2.1.1.1.1.2 Command Codes.
COMMANDS: dict[int, str] = {
    0: "Sync",
    1: "SendMail",
    2: "SmartForward",
    3: "SmartReply",
    4: "GetAttachment",
    9: "FolderSync",
    10: "FolderCreate",
    11: "FolderDelete",
    12: "FolderUpdate",
    13: "MoveItems",
    14: "GetItemEstimate",
    15: "MeetingResponse",
    16: "Search",
    17: "Settings",
    18: "Ping",
    19: "ItemOperations",
    20: "Provision",
    21: "ResolveRecipients",
    22: "ValidateCert",
}

#: [MS-ASHTTP] 2.2.1.1.1.1.3 Command Parameters (tag → name).
PARAMETERS: dict[int, str] = {
    0: "AttachmentName",
    1: "CollectionId",
    3: "ItemId",
    4: "LongId",
    6: "Occurrence",
    7: "Options",
    8: "User",
}


@dataclass(frozen=True, slots=True)
class ActiveSyncQuery:
    """The device-relevant part of one ActiveSync request query."""

    cmd: str | None
    user: str | None
    device_id: str | None
    device_type: str | None
    protocol_version: str | None
    encoded: bool


_B64 = re.compile(r"^[A-Za-z0-9+/_-]+={0,2}$")


def parse_activesync_query(text: str) -> ActiveSyncQuery:
    """Parse a plain or base64-encoded ActiveSync query; SignalError when malformed.

    Accepts the bare query or a request target (`/Microsoft-Server-ActiveSync?…`).
    """
    if len(text) > MAX_QUERY:
        raise SignalError(f"activesync query is longer than {MAX_QUERY} characters")
    query = text.strip()
    if "?" in query:
        query = query.split("?", 1)[1]
    if not query:
        raise SignalError("empty activesync query")
    if "=" in query.rstrip("=") or "&" in query:
        return _parse_plain(query)
    return _parse_encoded(query)


def _parse_plain(query: str) -> ActiveSyncQuery:
    fields: dict[str, str] = {}
    for part in query.split("&"):
        if not part:
            continue
        name, sep, value = part.partition("=")
        if not sep or not name:
            raise SignalError(f"activesync query parameter `{clean(part, 40)}` has no value")
        key = unquote_plus(name).strip().lower()
        fields.setdefault(key, unquote_plus(value))
    if "deviceid" not in fields and "devicetype" not in fields and "cmd" not in fields:
        raise SignalError(
            "activesync query names neither `Cmd`, `DeviceId` nor `DeviceType`",
            hint="expected Cmd=…&User=…&DeviceId=…&DeviceType=…",
        )

    def field(name: str) -> str | None:
        value = fields.get(name)
        if value is None:
            return None
        if len(value) > MAX_FIELD:
            raise SignalError(f"activesync `{name}` is longer than {MAX_FIELD} characters")
        return clean(value, MAX_FIELD) or None

    return ActiveSyncQuery(
        cmd=field("cmd"),
        user=field("user"),
        device_id=field("deviceid"),
        device_type=field("devicetype"),
        protocol_version=None,
        encoded=False,
    )


def _parse_encoded(query: str) -> ActiveSyncQuery:
    token = unquote(query).strip()
    if not _B64.match(token):
        raise SignalError("activesync query is neither `name=value` pairs nor base64")
    token = token.replace("-", "+").replace("_", "/")
    token += "=" * (-len(token) % 4)
    try:
        data = base64.b64decode(token, validate=True)
    except (binascii.Error, ValueError):
        raise SignalError("activesync query is not valid base64") from None
    reader = _Reader(data)
    version = reader.byte("protocol version")
    command = reader.byte("command code")
    reader.take(2, "locale")
    device_id = _device_id(reader.counted("device id"))
    policy_length = reader.byte("policy key length")
    if policy_length not in (0, 4):
        raise SignalError(f"activesync policy key length is {policy_length}, expected 0 or 4")
    reader.take(policy_length, "policy key")
    device_type = _text(reader.counted("device type"), "device type")
    user = None
    while not reader.done():
        tag = reader.byte("parameter tag")
        value = reader.counted(f"parameter {tag}")
        if tag == 8 and user is None:
            user = _text(value, "user")
    if not 1 <= version // 10 <= 99:
        raise SignalError(f"activesync protocol version byte {version} is not a version")
    return ActiveSyncQuery(
        cmd=COMMANDS.get(command, f"#{command}"),
        user=user,
        device_id=device_id,
        device_type=device_type,
        protocol_version=f"{version // 10}.{version % 10}",
        encoded=True,
    )


class _Reader:
    """Bounds-checked reading of the binary query: every overrun is a SignalError."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def done(self) -> bool:
        return self.pos >= len(self.data)

    def take(self, count: int, what: str) -> bytes:
        end = self.pos + count
        if end > len(self.data):
            raise SignalError(f"activesync encoded query ends inside the {what}")
        chunk = self.data[self.pos : end]
        self.pos = end
        return chunk

    def byte(self, what: str) -> int:
        return self.take(1, what)[0]

    def counted(self, what: str) -> bytes:
        return self.take(self.byte(f"{what} length"), what)


def _device_id(raw: bytes) -> str:
    if not raw:
        raise SignalError("activesync device id is empty")
    if all(0x21 <= b <= 0x7E for b in raw):
        return raw.decode("ascii")
    return raw.hex().upper()


def _text(raw: bytes, what: str) -> str | None:
    text = raw.decode("utf-8", errors="replace")
    if not text.isprintable():
        raise SignalError(f"activesync {what} contains control characters")
    return text or None


# Interpretation of DeviceType / DeviceModel / DeviceOS.

_TYPE_EXACT: dict[str, tuple[str | None, str | None, DeviceKind | None]] = {
    "iphone": ("Apple", "iOS", DeviceKind.HANDSET),
    "ipad": ("Apple", "iPadOS", DeviceKind.TABLET),
    "ipod": ("Apple", "iOS", DeviceKind.HANDSET),
    "applewatch": ("Apple", "watchOS", DeviceKind.WATCH),
    "android": (None, "Android", DeviceKind.HANDSET),
    "windowsphone": (None, "Windows Phone", DeviceKind.HANDSET),
    "wp": (None, "Windows Phone", DeviceKind.HANDSET),
    "wp8": (None, "Windows Phone", DeviceKind.HANDSET),
    "windowsmail": (None, "Windows", DeviceKind.DESKTOP),
    "smartphone": (None, "Windows Mobile", DeviceKind.HANDSET),
    "pocketpc": (None, "Windows Mobile", DeviceKind.HANDSET),
    "blackberry": ("BlackBerry", "BlackBerry", DeviceKind.HANDSET),
    "macoutlook": ("Apple", "macOS", DeviceKind.DESKTOP),
    "aurora": (None, "Aurora", None),
    "auroraos": (None, "Aurora", None),
    "sailfish": (None, "Sailfish", None),
    "sailfishos": (None, "Sailfish", None),
}

#: DeviceType prefixes that name an Android handset's maker (`SAMSUNGSMG991B`).
_ANDROID_BRANDS = ("SAMSUNG", "XIAOMI", "ONEPLUS", "MOTOROLA", "LGE", "SONY", "HTC", "GOOGLE")

_SAMSUNG_MODEL = re.compile(r"^SM-?([A-Z]\d{2,4}[A-Z0-9]*)$", re.IGNORECASE)


def _type_claims(device_type: str) -> list[tuple[str, str | None]] | None:
    key = device_type.strip().lower()
    if key.startswith("windowsoutlook"):
        return [("platform", "Windows"), ("kind", DeviceKind.DESKTOP.value)]
    if key in ("outlook", "outlookservice", "hx", "rest"):
        return [("kind", DeviceKind.SERVICE.value)]
    exact = _TYPE_EXACT.get(key)
    if exact is not None:
        vendor, platform, kind = exact
        return [("vendor", vendor), ("platform", platform), ("kind", kind.value if kind else None)]
    upper = device_type.strip().upper()
    for brand in _ANDROID_BRANDS:
        if upper.startswith(brand) and len(upper) > len(brand):
            rest = device_type.strip()[len(brand) :].lstrip("-_ ")
            model = _model_name(rest, canonical_vendor(brand.title()))
            return [
                ("vendor", canonical_vendor(brand.title())),
                ("platform", "Android"),
                ("model", model),
                ("kind", DeviceKind.HANDSET.value),
            ]
    return None


def _model_name(raw: str, vendor: str | None) -> str | None:
    if not raw:
        return None
    if vendor == "Samsung":
        match = _SAMSUNG_MODEL.match(raw)
        if match is not None:
            return f"SM-{match.group(1).upper()}"
    return clean(raw, 64) or None


def _model_claims(model: str) -> list[tuple[str, str | None]]:
    decoded = apple.hardware(model)
    if decoded is not None:
        hw, platform, kind = decoded
        return [("vendor", "Apple"), ("platform", platform), ("model", hw), ("kind", kind.value)]
    if _SAMSUNG_MODEL.match(model.strip()):
        return [("vendor", "Samsung"), ("model", _model_name(model.strip(), "Samsung"))]
    return [("model", clean(model, 64) or None)]


#: `iOS 17.1 21B74`, `Android 13.0.0`, `Aurora OS 4.0.2`, `РЕД ОС 7.3`: a name in any script.
_OS = re.compile(
    r"^\s*([^\W\d_](?:[^\W\d_]|[ ._])*?)\s*(\d{1,3}(?:\.\d{1,4}){0,3})?(?:\s+(\w{3,12}))?\s*$"
)


def _os_claims(text: str) -> list[tuple[str, str | None]]:
    match = _OS.match(text)
    if match is None:
        return []
    name, version, build = match.groups()
    platform = canonical_platform(name)
    if platform is None:
        return []
    if version is None and build and platform in ("iOS", "iPadOS", "macOS"):
        version = apple.version_from_build(build, platform)
    return [
        ("vendor", implied_vendor(platform)),
        ("platform", platform),
        ("os_version", version),
        ("distribution", linux_distribution(name)),
    ]


def _evidence(
    signal: str, source: str, says: list[tuple[str, str | None]], confidence: float, note: str = ""
) -> Evidence:
    return make_evidence(
        signal, Trust.REPORTED, f"activesync/{source}", says, note=note, confidence=confidence
    )


def extract_activesync(signals: Signals, keys: Mapping[str, str]) -> Extracted:
    """Extractor: the ActiveSync query and the DeviceType / DeviceModel / DeviceOS fields."""
    if not (
        signals.activesync_query
        or signals.activesync_device_id
        or signals.activesync_device_type
        or signals.activesync_device_model
        or signals.activesync_device_os
    ):
        return NOTHING
    evidence: list[Evidence] = []
    device_id = signals.activesync_device_id
    device_type = signals.activesync_device_type
    if signals.activesync_query:
        try:
            query = parse_activesync_query(signals.activesync_query)
        except SignalError as exc:
            evidence.append(_evidence("activesync_query", "query", [], 0.0, exc.message))
        else:
            device_id = device_id or query.device_id
            device_type = device_type or query.device_type
    found_keys: list[tuple[str, str]] = []
    if device_id and device_id.strip():
        device_id = clean(device_id, MAX_FIELD)
        normalised = normalise_key("activesync_id", device_id)
        found_keys.append(("activesync_id", normalised))
        evidence.append(
            _evidence(
                "activesync_device_id",
                "device-id",
                [("device_id", normalised)],
                0.5,
                "chosen by the client; stable until the device is reset",
            )
        )
    if device_type and device_type.strip():
        claims = _type_claims(device_type)
        shown = clean(device_type, 40)
        if claims is None:
            evidence.append(
                _evidence(
                    "activesync_device_type",
                    "device-type",
                    [],
                    0.0,
                    f"DeviceType `{shown}` is not one we recognise",
                )
            )
        else:
            evidence.append(
                _evidence(
                    "activesync_device_type", "device-type", claims, 0.8, f"DeviceType `{shown}`"
                )
            )
    if signals.activesync_device_model and signals.activesync_device_model.strip():
        model = signals.activesync_device_model
        evidence.append(
            _evidence(
                "activesync_device_model",
                "device-model",
                _model_claims(model),
                0.75,
                f"DeviceModel `{clean(model, 40)}`",
            )
        )
    if signals.activesync_device_os and signals.activesync_device_os.strip():
        os_text = clean(signals.activesync_device_os, 80)
        claims = _os_claims(os_text)
        if claims:
            evidence.append(
                _evidence(
                    "activesync_device_os", "device-os", claims, 0.75, f"DeviceOS `{os_text}`"
                )
            )
        else:
            evidence.append(
                _evidence(
                    "activesync_device_os",
                    "device-os",
                    [],
                    0.0,
                    f"DeviceOS `{os_text}` is not one we recognise",
                )
            )
    return Extracted(evidence=tuple(evidence), keys=tuple(found_keys))
