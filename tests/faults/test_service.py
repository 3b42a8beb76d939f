"""Running `serve` as a systemd service: the shipped unit verifies and is hardened, `serve`
sends READY=1 to `$NOTIFY_SOCKET` once it listens, and SIGHUP (the unit's ExecReload)
reloads the policy."""

from __future__ import annotations

import configparser
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import require
from tests.faults.population import policy_text, write_world
from tests.server import procs

pytestmark = [pytest.mark.integration]

UNIT = procs.DEPLOY / "systemd" / "devicegate-serve.service"
#: settings the unit must keep: losing one widens what a compromised serve can reach
HARDENING = {
    "Type": "notify",
    "User": "devicegate",
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "PrivateDevices": "yes",
    "ReadWritePaths": "/var/lib/devicegate",
    "CapabilityBoundingSet": "",
    "RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6",
    "ExecReload": "/bin/kill -HUP $MAINPID",
}


def systemd_analyze() -> str:
    found = shutil.which("systemd-analyze")
    require(found is not None, "`systemd-analyze` is not installed (bash scripts/system-deps.sh)")
    assert found is not None
    return found


def installed_unit(tmp_path: Path) -> Path:
    """The shipped unit with ExecStart pointing at this checkout's devicegate (verify checks
    that the program exists); nothing else changed."""
    text = UNIT.read_text()
    assert "/usr/local/bin/devicegate serve" in text
    unit = tmp_path / "devicegate-serve.service"
    unit.write_text(text.replace("/usr/local/bin/devicegate", procs.DEVICEGATE))
    return unit


def test_unit_verifies(tmp_path: Path) -> None:
    unit = installed_unit(tmp_path)
    done = subprocess.run(
        [systemd_analyze(), "verify", str(unit)], capture_output=True, text=True, check=False
    )
    ours = [line for line in (done.stdout + done.stderr).splitlines() if unit.name in line]
    assert done.returncode == 0 and not ours, done.stdout + done.stderr


def test_unit_is_hardened(tmp_path: Path) -> None:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(UNIT.read_text().replace("\\\n", " "))
    service = parser["Service"]
    for key, value in HARDENING.items():
        assert service.get(key) == value, f"{key}={service.get(key)!r}, want {value!r}"
    # systemd's own rating of the sandbox: 1.4 at the time of writing; 2.0 is "OK"'s ceiling
    unit = installed_unit(tmp_path)
    rated = subprocess.run(
        [systemd_analyze(), "security", "--offline=true", "--threshold=20", str(unit)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert rated.returncode == 0, rated.stdout[-600:] + rated.stderr


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
