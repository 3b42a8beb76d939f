"""Real servers for the integration tests: devicegate, nginx, HAProxy, PostgreSQL.

Each runs in the foreground on 127.0.0.1 on a free port in a tmp dir and is stopped by PID
(context managers stop them even when the test fails). A missing binary skips the test with
the reason, except under CI=true where it fails (`need`).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx

from tests.conftest import require

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
DEVICEGATE = str(Path(sys.executable).with_name("devicegate"))
PG_BIN = Path("/usr/lib/postgresql/15/bin")
TOKEN = "test-admin-token-0123456789"


def need(binary: str) -> str:
    """The path of a Debian server binary; skip (fail under CI) when it is not installed."""
    found = shutil.which(binary) or shutil.which(
        binary, path="/usr/sbin:/usr/lib/postgresql/15/bin"
    )
    require(found is not None, f"`{binary}` is not installed (bash scripts/system-deps.sh)")
    assert found is not None
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_port(port: int, proc: subprocess.Popen[bytes] | None = None, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


def stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 10) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(5)


class Devicegate:
    """One `devicegate serve` process."""

    def __init__(self, proc: subprocess.Popen[bytes], port: int, log: Path) -> None:
        self.proc = proc
        self.port = port
        self.log = log
        self.url = f"http://127.0.0.1:{port}"

    def client(self, **kw: object) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=10, **kw)  # type: ignore[arg-type]

    def admin(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {TOKEN}"}

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def start_devicegate(
    tmp: Path,
    policy: Path,
    directory: Path,
    store: str,
    *,
    port: int | None = None,
    extra: tuple[str, ...] = (),
    env: dict[str, str] | None = None,
) -> Devicegate:
    """`env` adds to the environment (e.g. `tests.server.hold.WriterHold.env()`)."""
    port = port or free_port()
    log = tmp / f"devicegate-{port}.log"
    env = dict(os.environ, DEVICEGATE_ADMIN_TOKEN=TOKEN, **(env or {}))
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [
                DEVICEGATE,
                "serve",
                "--policy",
                str(policy),
                "--directory",
                str(directory),
                "--store",
                store,
                "--port",
                str(port),
                "--state-refresh",
                "0.5",
                *extra,
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=tmp,
        )
    try:
        wait_port(port, proc, timeout=60)
    except Exception:
        stop(proc)
        raise RuntimeError(log.read_text(errors="replace")) from None
    return Devicegate(proc, port, log)


@contextmanager
def devicegate(
    tmp: Path, policy: Path, directory: Path, store: str, **kw: object
) -> Iterator[Devicegate]:
    server = start_devicegate(tmp, policy, directory, store, **kw)  # type: ignore[arg-type]
    try:
        yield server
    finally:
        stop(server.proc)


class _App(BaseHTTPRequestHandler):
    """The sample intranet application behind the proxy: echoes what reached it."""

    def do_GET(self) -> None:
        # what the proxy let through to the application, beyond the path: every header that
        # names a user or carries devicegate's answer
        passed = "".join(
            f"header {name.lower()}: {value}\n"
            for name, value in self.headers.items()
            if name.lower().startswith(("x-devicegate-", "remote-user", "x-sso-"))
        )
        body = (
            f"intranet app: {self.path}\nwarning: {self.headers.get('X-Devicegate-Warning', '')}\n"
            + passed
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@contextmanager
def http_server(handler: type[BaseHTTPRequestHandler]) -> Iterator[int]:
    """A threaded HTTP server of `handler` on a free loopback port, for the test's length."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


def sample_app() -> AbstractContextManager[int]:
    return http_server(_App)


def _proxy_config(
    template: Path, listen: str, devicegate_port: int, app_port: int
) -> tuple[str, int]:
    """A deploy/ proxy config moved to the test's ports: devicegate (8181 in the template),
    the sample app (8080) and the proxy's own `listen` address, which gets a free port.
    Returns the text and that port."""
    port = free_port()
    text = (
        template.read_text()
        .replace("127.0.0.1:8181", f"127.0.0.1:{devicegate_port}")
        .replace("127.0.0.1:8080", f"127.0.0.1:{app_port}")
        .replace(listen, f"127.0.0.1:{port}")
    )
    return text, port


@contextmanager
def _serving(proc: subprocess.Popen[bytes], port: int, stop_signal: int) -> Iterator[int]:
    """`port` once `proc` listens on it; `proc` is stopped with `stop_signal` on the way out."""
    try:
        wait_port(port, proc)
        yield port
    finally:
        stop(proc, stop_signal)


#: the accounts the proxies' test configurations authenticate (password `pw` for each)
PROXY_USERS = ("alice@ops.example", "bob@lab.example", "ALICE@ops.example")
PROXY_PASSWORD = "pw"


