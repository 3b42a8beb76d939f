"""One exception root for everything devicegate raises on purpose.

    DevicegateError                 exit 1 unless said otherwise
    ├── UsageError                  exit 2: the command line itself is wrong
    ├── InputError                  exit 1: a file or value the user gave cannot be used
    │   ├── PolicyError             a policy file is invalid (carries every issue found)
    │   ├── DirectoryError          a users directory cannot be read
    │   ├── InventoryError          a device inventory cannot be read
    │   └── SignalError             a protocol value (header, query, IMAP ID) is malformed
    ├── StoreError                  exit 1: the store cannot be opened or written
    ├── SourceError                 exit 1: an LDAP or MDM source cannot be read
    │   ├── SourceConfigError       its YAML is invalid, or a secret cannot be read
    │   └── SyncRefused             the guard refused the answer; the last good version stays
    └── ExtraMissing                exit 2: an optional extra (spark, triage) is not installed

Messages follow one style: a lowercase sentence naming the user's input in backticks;
`hint` is a separate suggestion ("did you mean …"). The CLI prints `error: message` and the
hint on one line each and exits with `exit_code`; it never prints a traceback for these.
"""

from __future__ import annotations


class DevicegateError(Exception):
    """Root of every error devicegate raises deliberately."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def one_line(self) -> str:
        text = self.message.replace("\n", " ")
        return f"{text} (hint: {self.hint})" if self.hint else text


def error_json(message: str, hint: str | None = None) -> dict[str, str]:
    """devicegate's one JSON error shape (every HTTP endpoint, every `--json` error):
    `error`, and `hint` only when there is one."""
    return {"error": message, "hint": hint} if hint else {"error": message}


class UsageError(DevicegateError):
    exit_code = 2


class InputError(DevicegateError):
    pass


class PolicyError(InputError):
    """A policy could not be loaded. `issues` holds every finding (see policy.diagnostics)."""

    def __init__(self, message: str, *, issues: tuple[object, ...] = (), hint: str | None = None):
        super().__init__(message, hint=hint)
        self.issues = issues


class DirectoryError(InputError):
    pass


class InventoryError(InputError):
    pass


class SignalError(InputError):
    pass


class StoreError(DevicegateError):
    pass


class SourceError(DevicegateError):
    """A directory or inventory source (LDAP, an MDM API) could not be read."""


class SourceConfigError(SourceError, InputError):
    """A source YAML file is invalid, or the secret it names cannot be read."""


class SyncRefused(SourceError):
    """The guard refused a sync (empty, partial, or removing too much); `reason` says why."""

    def __init__(self, message: str, *, reason: str, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.reason = reason


class ExtraMissing(DevicegateError):
    exit_code = 2

    def __init__(self, extra: str, module: str) -> None:
        super().__init__(
            f"this feature needs the optional dependency `{module}`",
            hint=f"pip install 'devicegate[{extra}]'",
        )
