"""The web gateway on the day of the ban: nginx `auth_request` → `devicegate serve`.

Starts, on 127.0.0.1 and free ports: a sample intranet app, `devicegate serve` with the
bundled policy, and nginx with deploy/nginx/devicegate.conf; then sends an Android phone and
an iPhone through nginx, shows the block page, stops devicegate and shows the fail-closed
503. Everything started here is stopped at the end. Called by demo.py as `run()`.
"""

from __future__ import annotations

import base64
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
DEVICEGATE = str(Path(sys.executable).with_name("devicegate"))
IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 16_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/16.5 Mobile/15E148 Safari/604.1"
)
ANDROID = (
    "Mozilla/5.0 (Linux; Android 14; SM-S911B) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.6099.144 Mobile Safari/537.36"
)


class _Intranet(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"<h1>Ministry intranet</h1><p>Welcome to the work portal.</p>\n"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait(port: int, proc: subprocess.Popen[bytes]) -> None:
    for _ in range(300):
        if proc.poll() is not None:
            raise SystemExit(f"a demo server exited early (code {proc.returncode})")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"nothing listens on 127.0.0.1:{port}")


USERS = (
    "m.sokolova@minpromtorg.example",
    "a.orlov@rostec.example",
    "n.zaitseva@minzdrav.example",
)


def _htpasswd(users: tuple[str, ...], password: str) -> str:
    """An nginx password file (apr1 hashes from OpenSSL) for the demo's officials."""
    lines = []
    for user in users:
        hashed = subprocess.run(
            ["openssl", "passwd", "-apr1", password], check=True, capture_output=True, text=True
        ).stdout.strip()
        lines.append(f"{user}:{hashed}\n")
    return "".join(lines)


def _get(port: int, user: str, agent: str) -> tuple[int, str]:
    token = base64.b64encode(f"{user}:password".encode()).decode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/portal",
        headers={"User-Agent": agent, "Authorization": f"Basic {token}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def _show(title: str, status: int, body: str) -> None:
    import re

    text = re.sub(r"<title>.*?</title>|<[^>]+>", " ", body)
    text = " ".join(text.split())
    print(f"   {title}\n   -> HTTP {status}: {text[:220]}")


def _stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, sig)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(5)


def run() -> None:
    print("\n\033[1m== The intranet gateway on the day: nginx auth_request -> devicegate\033[0m")
    nginx = shutil.which("nginx") or (
        "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None
    )
    if nginx is None:
        print("   (skipped: nginx is not installed; run `bash scripts/system-deps.sh`)")
        return
    started: list[tuple[subprocess.Popen[bytes], int]] = []
    app = ThreadingHTTPServer(("127.0.0.1", 0), _Intranet)
    threading.Thread(target=app.serve_forever, daemon=True).start()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        dg_port, gw_port = _free_port(), _free_port()
        try:
            cmd = [
                DEVICEGATE,
                "serve",
                "--policy",
                str(HERE / "policy.yaml"),
                "--directory",
                str(HERE / "directory.csv"),
                "--devices",
                str(HERE / "devices.csv"),
                "--store",
                f"sqlite:///{tmp}/devicegate.db",
                "--port",
                str(dg_port),
            ]
            print(
                f"$ devicegate serve --policy policy.yaml --directory directory.csv "
                f"--devices devices.csv --store sqlite:///devicegate.db --port {dg_port}"
            )
            dg = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            started.append((dg, signal.SIGTERM))
            site = (ROOT / "deploy" / "nginx" / "devicegate.conf").read_text()
            site = (
                site.replace("127.0.0.1:8181", f"127.0.0.1:{dg_port}")
                .replace("127.0.0.1:8080", f"127.0.0.1:{app.server_address[1]}")
                .replace("127.0.0.1:8443", f"127.0.0.1:{gw_port}")
                .replace("/etc/nginx/devicegate/", f"{tmp}/")
            )
            (tmp / "devicegate.conf").write_text(site)
            include = (ROOT / "deploy" / "nginx" / "subrequest.conf").read_text()
            (tmp / "subrequest.conf").write_text(include)
            # the gateway authenticates the officials (auth_basic) before devicegate is asked
            (tmp / "htpasswd").write_text(_htpasswd(USERS, "password"))
            conf = (ROOT / "deploy" / "nginx" / "nginx-test.conf.in").read_text()
            conf = conf.replace("@PREFIX@", str(tmp))
            if os.getuid() == 0:  # workers would run as nobody, who cannot read the tmp dir
                conf = "user root;\n" + conf
            (tmp / "nginx.conf").write_text(conf)
            print(f"$ nginx -c deploy/nginx/devicegate.conf   (gateway on 127.0.0.1:{gw_port})")
            ngx = subprocess.Popen(
                [nginx, "-p", str(tmp), "-c", str(tmp / "nginx.conf"), "-e", str(tmp / "err.log")],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            started.append((ngx, signal.SIGQUIT))
            _wait(dg_port, dg)
            _wait(gw_port, ngx)
            _show(
                "m.sokolova (trade ministry) on an Android phone:",
                *_get(gw_port, "m.sokolova@minpromtorg.example", ANDROID),
            )
            _show(
                "a.orlov (Rostec, wave 1) on an iPhone — the block page with the rule's message:",
                *_get(gw_port, "a.orlov@rostec.example", IPHONE),
            )
            _show(
                "n.zaitseva (health ministry, not covered) on an iPhone:",
                *_get(gw_port, "n.zaitseva@minzdrav.example", IPHONE),
            )
            _stop(dg)
            _show(
                "devicegate stopped: the gateway fails closed:",
                *_get(gw_port, "m.sokolova@minpromtorg.example", ANDROID),
            )
        finally:
            for proc, sig in reversed(started):
                _stop(proc, sig)
            app.shutdown()
            app.server_close()


if __name__ == "__main__":
    run()
