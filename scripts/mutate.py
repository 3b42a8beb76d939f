"""`make mutate`: mutation testing (mutmut) of the modules where a silent change lets a banned
device through or loses a verdict, each group against the in-process tests of its area.

    python scripts/mutate.py                 every group, then the report
    python scripts/mutate.py policy server   only these groups
    python scripts/mutate.py --report        the report of the last run, nothing run
    python scripts/mutate.py policy --resume --only 'devicegate.policy.engine.x_decide*'
                                             re-run some mutants of a kept run

Each group runs in its own folder, `build/mutation/<group>/`: the project's `src/` and
`tests/` (mutmut copies both into `mutants/` and mutates the listed modules there), the
project's pyproject.toml with the group's `[tool.mutmut]` table, and links to the data the
tests read (`examples/`, `docs/`, `deploy/`). A mutant lives only in the test process, so a
group lists in-process tests: a `devicegate serve` or writer subprocess runs the unmutated
code (`PYTHONPATH` points them at `src/`).

The rate of a module is killed ÷ (mutants − accepted equivalents); a timeout counts as
killed (the mutant hangs the code: a test that runs over `TEST_TIMEOUT` seconds fails), a
mutant no test reaches counts as a survivor. The
accepted equivalents are the rows of the table under "Accepted equivalent mutants" in
docs/testing.md: the mutant's name, the line it writes (checked against the mutant found
now, so a renumbered mutant is never excused by an old row) and why no test can tell it
apart. The exit status is 1 when a module is under `TARGET`.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "build" / "mutation"
DOC = ROOT / "docs" / "testing.md"
TARGET = 95.0
NICE = 10
PACKAGE = "src/devicegate/"
#: folders the tests read by path from the project root (links, never copied or mutated)
DATA = ("examples", "docs", "deploy")
KILLED = {"killed", "timeout", "segfault", "caught by type check"}
#: seconds one test may run under mutation (pytest-timeout) before it fails: the slowest
#: test of any group takes under 15 s here (the server group's, 7 s at `nice`). mutmut's own
#: limit is CPU time, which a mutant that leaves a request waiting forever (an asyncio wait,
#: a lock) never uses, and a wall time of 15 × its tests' time; this fails such a mutant's
#: first waiting test in half a minute instead.
TEST_TIMEOUT = 30


@dataclass(frozen=True)
class Group:
    """Modules mutated together and the tests that judge them.

    `functions` narrows a module to some of its functions (mutmut's mangled names, e.g.
    `xǁForwardAuthǁanswer`, `x_durable`): only those are run and counted."""

    modules: tuple[str, ...]
    tests: tuple[str, ...]
    functions: dict[str, tuple[str, ...]] = field(default_factory=dict)


GROUPS: dict[str, Group] = {
    "policy": Group(
        modules=("policy/engine.py", "policy/conditions.py"),
        tests=(
            "tests/policy/test_semantics.py",
            "tests/policy/test_load.py",
            "tests/policy/test_engine_golden.py",
            "tests/corpus/test_corpus.py",
        ),
    ),
    "identify": Group(
        modules=("identify/activesync.py", "identify/imapid.py", "identify/mac.py"),
        tests=(  # not test_identify_uap.py: ua-parser's suites, 4 s, no parser of these
            "tests/identify/test_identify_parsers.py",
            "tests/identify/test_identify_cases.py",
            "tests/identify/test_identify_combine.py",
            "tests/identify/test_identify_api.py",
            "tests/identify/test_identify_golden.py",
        ),
    ),
    "adapters": Group(
        modules=(
            "adapters/forward_auth.py",
            "adapters/dovecot.py",
            "adapters/postfix.py",
            "adapters/radius.py",
        ),
        tests=(
            "tests/adapters/test_dovecot.py",
            "tests/adapters/test_postfix.py",
            "tests/adapters/test_radius.py",
            "tests/adapters/test_forward_auth.py",
            "tests/mail/test_corpus.py",
            "tests/mail/test_adapters_golden.py",
            "tests/server/test_bad_input.py",
        ),
    ),
    "server": Group(
        modules=(
            "server/decision_log.py",
            "server/forward_auth_endpoint.py",
            "server/dovecot_endpoint.py",
            "server/api.py",
        ),
        tests=(
            "tests/server/test_fail_closed.py",
            "tests/server/test_decision_log.py",
            "tests/server/test_asgi_paths.py",
            "tests/server/test_declog.py",
            "tests/server/test_app.py",
            "tests/server/test_replay.py",
        ),
        functions={
            # the fail-closed branches: who may ask, what a failed commit answers
            "server/forward_auth_endpoint.py": (
                "xǁForwardAuthǁ__call__",
                "xǁForwardAuthǁanswer",
                "xǁForwardAuthǁreplay",
                "xǁForwardAuthǁ_unavailable",
                "x_json_error",
            ),
            "server/dovecot_endpoint.py": (
                "xǁDovecotPolicyǁ__call__",
                "xǁDovecotPolicyǁreplay",
                "xǁDovecotPolicyǁ_error",
                "x_read_body",
            ),
            "server/api.py": (
                "x_refused",
                "x_durable",
                "x_decide_route",
                "x_mail_routes",
                "x_read_body",
                "x_parse_json_object",
            ),
        },
    ),
    "triage": Group(
        modules=("triage/verdict.py", "triage/indicators.py"),
        tests=(
            "tests/triage/test_verdict.py",
            "tests/triage/test_indicators.py",
            "tests/triage/test_scenarios.py",
            "tests/triage/test_triage_golden.py",
        ),
    ),
}


def module_name(path: str) -> str:
    """`policy/engine.py` → `devicegate.policy.engine`."""
    return "devicegate." + path.removesuffix(".py").replace("/", ".")


def selection(group: Group) -> list[str]:
    """mutmut's mutant-name globs for a group: whole modules, or the listed functions."""
    globs = []
    for path in group.modules:
        name = module_name(path)
        functions = group.functions.get(path)
        if functions is None:
            globs.append(f"{name}.*")
        else:
            globs += [f"{name}.{function}__mutmut_*" for function in functions]
    return globs


