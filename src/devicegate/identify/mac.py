"""MAC address: normalise it, tell randomised from burned-in, name the registrant.

A hardware MAC begins with a prefix the IEEE assigned to an organisation (24-bit MA-L,
28-bit MA-M, 36-bit MA-S). An Apple prefix is strong evidence the device is Apple's —
but only *vendor* evidence: the same prefixes are on iPhones, Macs and Apple TVs, so no
platform is claimed. Since iOS 14 (and macOS 15) Wi-Fi uses a random private address per
network by default; such addresses set the *locally administered* bit and tell nothing
about the maker. A multicast address (group bit set) is no device's address at all.

Prefixes of chip and module makers (Intel, Realtek, Murata…) say nothing about the
device's brand, so only organisations `names.vendor_from_organisation` knows as device
makers earn a vendor claim. The trust is `inferred`: MACs are easily copied.

The prefix table (data/ieee-prefixes.tsv.gz, built by scripts/build_ieee_prefixes.py) is
read once, on the first look-up.
"""

from __future__ import annotations

import gzip
import re
import threading
from collections.abc import Mapping
from importlib import resources

from devicegate.errors import SignalError
from devicegate.identify.base import NOTHING, Extracted, clean, make_evidence, note_only
from devicegate.identify.names import vendor_from_organisation
from devicegate.model import Signals, Trust

SIGNAL = "mac"
DATA_FILE = "ieee-prefixes.tsv.gz"

_SPLIT = re.compile(r"[:\-. ]")
_HEXDIGITS = frozenset("0123456789abcdef")


def normalise_mac(text: str) -> str:
    """Any common notation → `aa:bb:cc:dd:ee:ff`; SignalError when it is not a MAC.

    Accepts `AA:BB:CC:DD:EE:FF`, `aa-bb-…`, `a:b:c:d:e:f` (leading zeros dropped, as BSD
    `arp` prints), Cisco `aabb.ccdd.eeff`, `aabbcc-ddeeff`, bare `aabbccddeeff` and `0x…`.
    """
    value = text.strip().lower()
    if len(value) > 32:
        raise SignalError("mac address is longer than 32 characters")
    if value.startswith("0x"):
        value = value[2:]
    groups = _SPLIT.split(value)
    widths = {1: (12,), 2: (6,), 3: (4,), 6: (1, 2)}.get(len(groups))
    if widths is None:
        raise SignalError(
            f"`{clean(text, 32)}` is not a mac address",
            hint="expected six hex octets such as aa:bb:cc:dd:ee:ff",
        )
    digits = []
    for group in groups:
        if len(group) not in widths or not set(group) <= _HEXDIGITS:
            raise SignalError(
                f"`{clean(text, 32)}` is not a mac address",
                hint="expected six hex octets such as aa:bb:cc:dd:ee:ff",
            )
        digits.append(group.rjust(max(widths), "0"))
    joined = "".join(digits)
    return ":".join(joined[i : i + 2] for i in range(0, 12, 2))


class _Table:
    """Longest-prefix look-up over the IEEE assignments, loaded lazily once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._maps: tuple[dict[int, str], dict[int, str], dict[int, str]] | None = None
        self.header = ""
        self.error: str | None = None

    def _load(self) -> tuple[dict[int, str], dict[int, str], dict[int, str]]:
        by_length: dict[int, dict[int, str]] = {6: {}, 7: {}, 9: {}}
        try:
            path = resources.files("devicegate.identify").joinpath("data", DATA_FILE)
            with path.open("rb") as raw, gzip.open(raw, "rt", encoding="utf-8") as handle:
                for line in handle:
                    if line.startswith("#"):
                        self.header = self.header or line[1:].strip()
                        continue
                    prefix, _, organisation = line.rstrip("\n").partition("\t")
                    table = by_length.get(len(prefix))
                    if table is not None and organisation:
                        table[int(prefix, 16)] = organisation
        except (OSError, ValueError, EOFError) as exc:
            self.error = f"IEEE prefix table `{DATA_FILE}` unreadable ({exc}): vendor not checked"
        return by_length[9], by_length[7], by_length[6]

    def maps(self) -> tuple[dict[int, str], dict[int, str], dict[int, str]]:
        maps = self._maps
        if maps is None:
            with self._lock:
                if self._maps is None:
                    self._maps = self._load()
                maps = self._maps
        return maps

    def lookup(self, mac: str) -> tuple[str, str] | None:
        """(organisation, registry) for a normalised MAC, longest prefix first."""
        value = int(mac.replace(":", ""), 16)
        mas, mam, mal = self.maps()
        for table, shift, registry in ((mas, 12, "MA-S"), (mam, 20, "MA-M"), (mal, 24, "MA-L")):
            organisation = table.get(value >> shift)
            if organisation is not None:
                return organisation, registry
        return None

    def __len__(self) -> int:
        return sum(len(m) for m in self.maps())


TABLE = _Table()


def extract_mac(signals: Signals, keys: Mapping[str, str]) -> Extracted:
    """Extractor: `Signals.mac` (a RADIUS Calling-Station-Id, a DHCP lease…)."""
    raw = signals.mac
    if not raw or raw.isspace():
        return NOTHING
    try:
        mac = normalise_mac(raw)
    except SignalError as exc:
        return note_only(SIGNAL, Trust.INFERRED, "mac", exc.message)
    first = int(mac[:2], 16)
    if first & 0x01:
        return note_only(
            SIGNAL,
            Trust.INFERRED,
            "mac",
            f"`{mac}` is a multicast address: no device's own address",
        )
    key = (("mac", mac),)
    if first & 0x02:
        return Extracted(
            evidence=(
                make_evidence(
                    SIGNAL,
                    Trust.INFERRED,
                    "mac/randomised",
                    (),
                    confidence=0.0,
                    note=f"`{mac}` is locally administered: a randomised (private) address, "
                    "which tells nothing about the maker",
                ),
            ),
            keys=key,
        )
    found = TABLE.lookup(mac)
    if TABLE.error:
        return Extracted(
            evidence=note_only(SIGNAL, Trust.INFERRED, "mac", TABLE.error).evidence, keys=key
        )
    if found is None:
        return Extracted(
            evidence=note_only(
                SIGNAL, Trust.INFERRED, "mac", f"prefix of `{mac}` is not in the IEEE registries"
            ).evidence,
            keys=key,
        )
    organisation, registry = found
    vendor = vendor_from_organisation(organisation)
    if vendor is None:
        note = (
            f"{registry} prefix registered to `{organisation}`, not a known device maker: "
            "no vendor claim"
        )
        return Extracted(
            evidence=note_only(SIGNAL, Trust.INFERRED, "mac/ieee", note).evidence, keys=key
        )
    return Extracted(
        evidence=(
            make_evidence(
                SIGNAL,
                Trust.INFERRED,
                "mac/ieee",
                [("vendor", vendor)],
                confidence=0.6,
                note=f"{registry} prefix registered to `{organisation}`; says nothing of platform",
            ),
        ),
        keys=key,
    )
