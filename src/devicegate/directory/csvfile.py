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
            reader = csv.reader(handle)
            header = [h.strip().lower() for h in next(reader, [])]
            # a column named twice is read from its last place, as csv.DictReader would
            column = {name: index for index, name in enumerate(header)}
            missing = {"user", "unit"} - set(column)
            if missing:
                raise DirectoryError(
                    f"{path}:1: the directory needs columns `user` and `unit`; missing "
                    + ", ".join(f"`{m}`" for m in sorted(missing)),
                    hint="first line like: user,unit,groups,email",
                )
            # a column the header does not have reads the empty cell appended to every row
            at = [column.get(name, -1) for name in ("user", "unit", "groups", "email", "name")]
            width = len(header)
            for record in reader:
                if not record:  # a blank line
                    continue
                if len(record) < width:  # a short row: the missing cells are empty
                    record += [""] * (width - len(record))
                record.append("")
                raw_user, raw_unit, groups, raw_email, raw_name = (record[i] for i in at)
                line = reader.line_num
                user = raw_user.strip()
                unit = normalise_unit(raw_unit)
                if not user:
                    problems.append(
                        Problem(line, "empty `user`", "fill in the login or delete the row")
                    )
                    continue
                if not UNIT_RE.match(unit):
                    problems.append(
                        Problem(
                            line,
                            f"user `{user}`: invalid unit `{raw_unit}`",
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
                rows.append(
                    Row(
                        user=user,
                        unit=unit,
                        groups=split_groups(groups),
                        email=raw_email.strip() or None,
                        name=raw_name.strip() or None,
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
