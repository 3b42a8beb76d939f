"""CSV directories: `user,unit` required; `groups` (`;`-separated), `email`, `name` optional."""

from __future__ import annotations

import csv
from pathlib import Path

from devicegate.directory.entries import (
    DUPLICATE_USER_HINT,
    INVALID_UNIT_HINT,
    UNIT_RE,
    Problem,
    Row,
    normalise_unit,
    split_groups,
)
from devicegate.errors import DirectoryError


def read_csv_directory(path: Path) -> tuple[list[Row], list[Problem]]:
    """Rows and per-line problems. A file without the required columns is an error; a bad
    row is a problem that is reported and skipped (one typo must not empty a directory)."""
    rows: list[Row] = []
    problems: list[Problem] = []
    seen: dict[str, int] = {}
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            header = [h.strip().lower() for h in reader.fieldnames or []]
            reader.fieldnames = header
            missing = {"user", "unit"} - set(header)
            if missing:
                raise DirectoryError(
                    f"{path}:1: the directory needs columns `user` and `unit`; missing "
                    + ", ".join(f"`{m}`" for m in sorted(missing)),
                    hint="first line like: user,unit,groups,email",
                )
            for record in reader:
                line = reader.line_num
                user = (record.get("user") or "").strip()
                unit = normalise_unit(record.get("unit") or "")
                if not user:
                    problems.append(
                        Problem(line, "empty `user`", "fill in the login or delete the row")
                    )
                    continue
                if not UNIT_RE.match(unit):
                    problems.append(
                        Problem(
                            line,
                            f"user `{user}`: invalid unit `{record.get('unit')}`",
                            INVALID_UNIT_HINT,
                        )
                    )
                    continue
                key = user.lower()
                if key in seen:
                    problems.append(
                        Problem(
                            line,
                            f"user `{user}` already listed on line {seen[key]}",
                            DUPLICATE_USER_HINT,
                        )
                    )
                    continue
                seen[key] = line
                email = (record.get("email") or "").strip() or None
                rows.append(
                    Row(
                        user=user,
                        unit=unit,
                        groups=split_groups(record.get("groups") or ""),
                        email=email,
                        name=(record.get("name") or "").strip() or None,
                        line=line,
                    )
                )
    except OSError as exc:
        raise DirectoryError(f"cannot read directory `{path}`: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise DirectoryError(f"{path}: not UTF-8 text") from None
    except csv.Error as exc:
        raise DirectoryError(f"{path}: malformed CSV: {exc}") from None
    return rows, problems