def htpasswd(path: Path, users: tuple[str, ...] = PROXY_USERS) -> None:
    """An nginx password file (apr1 hashes, made by OpenSSL) for `users`."""
    lines = []
    for user in users:
        hashed = subprocess.run(
            [need("openssl"), "passwd", "-apr1", PROXY_PASSWORD],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        lines.append(f"{user}:{hashed}\n")
    path.write_text("".join(lines))


@contextmanager
def nginx(
    tmp: Path,
    devicegate_port: int,
    app_port: int,
    *,
    site: str = "devicegate.conf",
    listen: str = "127.0.0.1:8443",
    replace: dict[str, str] | None = None,
    subrequest: dict[str, str] | None = None,
) -> Iterator[int]:
    """Real nginx with a deploy/nginx site, its include and password file moved into `tmp`.
    `replace` edits the site before its addresses are moved, `subrequest` the include."""
    binary = need("nginx")
    prefix = tmp / "nginx"
    prefix.mkdir()
    template = (DEPLOY / "nginx" / site).read_text()
    for old, new in (replace or {}).items():
        assert old in template, f"{old!r} is not in {site}"
        template = template.replace(old, new)
    (prefix / "site.in").write_text(template)
    text, port = _proxy_config(prefix / "site.in", listen, devicegate_port, app_port)
    text = text.replace("/etc/nginx/devicegate/", f"{prefix}/")
    include = (DEPLOY / "nginx" / "subrequest.conf").read_text()
    for old, new in (subrequest or {}).items():
        assert old in include, f"{old!r} is not in subrequest.conf"
        include = include.replace(old, new)
    (prefix / "subrequest.conf").write_text(include)
    htpasswd(prefix / "htpasswd")
    (prefix / "devicegate.conf").write_text(text)
    conf = (DEPLOY / "nginx" / "nginx-test.conf.in").read_text().replace("@PREFIX@", str(prefix))
    if os.getuid() == 0:  # workers would run as nobody, who cannot read pytest's tmp dirs
        conf = "user root;\n" + conf
    (prefix / "nginx.conf").write_text(conf)
    proc = subprocess.Popen(
        [
            binary,
            "-p",
            str(prefix),
            "-c",
            str(prefix / "nginx.conf"),
            "-e",
            str(prefix / "error.log"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    with _serving(proc, port, signal.SIGQUIT):
        yield port


@contextmanager
def haproxy(
    tmp: Path,
    devicegate_port: int,
    app_port: int,
    *,
    config: str = "haproxy.cfg",
    listen: str = "127.0.0.1:8444",
    replace: dict[str, str] | None = None,
) -> Iterator[int]:
    """Real HAProxy with a deploy/haproxy configuration; the example account replaced by the
    test accounts, and `replace` applied to the configuration first."""
    binary = need("haproxy")
    prefix = tmp / "haproxy"
    prefix.mkdir()
    template = (DEPLOY / "haproxy" / config).read_text()
    for old, new in (replace or {}).items():
        assert old in template, f"{old!r} is not in {config}"
        template = template.replace(old, new)
    (prefix / "haproxy.in").write_text(template)
    conf, port = _proxy_config(prefix / "haproxy.in", listen, devicegate_port, app_port)
    users = "".join(f"    user {user} insecure-password {PROXY_PASSWORD}\n" for user in PROXY_USERS)
    conf = conf.replace("    user alice@ops.example insecure-password change-me\n", users)
    conf = conf.replace("/etc/haproxy/devicegate/", str(DEPLOY / "haproxy") + "/")
    (prefix / "haproxy.cfg").write_text(conf)
    proc = subprocess.Popen(
        [binary, "-db", "-f", str(prefix / "haproxy.cfg")],
        stdout=subprocess.DEVNULL,
        stderr=(prefix / "haproxy.log").open("wb"),
    )
    with _serving(proc, port, signal.SIGUSR1):
        yield port


def _wait_accepting(port: int, proc: subprocess.Popen[bytes], timeout: float) -> None:
    """Until PostgreSQL accepts connections: it listens before recovery ends, and a
    connection then fails with `the database system is starting up`."""
    deadline = time.monotonic() + timeout
    while True:
        ready = subprocess.run(
            [str(PG_BIN / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(port), "-t", "2"],
            check=False,
        )
        if ready.returncode == 0:
            return
        if proc.poll() is not None:
            raise RuntimeError(f"postgres exited with {proc.returncode} while starting")
        if time.monotonic() > deadline:
            raise TimeoutError(f"postgres on 127.0.0.1:{port} not accepting after {timeout}s")
        time.sleep(0.05)


@contextmanager
def postgres(tmp: Path) -> Iterator[str]:
    """A throw-away PostgreSQL cluster, run as the `postgres` user (it refuses root)."""
    initdb = PG_BIN / "initdb"
    require(initdb.exists(), "PostgreSQL 15 is not installed (bash scripts/system-deps.sh)")
    # pytest's tmp dirs are private to root; the cluster lives where `postgres` may go.
    base = Path(tempfile.mkdtemp(prefix="devicegate-pg-"))
    data = base / "pgdata"
    sock = base / "pgsock"
    sock.mkdir()
    data.mkdir()
    tmp.mkdir(parents=True, exist_ok=True)
    as_pg: list[str] = []
    if os.getuid() == 0:  # postgres refuses to run as root: setpriv execs it as `postgres`
        for path in (base, data, sock):
            shutil.chown(path, "postgres")
        as_pg = ["setpriv", "--reuid=postgres", "--regid=postgres", "--clear-groups", "--"]
    subprocess.run(
        [*as_pg, str(initdb), "-D", str(data), "-U", "devicegate", "--auth=trust", "-E", "UTF8"],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=base,
    )
    port = free_port()
    proc = subprocess.Popen(
        [
            *as_pg,
            str(PG_BIN / "postgres"),
            "-D",
            str(data),
            "-p",
            str(port),
            "-h",
            "127.0.0.1",
            "-k",
            str(sock),
            "-c",
            "fsync=on",
            "-c",
            "max_connections=50",
        ],
        stdout=subprocess.DEVNULL,
        stderr=(tmp / "postgres.log").open("wb"),
        cwd=base,
    )
    try:
        wait_port(port, proc, timeout=30)
        _wait_accepting(port, proc, timeout=30)
        url = f"postgresql://devicegate@127.0.0.1:{port}/postgres"
        yield url
    finally:
        # SIGINT: fast shutdown (SIGTERM would wait for clients to disconnect).
        stop(proc, signal.SIGINT, timeout=20)
        shutil.rmtree(base, ignore_errors=True)
