"""`python -m devicegate.cli` (used by tests that need a real process)."""

from devicegate.cli import main

main()
