"""The combining rule, one test per row: conflicts, ambiguity, attested outranking."""

from __future__ import annotations

from devicegate.identify import Identifier, combine, identify
from devicegate.inventory import Inventory, InventoryDevice
from devicegate.model import DeviceKind, Evidence, Ownership, Signals, Trust

ANDROID_UA = (
    "Mozilla/5.0 (Linux; Android 13; SM-G991B) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/114.0.0.0 Mobile Safari/537.36"
)
GENERIC_ANDROID_UA = (
    "Mozilla/5.0 (Linux; Android 13; 2201117TG) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/114.0.0.0 Mobile Safari/537.36"
)
MAC_SAFARI_UA = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/16.5 Safari/605.1.15"
)
APPLE_MAC = "3C:22:FB:12:34:56"


def ev(signal: str, trust: Trust, confidence: float, **says: str) -> Evidence:
    return Evidence(signal, trust, "test", tuple(says.items()), confidence=confidence)


def test_ua_android_against_activesync_iphone_conflicts_on_vendor_and_platform() -> None:
    profile = identify(Signals(user_agent=ANDROID_UA, activesync_device_type="iPhone"))
    assert {c.attribute for c in profile.conflicts} == {"vendor", "platform"}
    assert profile.spoofing_suspected
    assert set(profile.claimed("platform")) == {"iOS", "Android"}
    assert set(profile.claimed("vendor")) == {"Apple", "Samsung"}
    platform = next(c for c in profile.conflicts if c.attribute == "platform")
    assert ("user_agent", "Android") in platform.claims
    assert ("activesync_device_type", "iOS") in platform.claims


def test_apple_mac_prefix_under_an_android_agent_is_a_vendor_conflict() -> None:
    profile = identify(Signals(user_agent=GENERIC_ANDROID_UA, mac=APPLE_MAC))
    vendor = [c for c in profile.conflicts if c.attribute == "vendor"]
    assert vendor, profile
    assert ("mac", "Apple") in vendor[0].claims
    assert ("user_agent", "not Apple (Android)") in vendor[0].claims
    assert profile.claimed("vendor") == ("Apple",)


def test_apple_mac_prefix_with_windows_is_no_conflict() -> None:
    # Boot Camp: Windows runs on Apple hardware.
    windows = (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/120 Safari/537.36"
    )
    profile = identify(Signals(user_agent=windows, mac=APPLE_MAC))
    assert profile.conflicts == ()
    assert profile.vendor == "Apple"
    assert profile.platform == "Windows"


def test_desktop_mode_ambiguity_is_not_a_conflict_with_ipados() -> None:
    profile = identify(Signals(user_agent=MAC_SAFARI_UA, activesync_device_type="iPad"))
    assert profile.conflicts == ()
    assert set(profile.claimed("platform")) == {"macOS", "iPadOS"}
    assert "platform" in profile.ambiguous


def test_desktop_mode_ambiguity_still_conflicts_with_android() -> None:
    profile = identify(Signals(user_agent=MAC_SAFARI_UA, activesync_device_type="Android"))
    assert "platform" in {c.attribute for c in profile.conflicts}


def test_ipados_desktop_mode_profile() -> None:
    profile = identify(Signals(user_agent=MAC_SAFARI_UA))
    assert profile.vendor == "Apple"
    assert profile.claimed("platform") == ("macOS", "iPadOS")
    assert profile.ambiguous == ("platform",)
    note = profile.evidence[0].note
    assert "iPad" in note and "desktop mode" in note


def test_ios_and_ipados_are_one_family() -> None:
    profile = combine(
        [
            ev("a", Trust.REPORTED, 0.8, vendor="Apple", platform="iPadOS"),
            ev("b", Trust.REPORTED, 0.7, vendor="Apple", platform="iOS"),
        ]
    )
    assert profile.conflicts == ()
    assert profile.platform == "iPadOS"


def test_outlook_service_claims_no_device() -> None:
    profile = identify(Signals(user_agent="Outlook-iOS-Android/1.0"))
    assert profile.kind is DeviceKind.SERVICE
    assert profile.vendor is None and profile.platform is None
    assert not profile.identified
    assert profile.claimed("vendor") == () and profile.claimed("platform") == ()


def test_randomised_mac_claims_nothing_but_says_why() -> None:
    profile = identify(Signals(mac="3e:22:fb:12:34:56"))
    assert profile.vendor is None
    assert profile.trust is None
    assert "randomised" in profile.evidence[0].note


