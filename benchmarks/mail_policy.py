"""Mail policy hooks on loopback: devicegate vs a constant-answer server of the same kind.

    .venv/bin/python benchmarks/mail_policy.py [--seconds 5] [--connections 16]

Measures requests/s and p50/p99 latency of

* the Postfix policy service of `devicegate serve --postfix-port` (a submission decided from
  the user's recent sighting, read from the store) against a minimal asyncio policy server
  on uvloop that answers `action=DUNNO` to every request;
* the Dovecot endpoint `POST /v1/dovecot/auth-policy` of `devicegate serve` (an iOS Mail login
  refused, decision durably logged) against a bare ASGI app on the same uvicorn settings
  (uvloop, httptools) that answers `{"status": 0}`.

Both `devicegate serve` variants run: `--log-ack durable` (the default: the answer waits for
the decision's group commit) and `--log-ack buffered` (answered at once, committed within
milliseconds). Every server is a separate process on 127.0.0.1; each pair is measured in the
same run, in alternating rounds (best round kept), with the same keep-alive load generator.
The machine has 2 cores: the generator takes one, so absolute figures are lower bounds; the
ratios are the result. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
USER = "m.sokolova@minpromtorg.example"
IOS_ID = '"name" "iPhone Mail" "version" "20C65" "os" "iOS" "os-version" "16.2 (20C65)"'
DOVECOT_BODY = json.dumps(
    {"login": USER, "remote": "127.0.0.1", "protocol": "imap", "device_id": IOS_ID, "tls": False}
).encode()
POSTFIX_REQUEST = (
    "request=smtpd_access_policy\nprotocol_state=RCPT\nprotocol_name=ESMTP\n"
    f"client_address=127.0.0.1\nsasl_username={USER}\nsender={USER}\n"
    "recipient=colleague@example.org\n\n"
).encode()


# ---- the constant-answer servers (run in their own processes) ---------------------------
async def _constant_asgi(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    body = b'{"status":0,"msg":""}'
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _local_service() -> Any:
    """The in-process reference service (no store): the adapter's own cost, nothing else."""
    from devicegate.adapters.base import LocalService
    from devicegate.cli.common import load_snapshot

    snapshot = load_snapshot(
        [ROOT / "examples/apple-ban/policy.yaml"],
        ROOT / "tests/corpus/directory.csv",
        ROOT / "tests/corpus/devices.csv",
        quiet=True,
    )
    return LocalService(snapshot)


class _LeanLocal:
    """LocalService that keeps no unbounded in-memory log (a long run would grow it)."""

    def __init__(self) -> None:
        self.inner = _local_service()
        self.snapshot = self.inner.snapshot

    def decide(self, *args: Any, **kwargs: Any) -> Any:
        decision = self.inner.decide(*args, **kwargs)
        self.inner.log.clear()
        for seen in self.inner.sightings.values():
            del seen[:-1]
        return decision

    def __getattr__(self, name: str) -> Any:
        """Everything else (`check`, `recent_sightings`, `seen_at`, …) as LocalService has it."""
        return getattr(self.inner, name)


def _adapter_asgi() -> Any:
    from devicegate.adapters import dovecot

    service = _LeanLocal()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        chunks, more = [], True
        while more:
            message = await receive()
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        command = dovecot.command_of(scope["query_string"])
        status, answer = dovecot.answer(service, command, b"".join(chunks))
        body = json.dumps(answer).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    return app


def serve_http(port: int, app: Any) -> None:
    import uvicorn

    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        loop="uvloop",
        http="httptools",
        lifespan="off",
        access_log=False,
        log_level="warning",
        server_header=False,
        date_header=False,
        backlog=2048,
    )


def serve_adapter_postfix(port: int) -> None:
    import uvloop

    from devicegate.adapters import dovecot
    from devicegate.adapters.postfix import PostfixPolicyServer

    async def main() -> None:
        service = _LeanLocal()
        service.decide(USER, "email", _ios_signals(), adapter=dovecot.ADAPTER)  # the sighting
        server = PostfixPolicyServer(service, "127.0.0.1", port)
        await server.start()
        await asyncio.Event().wait()

    uvloop.run(main())


def _ios_signals() -> Any:
    from devicegate.model import Signals

    return Signals(imap_id=IOS_ID)


