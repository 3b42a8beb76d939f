"""Generate the scenario's sample service logs: a month around wave 1 (fixed seed).

    python examples/apple-ban/generate_logs.py      # writes examples/apple-ban/logs/

From 3 July to 2 August 2023 (wave 1 starts Monday 17 July, with 14 days' notice) a few
hundred officials of the bundled directory use work services: Exchange ActiveSync (IIS W3C
log, with a logging change mid-file), IMAP (Dovecot with the IMAP ID logged), SMTP
submission (Postfix), the intranet (nginx; last week's file rotated and gzipped) and office
Wi-Fi (FreeRADIUS detail). Officials with an iPhone move to a replacement Android phone:
most before their unit's date (compliant), some late, a few never. The named exceptions of
policy.yaml appear too. A handful of awkward lines (garbage, `-` users, IPv6, escaped
agents) are mixed in, so the audit has bad lines to report. Output is byte-identical
between runs.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "logs"
SEED = 17072023
MSK = timezone(timedelta(hours=3))
START = date(2023, 7, 3)
DAYS = 31
USERS = 240
WAVE1 = ("gov/minpromtorg", "gov/mintsifry", "rostec")
NAMED = ("s.volkova@minfin.example", "a.orlov@rostec.example", "i.petrov@minpromtorg.example")


@dataclass
class Phone:
    apple: bool
    vendor: str
    model: str  # iPhone14,5 / SM-S911B
    os: str
    eas_id: str
    mac: str


@dataclass
class Official:
    email: str
    unit: str
    phone: Phone
    switch: date | None  # day the replacement phone arrives (None: never)
    replacement: Phone


def _apple_agent(phone: Phone) -> str:
    major, minor = ([*phone.os.split("."), "0"])[:2]
    return (
        f"Mozilla/5.0 (iPhone; CPU iPhone OS {major}_{minor} like Mac OS X) AppleWebKit/605.1.15 "
        f"(KHTML, like Gecko) Version/{major}.{minor} Mobile/15E148 Safari/604.1"
    )


def _android_agent(phone: Phone) -> str:
    return (
        f"Mozilla/5.0 (Linux; Android {phone.os}; {phone.model}) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Chrome/114.0.5735.196 Mobile Safari/537.36"
    )


LAPTOP_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/114.0.0.0 Safari/537.36 Edg/114.0.1823.82",
    "Mozilla/5.0 (X11; Linux x86_64; rv:102.0) Gecko/20100101 Firefox/102.0",
)


def _officials(rnd: random.Random) -> list[Official]:
    with (HERE / "directory.csv").open(newline="", encoding="utf-8") as handle:
        people = {row["email"]: row["unit"] for row in csv.DictReader(handle)}
    phones: dict[str, Phone] = {}
    with (HERE / "devices.csv").open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            user = row["user"]
            if user in phones or row["platform"] not in ("iOS", "Android"):
                continue
            phones[user] = Phone(
                row["vendor"] == "Apple",
                row["vendor"],
                row["model"],
                row["os_version"] or "16.5",
                row["activesync_id"]
                or "EAS" + hashlib.sha1(user.encode()).hexdigest()[:12].upper(),
                row["mac"] or "02:00:00:00:00:01",
            )
    candidates = sorted(u for u in people if u in phones and u not in NAMED)
    chosen = [u for u in NAMED if u in phones] + rnd.sample(candidates, USERS)
    out = []
    for email in chosen:
        unit = people[email]
        phone = phones[email]
        deadline = date(2023, 7, 17) if unit.startswith(WAVE1) else date(2023, 8, 14)
        roll = rnd.random()
        if not phone.apple:
            switch = None
        elif roll < 0.6:
            switch = deadline - timedelta(days=rnd.randint(1, 12))  # compliant
        elif roll < 0.9:
            switch = deadline + timedelta(days=rnd.randint(2, 14))  # late
        else:
            switch = None  # still on the iPhone at the end of the month
        serial = rnd.getrandbits(48)
        replacement = Phone(
            False,
            "Samsung",
            "SM-A546B",
            "13",
            f"SEC{serial:012X}",
            ":".join(f"{b:02x}" for b in (0x00, 0x16, 0x32, *serial.to_bytes(6, "big")[3:])),
        )
        out.append(Official(email, unit, phone, switch, replacement))
    return out


def _phone_on(official: Official, day: date) -> Phone:
    if official.switch is not None and day >= official.switch:
        return official.replacement
    return official.phone


def _stamp(rnd: random.Random, day: date) -> datetime:
    seconds = rnd.randint(8 * 3600, 19 * 3600)
    return datetime(day.year, day.month, day.day, tzinfo=MSK) + timedelta(seconds=seconds)


def generate(out: Path = OUT) -> list[Path]:
    rnd = random.Random(SEED)
    officials = _officials(rnd)
    web: list[tuple[datetime, str]] = []
    eas: list[tuple[datetime, str]] = []
    imap: list[tuple[datetime, str]] = []
    smtp: list[tuple[datetime, str]] = []
    wifi: list[tuple[datetime, str]] = []
    session = 0
    for offset in range(DAYS):
        day = START + timedelta(days=offset)
        weekend = day.weekday() >= 5
        for person in officials:
            if weekend and rnd.random() < 0.85:
                continue
            phone = _phone_on(person, day)
            ip = f"198.51.100.{rnd.randint(1, 254)}"
            for _ in range(rnd.randint(1, 3)):
                at = _stamp(rnd, day)
                kind = (
                    "iPhone"
                    if phone.apple
                    else (phone.vendor + phone.model).upper().replace("-", "").replace(" ", "")
                )
                agent = (
                    f"Apple-iPhone14C5/2006.{rnd.randint(1, 3)}"
                    if phone.apple
                    else "Android-Mail/2023.06.19.546-8"
                )
                query = f"Cmd=Sync&User={person.email}&DeviceId={phone.eas_id}&DeviceType={kind}"
                eas.append(
                    (
                        at,
                        f"{at.astimezone(UTC):%Y-%m-%d %H:%M:%S} 192.0.2.10 POST "
                        f"/Microsoft-Server-ActiveSync/default.eas {query} 443 "
                        f"{person.email} {ip} {agent.replace(' ', '+')} 200 0 0 "
                        f"{rnd.randint(15, 900)}",
                    )
                )
            at = _stamp(rnd, day)
            session += 1
            sid = f"S{session:08x}"
            if phone.apple:
                ident = f"name=iPhone Mail, version=20G75, os=iOS, os-version={phone.os} (20G75)"
            else:
                ident = "name=com.samsung.android.email.provider, version=6.1.90, os=Android"
            imap.append(
                (
                    at,
                    f"{at.isoformat()} mail dovecot: imap-login: ID sent: {ident}: "
                    f"user=<>, rip={ip}, lip=192.0.2.25, session=<{sid}>",
                )
            )
            imap.append(
                (
                    at,
                    f"{at.isoformat()} mail dovecot: imap-login: Login: "
                    f"user=<{person.email}>, method=PLAIN, rip={ip}, lip=192.0.2.25, "
                    f"mpid={1000 + session % 9000}, TLS, session=<{sid}>",
                )
            )
            if rnd.random() < 0.5:
                at = _stamp(rnd, day)
                smtp.append(
                    (
                        at,
                        f"{at.isoformat()} mail postfix/submission/smtpd[{session % 30000}]: "
                        f"{session:010X}: client=unknown[{ip}], sasl_method=PLAIN, "
                        f"sasl_username={person.email}",
                    )
                )
                smtp.append(
                    (
                        at,
                        f"{at.isoformat()} mail postfix/qmgr[812]: {session:010X}: "
                        f"from=<{person.email}>, size={rnd.randint(900, 90000)}, nrcpt=1 "
                        "(queue active)",
                    )
                )
            for _ in range(rnd.randint(1, 4)):
                at = _stamp(rnd, day)
                laptop = rnd.random() < 0.7
                agent = (
                    rnd.choice(LAPTOP_AGENTS)
                    if laptop
                    else _apple_agent(phone)
                    if phone.apple
                    else _android_agent(phone)
                )
                web.append(
                    (
                        at,
                        f"{ip} - {person.email} [{at:%d/%b/%Y:%H:%M:%S %z}] "
                        f'"GET /portal/{rnd.choice(["news", "docs", "hr", "tasks"])} HTTP/1.1" '
                        f'200 {rnd.randint(200, 40000)} "-" "{agent}"',
                    )
                )
            if not weekend:
                at = _stamp(rnd, day)
                wifi.append(
                    (
                        at,
                        "\n".join(
                            [
                                at.strftime("%a %b %d %H:%M:%S %Y"),
                                "\tPacket-Type = Access-Request",
                                f'\tUser-Name = "{person.email}"',
                                f'\tCalling-Station-Id = "{phone.mac.replace(":", "-").upper()}"',
                                '\tCalled-Station-Id = "00-11-22-33-44-55:CorpWiFi"',
                                "\tNAS-IP-Address = 192.0.2.40",
                                f"\tTimestamp = {int(at.timestamp())}",
                                "",
                            ]
                        ),
                    )
                )
    # awkward lines an audit must survive
    first = datetime(2023, 7, 10, 9, 0, tzinfo=MSK)
    web += [
        (
            first,
            f'2001:db8::7 - - [{first:%d/%b/%Y:%H:%M:%S %z}] "GET /health HTTP/1.1" 200 2 '
            '"-" "curl/8.1"',
        ),
        (
            first,
            f"2001:db8::8 - {officials[3].email} [{first:%d/%b/%Y:%H:%M:%S %z}] "
            '"GET /portal/docs HTTP/1.1" 200 5 "-" "Mozilla/5.0 (iPhone; CPU iPhone OS 16_5 '
            "like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
            '\\x22quoted\\x22 Mobile/15E148"',
        ),
        (
            first,
            "\\x16\\x03\\x01\\x02\\x00\\x01\\x00\\x01\\xfc\\x03\\x03 garbage from a TLS client",
        ),
    ]
    out.mkdir(parents=True, exist_ok=True)
    for sub in ("nginx", "exchange", "mail", "radius"):
        (out / sub).mkdir(exist_ok=True)
    written = []
    web.sort(key=lambda x: x[0])
    cut = datetime(2023, 7, 24, tzinfo=MSK)
    older = "".join(line + "\n" for at, line in web if at < cut).encode()
    rotated = out / "nginx" / "access.log.1.gz"
    with (
        rotated.open("wb") as raw,
        gzip.GzipFile(filename="", fileobj=raw, mode="wb", mtime=0) as z,
    ):
        z.write(older)
    written.append(rotated)
    written.append(_write(out / "nginx" / "access.log", [line for at, line in web if at >= cut]))
    eas.sort(key=lambda x: x[0])
    fields = [
        "#Fields: date time s-ip cs-method cs-uri-stem cs-uri-query s-port cs-username "
        "c-ip cs(User-Agent) sc-status sc-substatus sc-win32-status time-taken"
    ]
    header = [
        "#Software: Microsoft Internet Information Services 10.0",
        "#Version: 1.0",
        "#Date: 2023-07-03 00:00:00",
    ]
    half = len(eas) // 2
    later = []
    for _, line in eas[half:]:  # the logging change: time-taken dropped, referer added
        parts = line.split(" ")
        later.append(" ".join([*parts[:10], "-", *parts[10:13]]))
    written.append(
        _write(
            out / "exchange" / "u_ex2307.log.gz",
            header
            + fields
            + [line for _, line in eas[:half]]
            + [
                "#Fields: date time s-ip cs-method cs-uri-stem cs-uri-query s-port "
                "cs-username c-ip cs(User-Agent) cs(Referer) sc-status sc-substatus "
                "sc-win32-status"
            ]
            + later,
        )
    )
    imap.sort(key=lambda x: x[0])
    written.append(_write(out / "mail" / "dovecot.log.gz", [line for _, line in imap]))
    smtp.sort(key=lambda x: x[0])
    written.append(_write(out / "mail" / "postfix.log", [line for _, line in smtp]))
    wifi.sort(key=lambda x: x[0])
    written.append(_write(out / "radius" / "detail-202307", [rec for _, rec in wifi]))
    return written


def _write(path: Path, lines: list[str]) -> Path:
    data = "".join(line + "\n" for line in lines).encode("utf-8")
    if path.suffix == ".gz":  # archived logs: gzip with a fixed header, so output is stable
        with (
            path.open("wb") as raw,
            gzip.GzipFile(filename="", fileobj=raw, mode="wb", mtime=0) as z,
        ):
            z.write(data)
    else:
        path.write_bytes(data)
    return path


if __name__ == "__main__":
    for path in generate():
        print(path.relative_to(HERE))
