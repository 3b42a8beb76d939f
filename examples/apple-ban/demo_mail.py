"""Mail part of the demo: work e-mail on the day, and the notices before the next wave.

`devicegate serve` runs on 127.0.0.1 with the Postfix policy port. When Dovecot is installed
(and we are root) a real Dovecot 2.3 with deploy/dovecot/95-devicegate.conf takes the IMAP
logins; otherwise the demo posts exactly the JSON Dovecot would send. Everything started here
is stopped by PID before the demo moves on.
"""

from __future__ import annotations

import contextlib
import imaplib
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
DEVICEGATE = str(Path(sys.executable).with_name("devicegate"))
POLICY, DIRECTORY, DEVICES = (
    str(HERE / n) for n in ("policy.yaml", "directory.csv", "devices.csv")
)
USER = "m.sokolova@minpromtorg.example"
PASSWORD = "demo-password"
IOS_MAIL = '"name" "iPhone Mail" "version" "20F66" "os" "iOS" "os-version" "16.5 (20F66)"'
THUNDERBIRD = '"name" "Thunderbird" "version" "115.3.1"'


def step(title: str) -> None:
    print(f"\n\033[1m== {title}\033[0m")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_port(port: int, proc: subprocess.Popen[bytes]) -> None:
    for _ in range(400):
        if proc.poll() is not None:
            raise SystemExit(f"a demo server exited early ({proc.returncode})")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.05)
    raise SystemExit(f"nothing listens on 127.0.0.1:{port}")


@contextlib.contextmanager
def process(argv: list[str], port: int, log: Path) -> Iterator[None]:
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_port(port, proc)
        yield
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


@contextlib.contextmanager
def dovecot(base: Path, url: str) -> Iterator[int | None]:
    """A real Dovecot on a free port, or None when it cannot run here."""
    exe = shutil.which("dovecot") or "/usr/sbin/dovecot"
    if not Path(exe).exists() or os.geteuid() != 0:
        yield None
        return
    port, nobody = free_port(), pwd.getpwnam("nobody")
    for sub in ("run", "state"):
        (base / sub).mkdir()
    snippet = (ROOT / "deploy/dovecot/95-devicegate.conf").read_text(encoding="utf-8")
    (base / "policy.conf").write_text(
        snippet.replace("http://127.0.0.1:8700/v1/dovecot/auth-policy", url)
    )
    (base / "passwd").write_text(f"{USER}:{{PLAIN}}{PASSWORD}::::::\n")
    (base / "dovecot.conf").write_text(
        f"base_dir = {base}/run\nstate_dir = {base}/state\ninstance_name = demo-{port}\n"
        f"log_path = {base}/dovecot.log\nprotocols = imap\nlisten = 127.0.0.1\nssl = no\n"
        "disable_plaintext_auth = no\nmail_location = maildir:/dev/null\n"
        f"passdb {{\n driver = passwd-file\n args = scheme=PLAIN {base}/passwd\n}}\n"
        f"userdb {{\n driver = static\n args = uid={nobody.pw_uid} gid={nobody.pw_gid} "
        "home=/nonexistent\n}\n"
        f"service imap-login {{\n inet_listener imap {{\n  address = 127.0.0.1\n  port = {port}\n"
        " }\n inet_listener imaps {\n  port = 0\n }\n}\n"
        "service pop3-login {\n inet_listener pop3 {\n  port = 0\n }\n"
        " inet_listener pop3s {\n  port = 0\n }\n}\n"
        f"!include {base}/policy.conf\n"
    )
    with process([exe, "-F", "-c", str(base / "dovecot.conf")], port, base / "stdout.log"):
        yield port