def mutmut_table(group: Group) -> str:
    """The `[tool.mutmut]` table of a group's pyproject.toml."""
    only = ", ".join(json.dumps(PACKAGE + path) for path in group.modules)
    tests = ", ".join(json.dumps(test) for test in group.tests)
    return (
        "\n[tool.mutmut]\n"
        'source_paths = ["src"]\n'
        f"only_mutate = [{only}]\n"
        f"pytest_add_cli_args_test_selection = [{tests}]\n"
        'pytest_add_cli_args = ["-p", "no:cacheprovider", "-o", "addopts=--strict-markers"]\n'
        "use_git_change_detection = false\n"
    )


def prepare(name: str, group: Group, *, resume: bool) -> Path:
    """The group's folder, made afresh unless `resume` (then mutmut continues its run)."""
    work = WORK / name
    if not resume and work.exists():
        shutil.rmtree(work)
    (work / "mutants").mkdir(parents=True, exist_ok=True)
    for link, target in (("src", "src"), ("tests", "tests")):
        if not (work / link).exists():
            (work / link).symlink_to(ROOT / target, target_is_directory=True)
    for folder in DATA:  # read by tests relative to the copied tests/ folder
        if not (work / "mutants" / folder).exists():
            (work / "mutants" / folder).symlink_to(ROOT / folder, target_is_directory=True)
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    (work / "pyproject.toml").write_text(text + mutmut_table(group), encoding="utf-8")
    return work


def mutmut() -> str:
    found = shutil.which("mutmut", path=str(Path(sys.executable).parent))
    if found is None:
        sys.exit("mutate: mutmut is not installed: pip install -e '.[test]'")
    return found


