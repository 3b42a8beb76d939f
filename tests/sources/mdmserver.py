"""A local HTTP server answering as Microsoft Graph (Intune), Fleet and Jamf Pro do, in their
documented shapes, with made-up devices. The tests start it on 127.0.0.1 and point a source
YAML at it; `Behaviour` switches on what real APIs do at their worst: several pages, an empty
page in the middle, a 429 with Retry-After, a token that expires mid-pass, malformed JSON,
every request answered with a 5xx (`down_status`).

Reserved values only: example.org addresses, documentation MAC prefixes, made-up serials.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

CLIENT_SECRET = "client-secret-not-for-logs-5d1e"
FLEET_TOKEN = "fleet-api-token-not-for-logs-77ab"
TOKEN_PREFIX = "bearer-token-not-for-logs-"
TENANT = "contoso.example"
#: the ActiveSync DeviceId the iPhone record carries (links an EAS request to the record)
EAS_ID = "APPLEEAS0123456789ABCDEF"


def intune_records(count: int) -> list[dict[str, Any]]:
    """Graph `managedDevice` objects: record 0 an iPhone with an EAS id, record 1 a
    jailbroken iPhone, the rest Android phones."""
    records = []
    for n in range(count):
        apple = n < 2
        records.append(
            {
                "@odata.type": "#microsoft.graph.managedDevice",
                "id": f"0000{n:04d}-1111-2222-3333-444455556666",
                "userId": f"user-{n}",
                "deviceName": f"Device {n}",
                "managedDeviceOwnerType": "company" if n % 3 else "personal",
                "operatingSystem": "iOS" if apple else "Android",
                "complianceState": "compliant" if n % 2 == 0 else "noncompliant",
                "jailBroken": "True" if n == 1 else "False",
                "managementAgent": "mdm",
                "osVersion": "16.5.1" if apple else "14",
                "easActivated": n == 0,
                "easDeviceId": EAS_ID if n == 0 else f"EAS{n:08d}",
                "emailAddress": f"u{n}@minpromtorg.example",
                "userPrincipalName": "i.petrov@minpromtorg.example"
                if n == 0
                else f"u{n}@x.example",
                "model": "iPhone 14" if apple else "Pixel 7",
                "manufacturer": "Apple" if apple else "Google",
                "imei": f"35{n:013d}",
                "serialNumber": f"SER{n:06d}",
                "wiFiMacAddress": f"00005E00{n:04X}",
                "partnerReportedThreatState": "highSeverity" if n == 2 else "secured",
            }
        )
    return records


def fleet_hosts(count: int) -> list[dict[str, Any]]:
    return [
        {
            "id": n + 1,
            "uuid": f"F1EE7000-0000-0000-0000-{n:012d}",
            "hostname": f"mac-{n}",
            "platform": "darwin" if n % 2 == 0 else "ubuntu",
            "os_version": "macOS 14.1.1" if n % 2 == 0 else "Ubuntu 22.04.3 LTS",
            "hardware_vendor": "Apple Inc." if n % 2 == 0 else "Dell Inc.",
            "hardware_model": "MacBookPro18,3" if n % 2 == 0 else "Latitude 7440",
            "hardware_serial": f"C02FLEET{n:04d}",
            "primary_mac": f"00:00:5e:00:53:{n:02x}",
            "mdm": {"enrollment_status": "On (automatic)" if n % 2 == 0 else "Off"},
            "issues": {"failing_policies_count": n % 2, "total_issues_count": n % 2},
            "device_mapping": [{"email": f"fleet{n}@minfin.example", "source": "google"}],
        }
        for n in range(count)
    ]


def jamf_devices(count: int) -> list[dict[str, Any]]:
    return [
        {
            "mobileDeviceId": str(n + 1),
            "deviceType": "iOS",
            "hardware": {
                "serialNumber": f"JAMF{n:06d}",
                "wifiMacAddress": f"00:00:5e:00:54:{n:02x}",
                "model": "iPad Pro" if n == 0 else "iPhone 14",
                "modelIdentifier": "iPad14,3" if n == 0 else "iPhone14,7",
            },
            "userAndLocation": {"username": f"j{n}", "emailAddress": f"j{n}@mintsifry.example"},
            "general": {
                "udid": f"{n:040x}",
                "osVersion": "17.1",
                "managed": True,
                "supervised": True,
                "deviceOwnershipType": "Institutional" if n % 2 == 0 else "UserEnrollment",
            },
            "security": {"jailBreakDetected": n == 1, "dataProtected": True},
            "network": {"imei": f"01{n:013d}"},
        }
        for n in range(count)
    ]


@dataclass
class Behaviour:
    """What the server does; the tests change it between syncs."""

    intune: list[dict[str, Any]] = field(default_factory=lambda: intune_records(7))
    fleet: list[dict[str, Any]] = field(default_factory=lambda: fleet_hosts(5))
    jamf: list[dict[str, Any]] = field(default_factory=lambda: jamf_devices(5))
    page: int = 2
    empty_page_after: int | None = 1  # Intune: an empty page after this page number
    rate_limit_page: int | None = 2  # Intune: 429 the first time this page is asked for
    retry_after: str = "1"
    expire_first_token: bool = True  # the first bearer token is refused once it was used
    malformed_page: int | None = None  # Intune: this page answers broken JSON
    jamf_total_extra: int = 0  # Jamf: totalCount larger than what it returns (partial)
    fleet_count_extra: int = 0
    down_status: int | None = None  # every request answers this status (a server in trouble)


@dataclass
class Log:
    requests: list[tuple[float, str, str]] = field(default_factory=list)  # (time, method, path)
    tokens: list[str] = field(default_factory=list)
    rate_limited: set[int] = field(default_factory=set)
    expired: set[str] = field(default_factory=set)


class Handler(BaseHTTPRequestHandler):
    behaviour: Behaviour
    log: Log
    lock = threading.Lock()

    def log_message(self, *_args: object) -> None:
        pass

    def _send(self, status: int, body: object, headers: dict[str, str] | None = None) -> None:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(raw)

    def _issue(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        form = parse_qs(self.rfile.read(length).decode())
        if form.get("client_secret") != [CLIENT_SECRET] or form.get("grant_type") != [
            "client_credentials"
        ]:
            self._send(401, {"error": "invalid_client"})
            return
        with self.lock:
            token = f"{TOKEN_PREFIX}{len(self.log.tokens) + 1}"
            self.log.tokens.append(token)
        self._send(200, {"token_type": "Bearer", "expires_in": 3599, "access_token": token})

    def _bearer_ok(self) -> bool:
        header = self.headers.get("Authorization", "")
        token = header.removeprefix("Bearer ")
        if token == FLEET_TOKEN:
            return True
        if token not in self.log.tokens:
            return False
        expired = self.behaviour.expire_first_token and token in self.log.expired
        return not (expired and token == self.log.tokens[0])

    def do_POST(self) -> None:
        path = urlsplit(self.path).path
        with self.lock:
            self.log.requests.append((time.monotonic(), "POST", path))
        if self.behaviour.down_status is not None:
            self._send(self.behaviour.down_status, {"error": "service unavailable"})
        elif path in (f"/{TENANT}/oauth2/v2.0/token", "/api/oauth/token"):
            self._issue()
        else:
            self._send(404, {"error": "not found"})

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        query = parse_qs(parts.query)
        with self.lock:
            self.log.requests.append((time.monotonic(), "GET", self.path))
        if self.behaviour.down_status is not None:
            self._send(self.behaviour.down_status, {"error": "service unavailable"})
            return
        if not self._bearer_ok():
            self._send(401, {"error": {"code": "InvalidAuthenticationToken"}})
            return
        b = self.behaviour
        if parts.path == "/v1.0/deviceManagement/managedDevices":
            self._intune(int(query.get("page", ["0"])[0]))
        elif parts.path == "/api/v1/fleet/hosts/count":
            self._send(200, {"count": len(b.fleet) + b.fleet_count_extra})
        elif parts.path == "/api/v1/fleet/hosts":
            page, size = int(query["page"][0]), int(query["per_page"][0])
            self._send(200, {"hosts": b.fleet[page * size : (page + 1) * size]})
        elif parts.path == "/api/v2/mobile-devices/detail":
            page, size = int(query["page"][0]), int(query["page-size"][0])
            self._send(
                200,
                {
                    "totalCount": len(b.jamf) + b.jamf_total_extra,
                    "results": b.jamf[page * size : (page + 1) * size],
                },
            )
        else:
            self._send(404, {"error": "not found"})

    def _intune(self, page: int) -> None:
        b = self.behaviour
        token = self.headers.get("Authorization", "").removeprefix("Bearer ")
        if b.expire_first_token and token == self.log.tokens[0] and page >= 1:
            self.log.expired.add(token)  # the token "expires" mid-pass
            self._send(401, {"error": {"code": "InvalidAuthenticationToken"}})
            return
        if b.rate_limit_page == page and page not in self.log.rate_limited:
            self.log.rate_limited.add(page)
            self._send(429, {"error": {"code": "TooManyRequests"}}, {"Retry-After": b.retry_after})
            return
        if b.malformed_page == page:
            self._send(200, b'{"value": [ {"id": "broken"')
            return
        # pages: records are cut into pages of `page`; an empty page is inserted after
        # `empty_page_after`
        chunks = [b.intune[i : i + b.page] for i in range(0, len(b.intune), b.page)]
        if b.empty_page_after is not None and b.empty_page_after < len(chunks):
            chunks.insert(b.empty_page_after + 1, [])
        body: dict[str, Any] = {
            "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#deviceManagement/managedDevices",
            "value": chunks[page] if page < len(chunks) else [],
        }
        if page + 1 < len(chunks):
            host = self.headers.get("Host")
            body["@odata.nextLink"] = (
                f"http://{host}/v1.0/deviceManagement/managedDevices?page={page + 1}"
                "&$skiptoken=made-up"
            )
        self._send(200, body)


@contextmanager
def mdm_server(
    behaviour: Behaviour | None = None, *, port: int = 0
) -> Iterator[tuple[str, Behaviour, Log]]:
    """The server on `port` (0: a free one): (base URL, its behaviour, its request log). A
    test that stops it and starts it again on the same port passes the port it had."""
    state = behaviour or Behaviour()
    log = Log()
    handler = type("BoundHandler", (Handler,), {"behaviour": state, "log": log})
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", state, log
    finally:
        server.shutdown()
        server.server_close()


def source_files(directory: Any, base: str) -> dict[str, Any]:
    """Source YAML files for the three MDMs at `base` (secrets read from the environment)."""
    import yaml

    files = {
        "intune": {
            "kind": "intune",
            "name": "intune",
            "tenant": TENANT,
            "client_id": "devicegate-test",
            "client_secret": {"env": "DG_TEST_INTUNE_SECRET"},
            "graph_url": f"{base}/v1.0",
            "token_url": f"{base}/{{tenant}}/oauth2/v2.0/token",
            "page_size": 2,
        },
        "fleet": {
            "kind": "fleet",
            "name": "fleet",
            "url": base,
            "token": {"env": "DG_TEST_FLEET_TOKEN"},
            "page_size": 2,
        },
        "jamf": {
            "kind": "jamf",
            "name": "jamf",
            "url": base,
            "client_id": "devicegate-test",
            "client_secret": {"env": "DG_TEST_INTUNE_SECRET"},
            "page_size": 2,
        },
    }
    paths = {}
    for name, data in files.items():
        path = directory / f"{name}.yaml"
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        paths[name] = path
    return paths
