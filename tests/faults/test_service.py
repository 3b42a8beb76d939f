"""Running `serve` and `console` as systemd services: the shipped units verify, are hardened
and rated by `systemd-analyze security`, their command lines start a working process that a
SIGTERM stops within the unit's `TimeoutStopSec` (the console with a live stream open);
`serve` sends READY=1 to `$NOTIFY_SOCKET` once it listens, and SIGHUP (the unit's
ExecReload) reloads the policy."""

from __future__ import annotations

import configparser
import itertools
import os
import shlex
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import require
from tests.faults.population import policy_text, write_world
from tests.server import procs

pytestmark = [pytest.mark.integration]

UNITS = {
    "serve": procs.DEPLOY / "systemd" / "devicegate-serve.service",
    "console": procs.DEPLOY / "systemd" / "devicegate-console.service",
}
#: settings both units must keep: losing one widens what a compromised process can reach
HARDENING = {
    "User": "devicegate",
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "PrivateDevices": "yes",
    "ReadWritePaths": "/var/lib/devicegate",
    "CapabilityBoundingSet": "",
    "RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6",
}
OWN = {
    "serve": {"Type": "notify", "ExecReload": "/bin/kill -HUP $MAINPID"},
    # the console has no readiness protocol; it follows its inputs without a reload
    "console": {"Type": "exec", "ExecReload": None},
}
#: `systemd-analyze security`'s exposure (0 safest, 10 worst) each unit must stay at or
#: under: both are rated 1.4 by systemd 252; 2.0 is the ceiling of its "OK" band
EXPOSURE = 20  # tenths, as --threshold takes it
SOURCE = "/usr/local/bin/devicegate"


def systemd_analyze() -> str:
    found = shutil.which("systemd-analyze")
    require(found is not None, "`systemd-analyze` is not installed (bash scripts/system-deps.sh)")
    assert found is not None
    return found


def service_section(name: str) -> configparser.SectionProxy:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(UNITS[name].read_text().replace("\\\n", " "))
    return parser["Service"]


def installed_unit(tmp_path: Path, name: str) -> Path:
    """The shipped unit with ExecStart pointing at this checkout's devicegate (verify checks
    that the program exists); nothing else changed."""
    text = UNITS[name].read_text()
    assert f"{SOURCE} {name}" in text
    unit = tmp_path / UNITS[name].name
    unit.write_text(text.replace(SOURCE, procs.DEVICEGATE))
    return unit


@pytest.mark.parametrize("name", UNITS)
def test_unit_verifies(tmp_path: Path, name: str) -> None:
    unit = installed_unit(tmp_path, name)
    done = subprocess.run(
        [systemd_analyze(), "verify", str(unit)], capture_output=True, text=True, check=False
    )
    ours = [line for line in (done.stdout + done.stderr).splitlines() if unit.name in line]
    assert done.returncode == 0 and not ours, done.stdout + done.stderr