def serve_constant_postfix(port: int) -> None:
    import uvloop

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                while (line := await reader.readline()) not in (b"\n", b""):
                    pass
                if not line:
                    return
                writer.write(b"action=DUNNO\n\n")
                await writer.drain()
        finally:
            writer.close()

    async def main() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", port)
        async with server:
            await server.serve_forever()

    uvloop.run(main())


# ---- load generator -------------------------------------------------------------------
def _http_request(path: str, body: bytes) -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def _http_worker(port: int, payload: bytes, stop: float, lat: list[float]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while time.perf_counter() < stop:
            t0 = time.perf_counter()
            writer.write(payload)
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            await reader.readexactly(length)
            lat.append(time.perf_counter() - t0)
    finally:
        writer.close()


async def _postfix_worker(port: int, payload: bytes, stop: float, lat: list[float]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while time.perf_counter() < stop:
            t0 = time.perf_counter()
            writer.write(payload)
            await reader.readuntil(b"\n\n")
            lat.append(time.perf_counter() - t0)
    finally:
        writer.close()


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of a process and its live descendants (the log writer)."""
    total, tick = 0.0, os.sysconf("SC_CLK_TCK")
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / tick
        for task in Path(f"/proc/{pid}/task").iterdir():
            for child in (task / "children").read_text().split():
                total += cpu_seconds(int(child))
    except (OSError, ValueError, IndexError):
        pass  # the process ended meanwhile
    return total


def load(kind: str, port: int, seconds: float, connections: int, pid: int) -> dict[str, float]:
    """Drive `port` for `seconds`; requests/s, latency and the server's CPU per request."""
    import uvloop

    async def main() -> list[float]:
        lat: list[float] = []
        if kind == "http":
            payload = _http_request("/v1/dovecot/auth-policy?command=allow", DOVECOT_BODY)
            worker = _http_worker
        else:
            payload, worker = POSTFIX_REQUEST, _postfix_worker
        warm = time.perf_counter() + min(1.0, seconds / 4)
        await asyncio.gather(*(worker(port, payload, warm, []) for _ in range(connections)))
        span[0], cpu[0] = time.perf_counter(), cpu_seconds(pid)
        stop = span[0] + seconds
        await asyncio.gather(*(worker(port, payload, stop, lat) for _ in range(connections)))
        span[1], cpu[1] = time.perf_counter(), cpu_seconds(pid)
        return lat

    span, cpu = [0.0, 0.0], [0.0, 0.0]
    lat = uvloop.run(main())
    lat.sort()
    return {
        "rps": len(lat) / (span[1] - span[0]),
        "p50_ms": lat[len(lat) // 2] * 1000,
        "p99_ms": lat[int(len(lat) * 0.99)] * 1000,
        "requests": float(len(lat)),
        "cpu_us": (cpu[1] - cpu[0]) / len(lat) * 1e6,
    }


# ---- orchestration ----------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server on {port} exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"nothing listens on {port}")


def start(argv: list[str], ports: list[int], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
    for port in ports:
        wait_port(port, proc)
    return proc


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def seed_sighting(http_port: int, postfix_port: int) -> None:
    """One IMAP login from iOS Mail, so the submissions are decided from its sighting."""
    import httpx

    answer = httpx.post(
        f"http://127.0.0.1:{http_port}/v1/dovecot/auth-policy?command=allow",
        content=DOVECOT_BODY,
        timeout=10,
    ).json()
    assert answer["status"] == -1, answer
    reply = b""
    with socket.create_connection(("127.0.0.1", postfix_port), timeout=10) as sock:
        sock.sendall(POSTFIX_REQUEST)
        while not reply.endswith(b"\n\n"):
            reply += sock.recv(4096)
    assert reply.startswith(b"action=REJECT"), reply


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--only", help="measure only the pairs whose name contains this")
    parser.add_argument("--constant-http", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--constant-postfix", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--adapter-http", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--adapter-postfix", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.constant_http:
        serve_http(args.constant_http, _constant_asgi)
        return
    if args.adapter_http:
        serve_http(args.adapter_http, _adapter_asgi())
        return
    if args.adapter_postfix:
        serve_adapter_postfix(args.adapter_postfix)
        return
    if args.constant_postfix:
        serve_constant_postfix(args.constant_postfix)
        return

    procs: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory(prefix="dg-bench-") as tmp:
        base = Path(tmp)
        dg_http, dg_postfix, c_http, c_postfix, a_http, a_postfix = (free_port() for _ in range(6))
        bf_http, bf_postfix = free_port(), free_port()
        try:
            devicegate = [
                str(Path(PYTHON).parent / "devicegate"),
                "serve",
                "--policy", str(ROOT / "examples/apple-ban/policy.yaml"),
                "--directory", str(ROOT / "tests/corpus/directory.csv"),
                "--devices", str(ROOT / "tests/corpus/devices.csv"),
                "--store", f"sqlite:///{base}/store.db",
                "--port", str(dg_http),
                "--postfix-port", str(dg_postfix),
            ]  # fmt: skip
            procs.append(start(devicegate, [dg_http, dg_postfix], base / "devicegate.log"))
            buffered = [
                *devicegate[:-4],
                "--port", str(bf_http),
                "--postfix-port", str(bf_postfix),
                "--log-ack", "buffered",
            ]  # fmt: skip
            buffered[buffered.index("--store") + 1] = f"sqlite:///{base}/buffered.db"
            procs.append(start(buffered, [bf_http, bf_postfix], base / "buffered.log"))
            me = [PYTHON, str(Path(__file__).resolve())]
            procs.append(start([*me, "--constant-http", str(c_http)], [c_http], base / "c1.log"))
            procs.append(
                start([*me, "--constant-postfix", str(c_postfix)], [c_postfix], base / "c2.log")
            )
            procs.append(start([*me, "--adapter-http", str(a_http)], [a_http], base / "a1.log"))
            procs.append(
                start([*me, "--adapter-postfix", str(a_postfix)], [a_postfix], base / "a2.log")
            )
            seed_sighting(dg_http, dg_postfix)
            seed_sighting(bf_http, bf_postfix)
            # the adapter-only servers must refuse as `serve` does (a server that fails each
            # request fast would otherwise measure as a fast one)
            seed_sighting(a_http, a_postfix)
            best: dict[str, dict[str, float]] = {}
            pairs = [
                ("postfix-adapter", "postfix-constant", "postfix", a_postfix, c_postfix),
                ("postfix-serve", "postfix-constant", "postfix", dg_postfix, c_postfix),
                ("dovecot-adapter", "http-constant", "http", a_http, c_http),
                ("dovecot-serve", "http-constant", "http", dg_http, c_http),
                ("postfix-serve-buffered", "postfix-constant", "postfix", bf_postfix, c_postfix),
                ("dovecot-serve-buffered", "http-constant", "http", bf_http, c_http),
            ]
            ports = [(dg_http, dg_postfix), (bf_http, bf_postfix), (c_http,), (c_postfix,)]
            ports += [(a_http,), (a_postfix,)]
            pids = {
                port: proc.pid for proc, group in zip(procs, ports, strict=True) for port in group
            }
            if args.only:
                pairs = [pair for pair in pairs if args.only in pair[0]]
            for _ in range(args.rounds):
                for name, baseline, kind, port, cport in pairs:
                    for label, p in ((baseline, cport), (name, port)):
                        got = load(kind, p, args.seconds, args.connections, pids[p])
                        if label not in best or got["rps"] > best[label]["rps"]:
                            best[label] = got
        finally:
            for proc in procs:
                stop(proc)
    result: dict[str, object] = {
        "connections": args.connections,
        "seconds": args.seconds,
        "cores": os.cpu_count(),
    }
    print(f"{'server':<24}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'CPU µs/req':>12}")
    for name, baseline, *_ in pairs:
        for label in (baseline, name):
            r = best[label]
            print(
                f"{label:<24}{r['rps']:>10.0f}{r['p50_ms']:>9.2f}{r['p99_ms']:>9.2f}"
                f"{r['cpu_us']:>12.1f}"
            )
        ratio = best[name]["rps"] / best[baseline]["rps"]
        print(f"  {name} / constant: {ratio:.2f}x requests/s (target >= 0.7x)")
        result[name] = {k: round(v, 3) for k, v in best[name].items()}
        result[baseline] = {k: round(v, 3) for k, v in best[baseline].items()}
        result[f"{name}_ratio"] = round(ratio, 3)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
