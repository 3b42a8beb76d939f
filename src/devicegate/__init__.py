"""devicegate: take a class of devices out of work use — policy, identification, enforcement,
audit and triage (README.md)."""


def installed_version() -> str:
    """The installed distribution's version (what `pip show devicegate` says): `--version`,
    the heartbeat a `serve` leaves for the console."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("devicegate")
    except PackageNotFoundError:
        return "unknown (not installed: run from a source tree)"
