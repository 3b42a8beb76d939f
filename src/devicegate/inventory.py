"""The device inventory: what an MDM (Intune, Workspace ONE, Jamf, …) knows for certain.

An inventory record is *attested* knowledge: the MDM enrolled the device, so its vendor,
platform and model are not merely claimed by a client. The inventory links the identifiers
each service sees (ActiveSync DeviceId, Wi-Fi MAC, MDM id, client-certificate fingerprint,
serial, UDID) to one device, which is how a verdict from a backup scan reaches the mail
server, the web gateway and the Wi-Fi at once.

CSV columns (header required; only `device_id` is mandatory)::

    device_id,user,vendor,platform,model,os_version,ownership,managed,
    serial,udid,mdm_id,activesync_id,mac,cert_fingerprint[,imei,compliant,mdm_threat]

`mdm_threat` is what the MDM reports about jailbreak or threat state: empty when the MDM says
nothing, `none` when it reports the device clean, else the state it reports (`jailbroken`,
`highSeverity`, …). A rule names it with the `mdm_threat` condition; it quarantines nothing
by itself.
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from devicegate.errors import InventoryError
from devicegate.model import Ownership

#: Identifier kinds an inventory indexes, and the trust a match on each deserves.
#: A certificate or MDM id is presented by enrolment machinery (attested); an ActiveSync
#: DeviceId is chosen by the client (reported); a MAC can be randomised or copied (inferred).
KEY_KINDS = ("mdm_id", "cert_fingerprint", "serial", "udid", "activesync_id", "mac")

COLUMNS = (
    "device_id",
    "user",
    "vendor",
    "platform",
    "model",
    "os_version",
    "ownership",
    "managed",
    *KEY_KINDS,
)
#: Columns a devices CSV may carry besides COLUMNS (an MDM export's compliance and threat).
OPTIONAL_COLUMNS = ("imei", "compliant", "mdm_threat")
#: `mdm_threat` when the MDM reports the device clean (anything else is a reported threat)
NO_THREAT = "none"


def normalise_key(kind: str, value: str) -> str:
    """Canonical form of an identifier so that `AA-BB-..` and `aa:bb:..` meet."""
    value = value.strip()
    if kind == "mac":
        hexdigits = "".join(ch for ch in value.lower() if ch in "0123456789abcdef")
        if len(hexdigits) == 12:
            return ":".join(hexdigits[i : i + 2] for i in range(0, 12, 2))
        return value.lower()
    if kind == "cert_fingerprint":
        return "".join(ch for ch in value.lower() if ch in "0123456789abcdef")
    if kind in ("serial", "udid", "activesync_id"):
        return value.upper()
    return value


def device_forms(text: str) -> frozenset[str]:
    """The forms a device named in a policy (an exception's `device`) may take among a
    device's keys: as written, case folded, and as the canonical MAC when it reads as a MAC
    in any notation (`AA-BB-…`, `aabb.ccdd.eeff`). Both are kept: twelve hex digits may as
    well be an ActiveSync DeviceId."""
    return frozenset({text.strip().lower(), normalise_key("mac", text)})


@dataclass(frozen=True, slots=True)
class InventoryDevice:
    device_id: str
    user: str | None = None
    vendor: str | None = None
    platform: str | None = None
    model: str | None = None
    os_version: str | None = None
    ownership: Ownership = Ownership.UNKNOWN
    managed: bool | None = None
    serial: str | None = None
    udid: str | None = None
    mdm_id: str | None = None
    activesync_id: str | None = None
    mac: str | None = None
    cert_fingerprint: str | None = None
    imei: str | None = None
    #: the MDM's compliance verdict (None: not reported)
    compliant: bool | None = None
    #: jailbreak / threat state the MDM reports: None unknown, NO_THREAT clean, else the state
    mdm_threat: str | None = None

    @property
    def threatened(self) -> bool | None:
        """Whether the MDM reports a threat; None when it reports nothing."""
        return None if self.mdm_threat is None else self.mdm_threat != NO_THREAT

    def identifiers(self) -> Iterator[tuple[str, str]]:
        yield ("device_id", self.device_id)
        for kind in KEY_KINDS:
            value = getattr(self, kind)
            if value:
                yield (kind, normalise_key(kind, value))


class Inventory:
    """Immutable index of inventory devices by every identifier kind."""

    def __init__(self, devices: Iterable[InventoryDevice] = (), *, source: str = "") -> None:
        self._devices: tuple[InventoryDevice, ...] = tuple(devices)
        self._index: dict[tuple[str, str], InventoryDevice] = {}
        self._by_user: dict[str, list[InventoryDevice]] = {}
        for device in self._devices:
            for key in device.identifiers():
                self._index.setdefault(key, device)
            if device.user:
                self._by_user.setdefault(device.user.lower(), []).append(device)
        self.source = source
        digest = hashlib.sha256()
        for device in self._devices:
            digest.update(repr(device).encode())
        self.version = digest.hexdigest()[:12]

    def __len__(self) -> int:
        return len(self._devices)

    def __iter__(self) -> Iterator[InventoryDevice]:
        return iter(self._devices)

    def lookup(self, kind: str, value: str | None) -> InventoryDevice | None:
        if not value:
            return None
        return self._index.get((kind, normalise_key(kind, value)))

    def for_user(self, user: str) -> tuple[InventoryDevice, ...]:
        return tuple(self._by_user.get(user.lower(), ()))


EMPTY_INVENTORY = Inventory()


def _parse_bool(text: str, where: str, column: str = "managed") -> bool | None:
    lowered = text.strip().lower()
    if lowered in ("", "unknown"):
        return None
    if lowered in ("1", "true", "yes", "y"):
        return True
    if lowered in ("0", "false", "no", "n"):
        return False
    raise InventoryError(f"{where}: `{column}` must be true or false, got `{text}`")


def load_inventory(path: str | Path) -> Inventory:
    """Read the inventory `--devices` names: a devices CSV, or an MDM source YAML (read live
    from the MDM, see `devicegate.sources.load_live`). Every malformed CSV row is an error
    naming file and line."""
    from devicegate.sources import is_source_file

    if is_source_file(path):
        from devicegate.sources import load_live_inventory

        return load_live_inventory(path)
    return load_inventory_csv(path)


def load_inventory_csv(path: str | Path) -> Inventory:
    """Read a devices CSV. Every malformed row is an error naming file and line."""
    path = Path(path)
    try:
        handle = path.open(newline="", encoding="utf-8")
    except OSError as exc:
        raise InventoryError(f"cannot read inventory `{path}`: {exc.strerror}") from None
    devices: list[InventoryDevice] = []
    with handle:
        try:
            reader = csv.DictReader(handle)
            header = reader.fieldnames or []
            if "device_id" not in header:
                raise InventoryError(
                    f"{path}:1: the inventory needs a `device_id` column",
                    hint="columns: " + ",".join((*COLUMNS, *OPTIONAL_COLUMNS)),
                )
            seen: set[str] = set()
            for row in reader:
                where = f"{path}:{reader.line_num}"
                device_id = (row.get("device_id") or "").strip()
                if not device_id:
                    raise InventoryError(f"{where}: empty `device_id`")
                if device_id in seen:
                    raise InventoryError(f"{where}: duplicate device_id `{device_id}`")
                seen.add(device_id)
                ownership_text = (row.get("ownership") or "unknown").strip().lower() or "unknown"
                try:
                    ownership = Ownership(ownership_text)
                except ValueError:
                    raise InventoryError(
                        f"{where}: unknown ownership `{ownership_text}`",
                        hint="use corporate, personal or unknown",
                    ) from None

                def text(name: str, row: dict[str, str | None] = row) -> str | None:
                    value = (row.get(name) or "").strip()
                    return value or None

                devices.append(
                    InventoryDevice(
                        device_id=device_id,
                        user=text("user"),
                        vendor=text("vendor"),
                        platform=text("platform"),
                        model=text("model"),
                        os_version=text("os_version"),
                        ownership=ownership,
                        managed=_parse_bool(row.get("managed") or "", where),
                        serial=text("serial"),
                        udid=text("udid"),
                        mdm_id=text("mdm_id"),
                        activesync_id=text("activesync_id"),
                        mac=text("mac"),
                        cert_fingerprint=text("cert_fingerprint"),
                        imei=text("imei"),
                        compliant=_parse_bool(row.get("compliant") or "", where, "compliant"),
                        mdm_threat=text("mdm_threat"),
                    )
                )
        except csv.Error as exc:
            raise InventoryError(f"{path}: malformed CSV: {exc}") from None
        except UnicodeDecodeError:
            raise InventoryError(f"{path}: not UTF-8 text") from None
    return Inventory(devices, source=str(path))
