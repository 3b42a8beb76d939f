"""The adapters' own tests: each protocol's parse and render, through the in-process
`LocalService` over the bundled policy and the test corpus (the same fixtures as the real-
server tests in tests/mail)."""

from __future__ import annotations

from tests.mail.conftest import service as service
from tests.mail.conftest import snapshot as snapshot
