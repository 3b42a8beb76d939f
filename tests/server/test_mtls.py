"""Client certificates: the fingerprint the proxy vouches for maps to an attested device in
the inventory. In process through the header, and end to end through real nginx with mutual
TLS (`$ssl_client_fingerprint`, the configuration `deploy/nginx/devicegate.conf` describes)."""

from __future__ import annotations

import hashlib
import ssl
import subprocess
from contextlib import AbstractContextManager
from pathlib import Path

import httpx
import pytest

from tests.server import procs
from tests.server.conftest import TestClient, make_app
from tests.server.scenario import OPS, write_scenario

CURL = "curl/8.4.0"  # says nothing about the device
DEVICES = (
    "device_id,user,vendor,platform,model,os_version,ownership,managed,serial,udid,mdm_id,"
    "activesync_id,mac,cert_fingerprint\n"
    'MAC-1,{user},Apple,macOS,"MacBookPro18,1",14.1,corporate,true,,,,,,{fp}\n'
)


def write_devices(path: Path, fingerprint: str) -> Path:
    path.write_text(DEVICES.format(user=OPS, fp=fingerprint), encoding="utf-8")
    return path


def test_fingerprint_header_identifies_the_attested_device(tmp_path: Path) -> None:
    policy, directory = write_scenario(tmp_path / "scenario")
    devices = write_devices(tmp_path / "devices.csv", "AB:CD:01:23:45:67:89:AB:CD:EF")
    app = make_app(tmp_path, policy, directory, devices=devices)
    with TestClient(app) as client:
        base = {"X-Devicegate-User": OPS, "User-Agent": CURL}
        plain = client.get("/v1/forward-auth/web", headers=base)
        assert plain.status_code == 200  # nothing identifies the device
        with_cert = {**base, "X-Client-Cert-Fingerprint": "abcd0123456789abcdef"}
        blocked = client.get("/v1/forward-auth/web", headers=with_cert)
        assert blocked.status_code == 403 and blocked.json()["rule"] == "no-apple-web"
        other = {**base, "X-Client-Cert-Fingerprint": "00" * 20}
        assert client.get("/v1/forward-auth/web", headers=other).status_code == 200


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_certs(root: Path) -> str:
    """A CA, a server certificate and a client certificate; the client's SHA-1 fingerprint
    (what nginx's `$ssl_client_fingerprint` is)."""
    procs.need("openssl")
    root.mkdir()
    days = ("-days", "2")
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out",
             "ca.crt", "-subj", "/CN=devicegate test CA", *days, cwd=root)  # fmt: skip
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out",
             "server.crt", "-subj", "/CN=127.0.0.1", *days, cwd=root)  # fmt: skip
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "client.key", "-out",
             "client.csr", "-subj", "/CN=alice-macbook", cwd=root)  # fmt: skip
    _openssl("x509", "-req", "-in", "client.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
             "-CAcreateserial", "-out", "client.crt", *days, cwd=root)  # fmt: skip
    der = ssl.PEM_cert_to_DER_cert((root / "client.crt").read_text(encoding="ascii"))
    return hashlib.sha1(der).hexdigest()


def nginx_mtls(tmp: Path, certs: Path, dg_port: int, app_port: int) -> AbstractContextManager[int]:
    """deploy/nginx/devicegate.conf with TLS and client certificates switched on, as its
    comments say; the rest of the files unchanged."""
    tls = (
        f"    ssl_certificate {certs}/server.crt;\n"
        f"    ssl_certificate_key {certs}/server.key;\n"
        f"    ssl_client_certificate {certs}/ca.crt;\n"
        "    ssl_verify_client optional;\n"
    )
    return procs.nginx(
        tmp,
        dg_port,
        app_port,
        replace={"listen 127.0.0.1:8443;\n": f"listen 127.0.0.1:8443 ssl;\n{tls}"},
        subrequest={
            'proxy_set_header X-Client-Cert-Fingerprint "";': (
                "proxy_set_header X-Client-Cert-Fingerprint $ssl_client_fingerprint;"
            )
        },
    )


@pytest.mark.integration
def test_mutual_tls_through_real_nginx(tmp_path: Path) -> None:
    procs.need("nginx")
    fingerprint = make_certs(tmp_path / "certs")
    policy, directory = write_scenario(tmp_path / "scenario")
    devices = write_devices(tmp_path / "devices.csv", fingerprint)
    store = f"sqlite:///{tmp_path}/dg.db"
    certs = tmp_path / "certs"
    with (
        procs.sample_app() as app_port,
        procs.devicegate(
            tmp_path, policy, directory, store, extra=("--devices", str(devices))
        ) as dg,
        nginx_mtls(tmp_path, certs, dg.port, app_port) as port,
    ):
        url = f"https://127.0.0.1:{port}/reports"
        auth = (OPS, "pw")
        headers = {"User-Agent": CURL}
        with httpx.Client(verify=False, timeout=10) as anonymous:
            assert anonymous.get(url, auth=auth, headers=headers).status_code == 200
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        context.load_cert_chain(certs / "client.crt", certs / "client.key")
        with httpx.Client(verify=context, timeout=10) as with_cert:
            blocked = with_cert.get(url, auth=auth, headers=headers)
        assert blocked.status_code == 403
        assert "Apple devices may no longer be used for work" in blocked.text
