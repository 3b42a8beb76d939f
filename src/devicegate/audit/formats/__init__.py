"""Log formats, one module each, and auto-detection.

Each module exposes `name`, `default_resource`, `sniff(lines)` and `parser(ctx)` (see
`base.LogFormat`). Detection tries them in a fixed order on a file's first lines, most
specific first; `--format` skips detection.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import ModuleType

from devicegate.audit.formats import decisions, dovecot, nginx, postfix, radius, w3c

#: Detection order: self-describing formats first, the loosest (combined) last.
FORMATS: dict[str, ModuleType] = {
    module.name: module for module in (w3c, decisions, radius, dovecot, postfix, nginx)
}
NAMES = tuple(FORMATS)


def detect(lines: Sequence[str]) -> str | None:
    """The name of the first format whose sniffer accepts `lines`, or None."""
    for name, module in FORMATS.items():
        if module.sniff(lines):
            return str(name)
    return None
