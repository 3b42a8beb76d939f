"""Lints that hold a policy against the directory and the inventory it will run with.

A group, user or device the policy names but the directory or inventory does not know
matches nobody: `exclude: {groups: [ios-developer]}` excludes no one while the directory
says `ios-developers`, and an exception for a device id nobody has lifts nothing. These are
warnings, not errors (the directory may gain the user tomorrow), and are only checked when
`validate` is given `--directory` / `--devices`. The directory's own problems are reported
here too, each with the line and the hint the directory reader gave it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from devicegate.directory import Directory
from devicegate.inventory import Inventory, device_forms, normalise_key
from devicegate.policy.diagnostics import Issue, Severity, did_you_mean
from devicegate.policy.load import LoadedPolicy, Located

_DEVICE_HINT = (
    "name the device by an identifier the inventory lists (device_id, serial, UDID, MDM id, "
    "ActiveSync DeviceId, MAC, certificate fingerprint); otherwise it matches only an "
    "identifier seen live"
)


def reference_issues(
    loaded: LoadedPolicy,
    directory: Directory | None,
    inventory: Inventory | None,
    known_units: set[str] | None,
) -> list[Issue]:
    """`known_units`: the policy's declared units with their ancestors (None when it
    declares none, and the directory's units are taken as they are)."""
    issues: list[Issue] = []
    if directory is not None:
        issues.extend(_directory_references(loaded, directory))
        issues.extend(_directory_problems(directory, known_units))
    if inventory is not None:
        issues.extend(_device_references(loaded, inventory))
    return issues


def _directory_references(loaded: LoadedPolicy, directory: Directory) -> Iterator[Issue]:
    source = f"`{directory.source}`" if directory.source else "the directory"
    groups = sorted({group for user in directory.users for group in user.groups})
    aliases = [alias for user in directory.users for alias in user.aliases()]
    known: dict[str, tuple[Callable[[str], bool], list[str], str]] = {
        # The engine compares groups exactly, user names case-insensitively.
        "groups": (groups.__contains__, groups, "no user in {source} is in group `{name}`"),
        "users": (
            lambda name: directory.get(name) is not None,
            aliases,
            "user `{name}` is not in {source}",
        ),
    }
    for index, rule in enumerate(loaded.policy.rules):
        origin = loaded.rule_origins[index]
        for path, scope in ((("scope",), rule.scope), (("scope", "exclude"), rule.scope.exclude)):
            for attribute, (found, candidates, text) in known.items():
                for pos, name in enumerate(getattr(scope, attribute)):
                    if not found(name):
                        yield _issue(
                            origin,
                            (*path, attribute, pos),
                            f"rules[{index}].{'.'.join(path)}.{attribute}[{pos}]",
                            text.format(source=source, name=name),
                            did_you_mean(name, candidates),
                            f"unknown-{attribute.removesuffix('s')}",
                        )
    for index, exc in enumerate(loaded.policy.exceptions):
        if exc.user and directory.get(exc.user) is None:
            yield _issue(
                loaded.exception_origins[index],
                ("user",),
                f"exceptions[{index}].user",
                f"user `{exc.user}` is not in {source}: the exception lifts nothing",
                did_you_mean(exc.user, aliases),
                "unknown-user",
            )


def _device_references(loaded: LoadedPolicy, inventory: Inventory) -> Iterator[Issue]:
    # The engine matches a device exception, lower-cased, against every identifier of the
    # device as the inventory normalises it (`compile.device_keys`).
    known = {value.strip().lower() for device in inventory for _, value in device.identifiers()}
    known |= {normalise_key("mac", device.mac) for device in inventory if device.mac}
    source = f"`{inventory.source}`" if inventory.source else "the inventory"
    for index, exc in enumerate(loaded.policy.exceptions):
        if exc.device and known.isdisjoint(device_forms(exc.device)):
            yield _issue(
                loaded.exception_origins[index],
                ("device",),
                f"exceptions[{index}].device",
                f"device `{exc.device}` is not in the inventory {source}",
                _DEVICE_HINT,
                "unknown-device",
            )


def _directory_problems(directory: Directory, known_units: set[str] | None) -> Iterator[Issue]:
    """The directory's own problems, and (when the policy declares `units:`) its units the
    policy does not know: the same list `check` and `serve` print when they load."""
    checked = directory.with_known_units(known_units) if known_units is not None else directory
    for problem in checked.problems:
        yield Issue(
            Severity.WARNING,
            problem.file,
            problem.line,
            "directory",
            problem.message,
            problem.hint,
            "directory",
        )


def _issue(
    origin: Located,
    sub: tuple[str | int, ...],
    field: str,
    message: str,
    hint: str | None,
    code: str,
) -> Issue:
    return Issue(Severity.WARNING, origin.file, origin.line(*sub), field, message, hint, code)
