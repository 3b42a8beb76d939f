"""A real OpenLDAP `slapd` for the tests and the benchmark, started unprivileged on 127.0.0.1.

`Slapd` writes a slapd.conf into a temporary directory (back-mdb, the core/cosine/
inetorgperson/nis schemas and deploy/ldap/devicegate.schema), loads a generated tree offline
with `slapadd`, and runs `slapd -d 0` in the foreground on free ports for ldap:// and
ldaps://, with a certificate signed by a CA the test makes. A size limit below the number of
entries applies to every non-root identity (the service account devicegate binds as), while
paged searches may return everything (`size.prtotal=unlimited`): exactly how Active
Directory's MaxPageSize behaves.

`scenario_tree` builds the scenario's units (examples/apple-ban): people under
`ou=<unit parts>,dc=gov,dc=example`, nested groups with a cycle, a disabled account, and
generated users spread over the units.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tests.conftest import require
from tests.server.procs import free_port, stop, wait_port

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ROOT / "deploy" / "ldap" / "devicegate.schema"
BASE = "dc=gov,dc=example"
ROOT_DN = f"cn=admin,{BASE}"
ROOT_PW = "root-secret-not-for-logs-7f3a"
SERVICE_DN = f"cn=devicegate,ou=services,{BASE}"
SERVICE_PW = "bind-secret-not-for-logs-91c2"
MODULES = Path("/usr/lib/ldap")

#: The scenario's units and who works there (examples/apple-ban/directory.csv).
UNITS = (
    "gov/minpromtorg/industry",
    "gov/minpromtorg/trade",
    "gov/mintsifry/platforms",
    "gov/mintsifry/ios-lab",
    "gov/minfin/budget",
    "gov/minfin/treasury",
    "gov/minenergo/grid",
    "gov/minzdrav",
    "rostec/holding",
    "rostec/cii",
)
PEOPLE = (
    ("i.petrov", "gov/minpromtorg/industry", "Igor Petrov"),
    ("s.volkova", "gov/minfin/budget", "Svetlana Volkova"),
    ("e.lebedeva", "gov/minfin/treasury", "Elena Lebedeva"),
    ("d.kozlov", "gov/mintsifry/ios-lab", "Dmitry Kozlov"),
    ("o.vorobiev", "gov/minpromtorg/industry", "Oleg Vorobiev"),
    ("k.belov", "rostec/cii", "Kirill Belov"),
    ("a.orlov", "rostec/holding", "Anton Orlov"),
)


def need_slapd() -> tuple[str, str]:
    slapd = shutil.which("slapd", path="/usr/sbin:/usr/bin")
    slapadd = shutil.which("slapadd", path="/usr/sbin:/usr/bin")
    require(
        slapd is not None and slapadd is not None and MODULES.is_dir(),
        "OpenLDAP `slapd` is not installed (bash scripts/system-deps.sh)",
    )
    assert slapd is not None and slapadd is not None
    return slapd, slapadd


def ou_dn(unit: str) -> str:
    return ",".join(f"ou={part}" for part in reversed(unit.split("/"))) + f",{BASE}"


def user_dn(login: str, unit: str) -> str:
    return f"uid={login},{ou_dn(unit)}"


def _entry(dn: str, *pairs: tuple[str, str]) -> str:
    return "\n".join([f"dn: {dn}", *(f"{k}: {v}" for k, v in pairs)]) + "\n"


def _domain(unit: str) -> str:
    parts = unit.split("/")
    return parts[1] if parts[0] == "gov" else parts[0]


def _person(login: str, unit: str, name: str, *extra: tuple[str, str], stamp: str | None) -> str:
    pairs = [
        ("objectClass", "inetOrgPerson"),
        ("objectClass", "devicegateAccount"),
        ("uid", login),
        ("cn", name),
        ("sn", name.split()[-1]),
        ("mail", f"{login}@{_domain(unit)}.example"),
        *extra,
    ]
    if stamp:
        pairs += [("modifyTimestamp", stamp), ("createTimestamp", stamp)]
    return _entry(user_dn(login, unit), *pairs)


def generated(index: int) -> tuple[str, str, str]:
    """The `index`-th generated user: login, unit, name."""
    return f"user{index:06d}", UNITS[index % len(UNITS)], f"Generated User{index}"


def scenario_tree(extra_users: int = 0, *, stamp: str | None = None) -> str:
    """The LDIF of the whole tree (see the module docstring). `stamp` sets every entry's
    modifyTimestamp (slapadd keeps operational attributes), for deltas measured later."""
    parts = [
        _entry(BASE, ("objectClass", "dcObject"), ("objectClass", "organization"),
               ("dc", "gov"), ("o", "Government (example)")),
        _entry(f"ou=services,{BASE}", ("objectClass", "organizationalUnit"), ("ou", "services")),
        _entry(SERVICE_DN, ("objectClass", "organizationalRole"),
               ("objectClass", "simpleSecurityObject"), ("cn", "devicegate"),
               ("userPassword", SERVICE_PW)),
        _entry(f"ou=groups,{BASE}", ("objectClass", "organizationalUnit"), ("ou", "groups")),
    ]  # fmt: skip
    made: set[str] = set()
    for unit in UNITS:
        pieces = unit.split("/")
        for depth in range(1, len(pieces) + 1):
            sub = "/".join(pieces[:depth])
            if sub not in made:
                made.add(sub)
                parts.append(
                    _entry(
                        ou_dn(sub), ("objectClass", "organizationalUnit"), ("ou", pieces[depth - 1])
                    )
                )
    for login, unit, name in PEOPLE:
        extra: list[tuple[str, str]] = []
        if login == "e.lebedeva":
            extra.append(("employeeType", "disabled"))
        if login == "k.belov":
            # the attribute wins over the ou= path
            extra.append(("devicegateUnit", "rostec/cii"))
        parts.append(_person(login, unit, name, *extra, stamp=stamp))
    for index in range(extra_users):
        login, unit, name = generated(index)
        parts.append(_person(login, unit, name, stamp=stamp))
    group = f"ou=groups,{BASE}"

    def grp(cn: str, *members: str) -> str:
        pairs = [("objectClass", "groupOfNames"), ("cn", cn)]
        pairs += [("member", m) for m in members]
        if stamp:
            pairs += [("modifyTimestamp", stamp)]
        return _entry(f"cn={cn},{group}", *pairs)

    parts += [
        grp("it-staff", user_dn("o.vorobiev", "gov/minpromtorg/industry")),
        grp("ios-lab-leads", user_dn("d.kozlov", "gov/mintsifry/ios-lab")),
        grp("ios-developers", f"cn=ios-lab-leads,{group}"),
        grp("cycle-a", f"cn=cycle-b,{group}", user_dn("a.orlov", "rostec/holding")),
        grp("cycle-b", f"cn=cycle-a,{group}"),
    ]
    return "\n".join(parts)


def make_ca(directory: Path) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for 127.0.0.1 signed by it: (ca, cert, key)."""
    directory.mkdir(parents=True, exist_ok=True)
    openssl = shutil.which("openssl")
    require(openssl is not None, "`openssl` is not installed")

    def run(*args: str) -> None:
        subprocess.run([str(openssl), *args], cwd=directory, check=True, capture_output=True,
                       timeout=60)  # fmt: skip

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt",
        "-days", "2", "-subj", "/CN=devicegate test CA")  # fmt: skip
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
        "-subj", "/CN=127.0.0.1")  # fmt: skip
    (directory / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "server.crt", "-days", "2", "-extfile", "san.ext")  # fmt: skip
    os.chmod(directory / "server.key", 0o644)
    return directory / "ca.crt", directory / "server.crt", directory / "server.key"


