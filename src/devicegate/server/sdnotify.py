"""Tell a service manager that `serve` is ready: the sd_notify(3) datagram protocol.

systemd (`Type=notify`) starts the service with `NOTIFY_SOCKET` naming a unix datagram
socket (a path, or an abstract name written with a leading `@`) and waits for `READY=1` on it
before it counts the service as started — so units ordered after devicegate start only once
it listens. The protocol is one datagram of newline-separated `KEY=value` lines; the few
lines here send it. The maintained bindings need libsystemd (`systemd-python` builds a C
extension against it) or are unmaintained (`sdnotify`); a datagram needs neither.

Without `NOTIFY_SOCKET` (not started by systemd) nothing is sent. A socket that cannot be
reached is logged and otherwise ignored: a service manager that cannot hear us restarts us
after its own timeout, and failing here would only make that sooner and less clear.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping

log = logging.getLogger("devicegate.server")


def notify(message: str, environ: Mapping[str, str] = os.environ) -> bool:
    """Send `message` (e.g. "READY=1\\nSTATUS=…") to `$NOTIFY_SOCKET`; True when sent."""
    address = environ.get("NOTIFY_SOCKET", "")
    if not address:
        return False
    if address.startswith("@"):  # an abstract socket
        address = "\0" + address[1:]
    elif not address.startswith("/"):
        log.warning(
            "NOTIFY_SOCKET %r is neither a path nor an abstract name: not notified", address
        )
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall(message.encode())
    except OSError as exc:
        log.warning("could not notify the service manager at %s: %s", address.lstrip("\0"), exc)
        return False
    return True
