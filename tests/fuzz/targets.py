"""Every parser that reads input a client, a log or a backup chose, each as one check: take
bytes, run the parser (and what uses its result), and accept only the answers the parser
documents — its own error type (a clear message), `inconclusive`, a 4xx, a refusal.
Anything else raised is a failure; so is a 5xx from the app.

`SEEDS` holds well-formed inputs per parser; the fuzz tests mutate them as well as
generating inputs from nothing (`test_fuzz.py`).
"""

from __future__ import annotations

import asyncio
import base64
import gzip
import json
import plistlib
import tempfile
from collections.abc import Callable
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo

from devicegate.adapters import dovecot, forward_auth, postfix, radius
from devicegate.audit.events import LineError
from devicegate.audit.formats import FORMATS
from devicegate.audit.formats.base import ParseContext
from devicegate.errors import DevicegateError, SignalError
from devicegate.identify import identify
from devicegate.identify.activesync import parse_activesync_query
from devicegate.identify.imapid import identify_imap_id, parse_imap_id
from devicegate.model import Signals
from devicegate.triage.errors import TriageError
from devicegate.triage.mbfile import decode_mbfile
from devicegate.triage.plists import load_plist_dict
from tests.faults import population as world

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "apple-ban"

Check = Callable[[bytes], None]