def test_attested_inventory_outranks_a_spoofed_user_agent() -> None:
    inventory = Inventory(
        [
            InventoryDevice(
                device_id="dev-42",
                vendor="Samsung",
                platform="Android",
                model="SM-G991B",
                os_version="14",
                ownership=Ownership.CORPORATE,
                managed=True,
                mdm_id="mdm-42",
                serial="R58N12345",
            )
        ]
    )
    signals = Signals(user_agent="Apple-iPhone14C2/2006.66", mdm_id="mdm-42")
    profile = Identifier(inventory).profile(signals)
    assert profile.trust is Trust.ATTESTED
    assert profile.vendor == "Samsung" and profile.platform == "Android"
    # only attested claims count where attested evidence claims the attribute ...
    assert profile.claimed("vendor") == ("Samsung",)
    assert profile.claimed("platform") == ("Android",)
    # ... but the disagreement with the spoofed agent is still recorded.
    assert {c.attribute for c in profile.conflicts} == {"vendor", "platform"}
    assert profile.ownership is Ownership.CORPORATE and profile.managed is True
    assert profile.device_id == "dev-42"
    assert profile.key("serial") == "R58N12345" and profile.key("mdm_id") == "mdm-42"


def test_certificate_fingerprint_is_attested() -> None:
    inventory = Inventory(
        [InventoryDevice(device_id="mac-1", platform="macOS", cert_fingerprint="AB:CD:EF:01")]
    )
    profile = identify(Signals(tls_fingerprint="abcdef01"), inventory)
    assert profile.trust is Trust.ATTESTED
    assert profile.vendor == "Apple" and profile.platform == "macOS"
    assert profile.kind is DeviceKind.DESKTOP


def test_activesync_id_from_a_base64_query_reaches_the_inventory_as_reported() -> None:
    inventory = Inventory(
        [InventoryDevice(device_id="win-1", platform="Windows Mobile", activesync_id="v140Device")]
    )
    profile = identify(Signals(activesync_query="jAAJBAp2MTQwRGV2aWNlAApTbWFydFBob25l"), inventory)
    assert profile.trust is Trust.REPORTED
    assert profile.device_id == "win-1"
    assert ("activesync_id", "V140DEVICE") in profile.keys


def test_inventory_by_mac_is_inferred() -> None:
    inventory = Inventory(
        [InventoryDevice(device_id="p-1", vendor="Apple", mac="3c-22-fb-12-34-56")]
    )
    profile = identify(Signals(mac="3C22.FB12.3456"), inventory)
    inventory_evidence = [e for e in profile.evidence if e.source.startswith("inventory/")]
    assert inventory_evidence and inventory_evidence[0].trust is Trust.INFERRED
    assert profile.device_id == "p-1"


def test_unknown_mdm_id_is_said_and_not_attested() -> None:
    inventory = Inventory([InventoryDevice(device_id="x", mdm_id="known")])
    profile = identify(
        Signals(mdm_id="stranger", user_agent="iOS/16.5 (20F66) dataaccessd/1.0"), inventory
    )
    assert profile.trust is Trust.REPORTED
    assert any("not in the inventory" in e.note for e in profile.evidence)


def test_best_value_is_highest_trust_then_confidence() -> None:
    profile = combine(
        [
            ev("low", Trust.INFERRED, 0.99, vendor="Samsung"),
            ev("mid", Trust.REPORTED, 0.5, vendor="Google", platform="Android"),
            ev("mid2", Trust.REPORTED, 0.9, vendor="Xiaomi", platform="Android"),
        ]
    )
    assert profile.vendor == "Xiaomi"
    assert profile.claimed("vendor") == ("Xiaomi", "Google", "Samsung")
    assert profile.trust is Trust.REPORTED
    assert 0.0 <= profile.confidence <= 1.0


def test_agreement_raises_confidence_and_conflict_halves_it() -> None:
    one = combine([ev("a", Trust.REPORTED, 0.6, vendor="Apple", platform="iOS")])
    two = combine(
        [
            ev("a", Trust.REPORTED, 0.6, vendor="Apple", platform="iOS"),
            ev("b", Trust.INFERRED, 0.6, vendor="Apple"),
        ]
    )
    split = combine(
        [
            ev("a", Trust.REPORTED, 0.6, vendor="Apple", platform="iOS"),
            ev("b", Trust.REPORTED, 0.6, platform="Android"),
        ]
    )
    assert two.confidence > one.confidence
    assert split.confidence < one.confidence
    assert split.conflicts


def test_nothing_claimed_is_unidentified() -> None:
    profile = identify(Signals())
    assert not profile.identified and profile.trust is None and profile.confidence == 0.0
    assert identify(Signals(user_agent="curl/8.4.0")).identified is False
