"""Generate the bundled scenario's directory and device inventory (fixed seed, reproducible).

    python examples/apple-ban/generate.py            # writes directory.csv and devices.csv

Fictitious officials in illustrative units; e-mail domains under the reserved `.example`
TLD; MAC addresses use real vendor OUIs with made-up device parts. Running it twice gives
byte-identical files (the test suite checks that the committed files are current).
"""

from __future__ import annotations

import csv
import hashlib
import io
import random
from pathlib import Path

HERE = Path(__file__).resolve().parent
SEED = 20230717

UNITS = {  # unit → (headcount, share of users with an Apple phone)
    "gov/minpromtorg/industry": (420, 0.42),
    "gov/minpromtorg/trade": (300, 0.40),
    "gov/mintsifry/platforms": (380, 0.45),
    "gov/mintsifry/ios-lab": (24, 0.95),
    "gov/minfin/budget": (450, 0.38),
    "gov/minfin/treasury": (260, 0.35),
    "gov/minenergo/grid": (380, 0.33),
    "gov/minzdrav": (300, 0.37),
    "gov/mincult": (180, 0.30),
    "rostec/holding": (520, 0.36),
    "rostec/cii": (140, 0.20),
}
DOMAINS = {
    "gov/minpromtorg": "minpromtorg.example",
    "gov/mintsifry": "mintsifry.example",
    "gov/minfin": "minfin.example",
    "gov/minenergo": "minenergo.example",
    "gov/minzdrav": "minzdrav.example",
    "gov/mincult": "mincult.example",
    "rostec": "rostec.example",
}

GIVEN = "a b d e g i k l m n o p r s t v ya yu".split()
FAMILY = (
    "ivanov petrov sidorov smirnov kuznetsov popov vasiliev sokolov mikhailov novikov "
    "fedorov morozov volkov alekseev lebedev semenov egorov pavlov kozlov stepanov "
    "nikolaev orlov andreev makarov nikitin zakharov zaitsev soloviev borisov yakovlev "
    "grigoriev romanov vorobiev sergeev kuzmin frolov alexandrov dmitriev korolev gusev "
    "kiselev ilyin maksimov polyakov sorokin vinogradov kovalev belov medvedev antonov"
).split()

PHONES = [  # vendor, platform, models, os versions, weight (non-Apple share is re-weighted)
    ("Samsung", "Android", ["SM-S911B", "SM-A546B", "SM-G991B"], ["13", "14"], 0.40),
    ("Xiaomi", "Android", ["2201117TG", "23021RAAEG"], ["12", "13"], 0.22),
    ("Huawei", "HarmonyOS", ["NOH-NX9", "ANA-NX9"], ["3.0"], 0.12),
    ("Google", "Android", ["Pixel 7", "Pixel 6a"], ["13", "14"], 0.08),
    ("OMP", "Aurora", ["AQUARIUS NS220", "F+ R570E"], ["4.0.2", "5.0"], 0.18),
]
IPHONES = [
    ("iPhone14,2", "iPhone 13 Pro"),
    ("iPhone14,5", "iPhone 13"),
    ("iPhone15,2", "iPhone 14 Pro"),
    ("iPhone13,2", "iPhone 12"),
    ("iPhone12,1", "iPhone 11"),
]
IOS = ["15.7.7", "16.5", "16.5.1", "16.6"]
OUIS = {
    "Apple": ["f0:18:98", "a4:83:e7", "3c:22:fb"],
    "Samsung": ["00:16:32"],
    "Xiaomi": ["64:09:80", "48:2c:a0"],
    "Huawei": ["ac:61:75", "00:1e:10"],
    "Google": ["3c:5a:b4"],
    "OMP": ["00:e0:4c"],
    "Lenovo": ["00:e0:4c"],
}

# People the policy's exceptions and the demo refer to by name.
NAMED = [
    ("s.volkova", "gov/minfin/budget", "Svetlana Volkova", "apple"),
    ("a.orlov", "rostec/holding", "Anton Orlov", "apple"),
    ("i.petrov", "gov/minpromtorg/industry", "Igor Petrov", "apple"),
    ("m.sokolova", "gov/minpromtorg/industry", "Maria Sokolova", "android"),
    ("d.kozlov", "gov/mintsifry/ios-lab", "Dmitry Kozlov", "apple"),
    ("e.lebedeva", "gov/minfin/treasury", "Elena Lebedeva", "apple"),
    ("k.belov", "rostec/cii", "Kirill Belov", "aurora"),
    ("n.zaitseva", "gov/minzdrav", "Natalia Zaitseva", "apple"),
    ("o.smirnova", "gov/mintsifry/platforms", "Olga Smirnova", "apple"),
]


def _domain(unit: str) -> str:
    for prefix, domain in DOMAINS.items():
        if unit.startswith(prefix):
            return domain
    raise KeyError(unit)


def _mac(rng: random.Random, vendor: str) -> str:
    oui = rng.choice(OUIS.get(vendor, ["00:e0:4c"]))
    return oui + ":" + ":".join(f"{rng.randrange(256):02x}" for _ in range(3))


