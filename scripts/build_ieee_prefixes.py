#!/usr/bin/env python3
"""Build src/devicegate/identify/data/ieee-prefixes.tsv.gz from the IEEE registries.

Sources, freshest first for each registry:

* MA-L (24-bit OUI): netaddr's bundled `eui/oui.txt` when it is installed, merged with
  Debian's `ieee-data` `oui.csv`; where both list a prefix, the fresher source wins (netaddr
  1.x ships a 2024 copy, Debian 12's ieee-data is from 2022-08-27; pass --prefer to choose).
* MA-M (28-bit): ieee-data `mam.csv`.
* MA-S (36-bit): ieee-data `oui36.csv`, plus the retired IAB blocks (`iab.csv`).

Output: one header line (`#`-prefixed: sources and dates) and `PREFIX<TAB>ORGANISATION`
lines sorted by prefix, where PREFIX is 6, 7 or 9 upper-case hex digits (24, 28 or 36
bits). Gzip with mtime 0, so rebuilding from the same data gives the same bytes.

Run `apt-get install -y ieee-data` first (scripts/system-deps.sh does); then
`.venv/bin/python scripts/build_ieee_prefixes.py`.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import gzip
import io
import re
import sys
from importlib import metadata
from pathlib import Path

IEEE_DATA = Path("/usr/share/ieee-data")
OUTPUT = (
    Path(__file__).resolve().parent.parent / "src/devicegate/identify/data/ieee-prefixes.tsv.gz"
)

_HEX = re.compile(r"^[0-9A-F]+$")
_NETADDR_LINE = re.compile(r"^([0-9A-Fa-f]{6})\s+\(base 16\)\s+(.*)$")


def _org(name: str) -> str:
    return " ".join(name.replace("\t", " ").split())


def read_csv(path: Path, digits: int) -> dict[str, str]:
    """Registry CSV (`Registry,Assignment,Organization Name,…`) → {prefix: organisation}."""
    out: dict[str, str] = {}
    with path.open(newline="", encoding="utf-8", errors="replace") as handle:
        for row in csv.DictReader(handle):
            prefix = (row.get("Assignment") or "").strip().upper()
            org = _org(row.get("Organization Name") or "")
            if len(prefix) == digits and _HEX.match(prefix) and org:
                out.setdefault(prefix, org)
    return out


def read_netaddr() -> tuple[dict[str, str], str | None]:
    """netaddr's bundled MA-L file → ({prefix: organisation}, "netaddr <version>")."""
    try:
        import netaddr.eui
    except ImportError:
        return {}, None
    path = Path(netaddr.eui.__file__).parent / "oui.txt"
    if not path.exists():
        return {}, None
    out: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        match = _NETADDR_LINE.match(line.strip())
        if match:
            org = _org(match.group(2))
            if org:
                out.setdefault(match.group(1).upper(), org)
    return out, f"netaddr {metadata.version('netaddr')} eui/oui.txt"


def ieee_data_date() -> str:
    stamp = IEEE_DATA / ".lastupdate"
    try:
        seconds = int(stamp.read_text().strip())
    except (OSError, ValueError):
        return "unknown date"
    return dt.datetime.fromtimestamp(seconds, dt.UTC).date().isoformat()


def ieee_data_version() -> str:
    try:
        import subprocess

        out = subprocess.run(
            ["dpkg-query", "-W", "-f=${Version}", "ieee-data"],
            capture_output=True,
            text=True,
            check=False,
        )
        return out.stdout.strip() or "unknown"
    except OSError:
        return "unknown"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--prefer",
        choices=("netaddr", "ieee-data"),
        default="netaddr",
        help="source that wins where both list the same MA-L prefix",
    )
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)

    if not (IEEE_DATA / "oui.csv").exists():
        print(
            "build_ieee_prefixes: /usr/share/ieee-data is missing; "
            "run `apt-get install -y ieee-data`",
            file=sys.stderr,
        )
        return 1
    deb_mal = read_csv(IEEE_DATA / "oui.csv", 6)
    mam = read_csv(IEEE_DATA / "mam.csv", 7)
    mas = read_csv(IEEE_DATA / "oui36.csv", 9)
    iab = read_csv(IEEE_DATA / "iab.csv", 9)
    net_mal, net_source = read_netaddr()

    # Later entries win: the preferred source goes last.
    mal = {**deb_mal, **net_mal} if args.prefer == "netaddr" else {**net_mal, **deb_mal}
    table = {**mal, **mam, **{**iab, **mas}}

    sources = [
        f"Debian ieee-data {ieee_data_version()} ({ieee_data_date()}): "
        "oui.csv mam.csv oui36.csv iab.csv"
    ]
    if net_source:
        sources.append(f"{net_source} (MA-L, preferred={args.prefer})")
    header = (
        f"# IEEE Registration Authority MA-L/MA-M/MA-S/IAB assignments; "
        f"{len(mal)} MA-L, {len(mam)} MA-M, {len(mas) + len(iab)} MA-S/IAB; "
        f"sources: {'; '.join(sources)}"
    )
    text = io.StringIO()
    text.write(header + "\n")
    for prefix in sorted(table, key=lambda p: (len(p), p)):
        text.write(f"{prefix}\t{table[prefix]}\n")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    with (
        args.output.open("wb") as raw,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as handle,
    ):
        handle.write(text.getvalue().encode("utf-8"))
    print(f"wrote {args.output} ({args.output.stat().st_size} bytes): {header[2:]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