@dataclass
class Slapd:
    """One slapd: its URLs, its files, and the process (stop/start keep the data)."""

    home: Path
    port: int
    tls_port: int
    ca: Path
    size_limit: int
    proc: subprocess.Popen[bytes] | None = None
    log: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log = self.home / "slapd.log"

    @property
    def url(self) -> str:
        return f"ldap://127.0.0.1:{self.port}"

    @property
    def ldaps_url(self) -> str:
        return f"ldaps://127.0.0.1:{self.tls_port}"

    def start(self) -> None:
        slapd, _ = need_slapd()
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [slapd, "-d", "0", "-f", str(self.home / "slapd.conf"),
                 "-h", f"{self.url}/ {self.ldaps_url}/"],
                stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        wait_port(self.port, self.proc)
        wait_port(self.tls_port, self.proc)

    def stop(self) -> None:
        if self.proc is not None:
            stop(self.proc, timeout=15)
        self.proc = None

    def admin(self) -> object:
        """A python-ldap connection bound as the root DN (for the tests' changes)."""
        import ldap

        conn = ldap.initialize(self.url)
        conn.simple_bind_s(ROOT_DN, ROOT_PW)
        return conn

    def source_yaml(self, path: Path, *, tls: str = "none", **overrides: object) -> Path:
        """A source file for this server (`tls`: none, starttls, ldaps)."""
        import yaml

        data: dict[str, object] = {
            "kind": "ldap",
            "name": path.stem,
            "url": self.ldaps_url if tls == "ldaps" else self.url,
            "bind_dn": SERVICE_DN,
            "password": {"env": "DG_TEST_LDAP_PW"},
            "page_size": 7,
            "users": {"base": BASE},
            "unit": {"attribute": "devicegateUnit", "ou_base": BASE},
            "groups": {"base": f"ou=groups,{BASE}"},
            "disabled": {"attribute": "employeeType", "values": ["disabled"]},
        }
        if tls == "starttls":
            data["start_tls"] = True
        if tls != "none":
            data["ca_file"] = str(self.ca)
        data.update(overrides)
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        return path


