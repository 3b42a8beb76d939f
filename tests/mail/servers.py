"""Real Dovecot and Postfix on 127.0.0.1, configured in a temporary directory.

Dovecot's policy settings come from deploy/dovecot/95-devicegate.conf (only the URL is
replaced), Postfix's from deploy/postfix/main.cf.fragment and master.cf.fragment, so the
files we ship are the files tested.
"""

from __future__ import annotations

import pwd
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import require
from tests.mail.conftest import ROOT, binary
from tests.mail.harness import chown_tree, foreground, free_port, is_root

DEPLOY = ROOT / "deploy"
PASSWORD = "correct horse"
USERS = (
    "m.sokolova@minpromtorg.example",
    "m.sokolova",  # the same person by login: a sighting under one name counts for the other
    "i.petrov@minpromtorg.example",
    "k.belov@rostec.example",
    "s.volkova@minfin.example",
)
SHIPPED_URL = "http://127.0.0.1:8700/v1/dovecot/auth-policy"


@dataclass(frozen=True)
class Dovecot:
    imap_port: int
    auth_port: int  # SASL for Postfix (inet listener of the auth service)
    log: Path


def dovecot_conf(base: Path, policy_url: str, imap_port: int, auth_port: int) -> str:
    nobody = pwd.getpwnam("nobody")
    snippet = (DEPLOY / "dovecot" / "95-devicegate.conf").read_text(encoding="utf-8")
    assert SHIPPED_URL in snippet
    (base / "95-devicegate.conf").write_text(snippet.replace(SHIPPED_URL, policy_url))
    (base / "passwd").write_text("".join(f"{u}:{{PLAIN}}{PASSWORD}::::::\n" for u in USERS))
    return f"""
base_dir = {base}/run
state_dir = {base}/state
instance_name = dg-{imap_port}
log_path = {base}/dovecot.log
info_log_path = {base}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_verbose = yes
auth_debug = yes
login_trusted_networks =
mail_location = maildir:{base}/mail/%u
first_valid_uid = 1
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {base}/passwd
}}
userdb {{
  driver = static
  args = uid={nobody.pw_uid} gid={nobody.pw_gid} home={base}/home/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {imap_port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    port = 0
  }}
  inet_listener pop3s {{
    port = 0
  }}
}}
service auth {{
  inet_listener {{
    address = 127.0.0.1
    port = {auth_port}
  }}
}}
service stats {{
  unix_listener stats-writer {{
    mode = 0666
  }}
}}
!include {base}/95-devicegate.conf
"""


