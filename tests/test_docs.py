"""Every path a document cites exists, and every document the code cites exists.

A reference page that names a file the repository does not have sends its reader nowhere,
and files get renamed: these tests make a rename update the pages that cite the old name.
The pages are the README, the changelog, docs/ and the notes in deploy/; what they cite is a
repository path anywhere in the text (`src/devicegate/…`, `deploy/nginx/…`, `tests/…`,
`benchmarks/…`, `docs/x.md`), a relative Markdown link, a package path in backticks
(`server/protocol.py`) and a dotted name (`devicegate.directory.names`).
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

THIS = Path(__file__).resolve()  # names missing pages on purpose
ROOT = THIS.parents[1]
PACKAGE = ROOT / "src" / "devicegate"
PAGES = sorted(
    [
        ROOT / "README.md",
        ROOT / "CHANGELOG.md",
        *(ROOT / "docs").glob("*.md"),
        *(ROOT / "deploy").rglob("*.md"),
    ]
)
TOP = ("src", "tests", "deploy", "benchmarks", "docs", "examples", "scripts")
#: a repository path in running text or code: starts at a top-level directory, not inside
#: another path (`/usr/share/…`, `~/.cache/…`); stops at `…`, `*`, `{` and spaces
TOPS = "|".join(TOP)
REPO_PATH = re.compile(rf"(?<![\w./~@$-])((?:{TOPS})/[\w.+-]*(?:/[\w.+-]*)*)")
LINK = re.compile(r"\]\(([^)\s]+)\)")
CODE = re.compile(r"`([^`\n]+)`")
SUBPACKAGES = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
#: a path inside the package, as the pages write it in backticks: `audit/pipeline.py`
SUBS = "|".join(sorted(SUBPACKAGES))
PACKAGE_PATH = re.compile(rf"^(?:devicegate/)?({SUBS})(/[\w.-]+)+/?$")
DOTTED = re.compile(r"(?<![\w./-])devicegate((?:\.[A-Za-z_]\w*)+)")
#: `devicegate.lua`, `devicegate.conf`, `sqlite:///devicegate.db`: files, not modules
FILE_SUFFIXES = {"cfg", "conf", "db", "log", "lua", "module", "site"}


def _cited(page: Path, root: Path = ROOT) -> set[str]:
    """What `page` cites, each as a path relative to `root` (or a dotted name)."""
    text = page.read_text(encoding="utf-8")
    found = {m.group(1).rstrip(".") for m in REPO_PATH.finditer(text)}
    for target in LINK.findall(text):
        target = target.split("#", 1)[0]
        if not target or re.match(r"^[a-z][a-z+.-]*:", target):  # https:, mailto:, …
            continue
        found.add(str((page.parent / target).resolve().relative_to(root)))
    for span in CODE.findall(text):
        if PACKAGE_PATH.match(span):
            found.add("src/" + span if span.startswith("devicegate/") else f"src/devicegate/{span}")
    for match in DOTTED.finditer(text):
        parts = match.group(1).lstrip(".").split(".")
        if len(parts) == 1 and parts[0] in FILE_SUFFIXES:
            continue
        found.add("devicegate." + ".".join(parts))
    return found


def _resolves(name: str) -> bool:
    """A dotted name resolves when its longest importable prefix has the rest as attributes."""
    parts = name.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj: object = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for attribute in parts[cut:]:
            if not hasattr(obj, attribute):
                return False
            obj = getattr(obj, attribute)
        return True
    return False


def _missing(page: Path, root: Path = ROOT) -> list[str]:
    missing = []
    for cited in sorted(_cited(page, root)):
        if "__mutmut_" in cited or ".x_" in cited:
            continue  # mutmut's names of mutants and functions (docs/testing.md)
        if cited.startswith("devicegate."):
            if not _resolves(cited):
                missing.append(cited)
        elif not (root / cited).exists():
            missing.append(cited)
    return missing


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(ROOT)) for p in PAGES])
def test_every_path_a_page_cites_exists(page: Path) -> None:
    assert not _missing(page), f"{page.relative_to(ROOT)} cites what does not exist"


def test_the_pages_cite_paths_at_all() -> None:
    """The patterns still find citations: a page map, a deploy file, a module, a test."""
    readme = _cited(ROOT / "README.md")
    assert {"docs/semantics.md", "docs/design.md", "docs/performance.md"} <= readme
    serve = _cited(ROOT / "docs" / "serve.md")
    assert {"deploy/nginx/devicegate.conf", "tests/server/test_protocol.py"} <= serve
    assert "src/devicegate/server/protocol.py" in serve
    assert "devicegate.server.log_writer" in serve


def test_a_missing_path_is_reported(tmp_path: Path) -> None:
    root = tmp_path.resolve()
    (root / "deploy" / "nginx").mkdir(parents=True)
    (root / "deploy" / "nginx" / "devicegate.conf").write_text("", encoding="utf-8")
    (root / "docs").mkdir()
    page = root / "docs" / "page.md"
    page.write_text(
        "See `src/devicegate/nowhere.py`, [the map](nowhere.md), `audit/nowhere.py`\n"
        "and `devicegate.policy.nowhere`; `deploy/nginx/devicegate.conf`, [it](page.md)\n"
        "and `devicegate.policy.decide` exist, `sqlite:///devicegate.db` is a file.\n",
        encoding="utf-8",
    )
    assert _missing(page, root) == [
        "devicegate.policy.nowhere",
        "docs/nowhere.md",
        "src/devicegate/audit/nowhere.py",
        "src/devicegate/nowhere.py",
    ]


CODE_SUFFIXES = {".py", ".conf", ".cfg", ".lua", ".in", ".sh", ".site", ".module"}
#: a Markdown document named in code: `docs/mail.md`, `README.md`, "see security.md"
DOC_NAME = re.compile(r"(?<![\w/.-])((?:docs/|deploy/[\w/-]*)?[\w.-]+\.md)\b")


def test_every_document_the_code_cites_exists() -> None:
    """Docstrings and comments point readers at docs/…; a page that is not there (or a design
    document outside the repository) is a dead end."""
    known = {str(p.relative_to(ROOT)) for p in PAGES} | {p.name for p in PAGES}
    known |= {str(p.relative_to(ROOT)) for p in PACKAGE.rglob("*.md")}
    dead = []
    for top in ("src", "tests", "benchmarks", "deploy", "scripts", "examples"):
        for path in sorted((ROOT / top).rglob("*")):
            if path.suffix not in CODE_SUFFIXES or not path.is_file() or path == THIS:
                continue
            text = path.read_text(encoding="utf-8", errors="replace")
            for name in DOC_NAME.findall(text):
                if name not in known and not (ROOT / name).exists():
                    dead.append(f"{path.relative_to(ROOT)}: {name}")
    assert not dead, dead
