"""Generate real-looking log lines for the audit tests (reserved addresses and domains)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone

from tests.audit.conftest import ANDROID_UA, IPHONE_UA, USERS, WINDOWS_UA

MSK = timezone(timedelta(hours=3))
AGENTS = (IPHONE_UA, ANDROID_UA, WINDOWS_UA)


def nginx_line(ip: str, user: str, at: datetime, target: str, agent: str, status: int = 200) -> str:
    return (
        f'{ip} - {user} [{at.astimezone(MSK):%d/%b/%Y:%H:%M:%S %z}] "GET {target} HTTP/1.1" '
        f'{status} 512 "-" "{agent}"'
    )


def nginx_log(count: int, seed: int = 1, start: datetime | None = None) -> list[str]:
    """`count` lines over the month around 17 July 2023, every user, mixed devices."""
    rnd = random.Random(seed)
    start = start or datetime(2023, 7, 1, tzinfo=MSK)
    lines = []
    for _ in range(count):
        user = rnd.choice(USERS)
        at = start + timedelta(seconds=rnd.randrange(31 * 86400))
        target = rnd.choice(
            [
                "/portal/news",
                "/portal/docs?id=7",
                "/Microsoft-Server-ActiveSync?Cmd=Sync&DeviceId=ABC123&DeviceType=iPhone",
            ]
        )
        name = rnd.choice([user.email, user.id, "-"])
        ip = rnd.choice(["198.51.100.7", "2001:db8::1"])
        lines.append(nginx_line(ip, name or "-", at, target, rnd.choice(AGENTS)))
    return lines


def w3c_header(fields: str) -> list[str]:
    return [
        "#Software: Microsoft Internet Information Services 10.0",
        "#Version: 1.0",
        f"#Fields: {fields}",
    ]


W3C_FIELDS = (
    "date time s-ip cs-method cs-uri-stem cs-uri-query s-port cs-username c-ip "
    "cs(User-Agent) sc-status sc-substatus sc-win32-status time-taken"
)


def w3c_line(at: datetime, user: str, device_id: str, device_type: str, agent: str) -> str:
    query = f"Cmd=Sync&User={user}&DeviceId={device_id}&DeviceType={device_type}"
    return (
        f"{at.astimezone(UTC):%Y-%m-%d %H:%M:%S} 192.0.2.10 POST "
        f"/Microsoft-Server-ActiveSync/default.eas {query} 443 {user} 198.51.100.9 "
        f"{agent.replace(' ', '+')} 200 0 0 31"
    )
