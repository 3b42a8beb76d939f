"""Notices before the date: tell each affected user, once, what changes for them and when.

    plan.due_notices(snapshot, at, seen)   who is in a rule's notice period with which device
    message.compose(notice, …)             the personalised e-mail, from a template
    ledger.Ledger(store)                   what was sent (the store's `notices` table)
    send.deliver(…)                        SMTP delivery; failures are recorded and retried

The engine decides who is affected: a device gets a notice for a rule exactly when deciding
a request from it, at `at`, yields that rule's `warn` (docs/semantics.md rule 3).
"""

from devicegate.notify.ledger import Ledger
from devicegate.notify.message import Templates, compose
from devicegate.notify.plan import Notice, due_notices, seen_devices
from devicegate.notify.send import Outcome, SmtpTarget, deliver, parse_smtp_url

__all__ = [
    "Ledger",
    "Notice",
    "Outcome",
    "SmtpTarget",
    "Templates",
    "compose",
    "deliver",
    "due_notices",
    "parse_smtp_url",
    "seen_devices",
]