def imap_login(port: int, imap_id: str) -> str:
    imaplib.Commands.setdefault("ID", ("NONAUTH", "AUTH", "SELECTED"))
    imap = imaplib.IMAP4("127.0.0.1", port, timeout=20)
    try:
        imap._simple_command("ID", f"({imap_id})")  # type: ignore[attr-defined]
        try:
            imap.login(USER, PASSWORD)
        except imaplib.IMAP4.error as exc:
            return "NO " + (exc.args[0].decode() if isinstance(exc.args[0], bytes) else str(exc))
        imap.logout()
        return "OK Logged in"
    finally:
        with contextlib.suppress(OSError):
            imap.shutdown()


def post_like_dovecot(url: str, imap_id: str) -> str:
    body = {"login": USER, "remote": "127.0.0.1", "protocol": "imap", "device_id": imap_id}
    request = urllib.request.Request(
        url + "?command=allow", data=json.dumps(body).encode(), method="POST"
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        answer = json.loads(response.read())
    return "OK Logged in" if answer["status"] == 0 else f"NO [ALERT] {answer['msg']}"


def postfix_policy(port: int) -> str:
    request = (
        "request=smtpd_access_policy\nprotocol_state=RCPT\nclient_address=127.0.0.1\n"
        f"sasl_username={USER}\nrecipient=colleague@minpromtorg.example\n\n"
    )
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request.encode())
        reply = b""
        while not reply.endswith(b"\n\n"):
            reply += sock.recv(4096)
    return reply.decode().strip()


def login(url: str, imap_port: int | None, label: str, imap_id: str) -> None:
    print(f"\n{USER} logs in from {label}: ID ({imap_id})")
    answer = (
        post_like_dovecot(url, imap_id) if imap_port is None else imap_login(imap_port, imap_id)
    )
    print(f"  server: {answer}")


def run() -> None:
    step("6. Work e-mail on the day: IMAP logins decided by Dovecot's auth policy")
    with tempfile.TemporaryDirectory(prefix="devicegate-demo-mail-") as tmp:
        base = Path(tmp)
        base.chmod(0o755)
        http, policy_port = free_port(), free_port()
        serve = [DEVICEGATE, "serve", "--policy", POLICY, "--directory", DIRECTORY,
                 "--devices", DEVICES, "--store", f"sqlite:///{base}/store.db",
                 "--port", str(http), "--postfix-port", str(policy_port)]  # fmt: skip
        print(f"$ devicegate serve … --port {http} --postfix-port {policy_port}")
        url = f"http://127.0.0.1:{http}/v1/dovecot/auth-policy"
        with process(serve, http, base / "serve.log"):
            (base / "dovecot").mkdir()
            with dovecot(base / "dovecot", url) as imap_port:
                if imap_port is None:
                    print("(Dovecot is not available here: posting what Dovecot would send)")
                else:
                    print(f"real Dovecot 2.3 on 127.0.0.1:{imap_port}, imap_id_retain = yes")
                login(url, imap_port, "iOS Mail", IOS_MAIL)
                step("7. SMTP submission carries no device data: the devices seen today decide")
                print(f"Postfix asks the policy service on 127.0.0.1:{policy_port} about {USER}:")
                print(f"  {postfix_policy(policy_port)}")
                print("  (decided from the iOS Mail login just seen on IMAP)")
                login(url, imap_port, "Thunderbird", THUNDERBIRD)
        step("8. Before wave 2: the notices `devicegate notify` would send on 1 August 2023")
        argv = [DEVICEGATE, "notify", "--policy", POLICY, "--directory", DIRECTORY,
                "--devices", DEVICES, "--store", f"sqlite:///{base}/store.db",
                "--at", "2023-08-01T10:00", "--dry-run", "--limit", "2"]  # fmt: skip
        print(
            "$ devicegate notify --policy … --directory … --devices … --store … "
            "--at 2023-08-01 --dry-run --limit 2"
        )
        sys.stdout.flush()
        subprocess.run(argv, check=True)
        print("(with --smtp smtp://relay:25 each user gets this personal message, recorded in the")
        print(" store's `notices` table so that it is never sent twice; failures are retried;")
        print(" --locale ru sends the Russian one, --templates DIR a deployment's own wording)")


if __name__ == "__main__":
    run()
