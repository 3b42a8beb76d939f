"""Finding log files, opening them (gzip or plain) and recognising their format."""

from __future__ import annotations

import gzip
import hashlib
import io
from collections.abc import Iterable
from pathlib import Path
from typing import IO

from devicegate.audit.formats import detect
from devicegate.errors import InputError, UsageError

GZIP_MAGIC = b"\x1f\x8b"
SNIFF_LINES = 50
HEAD_BYTES = 65536


def expand(paths: Iterable[Path]) -> list[Path]:
    """Files named, and the files under directories named (sorted; hidden files skipped)."""
    out: list[Path] = []
    for path in paths:
        if path.is_dir():
            out.extend(
                p
                for p in sorted(path.rglob("*"))
                if p.is_file()
                and not any(part.startswith(".") for part in p.relative_to(path).parts)
            )
        elif path.is_file():
            out.append(path)
        else:
            raise InputError(f"log file `{path}` does not exist")
    seen: set[Path] = set()
    unique = []
    for path in out:
        resolved = path.resolve()
        if resolved not in seen:
            seen.add(resolved)
            unique.append(path)
    return unique


def is_gzip(path: Path) -> bool:
    with path.open("rb") as handle:
        return handle.read(2) == GZIP_MAGIC


def open_text(path: Path) -> IO[str]:
    """The file as text lines: gunzipped when it is gzip, undecodable bytes replaced."""
    raw: IO[bytes] = (
        gzip.open(path, "rb")  # type: ignore[assignment]  # noqa: SIM115
        if is_gzip(path)
        else path.open("rb")
    )
    return io.TextIOWrapper(raw, encoding="utf-8", errors="replace", newline="")


def head_lines(path: Path, count: int = SNIFF_LINES) -> list[str]:
    try:
        with open_text(path) as handle:
            lines = []
            for line in handle:
                lines.append(line)
                if len(lines) >= count:
                    break
            return lines
    except (OSError, EOFError) as exc:
        raise InputError(f"cannot read `{path}`: {exc}") from None


def detect_format(path: Path) -> str:
    name = detect(head_lines(path))
    if name is None:
        raise UsageError(
            f"cannot tell the format of `{path}`",
            hint="pass --format nginx|w3c|dovecot|postfix|radius|decisions",
        )
    return name


def fingerprint(path: Path) -> dict[str, object]:
    """Size, mtime and a hash of the first 64 KiB: enough to tell a file was ingested."""
    stat = path.stat()
    with path.open("rb") as handle:
        head = hashlib.sha256(handle.read(HEAD_BYTES)).hexdigest()
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "head": head}
