"""The three MDM readers: each pages through its API and maps a record to `InventoryDevice`.

The field-by-field mapping of Intune's `managedDevice`, Fleet's host and Jamf Pro's v2
mobile-device detail is the table in docs/sources.md ("What each MDM field becomes"); the
functions `intune_device`, `fleet_device` and `jamf_device` below are that table in code.

Completeness is checked where the API says how many there are: Fleet's `hosts/count`, Jamf's
`totalCount`. A pass that read fewer raises (the guard refuses it). Intune states no total; its
`@odata.nextLink` is followed until absent, through empty pages.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from devicegate.errors import SourceError
from devicegate.identify.base import clean
from devicegate.inventory import NO_THREAT, InventoryDevice
from devicegate.model import Ownership
from devicegate.sources.config import FleetSource, IntuneSource, JamfSource, MdmConfig
from devicegate.sources.mdmhttp import ApiClient, OAuthClientCredentials, Sleep

#: Intune's `partnerReportedThreatState` values that report a threat
INTUNE_THREATS = frozenset({"lowSeverity", "mediumSeverity", "highSeverity", "compromised"})
INTUNE_FIELDS = (
    "id,userPrincipalName,emailAddress,manufacturer,operatingSystem,model,osVersion,"
    "managedDeviceOwnerType,managementAgent,serialNumber,udid,imei,easDeviceId,wiFiMacAddress,"
    "complianceState,jailBroken,partnerReportedThreatState"
)
#: most pages one pass follows (a link loop in a broken answer must end)
MAX_PAGES = 100_000

FLEET_PLATFORMS = {
    "darwin": "macOS",
    "ios": "iOS",
    "ipados": "iPadOS",
    "windows": "Windows",
    "android": "Android",
    "chrome": "ChromeOS",
}
JAMF_PERSONAL = frozenset(
    {"personaldeviceprofile", "userenrollment", "accountdrivenuserenrollment"}
)


def _text(value: object, limit: int = 128) -> str | None:
    if isinstance(value, str | int) and not isinstance(value, bool):
        text = clean(str(value), limit)
        return text or None
    return None


def _obj(record: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = record.get(name)
    return value if isinstance(value, dict) else {}


def _list(data: Mapping[str, Any], name: str, what: str) -> list[Mapping[str, Any]]:
    value = data.get(name)
    if not isinstance(value, list):
        raise SourceError(f"{what}: the answer has no `{name}` list")
    return [item for item in value if isinstance(item, dict)]


# ---- Intune ---------------------------------------------------------------------------------


def intune_device(record: Mapping[str, Any]) -> InventoryDevice | None:
    device_id = _text(record.get("id"))
    if device_id is None:
        return None
    owner = str(record.get("managedDeviceOwnerType") or "").casefold()
    compliance = str(record.get("complianceState") or "")
    jailbroken = str(record.get("jailBroken") or "").casefold()
    partner = str(record.get("partnerReportedThreatState") or "")
    agent = str(record.get("managementAgent") or "")
    threat: str | None = None
    if jailbroken == "true":
        threat = "jailbroken"
    elif partner in INTUNE_THREATS:
        threat = partner
    elif jailbroken == "false":
        threat = NO_THREAT
    return InventoryDevice(
        device_id=device_id,
        user=_text(record.get("userPrincipalName"), 320) or _text(record.get("emailAddress"), 320),
        vendor=_text(record.get("manufacturer"), 64),
        platform=_text(record.get("operatingSystem"), 64),
        model=_text(record.get("model")),
        os_version=_text(record.get("osVersion"), 64),
        ownership={"company": Ownership.CORPORATE, "personal": Ownership.PERSONAL}.get(
            owner, Ownership.UNKNOWN
        ),
        managed=None if agent in ("", "unknown") else agent != "eas",
        serial=_text(record.get("serialNumber")),
        udid=_text(record.get("udid")),
        mdm_id=device_id,
        activesync_id=_text(record.get("easDeviceId")),
        mac=_text(record.get("wiFiMacAddress"), 64),
        imei=_text(record.get("imei"), 64),
        compliant=True
        if compliance == "compliant"
        else False
        if compliance in ("noncompliant", "conflict", "error", "inGracePeriod")
        else None,
        mdm_threat=threat,
    )


def read_intune(config: IntuneSource, name: str, sleep: Sleep) -> Iterator[Mapping[str, Any]]:
    oauth = OAuthClientCredentials(
        config.token_url.replace("{tenant}", config.tenant),
        config.client_id,
        config.client_secret.read(),
        scope=_origin_url(config.graph_url) + "/.default",
    )
    with ApiClient(
        name, config.graph_url, timeout=config.timeout, ca_file=config.ca_file, oauth=oauth,
        sleep=sleep,
    ) as api:  # fmt: skip
        url: str | None = "/deviceManagement/managedDevices"
        params: dict[str, str | int | list[str]] | None = {
            "$top": config.page_size,
            "$select": INTUNE_FIELDS,
        }
        for _ in range(MAX_PAGES):
            if url is None:
                return
            page = api.get(url, params)
            yield from _list(page, "value", name)
            link = page.get("@odata.nextLink")
            url, params = (link, None) if isinstance(link, str) and link else (None, None)
        raise SourceError(f"{name}: more than {MAX_PAGES} pages: the links loop")


def _origin_url(url: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


# ---- Fleet ----------------------------------------------------------------------------------


def fleet_device(record: Mapping[str, Any]) -> InventoryDevice | None:
    host_id = _text(record.get("uuid")) or _text(record.get("id"))
    if host_id is None:
        return None
    platform_key = str(record.get("platform") or "").casefold()
    platform = FLEET_PLATFORMS.get(platform_key) or ("Linux" if platform_key else None)
    os_text = _text(record.get("os_version"), 64)
    if os_text:
        words = os_text.split()
        os_text = next((w for w in words if w[:1].isdigit()), os_text)
    mdm = _obj(record, "mdm")
    status = str(mdm.get("enrollment_status") or "")
    issues = _obj(record, "issues")
    failing = issues.get("failing_policies_count")
    mapping = record.get("device_mapping")
    user = None
    if isinstance(mapping, list):
        user = next((_text(m.get("email"), 320) for m in mapping if isinstance(m, dict)), None)
    return InventoryDevice(
        device_id=host_id,
        user=user,
        vendor=_text(record.get("hardware_vendor"), 64),
        platform=platform,
        model=_text(record.get("hardware_model")),
        os_version=os_text,
        ownership=Ownership.PERSONAL if "personal" in status.casefold() else Ownership.UNKNOWN,
        managed=status.startswith("On") if status else None,
        serial=_text(record.get("hardware_serial")),
        mdm_id=host_id,
        mac=_text(record.get("primary_mac"), 64),
        compliant=(failing == 0) if isinstance(failing, int) else None,
    )


def read_fleet(config: FleetSource, name: str, sleep: Sleep) -> Iterator[Mapping[str, Any]]:
    with ApiClient(
        name, config.url, timeout=config.timeout, ca_file=config.ca_file,
        static_token=config.token.read(), sleep=sleep,
    ) as api:  # fmt: skip
        expected = api.get("/api/v1/fleet/hosts/count").get("count")
        if not isinstance(expected, int) or expected < 0:
            raise SourceError(f"{name}: `hosts/count` has no count")
        read = 0
        for page in range(MAX_PAGES):
            hosts = _list(
                api.get(
                    "/api/v1/fleet/hosts",
                    {
                        "page": page,
                        "per_page": config.page_size,
                        "order_key": "id",
                        "device_mapping": "true",
                    },
                ),
                "hosts",
                name,
            )
            read += len(hosts)
            yield from hosts
            if len(hosts) < config.page_size:
                break
        if read < expected:
            raise SourceError(f"{name}: read {read} hosts of the {expected} Fleet counts")


# ---- Jamf Pro -------------------------------------------------------------------------------


def jamf_device(record: Mapping[str, Any]) -> InventoryDevice | None:
    device_id = _text(record.get("mobileDeviceId")) or _text(record.get("id"))
    if device_id is None:
        return None
    general = _obj(record, "general")
    hardware = _obj(record, "hardware")
    person = _obj(record, "userAndLocation")
    security = _obj(record, "security")
    network = _obj(record, "network")
    ownership_text = str(general.get("deviceOwnershipType") or "").casefold()
    jailbreak = security.get("jailBreakDetected")
    managed = general.get("managed")
    return InventoryDevice(
        device_id=device_id,
        user=_text(person.get("emailAddress"), 320) or _text(person.get("username"), 320),
        vendor="Apple",
        platform=_text(record.get("deviceType"), 64),
        model=_text(hardware.get("modelIdentifier")) or _text(hardware.get("model")),
        os_version=_text(general.get("osVersion"), 64),
        ownership=Ownership.CORPORATE
        if ownership_text == "institutional"
        else Ownership.PERSONAL
        if ownership_text in JAMF_PERSONAL
        else Ownership.UNKNOWN,
        managed=managed if isinstance(managed, bool) else None,
        serial=_text(hardware.get("serialNumber")),
        udid=_text(general.get("udid")),
        mdm_id=device_id,
        activesync_id=_text(general.get("exchangeDeviceId")),
        mac=_text(hardware.get("wifiMacAddress"), 64),
        imei=_text(network.get("imei"), 64),
        mdm_threat=("jailbroken" if jailbreak else NO_THREAT)
        if isinstance(jailbreak, bool)
        else None,
    )


JAMF_SECTIONS = ["GENERAL", "HARDWARE", "USER_AND_LOCATION", "SECURITY", "NETWORK"]


def read_jamf(config: JamfSource, name: str, sleep: Sleep) -> Iterator[Mapping[str, Any]]:
    oauth = OAuthClientCredentials(
        config.url.rstrip("/") + "/api/oauth/token", config.client_id, config.client_secret.read()
    )
    with ApiClient(
        name, config.url, timeout=config.timeout, ca_file=config.ca_file, oauth=oauth,
        sleep=sleep,
    ) as api:  # fmt: skip
        read = 0
        total: int | None = None
        for page in range(MAX_PAGES):
            data = api.get(
                "/api/v2/mobile-devices/detail",
                {"page": page, "page-size": config.page_size, "section": JAMF_SECTIONS},
            )
            count = data.get("totalCount")
            if not isinstance(count, int) or count < 0:
                raise SourceError(f"{name}: the answer has no totalCount")
            total = count if total is None else total
            results = _list(data, "results", name)
            read += len(results)
            yield from results
            if not results or read >= total:
                break
        if total is None or read < total:
            raise SourceError(f"{name}: read {read} devices of the {total} Jamf Pro counts")


# ---- dispatch -------------------------------------------------------------------------------

Mapper = Callable[[Mapping[str, Any]], InventoryDevice | None]


def read_mdm(config: MdmConfig, name: str, sleep: Sleep) -> tuple[list[InventoryDevice], int]:
    """Every device the MDM lists, mapped; and how many records had no id (skipped)."""
    records: Iterator[Mapping[str, Any]]
    mapper: Mapper
    if isinstance(config, IntuneSource):
        records, mapper = read_intune(config, name, sleep), intune_device
    elif isinstance(config, FleetSource):
        records, mapper = read_fleet(config, name, sleep), fleet_device
    else:
        records, mapper = read_jamf(config, name, sleep), jamf_device
    devices: dict[str, InventoryDevice] = {}
    skipped = 0
    for record in records:
        device = mapper(record)
        if device is None or device.device_id in devices:
            skipped += 1
            continue
        devices[device.device_id] = device
    return list(devices.values()), skipped


__all__ = ["fleet_device", "intune_device", "jamf_device", "read_mdm"]