def text(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")


# ---- policy ---------------------------------------------------------------------------------


@cache
def _policy_file() -> Path:
    return Path(tempfile.mkdtemp(prefix="devicegate-fuzz-")) / "policy.yaml"


def check_policy(data: bytes) -> None:
    """A policy file: loaded and compiled, or refused with a `PolicyError`."""
    from devicegate.directory import EMPTY_DIRECTORY
    from devicegate.inventory import EMPTY_INVENTORY
    from devicegate.policy.compile import compile_policy
    from devicegate.policy.load import load_policy

    path = _policy_file()
    path.write_bytes(data)
    try:
        loaded = load_policy([path])
    except DevicegateError:
        return
    snapshot = compile_policy(loaded, EMPTY_DIRECTORY, EMPTY_INVENTORY)
    snapshot.valid_until("someone@example.org", 1.7e9)


# ---- the adapters' protocols ----------------------------------------------------------------


def check_forward_auth(data: bytes) -> None:
    """Headers as a proxy sends them (`name: value` lines, latin-1 as ASGI decodes them) and
    a path: a DecisionRequest (whose signals identification reads) or a `SignalError`."""
    head, _, path = data.partition(b"\n\n")
    headers: dict[str, str] = {}
    for line in head.split(b"\n"):
        name, _, value = line.partition(b":")
        headers[name.strip().lower().decode("latin-1")] = value.strip().decode("latin-1")
    resource, _, extra = text(path).partition("/")
    try:
        request = forward_auth.parse(resource or "web", headers, extra_path=extra)
    except SignalError:
        return
    identify(request.signals)


def check_activesync(data: bytes) -> None:
    """An ActiveSync query, plain or base64: parsed, or a `SignalError`."""
    try:
        parse_activesync_query(text(data))
    except SignalError:
        return
    identify(Signals(activesync_query=text(data)))


def check_imap_id(data: bytes) -> None:
    """An RFC 2971 ID list as a client sent it: fields and evidence, or a `SignalError`."""
    try:
        fields = parse_imap_id(text(data))
    except SignalError:
        return
    identify_imap_id(fields)
    identify(Signals(imap_id=text(data)))


def check_dovecot(data: bytes) -> None:
    """Dovecot's policy JSON: a request to decide, or its refusal (never an exception)."""
    command = dovecot.command_of(data[:40])
    parsed = dovecot.parse(command, data)
    if isinstance(parsed, tuple):
        assert parsed[0] < 500, parsed
    else:
        identify(parsed.signals)


def check_postfix(data: bytes) -> None:
    """Postfix policy attribute lines: a request or a `SignalError`."""
    lines = data.split(b"\n")
    try:
        request = postfix.parse_request(lines)
    except SignalError:
        return
    request.decision_request()


def check_radius(data: bytes) -> None:
    """rlm_rest JSON: a request to decide, or a rejection (never an exception)."""
    parsed = radius.parse(data)
    if isinstance(parsed, tuple):
        assert parsed[0] == 401, parsed
    else:
        identify(parsed.signals)


# ---- audit log formats ------------------------------------------------------------------------

CTX = ParseContext("fuzz.log", None, ZoneInfo("Europe/Moscow"), 2023)


def audit_check(name: str) -> Check:
    """Lines of one audit log format: events, or a `LineError` per line it cannot read."""
    module = FORMATS[name]

    def check(data: bytes) -> None:
        module.sniff(text(data).splitlines()[:20])
        parser = module.parser(CTX)
        for number, line in enumerate(text(data).splitlines(keepends=True), start=1):
            try:
                parser.feed(line, number)
            except LineError:
                continue
        try:  # a record left open at the end (RADIUS detail) is a bad line too (ingest.py)
            parser.finish()
        except LineError:
            return

    return check


# ---- triage -----------------------------------------------------------------------------------


def check_plist(data: bytes) -> None:
    """A backup's plist (Info, Status, Manifest.plist): a dictionary or an `ArtefactError`."""
    try:
        load_plist_dict(data, "Manifest.plist")
    except TriageError:
        return


@cache
def _backup_root() -> Path:
    """A small clean, unencrypted backup (the triage tests' builder) whose Manifest.db each
    input replaces."""
    from tests.triage.scenarios import base_builder

    return base_builder(Path(tempfile.mkdtemp(prefix="devicegate-fuzz-backup-")) / "b").write()


def check_manifest_db(data: bytes) -> None:
    """A backup's Manifest.db, opened as `triage scan` opens it: every row read, verified and
    its file record decoded, or a `TriageError` (`BackupCorruptError`, `ArtefactError`)."""
    from devicegate.triage import open_backup

    root = _backup_root()
    (root / "Manifest.db").write_bytes(data)
    try:
        backup = open_backup(root)
    except TriageError:
        return
    try:
        for entry, blob in backup.entries_with_metadata():
            if blob is not None:
                try:
                    decode_mbfile(blob, entry.relative_path)
                except TriageError:
                    continue
        for _ in backup.paths():
            pass
        backup.find("HomeDomain", "Library/SMS/sms.db")
    except TriageError:
        return
    finally:
        backup.close()


# ---- the HTTP app: no 5xx ---------------------------------------------------------------------


@cache
def _app() -> tuple[object, asyncio.AbstractEventLoop]:
    from devicegate.server import ServerConfig, create_app

    tmp = Path(tempfile.mkdtemp(prefix="devicegate-fuzz-app-"))
    policy, directory = world.write_world(tmp / "world", users=5)
    app = create_app(
        ServerConfig(policy=(policy,), directory=directory, store_url=f"sqlite:///{tmp}/s.db")
    )
    loop = asyncio.new_event_loop()
    loop.run_until_complete(app.startup())
    return app, loop


def check_http(data: bytes) -> None:
    """One request to the app as uvicorn would hand it over (method, path, query, headers,
    body from the input): any status but a 5xx."""
    app, loop = _app()
    first, _, rest = data.partition(b"\n")
    head, _, body = rest.partition(b"\n\n")
    method, _, target = first.decode("latin-1").partition(" ")
    path, _, query = target.partition("?")
    headers = []
    for line in head.split(b"\n"):
        name, sep, value = line.partition(b":")
        if sep:
            headers.append((name.strip().lower(), value.strip()))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": (method or "GET").upper()[:16],
        "scheme": "http",
        "path": "/" + path.lstrip("/"),
        "raw_path": ("/" + path.lstrip("/")).encode("latin-1"),
        "query_string": query.encode("latin-1"),
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8181),
    }
    sent: list[dict[str, object]] = []
    chunks = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> dict[str, object]:
        return chunks.pop(0) if chunks else {"type": "http.disconnect"}

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    loop.run_until_complete(app(scope, receive, send))  # type: ignore[operator]
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    assert isinstance(status, int) and status < 500, (status, sent)


# ---- the registry ----------------------------------------------------------------------------