def run_group(name: str, group: Group, *, resume: bool, only: list[str], children: int) -> float:
    work = prepare(name, group, resume=resume)
    # subprocesses run the unmutated code; tests/conftest.py leaves property tests out
    # PYTEST_TIMEOUT, not a pytest option: mutmut resets every result when its options change
    env = dict(
        os.environ,
        PYTHONPATH=str(ROOT / "src"),
        DEVICEGATE_MUTATION="1",
        PYTEST_TIMEOUT=str(TEST_TIMEOUT),
    )
    env.pop("CI", None)  # a missing server skips in-process helpers' real-server tests
    started = time.monotonic()
    names = only or selection(group)
    if resume and not only and (work / "mutants" / "mutmut-stats.json").exists():
        # mutmut re-runs every mutant it is named; name only those not run yet
        names = [
            m.name
            for mutants in results(name, group).values()
            for m in mutants
            if m.status == "not checked"
        ]
        if not names:
            print(f"== {name}: every mutant has a result (drop --resume to run afresh)")
            return 0.0
    command = [mutmut(), "run", "--max-children", str(children), *names]
    print(f"== {name}: {' '.join(group.modules)}", flush=True)
    done = subprocess.run(command, cwd=work, env=env, check=False)
    seconds = time.monotonic() - started
    (work / "seconds").write_text(f"{seconds:.0f}\n")
    if done.returncode != 0:
        print(f"mutate: mutmut exited with {done.returncode} in group {name}", file=sys.stderr)
    return seconds


# ---- the report ----------------------------------------------------------------------------


@dataclass
class Mutant:
    name: str
    status: str
    line: str = ""


def results(name: str, group: Group) -> dict[str, list[Mutant]]:
    """The mutants of each module of a group (only the selected functions), by module."""
    from mutmut.stats import status_by_exit_code

    selected = [re.compile(fnmatch_re(glob)) for glob in selection(group)]
    found: dict[str, list[Mutant]] = {}
    for path in group.modules:
        meta = WORK / name / "mutants" / (PACKAGE + path + ".meta")
        mutants: list[Mutant] = []
        if meta.exists():
            codes = json.loads(meta.read_text(encoding="utf-8"))["exit_code_by_key"]
            for key, code in sorted(codes.items(), key=lambda kv: natural(kv[0])):
                if any(pattern.fullmatch(key) for pattern in selected):
                    mutants.append(Mutant(key, status_by_exit_code[code]))
        found[path] = mutants
    return found


def fnmatch_re(glob: str) -> str:
    import fnmatch

    return fnmatch.translate(glob).removeprefix("(?s:").removesuffix(")\\Z")


def natural(key: str) -> tuple[str, int]:
    stem, _, number = key.rpartition("__mutmut_")
    return stem, int(number) if number.isdigit() else 0


def mutated_line(work: Path, path: str, mutant: str) -> str:
    """The line the mutant writes (its first added line, white space folded), from the
    diff `mutmut show` prints."""
    from mutmut.mutation.diff_apply import get_diff_for_mutant

    here = Path.cwd()
    os.chdir(work)  # mutmut reads `mutants/` relative to the working directory
    try:
        diff = get_diff_for_mutant(mutant, path=PACKAGE + path)
    finally:
        os.chdir(here)
    for line in diff.splitlines():
        if line.startswith("+") and not line.startswith("+++"):
            return " ".join(line[1:].split())
    return ""


def accepted_equivalents() -> dict[str, tuple[str, str]]:
    """name → (mutated line, reason) from the table in docs/testing.md."""
    accepted: dict[str, tuple[str, str]] = {}
    if not DOC.exists():
        return accepted
    in_table = False
    for line in DOC.read_text(encoding="utf-8").splitlines():
        if line.startswith("## "):
            in_table = line.strip() == "## Accepted equivalent mutants"
            continue
        # cells split at `|` not escaped as `\|`; code spans may be ``double``
        cells = [
            cell.replace("\\|", "|").strip()
            for cell in re.split(r"(?<!\\)\|", line.strip().strip("|"))
        ]
        if in_table and line.startswith("|") and len(cells) >= 3 and cells[0].startswith("`"):
            accepted[cells[0].strip("`")] = (cells[1].strip("`").strip(), cells[2])
    return accepted