def _hex(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789ABCDEF") for _ in range(n))


def _activesync_id(rng: random.Random, device_id: str) -> str:
    """Random, except for the phone the demo and the exceptions refer to by its DeviceId."""
    value = _hex(rng, 32)
    return "AB12CD34EF56AB12CD34EF56AB12CD34" if device_id == "EXDEV-MPT-0001" else value


def generate() -> tuple[str, str]:
    rng = random.Random(SEED)
    users: list[tuple[str, str, str, str, str]] = []  # login, unit, email, name, phone kind
    taken: set[str] = set()
    for login, unit, name, kind in NAMED:
        users.append((login, unit, f"{login}@{_domain(unit)}", name, kind))
        taken.add(login)
    for unit, (count, apple_share) in UNITS.items():
        for _ in range(count - sum(1 for u in NAMED if u[1] == unit)):
            while True:
                given, family = rng.choice(GIVEN), rng.choice(FAMILY)
                login = f"{given}.{family}{rng.randrange(1, 99) if rng.random() < 0.5 else ''}"
                email = f"{login}@{_domain(unit)}"
                if login not in taken:  # logins are unique across the organisation
                    taken.add(login)
                    break
            kind = "apple" if rng.random() < apple_share else "other"
            users.append((login, unit, email, f"{given.upper()}. {family.title()}", kind))

    directory = io.StringIO()
    writer = csv.writer(directory, lineterminator="\n")
    writer.writerow(["user", "unit", "groups", "email", "name"])
    devices = io.StringIO()
    dev = csv.writer(devices, lineterminator="\n")
    dev.writerow(
        [
            "device_id",
            "user",
            "vendor",
            "platform",
            "model",
            "os_version",
            "ownership",
            "managed",
            "serial",
            "udid",
            "mdm_id",
            "activesync_id",
            "mac",
            "cert_fingerprint",
        ]
    )
    serial = 0
    for login, unit, email, name, kind in users:
        groups = []
        if rng.random() < 0.05:
            groups.append("it-staff")
        if unit.endswith("ios-lab"):
            groups.append("ios-developers")
        writer.writerow([login, unit, ";".join(groups), email, name])
        prefix = unit.split("/")[1][:6].upper() if unit.startswith("gov/") else "ROSTEC"
        phones = []
        if kind == "apple":
            model, _ = rng.choice(IPHONES)
            phones.append(("Apple", "iOS", model, rng.choice(IOS)))
        elif kind == "aurora":
            phones.append(("OMP", "Aurora", "AQUARIUS NS220", "4.0.2"))
        elif kind == "android":
            phones.append(("Samsung", "Android", "SM-S911B", "14"))
        else:
            vendors = [p for p in PHONES]
            choice = rng.choices(vendors, weights=[p[4] for p in vendors])[0]
            phones.append((choice[0], choice[1], rng.choice(choice[2]), rng.choice(choice[3])))
        if rng.random() < 0.06:
            phones.append(("Apple", "iPadOS", "iPad13,4", rng.choice(IOS)))
        laptop_roll = rng.random()
        if laptop_roll < 0.45:
            phones.append(("Lenovo", "Windows", "ThinkPad T14", "10.0.19045"))
        elif laptop_roll < 0.58:
            phones.append(("Apple", "macOS", "MacBookPro18,1", "13.4"))
        elif laptop_roll < 0.70:
            phones.append(("Lenovo", "Linux", "ThinkPad T14", "Astra Linux 1.7"))
        for vendor, platform, model, os_version in phones:
            serial += 1
            device_id = f"DEV-{prefix}-{serial:05d}"
            if login == "i.petrov" and platform == "iOS":
                device_id = "EXDEV-MPT-0001"
            corporate = rng.random() < 0.55
            managed = corporate or rng.random() < 0.2
            mobile = platform in ("iOS", "iPadOS", "Android", "HarmonyOS", "Aurora")
            dev.writerow(
                [
                    device_id,
                    email,
                    vendor,
                    platform,
                    model,
                    os_version,
                    "corporate" if corporate else "personal",
                    "true" if managed else "false",
                    _hex(rng, 12) if vendor == "Apple" else "",
                    f"0000{_hex(rng, 4)}-{_hex(rng, 16)}" if platform in ("iOS", "iPadOS") else "",
                    f"mdm-{hashlib.sha1(device_id.encode()).hexdigest()[:12]}" if managed else "",
                    _activesync_id(rng, device_id) if mobile else "",
                    _mac(rng, vendor),
                    hashlib.sha256(device_id.encode()).hexdigest() if managed else "",
                ]
            )
    return directory.getvalue(), devices.getvalue()


def main() -> None:
    directory, devices = generate()
    (HERE / "directory.csv").write_text(directory, encoding="utf-8")
    (HERE / "devices.csv").write_text(devices, encoding="utf-8")
    print(f"wrote {directory.count(chr(10)) - 1} users, {devices.count(chr(10)) - 1} devices")


if __name__ == "__main__":
    main()
