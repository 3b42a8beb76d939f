"""The ActiveSync, IMAP ID and MAC parsers and extractors: every outcome — fields, evidence
(claims, trust, confidence, note), keys, or the exact error and hint — for inputs at each
branch and limit, against `golden/identify.json` (written by `python -m tests.golden`)."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import yaml

from devicegate.identify import activesync, imapid, mac
from devicegate.model import Signals
from tests.golden import Case, assert_family, assert_same_cases, params, plain

GOLDEN = Path(__file__).with_name("golden") / "identify.json"
CASES = Path(__file__).with_name("cases")


def _signals(**fields: str) -> Signals:
    return Signals(**fields)  # type: ignore[arg-type]


def _mac(value: str) -> Any:
    return mac.extract_mac(Signals(mac=value), {})


def _imap(value: str) -> Any:
    return imapid.extract_imap_id(Signals(imap_id=value), {})


def _eas(**fields: str) -> Any:
    return activesync.extract_activesync(_signals(**fields), {})


def fresh_table() -> dict[str, object]:
    """A prefix table loaded anew (the module's own is loaded once per process)."""
    table = mac._Table()
    sizes = [len(m) for m in table.maps()]
    return {
        "sizes": sizes,
        "total": len(table),
        "header": table.header,
        "error": table.error,
        "maps_kept": table.maps() is table.maps(),
        "apple": table.lookup("3c:22:fb:02:8f:01"),
        "ma_m": table.lookup("00:55:da:01:23:45"),
        "ma_s": table.lookup("00:1b:c5:00:01:23"),
        "samsung": table.lookup("00:00:f0:12:34:56"),
        "name ending in x": table.lookup("00:00:13:00:00:01"),
        "none": table.lookup("ff:ff:ff:ff:ff:fe"),
    }


def broken_table() -> mac._Table:
    """A prefix table whose file cannot be read."""
    saved = mac.DATA_FILE
    mac.DATA_FILE = "no-such-file.tsv.gz"
    try:
        table = mac._Table()
        table.maps()
    finally:
        mac.DATA_FILE = saved
    return table


def unrooted(value: Any) -> Any:
    """`value` with the package's folder written `<identify>` (it differs between checkouts)."""
    folder = str(Path(mac.__file__).parent)
    return json.loads(json.dumps(plain(value)).replace(folder, "<identify>"))


def unreadable_table() -> dict[str, object]:
    table = broken_table()
    return unrooted({"total": len(table), "header": table.header, "error": table.error})


def extract_without_table(value: str) -> Any:
    """`extract_mac` while the prefix table is unreadable."""
    saved = mac.TABLE
    mac.TABLE = broken_table()
    try:
        return unrooted(_mac(value))
    finally:
        mac.TABLE = saved


def encoded(
    device_id: bytes = b"v140Device",
    device_type: bytes = b"SmartPhone",
    *,
    version: int = 140,
    command: int = 0,
    policy: bytes = b"",
    tail: bytes = b"",
) -> bytes:
    raw = bytes([version, command]) + (0x0409).to_bytes(2, "little")
    raw += bytes([len(device_id)]) + device_id + bytes([len(policy)]) + policy
    return raw + bytes([len(device_type)]) + device_type + tail


def b64(raw: bytes, *, urlsafe: bool = False, strip: bool = False) -> str:
    text = (base64.urlsafe_b64encode if urlsafe else base64.b64encode)(raw).decode()
    return text.rstrip("=") if strip else text


MACS = {
    "colons": "3C:22:FB:02:8F:01",
    "dashes": "3c-22-fb-02-8f-01",
    "dots cisco": "3c22.fb02.8f01",
    "half dash": "3c22fb-028f01",
    "bare": "3c22fb028f01",
    "0x": "0x3c22fb028f01",
    "bsd short octets": "3c:22:fb:2:8f:1",
    "spaces": " 3c 22 fb 02 8f 01 ",
    "32 chars": "3c:22:fb:02:8f:01".ljust(32, " ") + "",
    "32 chars of junk": "3" * 32,
    "33 chars": "3" * 33,
    "five groups": "3c:22:fb:02:8f",
    "seven groups": "3c:22:fb:02:8f:01:02",
    "three octet group": "3c:22:fb:02:8f:011",
    "non hex": "3c:22:fb:02:8f:0g",
    "cisco wrong width": "3c2.2fb02.8f01",
    "empty group": "3c::fb:02:8f:01",
    "control chars": "3c:22:fb:02:8f:0\x01\x02",
    "spaces around junk": " " * 5 + "3" * 30,
    "spaces around five groups": " " * 4 + "33:33:33:33:" + "3" * 18,
    "only 0x": "0x",
    "multicast": "01:00:5e:00:00:fb",
    "randomised": "3e:22:fb:02:8f:01",
    "realtek chip maker": "00:e0:4c:12:34:56",
    "samsung": "00:00:f0:12:34:56",
    "ma-m": "00:55:da:01:23:45",
    "ma-s": "00:1b:c5:00:01:23",
    "unregistered": "fc:ff:ff:ff:ff:fe",
}

IMAP_IDS = {
    "dovecot form": '"name" "iPhone Mail" "os" "iOS" "os-version" "18.2.1 (22C161)"',
    "list": '("name" "iPhone Mail" "os" "iOS")',
    "command": 'a1 ID ("name" "Mac OS X Mail" "os-version" "12.6 (21G115)")',
    "bare command": 'ID ("name" "Thunderbird")',
    "command crlf": 'a1 ID ("name" "iPad Mail")\r\n',
    "nil": "NIL",
    "nil lower": "nil",
    "empty list": "()",
    "nil value": '("name" NIL "os" "Android")',
    "nil value at end": '"name" "K-9 Mail" "os" NIL',
    "nil field name": '(NIL "x")',
    "nil like word": '("name" NILS)',
    "literal": '("name" {11}\r\niPhone Mail "os" "iOS")',
    "literal plus": '("name" {11+}\r\niPhone Mail)',
    "literal last": '"name" {11}\r\n',
    "literal short": '("name" {20}\r\niPhone Mail)',
    "literal too long": '("name" {1025}\r\n' + "x" * 1025 + ")",
    "literal 1024": '("name" {1024}\r\n' + "x" * 1024 + ")",
    "literal ending in X": '"name" {3}\r\nABX',
    "literal ending in X crlf": '"name" {3}\r\nABX\r\n',
    "trailing spaces": '("name" "iPhone Mail")   ',
    "spaces before crlf": 'a1 ID ("name" "iPad Mail")  \r\n',
    "form feed before crlf": 'a1 ID ("name" "iPad Mail")\x0c\r\n',
    "X after field": '"name"X"v"',
    "X after value": '"name" "v"X',
    "X before value": '"name" X"v"',
    "NILX": '"name" NILX',
    "unterminated bare": '"name" "iPhone',
    "exactly the limit": '"name" "iPhone Mail"'.ljust(imapid.MAX_TEXT),
    "literal header bad": '("name" {11}iPhone Mail)',
    "quoted escape": r'("name" "say \"hi\" \\ ok")',
    "bad escape": r'("name" "a\b")',
    "line break": '("name" "a\nb")',
    "cr": '("name" "a\rb")',
    "unterminated": '("name" "iPhone',
    "unclosed list": '("name" "iPhone Mail"',
    "no value": '("name")',
    "no value at end": '"name"',
    "no space": '("name""x")',
    "junk": '("name" "x"junk)',
    "bare word": "(name x)",
    "tab separated": '"name"\t"FairEmail"\t"os"\t"Android"',
    "repeated field": '"name" "K-9 Mail" "NAME" "iPhone Mail"',
    "30 pairs": " ".join(f'"f{i}" "v"' for i in range(30)),
    "31 pairs": " ".join(f'"f{i}" "v"' for i in range(31)),
    "field 30": f'"{"f" * 30}" "v"',
    "field 31": f'"{"f" * 31}" "v"',
    "value 1024": f'"name" "{"v" * 1024}"',
    "value 1025": f'"name" "{"v" * 1025}"',
    "huge": '"name" "' + "x" * imapid.MAX_TEXT + '"',
    "whitespace only": "   ",
    "outlook": '"name" "Outlook-iOS-Android" "os" "iOS"',
    "ios mail on ipad os ios": '"name" "iPad Mail" "os" "iOS" "os-version" "17.1 (21B74)"',
    "iphone mail on android": '"name" "iPhone Mail" "os" "Android"',
    "apple maild": '"name" "com.apple.email.maild" "os" "iOS" "os-version" "18.2"',
    "apple mail no os": '"name" "iPhone Mail"',
    "mac mail": '"name" "Mac OS X Mail" "os-version" "21G115"',
    "macos mail": '"name" "macOS Mail" "os" "macOS" "os-version" "14.1 (23B74)"',
    "watch mail": '"name" "Watch Mail"',
    "os x mail": '"name" "OS X Mail"',
    "macos mail no os": '"name" "macOS Mail"',
    "os only ios": '"os" "iOS"',
    "vision mail": '"name" "Vision Mail"',
    "ipod mail": '"name" "iPod Mail"',
    "plain mail": '"name" "Mail"',
    "k9": '"name" "K-9 Mail" "os" "Android" "os-version" "14"',
    "samsung email no os": '"name" "Samsung Email"',
    "gmail": '"name" "com.google.android.gm"',
    "thunderbird": '"name" "Thunderbird" "version" "115.5.0" "vendor" "Mozilla"',
    "no name": '"os" "Windows" "os-version" "10.0"',
    "os only linux": '"os" "Linux"',
    "unknown os": '"os" "Plan9"',
    "build only ios": '"name" "iPhone Mail" "os-version" "22C161"',
    "bad build": '"name" "iPhone Mail" "os" "iOS" "os-version" "1.2 (xyz)"',
    "weird version": '"name" "iPhone Mail" "os" "iOS" "os-version" "?!"',
    "name 70 chars": '"name" "' + "Mail " * 14 + '"',
}

PLAIN_QUERIES = {
    "plain": "Cmd=Sync&User=rmjones&DeviceId=v140Device&DeviceType=SmartPhone",
    "target": "/Microsoft-Server-ActiveSync?User=a&DeviceId=ABC&DeviceType=iPhone&Cmd=Ping",
    "plus and percent": "Cmd=Sync&User=a+b%40x&DeviceId=ID%2B1&DeviceType=iPhone",
    "repeated": "DeviceId=FIRST&DeviceId=SECOND&Cmd=Sync",
    "case of names": "DEVICEID=abc&devicetype=Android&CMD=Sync",
    "empty parts": "&&Cmd=Sync&&",
    "only cmd": "Cmd=Sync",
    "only device type": "DeviceType=iPad",
    "no device fields": "User=a&Foo=b",
    "part without value": "Cmd=Sync&DeviceId",
    "part without name": "Cmd=Sync&=x",
    "field 256": "Cmd=Sync&DeviceId=" + "a" * 256,
    "field 257": "Cmd=Sync&DeviceId=" + "a" * 257,
    "blank field": "Cmd=Sync&DeviceId=%20%20",
    "control in field": "Cmd=Sync&DeviceType=iP%01hone",
    "empty": "",
    "question mark only": "/Microsoft-Server-ActiveSync?",
    "4096": "Cmd=Sync&DeviceId=" + "a" * (4096 - 18),
    "4097": "Cmd=Sync&DeviceId=" + "a" * (4097 - 18),
    "spaces around": "  Cmd=Sync&DeviceType=iPhone  ",
    "value with equals": "Cmd=Sync&DeviceId=a=b",
    "long part without value": "Cmd=Sync&" + "p" * 50,
    "only device id": "DeviceId=abc&User=x",
    "ends in X": "DeviceId=XX",
    "ampersand no equals": "Cmd&DeviceId",
    "two question marks": "/Microsoft-Server-ActiveSync?Cmd=Sync&DeviceId=a?b",
}

ENCODED_QUERIES = {
    "spec example": "jAAJBAp2MTQwRGV2aWNlAApTbWFydFBob25l",
    "padded": b64(encoded(b"ABCD", b"iPhone")),
    "padding percent": b64(encoded(b"ABCD", b"iPhone")).replace("=", "%3D"),
    "plus and slash": "jAAJBANB+/AABGlQYWQ=",
    "plus and slash urlsafe": "jAAJBANB-_AABGlQYWQ=",
    "spec example extra padding": "jAAJBAp2MTQwRGV2aWNlAApTbWFydFBob25l==",
    "padding the decoder must refuse": "jAAJBAp2MTQwRGV2aWNlAApTbWFydFBob25lAAA==",
    "id bytes at the printable edges": b64(encoded(b"!~")),
    "id with space": b64(encoded(b"a b")),
    "id with del": b64(encoded(b"a\x7f")),
    "device type not utf8": b64(encoded(device_type=b"iP\xffd")),
    "user not utf8": b64(encoded(tail=b"\x08\x02\xff\xfe")),
    "policy key cut": b64(encoded(policy=b"\x01\x02\x03\x04")[:12]),
    "device type cut": b64(encoded()[:-3]),
    "plus slash percent": b64(encoded(b"\xfb\xff>", b"iPad"))
    .replace("+", "%2B")
    .replace("/", "%2F"),
    "urlsafe": b64(encoded(b"\xfb\xff>", b"iPad"), urlsafe=True),
    "urlsafe unpadded": b64(encoded(b"\xfb\xff>?", b"iPad"), urlsafe=True, strip=True),
    "binary id": b64(encoded(bytes(range(16)), b"WP8")),
    "policy key": b64(encoded(policy=b"\x01\x02\x03\x04")),
    "policy key 3": b64(encoded(policy=b"\x01\x02\x03")),
    "user parameter": b64(encoded(tail=b"\x08\x05alice\x08\x03bob")),
    "other parameters": b64(encoded(tail=b"\x01\x02ab\x07\x01\x01")),
    "parameter cut": b64(encoded(tail=b"\x08\x09ali")),
    "tag without length": b64(encoded(tail=b"\x08")),
    "command 17": b64(encoded(command=17)),
    "unknown command": b64(encoded(command=99)),
    "version 9": b64(encoded(version=9)),
    "version 10": b64(encoded(version=10)),
    "version 255": b64(encoded(version=255)),
    "empty device id": b64(encoded(b"")),
    "empty device type": b64(encoded(device_type=b"")),
    "control device type": b64(encoded(device_type=b"iP\x01")),
    "control user": b64(encoded(tail=b"\x08\x02a\x02")),
    "truncated": b64(encoded()[:9]),
    "one byte": b64(b"\x8d"),
    "not base64 chars": "jAAJ*BAp2",
    "bad padding": "jAAJBAp2M===",
    "bad length": "jAAJB",
}

EXTRACTED = {
    "from the query": {"activesync_query": PLAIN_QUERIES["target"]},
    "query broken": {"activesync_query": "Cmd=Sync&DeviceId"},
    "query and explicit id": {
        "activesync_query": PLAIN_QUERIES["plain"],
        "activesync_device_id": "explicit-id",
    },
    "explicit type wins": {
        "activesync_query": PLAIN_QUERIES["plain"],
        "activesync_device_type": "Android",
    },
    "blank id": {"activesync_device_id": "   ", "activesync_device_type": "iPhone"},
    "long id": {"activesync_device_id": "x" * 300},
    "blank type": {"activesync_device_type": "  "},
    "unknown type": {"activesync_device_type": "ToasterPhone" + "z" * 40},
    "windows outlook": {"activesync_device_type": "WindowsOutlook15"},
    "outlook service": {"activesync_device_type": "OutlookService"},
    "hx": {"activesync_device_type": "Hx"},
    "rest": {"activesync_device_type": "REST"},
    "applewatch": {"activesync_device_type": "AppleWatch"},
    "macoutlook": {"activesync_device_type": "MacOutlook"},
    "blackberry": {"activesync_device_type": "BlackBerry"},
    "samsung type": {"activesync_device_type": "SAMSUNGSMG991B"},
    "samsung dash": {"activesync_device_type": "SAMSUNG-SM-A536B"},
    "samsung odd model": {"activesync_device_type": "SAMSUNG_Galaxy Tab"},
    "brand only": {"activesync_device_type": "SAMSUNG"},
    "xiaomi": {"activesync_device_type": "XIAOMI2201117TG"},
    "google": {"activesync_device_type": " Googlepixel7 "},
    "model apple": {"activesync_device_model": "iPhone14C2"},
    "model ipad": {"activesync_device_model": "iPad13C16"},
    "model samsung": {"activesync_device_model": "SM-S911B"},
    "model samsung lower": {"activesync_device_model": "sm-s911b"},
    "model samsung no dash": {"activesync_device_model": "SMS911B"},
    "model 65": {"activesync_device_model": "m" * 65},
    "brand model 65": {"activesync_device_type": "XIAOMI" + "m" * 65},
    "samsung xcover": {"activesync_device_type": "SAMSUNG-Xcover5"},
    "os ipados build only": {"activesync_device_os": "iPadOS 21B74"},
    "model other": {"activesync_device_model": "Pixel 7" + "x" * 70},
    "model blank": {"activesync_device_model": "  "},
    "os ios": {"activesync_device_os": "iOS 17.1 21B74"},
    "os build only": {"activesync_device_os": "iOS 21B74"},
    "os macos build": {"activesync_device_os": "macOS 23B74"},
    "os android": {"activesync_device_os": "Android 14.0.0"},
    "os unknown": {"activesync_device_os": "Plan9 4"},
    "os unparsable": {"activesync_device_os": "17.1!!"},
    "os blank": {"activesync_device_os": "  "},
    "os long": {"activesync_device_os": "Android " + "1" * 100},
    "nothing": {"user_agent": "curl/8"},
}


def yaml_signals(name: str) -> list[tuple[str, dict[str, str]]]:
    cases = yaml.safe_load((CASES / name).read_text(encoding="utf-8"))
    return [(f"{i} {case['name']}", case["signals"]) for i, case in enumerate(cases)]


def cases() -> list[Case]:
    out: list[Case] = [
        ("mac table loaded anew", fresh_table, ()),
        ("mac table unreadable", unreadable_table, ()),
        ("extract_mac table unreadable", extract_without_table, ("3c:22:fb:02:8f:01",)),
    ]
    whole = encoded(policy=b"\x01\x02\x03\x04", tail=b"\x08\x05alice")
    for size in range(1, len(whole)):  # cut after every byte: the error names the field
        cut = (f"parse_activesync_query cut at {size}", activesync.parse_activesync_query)
        out.append((*cut, (b64(whole[:size]),)))
    for name, value in MACS.items():
        out.append((f"normalise_mac {name}", mac.normalise_mac, (value,)))
        out.append((f"extract_mac {name}", _mac, (value,)))
    out.append(("extract_mac empty", _mac, ("",)))
    out.append(("extract_mac blank", _mac, ("  ",)))
    for name, value in IMAP_IDS.items():
        out.append((f"parse_imap_id {name}", imapid.parse_imap_id, (value,)))
        out.append((f"extract_imap_id {name}", _imap, (value,)))
    for name, value in {**PLAIN_QUERIES, **ENCODED_QUERIES}.items():
        out.append((f"parse_activesync_query {name}", activesync.parse_activesync_query, (value,)))
        out.append((f"extract_activesync query {name}", _eas_query, (value,)))
    for name, fields in EXTRACTED.items():
        out.append((f"extract_activesync {name}", _eas_fields, (fields,)))
    for file in ("activesync.yaml", "imap_id.yaml", "mac.yaml"):
        for name, signals in yaml_signals(file):
            out.append((f"{file}: {name}", _all_three, (signals,)))
    return out


def _eas_query(value: str) -> Any:
    return _eas(activesync_query=value)


def _eas_fields(fields: dict[str, str]) -> Any:
    return _eas(**fields)


def _all_three(fields: dict[str, str]) -> Any:
    signals = _signals(**fields)
    return [
        extract(signals, {})
        for extract in (activesync.extract_activesync, imapid.extract_imap_id, mac.extract_mac)
    ]


def test_the_file_holds_every_case() -> None:
    assert_same_cases(GOLDEN, cases())


@params(cases())
def test_outcomes_are_the_kept_ones(cases: list[Case]) -> None:
    assert_family(GOLDEN, cases)
