"""sysdiagnose shutdown.log, when the operator gives one (iShutdown's rules).

The log lists, for each reboot, the processes that delayed it::

    remaining client pid: 1234 (/path/to/binary)
    these clients are still here
    SIGTERM: [1696245823] …

Events before a `SIGTERM: [unix-time]` line belong to that reboot. Rules, after
Kaspersky's iShutdown: a process path matching a process or file-path indicator is
`compromised`; a process running from `/private/var/db/` or `/private/var/tmp/` (where
Pegasus and Reign staged theirs) is `suspicious`; three or more "still here" delays before
one reboot are `suspicious`.
"""

from __future__ import annotations

import re
from datetime import datetime

from devicegate.triage.artefacts.base import Artefact, Context, Findings, Missing
from devicegate.triage.errors import ArtefactError
from devicegate.triage.result import Detection, TimelineEvent, Verdict
from devicegate.triage.timeconv import from_unix

NAME = "shutdown_log"
MAX_BYTES = 256 << 20
SUSPICIOUS_FOLDERS = ("/private/var/db/", "/private/var/tmp/")
DELAY_THRESHOLD = 3
_CLIENT = re.compile(r"remaining client pid:\s*(\d+)\s*\((.*)\)\s*$")
_SIGTERM = re.compile(r"SIGTERM:\s*\[(\d+)\]")
_DELAY = "these clients are still here"


def run(ctx: Context) -> Findings:
    path = ctx.options.shutdown_log
    if path is None:
        raise Missing("no shutdown.log was given")
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise ArtefactError(f"`{path}` is {size} bytes, over the {MAX_BYTES} limit")
        text = path.read_bytes().decode("utf-8", "replace")
    except OSError as exc:
        raise ArtefactError(f"cannot read `{path}`: {exc.strerror}") from None
    found = Findings()
    clients: list[str] = []
    delays = 0
    reboots = 0
    for line in text.splitlines():
        match = _CLIENT.search(line)
        if match:
            clients.append(match.group(2).strip())
        elif _DELAY in line:
            delays += 1
        elif sigterm := _SIGTERM.search(line):
            reboots += 1
            _close(ctx, found, clients, delays, from_unix(int(sigterm.group(1))))
            clients, delays = [], 0
    if clients or delays:
        _close(ctx, found, clients, delays, None)
    found.note = f"{reboots} reboots"
    return found


def _close(
    ctx: Context, found: Findings, clients: list[str], delays: int, time: datetime | None
) -> None:
    for process in dict.fromkeys(clients):
        name = process.rstrip("/").rsplit("/", 1)[-1]
        if time is not None:
            found.timeline.append(TimelineEvent(time, NAME, "shutdown-client", process))
        hit = ctx.indicators.exact("process", name) or ctx.indicators.path(process)
        if hit is not None:
            found.detections.append(
                Detection(
                    "process-indicator",
                    NAME,
                    process,
                    Verdict.COMPROMISED,
                    time=time,
                    indicator_set=hit.set_name,
                    detail="process delaying a reboot",
                )
            )
        elif process.startswith(SUSPICIOUS_FOLDERS):
            found.detections.append(
                Detection(
                    "shutdown-anomaly",
                    NAME,
                    process,
                    Verdict.SUSPICIOUS,
                    time=time,
                    detail="process running from a staging folder during a reboot",
                )
            )
    if delays >= DELAY_THRESHOLD:
        found.detections.append(
            Detection(
                "shutdown-anomaly",
                NAME,
                f"{delays} delays",
                Verdict.SUSPICIOUS,
                time=time,
                detail=f"{delays} 'clients still here' delays before one reboot",
            )
        )


ARTEFACT = Artefact(
    NAME,
    "sysdiagnose shutdown.log (only when given)",
    run,
    enabled=lambda ctx: ctx.options.shutdown_log is not None,
)
