"""Server CPU a forward-auth request costs, without the network: devicegate vs a bare app.

    .venv/bin/python benchmarks/protocol_cost.py [--requests 200000] [--rounds 3]

`benchmarks/forward_auth.py` measures whole requests over loopback, where wrk, the server
and the decision-log writer share two cores. This one isolates the server's own work: it
drives HTTP/1.1 bytes straight into protocol objects on a fake transport (no sockets, no
syscalls) on one uvloop loop, 64 connections in turn, and times the loop:

* devicegate — `DevicegateHttpProtocol` with the app `devicegate serve` builds, the decision
  log in `buffered` mode (answered at once; the writer process is a separate process and not
  counted here), the request mix of `forward_auth.py`, every answer replayed after warm-up;
* baseline — uvicorn's stock httptools protocol with the bare ASGI hello app, the same bytes.

Rounds alternate (best kept). Prints µs per request for each and the ratio; the last line is
one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from forward_auth import DIRECTORY, POLICY, request_mix  # noqa: E402


class Transport(asyncio.Transport):
    """Takes writes and counts them; reports a loopback peer."""

    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, data: Any) -> None:
        self.writes += 1

    def is_closing(self) -> bool:
        return False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 8181), "peername": ("127.0.0.1", 50000)}.get(
            name, default
        )

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def close(self) -> None:
        pass


async def hello(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"0")]}
    )
    await send({"type": "http.response.body", "body": b""})


def requests() -> list[bytes]:
    out = []
    for resource, user, agent, uri in request_mix():
        out.append(
            f"GET /v1/forward-auth/{resource} HTTP/1.1\r\nHost: 127.0.0.1:8181\r\n"
            f"X-Devicegate-User: {user}\r\nUser-Agent: {agent}\r\nX-Original-URI: {uri}\r\n\r\n"
            "".encode()
        )
    return out


async def drive(protocols: list[Any], payloads: list[bytes], count: int) -> float:
    """Seconds for `count` requests, fed to the connections in turn."""
    started = time.perf_counter()
    per_connection = len(protocols)
    for i in range(count // per_connection):
        for k, protocol in enumerate(protocols):
            protocol.data_received(payloads[(i + k) % len(payloads)])
        await asyncio.sleep(0)  # let the tasks of ASGI cycles run
    await asyncio.sleep(0)
    return time.perf_counter() - started


async def measure(which: str, count: int, rounds: int, folder: Path) -> float:
    """Best µs per request of `rounds` runs."""
    import uvicorn
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    from uvicorn.server import ServerState

    app: Any = None
    if which == "devicegate":
        from devicegate.server.app import create_app
        from devicegate.server.config import ServerConfig
        from devicegate.server.protocol import DevicegateHttpProtocol
        from devicegate.server.runner import _uvicorn_config

        (folder / "policy.yaml").write_text(POLICY)
        (folder / "directory.csv").write_text(DIRECTORY)
        settings = ServerConfig(
            policy=(folder / "policy.yaml",),
            directory=folder / "directory.csv",
            store_url=f"sqlite:///{folder}/bench.db",
            log_ack="buffered",
        )
        app = create_app(settings)
        await app.startup()
        config = _uvicorn_config(app, settings)
        protocol_class: Any = DevicegateHttpProtocol
    else:
        config = uvicorn.Config(hello, http="httptools", log_level="warning", lifespan="off")
        protocol_class = HttpToolsProtocol
    config.load()
    state = ServerState()
    protocols = []
    for _ in range(64):
        protocol = protocol_class(config=config, server_state=state, app_state={})
        protocol.connection_made(Transport())
        protocols.append(protocol)
    payloads = requests()
    try:
        await drive(protocols, payloads, len(payloads) * 64)  # warm-up: every answer kept
        await asyncio.sleep(0.05)
        best = min([await drive(protocols, payloads, count) for _ in range(rounds)])
    finally:
        if app is not None:
            await app.shutdown()
    return best / count * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    import uvloop

    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="devicegate-bench-") as tmp:
        for round_no in range(args.rounds):
            for which in ("devicegate", "baseline"):
                folder = Path(tmp) / f"{which}{round_no}"
                folder.mkdir()
                took = uvloop.run(measure(which, args.requests, 1, folder))
                results[which] = min(results.get(which, took), took)
    dg, base = results["devicegate"], results["baseline"]
    print(f"{args.requests:,} requests a run, best of {args.rounds} alternating runs")
    print(f"devicegate, replayed forward-auth: {dg:6.2f} µs a request (server CPU, no network)")
    print(f"bare ASGI app, uvicorn's protocol: {base:6.2f} µs a request")
    print(f"  devicegate / bare                {dg / base:6.2f}")
    print(
        json.dumps(
            {
                "requests": args.requests,
                "us_per_request": round(dg, 2),
                "baseline_us_per_request": round(base, 2),
                "ratio_vs_baseline": round(dg / base, 3),
            }
        )
    )


if __name__ == "__main__":
    main()
