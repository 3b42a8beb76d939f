"""A real Active Directory domain controller (Samba, Debian's `samba-ad-dc`) for the tests.

`samba_ad` provisions a fresh domain `GOV.EXAMPLE` into a temporary directory
(`samba-tool domain provision --targetdir`, about 15 s), runs `samba -i` with only its LDAP
service on the loopback interface, and fills it over LDAP as the domain administrator: the
scenario's units as OUs, users (one disabled through `userAccountControl`), and nested groups.
Samba's LDAP server listens on port 389 and nothing configures another port, so the test needs
root (CI runs as root) and a free port 389; otherwise it skips (fails under CI=true).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.conftest import require
from tests.server.procs import stop, wait_port

REALM = "GOV.EXAMPLE"
BASE = "DC=gov,DC=example"
ADMIN_PW = "Adm1n-secret-not-for-logs!"
ADMIN = f"Administrator@{REALM.lower()}"
#: userAccountControl: NORMAL_ACCOUNT | PASSWD_NOTREQD; | ACCOUNTDISABLE for the disabled one
ENABLED = 0x0200 | 0x0020
DISABLED = ENABLED | 0x0002


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@dataclass
class SambaAd:
    home: Path
    proc: subprocess.Popen[bytes]

    url = "ldap://127.0.0.1"

    def admin(self) -> Any:
        import ldap

        conn = ldap.initialize(self.url)
        conn.set_option(ldap.OPT_REFERRALS, 0)
        conn.simple_bind_s(ADMIN, ADMIN_PW)
        return conn


def ou(*parts: str) -> str:
    return ",".join(f"OU={p}" for p in reversed(parts)) + f",{BASE}"


def populate(conn: Any) -> None:
    """OUs `Gov/Ministry of Finance/Budget`, `Gov/Minpromtorg/Industry`, `Rostec/CII`; users;
    groups `mobile-users` ⊃ `ios-lab-leads` ⊃ d.kozlov (nested), a disabled s.volkova."""
    import ldap.modlist

    def add(dn: str, attrs: dict[str, list[str]]) -> None:
        conn.add_s(
            dn, ldap.modlist.addModlist({k: [v.encode() for v in vs] for k, vs in attrs.items()})
        )

    for path in (
        ("Gov",), ("Gov", "Ministry of Finance"), ("Gov", "Ministry of Finance", "Budget"),
        ("Gov", "Minpromtorg"), ("Gov", "Minpromtorg", "Industry"), ("Rostec",),
        ("Rostec", "CII"),
    ):  # fmt: skip
        add(ou(*path), {"objectClass": ["organizationalUnit"], "ou": [path[-1]]})

    def user(login: str, where: tuple[str, ...], flags: int = ENABLED) -> str:
        dn = f"CN={login},{ou(*where)}"
        add(dn, {
            "objectClass": ["user"], "sAMAccountName": [login],
            "userPrincipalName": [f"{login}@gov.example"], "mail": [f"{login}@gov.example"],
            "displayName": [login.title()], "userAccountControl": [str(flags)],
        })  # fmt: skip
        return dn

    petrov = user("i.petrov", ("Gov", "Minpromtorg", "Industry"))
    user("s.volkova", ("Gov", "Ministry of Finance", "Budget"), DISABLED)
    kozlov = user("d.kozlov", ("Gov", "Minpromtorg", "Industry"))
    user("k.belov", ("Rostec", "CII"))
    groups = f"CN=Users,{BASE}"
    leads = f"CN=ios-lab-leads,{groups}"
    add(leads, {"objectClass": ["group"], "sAMAccountName": ["ios-lab-leads"], "member": [kozlov]})
    add(f"CN=mobile-users,{groups}", {
        "objectClass": ["group"], "sAMAccountName": ["mobile-users"], "member": [leads, petrov],
    })  # fmt: skip


@contextmanager
def samba_ad(home: Path) -> Iterator[SambaAd]:
    samba = shutil.which("samba", path="/usr/sbin:/usr/bin")
    tool = shutil.which("samba-tool")
    require(
        samba is not None and tool is not None and Path("/usr/share/samba/setup").is_dir(),
        "Samba AD DC is not installed (bash scripts/system-deps.sh: samba-ad-dc)",
    )
    require(os.geteuid() == 0, "Samba's LDAP server needs root (port 389)")
    require(_port_free(389), "port 389 is taken on 127.0.0.1")
    assert samba is not None and tool is not None
    target = home / "ad"
    subprocess.run(
        [tool, "domain", "provision", f"--realm={REALM}", "--domain=GOV",
         f"--adminpass={ADMIN_PW}", "--server-role=dc", "--dns-backend=NONE",
         f"--targetdir={target}", "--option=interfaces=lo",
         "--option=bind interfaces only=yes"],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    conf = target / "etc" / "smb.conf"
    text = conf.read_text()
    lines = [line for line in text.splitlines() if "server services" not in line]
    text = "\n".join(lines).replace(
        "[global]",
        "[global]\n\tserver services = ldap\n\tldap server require strong auth = no\n"
        f"\tpid directory = {target}\n\tlog file = {target}/log.%m",
        1,
    )
    conf.write_text(text + "\n")
    log = (home / "samba.log").open("wb")
    proc = subprocess.Popen(
        [samba, "-i", "-s", str(conf), "--debuglevel=1"], stdout=log, stderr=subprocess.STDOUT
    )
    try:
        wait_port(389, proc, timeout=60)
        server = SambaAd(home, proc)
        conn = server.admin()
        populate(conn)
        conn.unbind_s()
        yield server
    finally:
        stop(proc, timeout=20)
        log.close()
