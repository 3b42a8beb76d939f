"""The domestic platforms a migration moves to: Aurora OS, Sailfish OS, and Linux desktops
(Astra Linux, ALT Linux, RED OS) — from what their browsers and mail clients send.

What each sends (sources in docs/identification.md):

- The Sailfish OS browser engine (Gecko, shared by Aurora OS, which is built on Sailfish)
  sends an OS-agnostic agent since Gecko 60, `Mozilla/5.0 (Mobile; rv:78.0) Gecko/78.0
  Firefox/78.0`; earlier releases named `Sailfish` (`(Linux; U; Sailfish 3.0; Mobile;
  rv:45.0) … SailfishBrowser/1.0`). Neither says Aurora, so both are platform `Sailfish`:
  Aurora is claimed only where a token says so (`Aurora OS`, `AuroraOS`, `OS Aurora`), and
  otherwise by the MDM inventory (attested) or a mail client's `os` / DeviceOS field. A
  policy that accepts Sailfish-family devices without that proof names `Sailfish`.
- Linux desktops send the generic Linux agents (`X11; Linux x86_64`), which ua-parser reads
  as `Linux`; a distribution is recorded (`distribution` in the evidence) only where the
  agent names it. `Astra Linux`, `ALT Linux` and `RED OS` stay platform `Linux`, so the
  bundled `only: {platform: [Aurora, Linux]}` admits them.
- Evolution, GNOME's mail and calendar client (the Exchange client of Linux desktops), sends
  `Evolution/<version>` and nothing else: a Linux desktop.

An agent that also names Android, Windows, an Apple device or another platform is not
claimed here: `Sailfish` or `Aurora` is then mentioned in passing (a custom agent on Windows,
an Android ROM that calls itself AuroraOS). Every claim is `reported`.
"""

from __future__ import annotations

import re

from devicegate.identify.base import agent_evidence, clean
from devicegate.identify.names import linux_distribution
from devicegate.model import DeviceKind, Evidence

#: Gecko releases from which the Sailfish engine sends the OS-agnostic agent (ESR 60 on).
AGNOSTIC_FROM = 60

_FOREIGN = re.compile(
    r"(?<![A-Za-z0-9])(?<!like )(Android|Windows|iPhone|iPad|Macintosh|Mac OS X|CrOS|Tizen"
    r"|KaiOS|HarmonyOS|BlackBerry)(?![A-Za-z])"
)
_AURORA = re.compile(
    r"(?<![A-Za-z0-9])(Aurora ?OS|OS Aurora)(?:[ /;]+(\d{1,2}(?:\.\d{1,3}){0,3}))?(?![A-Za-z])"
)
_SAILFISH = re.compile(
    r"(?<![A-Za-z0-9])(Sailfish(?: ?OS)?)(?:[ /]+(\d{1,2}(?:\.\d{1,3}){0,3}))?(?![A-Za-z])"
)
_AGNOSTIC = re.compile(
    r"Mozilla/5\.0 \(Mobile; rv:(\d{2,3})\.\d{1,2}\) Gecko/\1\.\d{1,2} Firefox/\1\.\d{1,2}"
)
_DISTRIBUTION = re.compile(
    r"(?<![A-Za-z0-9])(Astra ?Linux(?: [SC]E)?|ALT ?Linux|ALT (?:Workstation|Server|Education)"
    r"|Simply Linux|RED ?OS|RedOS)(?![A-Za-z])"
)
_EVOLUTION = re.compile(r"Evolution/(\d{1,2}\.\d{1,3}(?:\.\d{1,4})?)")


def sailfish_family(ua: str) -> Evidence | None:
    """Aurora or Sailfish, from an explicit token or the Sailfish engine's agnostic agent."""
    aurora = _AURORA.search(ua) if "Aurora" in ua or "OS A" in ua else None
    sailfish = _SAILFISH.search(ua) if aurora is None and "Sailfish" in ua else None
    if aurora is not None or sailfish is not None:
        found = aurora or sailfish
        assert found is not None
        if _FOREIGN.search(ua):
            return None
        platform = "Aurora" if aurora is not None else "Sailfish"
        return agent_evidence(
            "sailfish-family",
            [("platform", platform), ("os_version", found.group(2))],
            0.75,
            f"token `{clean(found.group(0), 32)}`",
        )
    agnostic = _AGNOSTIC.fullmatch(ua)
    if agnostic is None or int(agnostic.group(1)) < AGNOSTIC_FROM:
        return None
    return agent_evidence(
        "sailfish-family",
        [("platform", "Sailfish")],
        0.5,
        f"token `(Mobile; rv:{agnostic.group(1)}.…)` with no platform named: the Sailfish OS "
        "browser engine's OS-agnostic agent, sent by Sailfish OS and by Aurora OS, which is "
        "built on it; the agent does not say which (Aurora is claimed only with proof)",
    )


def distribution(ua: str) -> tuple[str, str] | None:
    """(distribution, the token that named it) for a domestic Linux distribution named in
    `ua`, else None."""
    if not ("Astra" in ua or "ALT" in ua or "Simply" in ua or "RED" in ua or "Red" in ua):
        return None
    found = _DISTRIBUTION.search(ua)
    if found is None:
        return None
    name = linux_distribution(found.group(1)) or linux_distribution(found.group(1).replace(" ", ""))
    if name is None:  # pragma: no cover - every alternative of the pattern is a known name
        return None
    return name, found.group(1)


def with_distribution(found: Evidence, ua: str) -> Evidence:
    """`found` (a Linux claim) with the distribution `ua` names, when it names one."""
    named = distribution(ua)
    if named is None:
        return found
    name, token = named
    note = f"distribution named by token `{clean(token, 24)}`"
    return Evidence(
        found.signal,
        found.trust,
        found.source,
        (*found.says, ("distribution", name)),
        f"{found.note}; {note}" if found.note else note,
        found.confidence,
    )


def linux_agent(ua: str) -> Evidence | None:
    """An agent ua-parser does not know that names a domestic distribution or is Evolution."""
    evolution = _EVOLUTION.match(ua) if ua.startswith("Evolution/") else None
    if evolution is not None and not _FOREIGN.search(ua):
        found = agent_evidence(
            "linux-mail",
            [("platform", "Linux"), ("kind", DeviceKind.DESKTOP.value)],
            0.5,
            f"token `{clean(evolution.group(0), 24)}`: GNOME's mail and calendar client, a Linux "
            "desktop",
        )
        return with_distribution(found, ua)
    named = distribution(ua)
    if named is None or _FOREIGN.search(ua):
        return None
    name, token = named
    return agent_evidence(
        "linux-distribution",
        [("platform", "Linux"), ("distribution", name)],
        0.6,
        f"token `{clean(token, 24)}`",
    )