@pytest.mark.parametrize("name", UNITS)
def test_unit_is_hardened(tmp_path: Path, name: str) -> None:
    service = service_section(name)
    for key, value in {**HARDENING, **OWN[name]}.items():
        assert service.get(key) == value, f"{key}={service.get(key)!r}, want {value!r}"
    unit = installed_unit(tmp_path, name)
    rated = subprocess.run(
        [systemd_analyze(), "security", "--offline=true", f"--threshold={EXPOSURE}", str(unit)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert rated.returncode == 0, rated.stdout[-600:] + rated.stderr


def exec_start(name: str, root: Path) -> tuple[list[str], dict[str, int]]:
    """The unit's ExecStart as a command for this machine: the configuration and state
    directories moved under `root` (the files the unit names written there), every port a
    free one. Returns the command and the ports by flag."""
    argv = shlex.split(service_section(name)["ExecStart"])
    assert argv[0] == SOURCE
    etc, state = root / "etc", root / "state"
    state.mkdir(parents=True)
    policy, directory = write_world(etc, users=5)
    ports: dict[str, int] = {}
    out = [procs.DEVICEGATE]
    for flag, value in itertools.pairwise(argv):
        if flag.endswith("-port"):
            ports[flag] = procs.free_port()
            value = str(ports[flag])
        value = value.replace("/var/lib/devicegate", str(state))
        if value.startswith("/etc/devicegate/"):
            value = str(etc / value.removeprefix("/etc/devicegate/"))
        out.append(value)
    for path in (Path(v) for v in out if v.startswith(str(etc))):
        if not path.exists():  # the admin token, the session key
            path.write_text("a-secret-of-the-test-0123456789\n")
    assert {policy, directory} <= {Path(v) for v in out}, out
    return out, ports


def test_units_command_lines_run_and_stop_in_time(tmp_path: Path) -> None:
    """`serve` as its unit starts it, then `console` on the store serve made, signed in the
    way the unit says (the SSO's headers from 127.0.0.1); a SIGTERM ends each within the
    unit's TimeoutStopSec, the console's while a live page streams."""
    serve_argv, serve_ports = exec_start("serve", tmp_path / "serve")
    console_argv, console_ports = exec_start("console", tmp_path / "console")
    store = serve_argv[serve_argv.index("--store") + 1]
    console_argv[console_argv.index("--store") + 1] = store
    log = (tmp_path / "units.log").open("ab")
    serve = subprocess.Popen(serve_argv, stdout=log, stderr=subprocess.STDOUT)
    console: subprocess.Popen[bytes] | None = None
    try:
        procs.wait_port(serve_ports["--port"], serve, timeout=60)
        console = subprocess.Popen(console_argv, stdout=log, stderr=subprocess.STDOUT)
        procs.wait_port(console_ports["--port"], console, timeout=60)
        sso = {
            "Host": "console.example.org",
            "X-Auth-Request-User": "reader@gov.example",
            "X-Auth-Request-Groups": "console-readers",
        }
        base = f"http://127.0.0.1:{console_ports['--port']}"
        assert httpx.get(f"{base}/", headers=sso, timeout=30).status_code == 200
        streaming = threading.Event()

        def watch_live() -> None:
            try:
                with httpx.stream("GET", f"{base}/live/stream", headers=sso, timeout=None) as r:
                    for _ in r.iter_bytes():
                        streaming.set()
            except httpx.HTTPError:
                pass  # the console ending the stream as it stops

        threading.Thread(target=watch_live, daemon=True).start()
        assert streaming.wait(30), "the live stream did not start"
        for name, proc in (("console", console), ("serve", serve)):
            allowed = float(service_section(name)["TimeoutStopSec"])
            started = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            try:
                code = proc.wait(allowed)
            except subprocess.TimeoutExpired:
                pytest.fail(f"{name} still running {allowed:.0f} s after SIGTERM: systemd kills it")
            # uvicorn ends by the signal it caught: systemd counts SIGTERM as a clean exit
            assert code in (0, -signal.SIGTERM), (name, code, (tmp_path / "units.log").read_text())
            assert time.monotonic() - started < allowed
    finally:
        for proc in (console, serve):
            if proc is not None:
                procs.stop(proc, signal.SIGKILL)
        log.close()


def _receive(sock: socket.socket, timeout: float) -> str:
    sock.settimeout(timeout)
    return sock.recv(4096).decode()


@pytest.mark.parametrize("abstract", [False, True], ids=["path", "abstract"])
def test_serve_notifies_ready_and_reloads_on_sighup(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, abstract: bool
) -> None:
    policy, directory = write_world(tmp_path / "world", users=5)
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        if abstract:
            name = f"devicegate-test-{os.getpid()}-{time.monotonic_ns()}"
            sock.bind("\0" + name)
            monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
        else:
            path = tmp_path / "notify.sock"
            sock.bind(str(path))
            monkeypatch.setenv("NOTIFY_SOCKET", str(path))
        port = procs.free_port()
        postfix_port = procs.free_port()
        with procs.devicegate(
            tmp_path,
            policy,
            directory,
            f"sqlite:///{tmp_path}/store.db",
            port=port,
            extra=("--postfix-port", str(postfix_port)),
        ) as server:
            message = _receive(sock, 60)
            # the moment systemd hears READY=1 both ports must already accept connections
            for listening in (port, postfix_port):
                socket.create_connection(("127.0.0.1", listening), timeout=1).close()
            lines = dict(line.split("=", 1) for line in message.splitlines())
            assert lines["READY"] == "1"
            assert lines["MAINPID"] == str(server.proc.pid)
            with server.client() as client:
                old = client.get("/healthz").json()["policy_version"]
                assert old in lines["STATUS"]
                policy.write_text(policy_text(marker=7), encoding="utf-8")
                os.kill(server.proc.pid, signal.SIGHUP)  # what ExecReload sends
                deadline = time.monotonic() + 30
                while client.get("/healthz").json()["policy_version"] == old:
                    assert time.monotonic() < deadline, "SIGHUP did not reload the policy"
                    time.sleep(0.1)
            server.proc.send_signal(signal.SIGTERM)
            assert _receive(sock, 30) == "STOPPING=1"
            server.proc.wait(30)


def test_without_notify_socket_nothing_is_sent(monkeypatch: pytest.MonkeyPatch) -> None:
    from devicegate.server.sdnotify import notify

    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert notify("READY=1") is False
    assert notify("READY=1", {"NOTIFY_SOCKET": "relative/path"}) is False
    # a socket nobody listens on is logged, never raised: serve keeps serving
    assert notify("READY=1", {"NOTIFY_SOCKET": "/nonexistent/devicegate.sock"}) is False