@contextmanager
def real_dovecot(base: Path, policy_url: str) -> Iterator[Dovecot]:
    """Dovecot 2.3 in the foreground (`dovecot -F -c`), stopped by PID at the end."""
    exe = binary("dovecot", "/usr/sbin/dovecot")
    require(is_root(), "real Dovecot needs root (it drops privileges per service)")
    imap_port, auth_port = free_port(), free_port()
    for sub in ("run", "state", "mail", "home"):
        (base / sub).mkdir()
    chown_tree(base / "mail", "nobody")
    chown_tree(base / "home", "nobody")
    conf = base / "dovecot.conf"
    conf.write_text(dovecot_conf(base, policy_url, imap_port, auth_port))
    check = subprocess.run([exe, "-n", "-c", str(conf)], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    with foreground([exe, "-F", "-c", str(conf)], port=imap_port, log=base / "stdout.log"):
        yield Dovecot(imap_port, auth_port, base / "dovecot.log")


@dataclass(frozen=True)
class Postfix:
    smtp_port: int  # plain SMTP, no auth: where `devicegate notify` delivers
    submission_port: int  # SASL through Dovecot, checked by the devicegate policy service
    mailbox: Path  # every accepted message lands in this Maildir
    base: Path


MASTER_CF = """\
127.0.0.1:{smtp_port} inet n - n - - smtpd
127.0.0.1:{submission_port} inet n - n - - smtpd
  -o syslog_name=postfix/submission
  -o smtpd_sasl_auth_enable=yes
  -o smtpd_sasl_type=dovecot
  -o smtpd_sasl_path=inet:127.0.0.1:{auth_port}
  -o smtpd_client_restrictions=permit_sasl_authenticated,reject
  -o smtpd_recipient_restrictions=$devicegate_submission_restrictions
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
virtual   unix  -       n       n       -       -       virtual
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""

MAIN_CF = """\
compatibility_level = 3.6
queue_directory = {base}/queue
data_directory = {base}/data
mail_owner = postfix
setgid_group = postdrop
myhostname = mail.test.example
mydomain = test.example
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
maillog_file = /dev/stdout
smtpd_banner = $myhostname ESMTP
smtpd_relay_restrictions = permit_mynetworks, permit_sasl_authenticated, reject
virtual_mailbox_domains = minpromtorg.example, rostec.example, minfin.example,
    minenergo.example, example.org
virtual_mailbox_base = {base}/vmail
virtual_mailbox_maps = static:inbox/
virtual_uid_maps = static:{uid}
virtual_gid_maps = static:{gid}
smtputf8_enable = yes
"""


@contextmanager
def real_postfix(base: Path, *, policy_port: int, auth_port: int) -> Iterator[Postfix]:
    """Postfix 3.7 (`master -d`) on its own config and queue dirs; stopped by PID."""
    exe = binary("postfix", "/usr/sbin/postfix")
    require(is_root(), "real Postfix needs root (its daemons run as the postfix user)")
    smtp_port, submission_port = free_port(), free_port()
    etc = base / "etc"
    etc.mkdir()
    nobody = pwd.getpwnam("nobody")
    fragment = (DEPLOY / "postfix" / "main.cf.devicegate").read_text(encoding="utf-8")
    assert "inet:127.0.0.1:10040" in fragment
    main = MAIN_CF.format(base=base, uid=nobody.pw_uid, gid=nobody.pw_gid)
    main += fragment.replace("inet:127.0.0.1:10040", f"inet:127.0.0.1:{policy_port}")
    (etc / "main.cf").write_text(main)
    (etc / "master.cf").write_text(
        MASTER_CF.format(smtp_port=smtp_port, submission_port=submission_port, auth_port=auth_port)
    )
    for sub in ("queue", "data", "vmail"):
        (base / sub).mkdir()
    chown_tree(base / "data", "postfix")
    chown_tree(base / "vmail", "nobody")
    env = {"MAIL_CONFIG": str(etc)}
    # `postfix check` creates the queue directory's layout with the right owners
    check = subprocess.run(
        [exe, "-c", str(etc), "check"], env={**_env(), **env}, capture_output=True, text=True
    )
    assert check.returncode == 0, check.stderr
    master = str(Path(_postconf(etc, "daemon_directory")) / "master")
    # `master -d` stays in the foreground (`postfix start-fg` lets it detach here)
    with foreground(
        [master, "-c", str(etc), "-d"], port=submission_port, log=base / "stdout.log", env=env
    ):
        yield Postfix(smtp_port, submission_port, base / "vmail" / "inbox", base)


def _postconf(etc: Path, name: str) -> str:
    out = subprocess.run(
        ["postconf", "-c", str(etc), "-h", name], capture_output=True, text=True, check=True
    )
    return out.stdout.strip()


def _env() -> dict[str, str]:
    import os

    return dict(os.environ)


@dataclass(frozen=True)
class Radius:
    port: int
    secret: str
    log: Path


RADIUSD_CONF = """\
prefix = /usr
localstatedir = {base}
logdir = {base}
run_dir = {base}
raddbdir = {base}
libdir = /usr/lib/freeradius
name = freeradius
pidfile = {base}/radiusd.pid
max_request_time = 10
cleanup_delay = 0
max_requests = 1024
hostname_lookups = no
log {{
  destination = stdout
  auth = yes
  auth_badpass = no
  auth_goodpass = no
}}
security {{
  allow_core_dumps = no
  max_attributes = 200
  reject_delay = 0
  status_server = no
}}
thread pool {{
  start_servers = 2
  max_servers = 4
  min_spare_servers = 1
  max_spare_servers = 2
  max_requests_per_server = 0
}}
client localhost {{
  ipaddr = 127.0.0.1
  secret = {secret}
}}
modules {{
  pap {{
  }}
  always reject {{
    rcode = reject
  }}
  $INCLUDE {base}/devicegate.module
}}
server default {{
  listen {{
    type = auth
    ipaddr = 127.0.0.1
    port = {port}
  }}
  authorize {{
    update control {{
      &Cleartext-Password := "{password}"
    }}
    $INCLUDE {base}/devicegate.site.body
  }}
  authenticate {{
    Auth-Type PAP {{
      pap
    }}
  }}
}}
"""


@contextmanager
def real_freeradius(base: Path, devicegate_url: str) -> Iterator[Radius]:
    """FreeRADIUS 3.2 in the foreground (`freeradius -f -d`), stopped by PID at the end."""
    exe = binary("freeradius", "/usr/sbin/freeradius")
    port, secret = free_port(), "testing123"
    module = (DEPLOY / "freeradius" / "devicegate.module").read_text(encoding="utf-8")
    assert '"http://127.0.0.1:8700"' in module
    (base / "devicegate.module").write_text(module.replace("http://127.0.0.1:8700", devicegate_url))
    site = (DEPLOY / "freeradius" / "devicegate.site").read_text(encoding="utf-8")
    body = site[site.index("authorize {") + len("authorize {") : site.rindex("}")]
    (base / "devicegate.site.body").write_text(body)
    (base / "dictionary").write_text("$INCLUDE /usr/share/freeradius/dictionary\n")
    (base / "radiusd.conf").write_text(
        RADIUSD_CONF.format(base=base, port=port, secret=secret, password=PASSWORD)
    )
    check = subprocess.run([exe, "-C", "-d", str(base)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout[-3000:] + check.stderr[-3000:]
    with foreground_udp([exe, "-f", "-d", str(base), "-l", "stdout"], base / "stdout.log"):
        yield Radius(port, secret, base / "stdout.log")


@contextmanager
def foreground_udp(argv: list[str], log: Path) -> Iterator[None]:
    """A UDP server cannot be probed by connecting: wait for its "Ready" line instead."""
    import time

    from tests.mail.harness import stop_pid

    with log.open("wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        while "Ready to process requests" not in log.read_text(errors="replace"):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("freeradius did not start:\n" + log.read_text()[-3000:])
            time.sleep(0.05)
        yield
    finally:
        stop_pid(proc)
