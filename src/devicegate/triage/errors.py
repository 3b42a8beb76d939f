"""Errors of the triage package, under the one devicegate root.

    DevicegateError
    └── InputError
        └── TriageError               a backup or an indicator set cannot be used (exit 1)
            ├── NotABackupError       the folder is not an iOS backup
            ├── BackupCorruptError    Manifest.plist / Manifest.db unreadable or inconsistent
            ├── PasswordRequiredError encrypted backup and no password source
            ├── WrongPasswordError    the password does not unlock the keybag
            ├── IndicatorError        an indicator file is corrupt or yields nothing
            └── ArtefactError         one artefact cannot be parsed (caught per artefact,
                                      reported as coverage `error`, never ends a scan)

A whole-backup error ends the scan of that backup with exit code 1 ("error"); an
`ArtefactError` only makes the artefact's coverage `error`, which keeps the verdict from
being `clean`.
"""

from __future__ import annotations

from devicegate.errors import InputError


class TriageError(InputError):
    """Root of triage errors: the input (backup, password, indicators) cannot be used."""


class NotABackupError(TriageError):
    pass


class BackupCorruptError(TriageError):
    pass


class PasswordRequiredError(TriageError):
    pass


class WrongPasswordError(TriageError):
    pass


class IndicatorError(TriageError):
    pass


class ArtefactError(TriageError):
    """One artefact is unreadable. Carries no traceback to the user: one line, like all."""
