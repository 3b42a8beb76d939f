"""Named synthetic backups with the verdict each must get (built by `build`).

| scenario        | what is in it                                            | verdict       |
|-----------------|----------------------------------------------------------|---------------|
| clean           | encrypted, every artefact, nothing malicious             | clean         |
| clean-plain     | same, unencrypted (so no Safari history)                 | inconclusive  |
| triangulation   | BackupAgent traffic in DataUsage and addaily             | compromised   |
| heuristic       | SMS attachment folders + ImageIO + nehelper, 2 minutes    | suspicious    |
| missing         | no DataUsage, no addaily                                 | inconclusive  |
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from pathlib import Path

from . import fakes
from .builder import BASE, BackupBuilder, unix, with_journal

PASSWORD = "correct horse battery staple"
BENIGN_PROFILE = "11111111-2222-4333-8444-555555555555"

ARTEFACT_PATHS = {
    "datausage": ("WirelessDomain", "Library/Databases/DataUsage.sqlite"),
    "addaily": ("HomeDomain", "Library/Preferences/com.apple.osanalytics.addaily.plist"),
    "locationd": ("RootDomain", "Library/Caches/locationd/clients.plist"),
    "history": ("HomeDomain", "Library/Safari/History.db"),
    "sms": ("HomeDomain", "Library/SMS/sms.db"),
    "prefs": ("HomeDomain", "Library/Preferences/.GlobalPreferences.plist"),
}
PROFILES_DOMAIN = "SysSharedContainerDomain-systemgroup.com.apple.configurationprofiles"


def base_builder(
    root: Path,
    *,
    password: str | None = None,
    skip: frozenset[str] = frozenset(),
    processes: list[tuple[str, datetime]] | None = None,
    history: bytes | None = None,
    sms: bytes | None = None,
    profile_uuid: str = BENIGN_PROFILE,
    ios_version: str = "16.5",
    lockdown: bool | None = False,
    journal: str = "wal",
) -> BackupBuilder:
    """A phone with ordinary contents; the arguments replace or drop single artefacts.

    Its databases are written as iOS leaves them (`journal="wal"`: a WAL header, no log
    file) or in rollback mode (`"delete"`), Manifest.db included.
    """
    b = BackupBuilder(root, password=password, ios_version=ios_version, journal=journal)
    day = BASE - timedelta(days=3)
    normal = [("mobilesafari", day), ("apsd", day), ("com.apple.Maps", day)]
    procs = normal + list(processes or [])
    contents = {
        "datausage": fakes.datausage(procs),
        "addaily": fakes.addaily(procs),
        "locationd": fakes.locationd({}),
        "history": history
        or fakes.history([("https://www.example.org/news", day), ("https://example.com/", day)]),
        "sms": sms
        or fakes.sms(
            [("friend@example.org", "see you at 6", day)], [fakes.attachment("IMG_0001.HEIC", day)]
        ),
        "prefs": fakes.global_prefs(lockdown),
    }
    if password is None and history is None:
        skip = skip | {"history"}  # Apple keeps web history out of unencrypted backups
    for name, data in contents.items():
        if name not in skip:
            domain, path = ARTEFACT_PATHS[name]
            if journal != "wal" and data.startswith(b"SQLite format 3\x00"):
                data = with_journal(data, journal)
            b.add_file(domain, path, data, when=day)
    if "profiles" not in skip:
        b.add_file(PROFILES_DOMAIN, "Library/ConfigurationProfiles/MCMeta.plist", b"<plist/>")
        stub = "profile-" + hashlib.sha1(profile_uuid.encode()).hexdigest() + ".stub"
        b.add_file(
            PROFILES_DOMAIN, f"Library/ConfigurationProfiles/{stub}", fakes.profile(profile_uuid)
        )
    b.add_file("HomeDomain", "Library/Preferences/com.apple.Maps.plist", b"<plist/>", when=day)
    b.add_dir("MediaDomain", "Library/SMS/Attachments", (unix(day),) * 3)
    return b


def build(kind: str, root: Path) -> Path:
    """Write the named scenario into `root` and return it."""
    attack = BASE + timedelta(days=1)
    if kind == "clean":
        return base_builder(root, password=PASSWORD).write()
    if kind == "clean-plain":
        return base_builder(root).write()
    if kind == "triangulation":
        return base_builder(root, password=PASSWORD, processes=[("BackupAgent", attack)]).write()
    if kind == "missing":
        return base_builder(
            root, password=PASSWORD, skip=frozenset({"datausage", "addaily"})
        ).write()
    if kind == "heuristic":
        b = base_builder(
            root, password=PASSWORD, processes=[("nehelper", attack + timedelta(seconds=90))]
        )
        t = unix(attack)
        b.add_dir("MediaDomain", "Library/SMS/Attachments/0a", (t, t + 1, unix(BASE)))
        b.add_dir("MediaDomain", "Library/SMS/Attachments/0a/02", (t, t + 1, t))
        b.add_file(
            "RootDomain",
            "Library/Preferences/com.apple.ImageIO.plist",
            b"<plist/>",
            times=(t + 30, t + 30, unix(BASE)),
        )
        return b.write()
    raise ValueError(kind)
