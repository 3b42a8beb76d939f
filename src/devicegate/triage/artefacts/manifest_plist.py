"""Manifest.plist: whether the backup says how it was made.

It carries the encryption flag, the keybag and the device facts of `Lockdown`. A folder
with `Manifest.db` but without it is a backup copied in part: `open_backup` reads it as
unencrypted with the device from `Info.plist`, and this artefact is then `missing`, so the
verdict is at best `inconclusive` and says why — the encryption state, and with it whether
Apple left web history and other protected data out, cannot be known.
"""

from __future__ import annotations

from devicegate.triage.artefacts.base import Artefact, Context, Findings, Missing

NAME = "manifest_plist"


def run(ctx: Context) -> Findings:
    backup = ctx.backup
    if not backup.manifest_plist:
        source = "Info.plist" if backup.device.serial or backup.device.udid else "nowhere"
        raise Missing(
            "Manifest.plist is not in the backup folder (a partial copy): scanned as "
            f"unencrypted, device facts from {source}; copy the whole backup folder to check it"
        )
    state = "encrypted" if backup.device.encrypted else "not encrypted"
    return Findings(note=f"backup {state}")


ARTEFACT = Artefact(NAME, "Manifest.plist (encryption state, keybag, device facts)", run)