CHECKS: dict[str, Check] = {
    "policy_yaml": check_policy,
    "forward_auth": check_forward_auth,
    "activesync": check_activesync,
    "imap_id": check_imap_id,
    "dovecot_json": check_dovecot,
    "postfix": check_postfix,
    "radius_json": check_radius,
    **{f"audit_{name}": audit_check(name) for name in FORMATS},
    "backup_plist": check_plist,
    "manifest_db": check_manifest_db,
    "http_app": check_http,
}


def _example_lines(path: Path, count: int = 40) -> list[bytes]:
    raw = path.read_bytes()
    if path.suffix == ".gz":
        raw = gzip.decompress(raw)
    return [b"".join(raw.splitlines(keepends=True)[:count])]


@cache
def seeds() -> dict[str, list[bytes]]:
    """Well-formed inputs per parser, for the mutating half of the campaign."""
    logs = EXAMPLE / "logs"
    eas = [world.plain_eas("DEV1", "Android"), world.base64_eas("B64DEV1", "iPhone")]
    fa = [
        f"x-devicegate-user: {world.ops(1)}\nuser-agent: {world.IPHONE_SAFARI}\n"
        f"x-original-uri: {uri}\nx-forwarded-for: 192.0.2.1, 10.0.0.1\n\nweb".encode()
        for uri in ["/p/1", *eas]
    ]
    info = {"Product Type": "iPhone14,2", "Product Version": "16.5", "Device Name": "Phone"}
    manifest = {"IsEncrypted": False, "Version": "10.0", "Lockdown": {"ProductVersion": "16.5"}}
    return {
        "policy_yaml": [
            (EXAMPLE / "policy.yaml").read_bytes(),
            world.policy_text(1).encode(),
        ],
        "forward_auth": fa,
        "activesync": [e.split("?", 1)[1].encode() for e in eas]
        + [base64.b64encode(b"\x8d\x00\x09\x04\x04ABCD\x00\x06iPhone")],
        "imap_id": [world.IOS_MAIL.encode(), world.THUNDERBIRD.format(1).encode()],
        "dovecot_json": [world.dovecot(world.ops(1), world.IOS_MAIL).split(b"\r\n\r\n", 1)[1]],
        "postfix": [world.postfix(world.ops(1)).rstrip(b"\n")],
        "radius_json": [world.radius(world.ops(1), "3c:22:fb:01:02:03").split(b"\r\n\r\n", 1)[1]],
        "audit_nginx": _example_lines(logs / "nginx" / "access.log"),
        "audit_w3c": _example_lines(logs / "exchange" / "u_ex2307.log.gz"),
        "audit_dovecot": _example_lines(logs / "mail" / "dovecot.log.gz"),
        "audit_postfix": _example_lines(logs / "mail" / "postfix.log"),
        "audit_radius": _example_lines(logs / "radius" / "detail-202307"),
        "audit_decisions": [
            json.dumps(
                {
                    "at": "2023-07-17T09:00:00+00:00",
                    "user": world.ops(1),
                    "resource": "web",
                    "adapter": "forward-auth",
                    "action": "block",
                    "signals": {"user_agent": world.IPHONE_SAFARI},
                }
            ).encode()
        ],
        "backup_plist": [
            plistlib.dumps(info, fmt=plistlib.FMT_BINARY),
            plistlib.dumps(manifest, fmt=plistlib.FMT_XML),
        ],
        "manifest_db": [(_backup_root() / "Manifest.db").read_bytes()],
        "http_app": [
            b"GET /v1/forward-auth/web\n" + fa[0].split(b"\n\n")[0],
            b"POST /v1/dovecot/auth-policy?command=allow\ncontent-type: application/json\n\n"
            + world.dovecot(world.ops(1), world.IOS_MAIL).split(b"\r\n\r\n", 1)[1],
            b"POST /v1/radius/authorize\n\n"
            + world.radius(world.ops(1), "3c:22:fb:01:02:03").split(b"\r\n\r\n", 1)[1],
            b'POST /v1/check\n\n{"user": "ops1@ops.example", "resource": "web"}',
        ],
    }