def report(names: list[str]) -> int:
    accepted = accepted_equivalents()
    used: set[str] = set()
    below = []
    summary: dict[str, object] = {}
    rows = []
    survivors: list[tuple[str, str, str]] = []
    for name in names:
        group = GROUPS[name]
        work = WORK / name
        if not (work / "mutants").exists():
            print(f"mutate: no run of group {name} (python scripts/mutate.py {name})")
            continue
        seconds = (work / "seconds").read_text().strip() if (work / "seconds").exists() else "?"
        for path, mutants in results(name, group).items():
            killed = sum(m.status in KILLED for m in mutants)
            equivalent = 0
            for m in mutants:
                if m.status in KILLED:
                    continue
                m.line = mutated_line(work, path, m.name)
                listed = accepted.get(m.name)
                # only a mutant that ran and survived is excused: one not run yet is not known
                if listed is not None and listed[0] == m.line and m.status == "survived":
                    equivalent += 1
                    used.add(m.name)
                else:
                    survivors.append((m.name, m.status, m.line))
            judged = len(mutants) - equivalent
            rate = 100.0 * killed / judged if judged else 100.0
            if rate < TARGET or not mutants:
                below.append(path)
            rows.append((name, path, len(mutants), killed, equivalent, rate, seconds))
            summary[path] = {
                "mutants": len(mutants),
                "killed": killed,
                "equivalent": equivalent,
                "rate": round(rate, 1),
                "group_seconds": seconds,
            }
    print()
    print(f"{'group':9} {'module':28} {'mutants':>7} {'killed':>6} {'equiv':>5} {'rate':>6}  s")
    for name, path, total, killed, equivalent, rate, seconds in rows:
        print(f"{name:9} {path:28} {total:7d} {killed:6d} {equivalent:5d} {rate:5.1f}%  {seconds}")
    if survivors:
        print(f"\nsurvivors ({len(survivors)}):")
        for mutant, status, line in survivors:
            print(f"  {mutant} [{status}]: {line}")
    reported = tuple(module_name(p) + "." for n in names for p in GROUPS[n].modules)
    stale = sorted(name for name in set(accepted) - used if name.startswith(reported))
    if stale:
        print("\nlisted as equivalent but not a surviving mutant with that line (review the row):")
        for mutant in stale:
            print(f"  {mutant}")
    WORK.mkdir(parents=True, exist_ok=True)
    (WORK / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    if below:
        print(f"\nunder {TARGET:.0f} %: {', '.join(below)}")
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("groups", nargs="*", metavar="GROUP", help=", ".join(GROUPS))
    parser.add_argument("--report", action="store_true", help="report the last run only")
    parser.add_argument("--resume", action="store_true", help="keep the group's last run")
    parser.add_argument("--only", action="append", default=[], help="mutant-name glob to run")
    parser.add_argument("--max-children", type=int, default=os.cpu_count() or 2)
    args = parser.parse_args(argv)
    unknown = [name for name in args.groups if name not in GROUPS]
    if unknown:
        parser.error(f"unknown group `{unknown[0]}`: {', '.join(GROUPS)}")
    names = args.groups or list(GROUPS)
    if not args.report:
        # at least `nice 10` however it is started (`make mutate` already is): mutmut keeps
        # every core busy for an hour, and the machine is shared
        os.nice(max(0, NICE - os.nice(0)))
        for name in names:
            seconds = run_group(
                name,
                GROUPS[name],
                resume=args.resume,
                only=args.only,
                children=args.max_children,
            )
            print(f"== {name}: {seconds:.0f} s", flush=True)
    return report(names)


if __name__ == "__main__":
    sys.exit(main())
