"""The small frozen vocabulary every part of devicegate speaks.

A `Request` goes into the engine and a `Decision` comes out; between them stand the
`Signals` a work service saw and the `DeviceProfile` that identification made of them.
Everything here is a frozen, slotted dataclass: values, not objects with behaviour, so they
hash, compare and cross module boundaries (and processes) without surprises.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from operator import attrgetter


class Action(StrEnum):
    """What happens to one work access. Ordered by severity (see `SEVERITY`)."""

    ALLOW = "allow"
    WARN = "warn"
    QUARANTINE = "quarantine"
    BLOCK = "block"


#: The combining order used at equal unit depth: the most severe effect wins.
SEVERITY: dict[Action, int] = {
    Action.ALLOW: 0,
    Action.WARN: 1,
    Action.QUARANTINE: 2,
    Action.BLOCK: 3,
}


class Trust(StrEnum):
    """How far a signal can be believed (docs/design.md, "How far a signal is believed")."""

    ATTESTED = "attested"  # MDM inventory, mTLS / EAP-TLS certificate: not simply claimed
    REPORTED = "reported"  # self-declared by the client: User-Agent, ActiveSync, IMAP ID
    INFERRED = "inferred"  # MAC vendor, correlation with earlier sightings

    @property
    def rank(self) -> int:
        return _TRUST_RANK[self]


_TRUST_RANK = {Trust.ATTESTED: 3, Trust.REPORTED: 2, Trust.INFERRED: 1}


class Ownership(StrEnum):
    CORPORATE = "corporate"
    PERSONAL = "personal"
    UNKNOWN = "unknown"


class DeviceKind(StrEnum):
    """What sort of client spoke. A *service* (Outlook's cloud sync) is never a handset."""

    HANDSET = "handset"
    TABLET = "tablet"
    DESKTOP = "desktop"
    WATCH = "watch"
    TV = "tv"
    SERVICE = "service"
    UNKNOWN = "unknown"


#: Attributes of a device that signals may claim and that policy conditions may test.
PROFILE_ATTRIBUTES = ("vendor", "platform", "model", "os_version")


SIGNAL_FIELDS = (
    "user_agent",
    "activesync_query",
    "activesync_device_id",
    "activesync_device_type",
    "activesync_device_model",
    "activesync_device_os",
    "imap_id",
    "mac",
    "client_ip",
    "mdm_id",
    "tls_fingerprint",
)

_KEY_FIELDS = tuple(name for name in SIGNAL_FIELDS if name != "client_ip")
_key_of = attrgetter(*_KEY_FIELDS)  # one C call for the tuple: Signals are made per request


@dataclass(frozen=True, slots=True, eq=False)
class Signals:
    """What one access carries. Every field is optional; raw values, not yet interpreted.

    `activesync_query` is the raw query string of an ActiveSync request (plain
    `Cmd=Sync&DeviceId=…&DeviceType=…` or the base64-encoded binary form); the separate
    `activesync_*` fields hold values a proxy or a log already split out.
    `imap_id` is the raw RFC 2971 parenthesised list as the client sent it.

    Signals are the key of the identification and decision caches, looked up millions of
    times: the value tuple and its hash are computed once, at construction. `client_ip` is
    carried for logs and sightings but takes no part in equality: it says nothing about the
    device, and keying caches on it would defeat them.
    """

    user_agent: str | None = None
    activesync_query: str | None = None
    activesync_device_id: str | None = None
    activesync_device_type: str | None = None
    activesync_device_model: str | None = None
    activesync_device_os: str | None = None
    imap_id: str | None = None
    mac: str | None = None
    client_ip: str | None = None
    mdm_id: str | None = None
    tls_fingerprint: str | None = None
    cache_key: tuple[str | None, ...] = field(init=False, repr=False, default=())
    _hash: int = field(init=False, repr=False, default=0)

    def __post_init__(self) -> None:
        key: tuple[str | None, ...] = _key_of(self)
        object.__setattr__(self, "cache_key", key)
        object.__setattr__(self, "_hash", hash(key))

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        if self is other:
            return True
        if not isinstance(other, Signals):
            return NotImplemented
        return self._hash == other._hash and self.cache_key == other.cache_key

    def is_empty(self) -> bool:
        return all(value in (None, "") for value in self.cache_key) and not self.client_ip

    def as_dict(self) -> dict[str, str]:
        """The signals that are present, by name (for logs and JSON)."""
        return {name: value for name in SIGNAL_FIELDS if (value := getattr(self, name)) is not None}


@dataclass(frozen=True, slots=True)
class Evidence:
    """One extractor's finding: which signal said what, and how far to trust it.

    `says` maps profile attributes (`vendor`, `platform`, `model`, `os_version`, `kind`,
    `device_id`, `ownership`, `managed`) to the value this signal claims. `note` explains
    anything a reader should know (for example "locally administered MAC: randomised").
    """

    signal: str
    trust: Trust
    source: str
    says: tuple[tuple[str, str], ...] = ()
    note: str = ""
    confidence: float = 0.5

    def get(self, attribute: str) -> str | None:
        for key, value in self.says:
            if key == attribute:
                return value
        return None


@dataclass(frozen=True, slots=True)
class Conflict:
    """Signals that disagree on one attribute: a spoofing suspicion, never silently resolved."""

    attribute: str
    claims: tuple[tuple[str, str], ...]  # (signal, value) pairs that disagree
    note: str = ""


@dataclass(frozen=True, slots=True)
class DeviceProfile:
    """What identification concluded from the signals of one access.

    `vendor` … `os_version` are the best single values (attested first, then the most
    confident); `claims` keeps *every* value any credible signal supports per attribute, which
    is what the engine's deny/allow-list semantics need (docs/semantics.md rule 8). A platform
    the signals cannot settle (iPadOS in desktop mode looks exactly like macOS) appears as
    several claims from one signal and `ambiguous` names the attribute.
    """

    vendor: str | None = None
    platform: str | None = None
    model: str | None = None
    os_version: str | None = None
    kind: DeviceKind = DeviceKind.UNKNOWN
    ownership: Ownership = Ownership.UNKNOWN
    managed: bool | None = None
    device_id: str | None = None
    trust: Trust | None = None
    confidence: float = 0.0
    evidence: tuple[Evidence, ...] = ()
    conflicts: tuple[Conflict, ...] = ()
    claims: tuple[tuple[str, tuple[str, ...]], ...] = ()
    ambiguous: tuple[str, ...] = ()
    # Stable keys the store can use to link sightings, inventory and verdicts.
    keys: tuple[tuple[str, str], ...] = ()

    @property
    def identified(self) -> bool:
        return self.vendor is not None or self.platform is not None

    @property
    def label(self) -> str:
        """`device_label` of this profile."""
        return device_label(self.vendor, self.platform, self.model)

    @property
    def spoofing_suspected(self) -> bool:
        return bool(self.conflicts)

    def claimed(self, attribute: str) -> tuple[str, ...]:
        """Every value credible signals claim for `attribute` (empty: nothing known)."""
        for key, values in self.claims:
            if key == attribute:
                return values
        return ()

    def key(self, kind: str) -> str | None:
        for key, value in self.keys:
            if key == kind:
                return value
        return None


UNIDENTIFIED = DeviceProfile()

#: What a device nothing is known about is called, wherever devices are listed.
UNIDENTIFIED_LABEL = "unidentified device"


def device_label(vendor: str | None, platform: str | None = None, model: str | None = None) -> str:
    """How a device is named to people, everywhere it is listed (notices, impact, the audit
    report, `devices list`, SMTP refusals): what is known of vendor, platform and model, a
    word once (`Apple iOS iPhone14,2`), else `unidentified device`."""
    parts = [part for part in (vendor, platform, model) if part]
    return " ".join(dict.fromkeys(parts)) or UNIDENTIFIED_LABEL


@dataclass(frozen=True, slots=True)
class DeviceState:
    """What the store knows about a device beyond this access (fed to the pure engine).

    `compromised` comes from a triage verdict; `held` lists resources on which an operator
    must release the device before it may connect again (Exchange-style quarantine), with
    `"*"` meaning every resource.
    """

    compromised: bool = False
    verdict: str | None = None
    held: frozenset[str] = frozenset()
    device_ref: str | None = None


NO_STATE = DeviceState()


@dataclass(frozen=True, slots=True)
class Request:
    """One work access to decide: who, to what, when, from which device.

    Give either `signals` (identification runs, cached) or an already-made `profile`.
    `at` must be timezone-aware.
    """

    user: str
    resource: str
    at: datetime
    signals: Signals = field(default_factory=Signals)
    profile: DeviceProfile | None = None


@dataclass(frozen=True, slots=True)
class RuleHit:
    """A rule that matched, with the action it asked for and why (WorkMail's MatchedRules)."""

    rule: str
    action: Action
    mode: str  # "enforce" | "report-only"
    depth: int
    reason: str


@dataclass(frozen=True, slots=True)
class Decision:
    """The engine's answer. Always names the rule that decided (or None for the default).

    `reasons` is the reason chain `explain` prints; `matched` lists every enforce-mode rule
    that applied (the winner first); `report_only` lists what report-only rules would have
    done; `excepted` names rules an active exception lifted.
    """

    action: Action
    rule: str | None
    message: str
    reasons: tuple[str, ...]
    device: DeviceProfile
    policy_version: str
    matched: tuple[RuleHit, ...] = ()
    report_only: tuple[RuleHit, ...] = ()
    excepted: tuple[str, ...] = ()
    effective_from: datetime | None = None
    spoofing_suspected: bool = False

    @property
    def allowed(self) -> bool:
        return self.action in (Action.ALLOW, Action.WARN)
