"""Instructions a mail request costs `serve` and its decision-log writer, under callgrind.

    .venv/bin/python benchmarks/mail_instructions.py [--kind dovecot|postfix] [--tree DIR]
        [--baseline DIR] [--few 100] [--many 1100]

Wall-clock figures on this 2-core machine move by tens of percent with whatever else runs;
instruction counts do not. `devicegate serve` (the tree `--tree`, default this one) runs
under `valgrind --tool=callgrind --trace-children=yes`, so its log writer is counted too;
one keep-alive connection sends the same request `--few` times in one run and `--many`
times in another, one at a time (one record a batch: the batching, which depends on timing,
is the same in both). The difference of the two runs' totals ÷ (`--many` − `--few`) is the
cost of one request, start-up and shutdown cancelled out. Dovecot sends the iOS Mail login
of benchmarks/mail_policy.py (refused, replayed after the first); Postfix, a submission of
that user (decided from the login's sighting). Periodic work whose count grows with the
run's length (the heartbeat every 15 s) would be counted as request cost under callgrind's
slowdown: the runs use a copy of the tree with the heartbeat interval set to a day. What
remains of that kind (uvicorn's tick ten times a second, serve's housekeeping loop once a
second) still counts in proportion to a run's length: compare trees in one run (`--baseline`)
on an idle machine, not figures from different days.

`--baseline DIR` measures another checkout (an earlier release, say) the same way in the
same run and prints the ratio. Takes a few minutes a tree. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import mail_policy as mp  # noqa: E402  (the benchmark whose requests these are)

HEARTBEAT = "src/devicegate/store/heartbeats.py"


def quiet_copy(tree: Path, into: Path) -> Path:
    """The parts of `tree` serve reads, with the heartbeat interval set to a day."""
    for part in ("src", "examples", "tests/corpus"):
        shutil.copytree(tree / part, into / part)
    beat = into / HEARTBEAT
    if beat.exists():  # a tree from before the heartbeat has none
        text = re.sub(r"(?m)^INTERVAL = .*$", "INTERVAL = timedelta(days=1)", beat.read_text())
        beat.write_text(text)
    return into


def send(kind: str, sock: socket.socket, count: int) -> None:
    """`count` requests, one at a time, each answer read whole."""
    reader = sock.makefile("rb")
    if kind == "postfix":
        for _ in range(count):
            sock.sendall(mp.POSTFIX_REQUEST)
            while reader.readline() not in (b"\n", b""):
                pass
        return
    payload = mp._http_request("/v1/dovecot/auth-policy?command=allow", mp.DOVECOT_BODY)
    for _ in range(count):
        sock.sendall(payload)
        length = 0
        while (line := reader.readline()) not in (b"\r\n", b""):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        reader.read(length)


def run(tree: Path, kind: str, count: int) -> dict[str, int]:
    """Instructions of `serve` and of its writer over a whole run of `count` requests."""
    out = Path(tempfile.mkdtemp(prefix="dg-callgrind-"))
    http, postfix = mp.free_port(), mp.free_port()
    argv = [
        "valgrind", "--tool=callgrind", "--trace-children=yes",
        f"--callgrind-out-file={out}/cg.%p",
        sys.executable, str(Path(sys.executable).with_name("devicegate")), "serve",
        "--policy", str(tree / "examples/apple-ban/policy.yaml"),
        "--directory", str(tree / "tests/corpus/directory.csv"),
        "--devices", str(tree / "tests/corpus/devices.csv"),
        "--store", f"sqlite:///{out}/store.db",
        "--port", str(http), "--postfix-port", str(postfix),
    ]  # fmt: skip
    env = dict(os.environ, PYTHONPATH=str(tree / "src"))
    with (out / "serve.log").open("wb") as log:
        proc = subprocess.Popen(argv, env=env, cwd=tree, stdout=log, stderr=subprocess.STDOUT)
    try:
        mp.wait_port(http, proc, timeout=900)
        mp.wait_port(postfix, proc, timeout=60)
        mp.seed_sighting(http, postfix)
        with socket.create_connection(("127.0.0.1", postfix if kind == "postfix" else http)) as s:
            send(kind, s, count)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(600)
    totals: dict[str, int] = {"serve": 0, "writer": 0}
    for path in out.glob("cg.*"):
        text = path.read_text(errors="replace")
        command = re.search(r"^cmd: (.*)$", text, re.M)
        total = re.search(r"^(?:summary|totals): (\d+)", text, re.M)
        if command is None or total is None:
            continue
        who = "writer" if re.search(r"log_writer|logproc", command.group(1)) else "serve"
        totals[who] += int(total.group(1))
    shutil.rmtree(out, ignore_errors=True)
    return totals


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--kind", choices=("dovecot", "postfix"), default="dovecot")
    parser.add_argument("--tree", type=Path, default=HERE.parent)
    parser.add_argument("--baseline", type=Path, help="another checkout, measured the same way")
    parser.add_argument("--few", type=int, default=100)
    parser.add_argument("--many", type=int, default=1100)
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (Debian: apt-get install valgrind)")
    if args.many <= args.few:
        raise SystemExit("--many must be larger than --few")
    measured = {"tree": per_request(args.tree, args)}
    if args.baseline is not None:
        measured["baseline"] = per_request(args.baseline, args)
    for name, per in measured.items():
        print(
            f"{args.kind} request, {name} ({getattr(args, name)}): serve {per['serve']:,} "
            f"instructions, its writer {per['writer']:,}"
        )
    result: dict[str, object] = {"kind": args.kind, **measured}
    if "baseline" in measured:
        ratios = {
            w: round(measured["tree"][w] / measured["baseline"][w], 3) for w in ("serve", "writer")
        }
        print(f"ratio to the baseline: serve {ratios['serve']}x, writer {ratios['writer']}x")
        result["ratio"] = ratios
    print(json.dumps(result))


def per_request(tree: Path, args: argparse.Namespace) -> dict[str, int]:
    """Instructions of one request of `args.kind` in `tree` (serve, writer)."""
    with tempfile.TemporaryDirectory(prefix="dg-tree-") as name:
        copy = quiet_copy(tree.resolve(), Path(name))
        few = run(copy, args.kind, args.few)
        many = run(copy, args.kind, args.many)
    return {who: round((many[who] - few[who]) / (args.many - args.few)) for who in few}


if __name__ == "__main__":
    main()