def write_config(
    home: Path, cert: Path, key: Path, ca: Path, size_limit: int, paged_total: str
) -> Path:
    data = home / "data"
    data.mkdir(parents=True, exist_ok=True)
    schemas = "\n".join(
        f"include /etc/ldap/schema/{name}.schema"
        for name in ("core", "cosine", "inetorgperson", "nis")
    )
    config = f"""{schemas}
include {SCHEMA}
modulepath {MODULES}
moduleload back_mdb
pidfile {home}/slapd.pid
argsfile {home}/slapd.args
TLSCACertificateFile {ca}
TLSCertificateFile {cert}
TLSCertificateKeyFile {key}
sizelimit size.soft={size_limit} size.hard={size_limit} size.prtotal={paged_total}
database mdb
maxsize 4294967296
suffix "{BASE}"
rootdn "{ROOT_DN}"
rootpw {ROOT_PW}
directory {data}
index objectClass eq
index uid eq
index modifyTimestamp eq
index entryCSN eq
access to attrs=userPassword by anonymous auth by * none
access to * by users read by * none
"""
    path = home / "slapd.conf"
    path.write_text(config)
    return path


@contextmanager
def slapd(
    home: Path, ldif: str, *, size_limit: int = 20, paged_total: str = "unlimited"
) -> Iterator[Slapd]:
    """A running slapd loaded with `ldif`; stopped (by PID) on exit, even on failure.
    `paged_total` caps what one paged search may return (a server that stops early)."""
    _, slapadd = need_slapd()
    home.mkdir(parents=True, exist_ok=True)
    ca, cert, key = make_ca(home / "tls")
    conf = write_config(home, cert, key, ca, size_limit, paged_total)
    (home / "tree.ldif").write_text(ldif)
    subprocess.run(
        [slapadd, "-q", "-f", str(conf), "-l", str(home / "tree.ldif")],
        check=True, capture_output=True, timeout=600,
    )  # fmt: skip
    server = Slapd(home, free_port(), free_port(), ca, size_limit)
    server.start()
    try:
        yield server
    finally:
        server.stop()
