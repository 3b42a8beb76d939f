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
import contextlib
import gzip
import json
import plistlib
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit
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
from tests.fuzz.conftest import HANG

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


# ---- the console: query parameters and forms, no 5xx, no hang --------------------------------

#: the placeholder a console input carries for its session's CSRF token (so that a form gets
#: past the token check and its fields are read)
CSRF_SLOT = b"@CSRF@"
#: the bytes uvicorn (httptools) accepts in a request target as they are
REQUEST_LINE = "".join(map(chr, range(0x21, 0x7F)))


@dataclass(frozen=True)
class ConsoleApp:
    """The console app in process on a small store, signed in as an operator (`--dev-login`),
    with its session cookie and that session's CSRF token."""

    app: Any
    loop: asyncio.AbstractEventLoop
    cookie: bytes
    csrf: bytes
    held: str


@cache
def _console() -> ConsoleApp:
    from datetime import UTC, datetime, timedelta

    from devicegate.store import open_store
    from tests.console.world import HOSTILE_UA, console_app, write_world
    from tests.store.logrows import Said, write

    tmp = Path(tempfile.mkdtemp(prefix="devicegate-fuzz-console-"))
    place = write_world(tmp / "world")
    store = open_store(place.store_url)
    now = datetime.now(UTC)
    hostile = {"signals": {"user_agent": HOSTILE_UA}}
    write(store, [
        (now - timedelta(days=1), Said("a01", "block", "wave-1", matched=("wave-1",),
                                       extra=hostile)),
        (now - timedelta(hours=2), Said("a02", "allow", None, excepted=("wave-1",))),
        (now - timedelta(hours=1), Said("b01", "warn", "wave-2", resource="web")),
        (now, Said("c01", "allow", None, report_only=("preview",), adapter="dovecot")),
    ])  # fmt: skip
    held = store.hold([("activesync_id", "FUZZHELD0001")], resource="email", rule="spoof-hold",
                      reason="signals conflict", user="d01", created_by="dovecot")  # fmt: skip
    app = console_app(place, store, dev_login="operator")
    loop = asyncio.new_event_loop()
    status, headers, body = loop.run_until_complete(_ask(app, "GET", "/quarantine", b"", []))
    assert status == 200, status
    cookie = next(v for k, v in headers if k == b"set-cookie").split(b";")[0]
    token = re.search(rb'name="csrf" value="([^"]+)"', body)
    assert token is not None, body[:500]
    return ConsoleApp(app, loop, cookie, token.group(1), held)


async def _ask(
    app: Any, method: str, target: str, body: bytes, headers: list[tuple[bytes, bytes]]
) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """One request to an ASGI app as uvicorn hands it over — `target` as on the request
    line, the path percent-decoded, the fragment dropped: status, headers, body. The
    client disconnects once the request is read (an event stream then ends)."""
    raw, _, query = target.partition("#")[0].partition("?")
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": unquote(raw),
        "raw_path": raw.encode("ascii"),
        "query_string": query.encode("ascii"),
        "root_path": "",
        "headers": [(b"host", b"testserver"), *headers],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8282),
    }
    chunks = [{"type": "http.request", "body": body, "more_body": False}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, object]:
        return chunks.pop(0) if chunks else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await asyncio.wait_for(app(scope, receive, send), HANG)  # an answer awaited for ever
    start = next(m for m in sent if m["type"] == "http.response.start")
    content = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return int(start["status"]), list(start.get("headers", [])), content


def check_console(data: bytes) -> None:
    """A request to the console's pages and forms: the first line `METHOD /path?query`, the
    rest the form body (`@CSRF@` stands for the session's token). Any status but a 5xx, an
    answer within `HANG` seconds, and a redirect never to another site."""
    console = _console()
    first, _, body = data.replace(CSRF_SLOT, console.csrf).partition(b"\n")
    method, _, target = first.decode("latin-1").partition(" ")
    method = "POST" if method.upper() == "POST" else "GET"
    # uvicorn refuses a request line with a byte outside 0x21-0x7e (400, before the app):
    # a client sends such bytes percent-encoded, and so does this check
    target = "/" + quote(target.strip().lstrip("/").encode("latin-1"), safe=REQUEST_LINE)
    headers = [(b"cookie", console.cookie)]
    if method == "POST":
        headers.append((b"content-type", b"application/x-www-form-urlencoded"))
    ask = console.loop.create_task(_ask(console.app, method, target, body, headers))
    try:
        status, answer, content = console.loop.run_until_complete(ask)
    except BaseException:
        # interrupted (Ctrl-C, the test's timeout): end the request, so that its worker
        # threads stop with it and the process can exit
        ask.cancel()
        with contextlib.suppress(BaseException):
            console.loop.run_until_complete(ask)
        raise
    assert status < 500, (status, target, content[:300])
    location = urlsplit(dict(answer).get(b"location", b"/").decode("latin-1"))
    assert location.netloc in ("", "testserver") and location.scheme in ("", "http"), location


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
    "console": check_console,
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
        "console": console_seeds(),
    }


def console_seeds() -> list[bytes]:
    """Every page of the console with the query parameters it reads, and its three forms."""
    held = _console().held.encode()
    return [
        b"GET /?days=7",
        b"GET /units/gov/a?days=30&sort=last_seen&dir=desc",
        b"GET /units/gov/a/lab?format=csv&sort=user&dir=asc",
        b"GET /users/a01",
        b"GET /users/d01",
        b"GET /devices/" + held,
        b"GET /devices/FUZZHELD0001",
        b"GET /quarantine?released=1",
        b"GET /exceptions?days=14",
        b"GET /activity?before=2",
        b"GET /live?action=block&unit=gov/a&resource=web&rule=wave-1&adapter=forward-auth",
        b"GET /live?paused=1&action=allow",
        b"GET /live/stream?after=0&unit=gov/b&resource=email",
        b"GET /whatif?candidate=gov-c-enforced&at=2025-06-01T09:00",
        b"GET /login?next=/units/gov/a",
        b"GET /auth/callback?code=abc&state=xyz",
        b"GET /static/console.css",
        b"GET /healthz",
        b"POST /quarantine/release\ncsrf=@CSRF@&device=" + held + b"&reason=lost+phone+found",
        b"POST /quarantine/release\ncsrf=@CSRF@&device=" + held + b"&device=x&reason=",
        b"POST /language\ncsrf=@CSRF@&lang=ru&next=/units/gov/a%3Fdays%3D7",
        b"POST /logout\ncsrf=@CSRF@",
    ]
