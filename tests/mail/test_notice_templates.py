"""Notice templates: English and Russian shipped, a deployment's directory overrides them file
by file, a broken template stops the run before anything is sent, and client-chosen text
cannot forge a header. The exception-ends notice says which rule and on which day."""

from __future__ import annotations

import smtplib
from dataclasses import replace
from datetime import date, datetime
from email.message import EmailMessage
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from devicegate.directory import User
from devicegate.errors import InputError, UsageError
from devicegate.notify import Ledger, compose, deliver
from devicegate.notify.message import Templates, notice_context
from devicegate.notify.plan import ExceptionEnd, Notice, NoticeDevice
from devicegate.store import open_store
from tests.mail.test_notify import notify

MOSCOW = ZoneInfo("Europe/Moscow")
USER = User("e.lebedeva", "gov/minfin/budget", email="e.lebedeva@minfin.example", name="Elena")


def notice(label: str = "Apple iOS iPhone14,5", source: str = "inventory") -> Notice:
    return Notice(
        user=USER,
        address="e.lebedeva@minfin.example",
        rule="apple-wave-2-email",
        description="wave 2 starts with work e-mail",
        devices=(NoticeDevice("DEV-LEB-1", label, source, ("email",)),),
        effective_from=datetime(2023, 8, 14, tzinfo=MOSCOW),
        message="Work e-mail is no longer available on Apple devices. Personal use is not "
        "affected.",
    )


def ending() -> Notice:
    """The notice the planner makes for an exception about to end: `effective_from` is the
    moment it ends, `exception` says which."""
    return replace(
        notice(),
        effective_from=datetime(2023, 9, 2, tzinfo=MOSCOW),  # `until: 2023-09-01` includes it
        exception=ExceptionEnd("2023-09-01", date(2023, 9, 1), "replacement device on order", None),
    )


def test_english_is_the_default() -> None:
    message = compose(notice(), sender="it@minfin.example", timezone=MOSCOW)
    assert message["Subject"] == (
        "From Monday 14 August 2023: your Apple iOS iPhone14,5 can no longer be used for work"
    )
    body = message.get_content()
    assert body.startswith("Dear Elena,\n\nFrom Monday 14 August 2023 (00:00 MSK)")
    assert body.count("Personal use") == 1


def test_russian_is_shipped() -> None:
    for locale in ("ru", "ru_RU", "ru-RU"):
        templates = Templates(locale=locale)
        message = compose(notice(), sender="it@x.example", timezone=MOSCOW, templates=templates)
        assert message["Subject"] == (
            "С 14 августа 2023 г. ваше устройство Apple iOS iPhone14,5 "
            "нельзя использовать для работы"
        )
        body = message.get_content()
        assert body.startswith("Elena, здравствуйте!\n\nС 14 августа 2023 г. (понедельник, 00:00")
        assert "из учёта устройств" in body
        assert body.count("Личное использование устройства не ограничивается") == 1


def test_exception_ends_says_which_rule_and_the_last_day() -> None:
    context = notice_context(ending(), timezone=MOSCOW, locale="en")
    assert context["kind"] == "exception-ends"
    assert context["last_day"].isoformat() == "2023-09-01"
    assert context["exception"]["reason"] == "replacement device on order"
    message = compose(ending(), sender="it@x.example", timezone=MOSCOW)
    assert message["Subject"] == (
        "Your exception for rule apple-wave-2-email ends on Friday 1 September 2023"
    )
    assert "From Saturday 2 September 2023 (00:00 MSK)" in message.get_content()
    russian = compose(
        ending(), sender="it@x.example", timezone=MOSCOW, templates=Templates(None, "ru")
    )
    assert russian["Subject"] == (
        "Ваше исключение из правила apple-wave-2-email действует по 1 сентября 2023 г."
    )
    assert notice_context(notice(), timezone=MOSCOW, locale="en")["kind"] == "rule-starts"
    assert (
        message["Message-ID"]
        != compose(notice(), sender="it@x.example", timezone=MOSCOW)["Message-ID"]
    )


def test_an_exception_end_is_recorded_apart_from_the_rules_start(tmp_path: Path) -> None:
    """A user told of the rule's start is told again when the exception ends: the ledger
    keeps the two apart (`Notice.ledger_rule`)."""
    store = open_store(f"sqlite:///{tmp_path}/store.db")
    sink = _Sink()

    def make(n: Notice) -> EmailMessage:
        return compose(n, sender="it@x.example", timezone=MOSCOW)

    deliver([notice()], sink, Ledger(store), make)  # type: ignore[arg-type]
    outcomes = deliver([ending()], sink, Ledger(store), make)  # type: ignore[arg-type]
    assert [o.status for o in outcomes] == ["sent"] and len(sink.sent) == 2
    assert [o.status for o in deliver([ending()], sink, Ledger(store), make)] == ["already sent"]  # type: ignore[arg-type]


def test_a_deployment_overrides_templates_file_by_file(tmp_path: Path) -> None:
    (tmp_path / "ru").mkdir()
    (tmp_path / "ru" / "rule-starts.txt.j2").write_text(
        "Subject: {{ rule.id }}: {{ starts | date('d MMMM') }}\n\n"
        "{{ user.name }}: {{ devices | map(attribute='device_id') | join(',') }}\n",
        encoding="utf-8",
    )
    templates = Templates(tmp_path, "ru")
    message = compose(notice(), sender="it@x.example", timezone=MOSCOW, templates=templates)
    assert message["Subject"] == "apple-wave-2-email: 14 августа"
    assert message.get_content() == "Elena: DEV-LEB-1\n"
    # the kind it did not override comes from the shipped Russian templates
    other = compose(ending(), sender="it@x.example", timezone=MOSCOW, templates=templates)
    assert other["Subject"].startswith("Ваше исключение")
    # a locale only the deployment has
    (tmp_path / "kk").mkdir()
    for kind in ("rule-starts", "exception-ends"):
        (tmp_path / "kk" / f"{kind}.txt.j2").write_text("Subject: {{ rule.id }}\n\nсәлем\n")
    kazakh = compose(
        notice(), sender="it@x.example", timezone=MOSCOW, templates=Templates(tmp_path, "kk")
    )
    assert kazakh.get_content() == "сәлем\n"


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("Subject: {{ rule.id \n\nbody\n", ":3: expected token"),  # does not compile: line
        ("Subject: {{ no_such_name }}\n\nbody\n", "is undefined"),
        ("no subject line\n", "must begin with a `Subject: …` line"),
        ("Subject: a\nX-Other: b\n\nbody\n", "must begin with a `Subject: …` line"),
        ("Subject: {{ ''.__class__.__mro__ }}\n\nx\n", "rule-starts.txt.j2"),  # sandboxed
    ],
)
def test_a_broken_template_is_an_error_naming_it(tmp_path: Path, text: str, says: str) -> None:
    (tmp_path / "en").mkdir()
    (tmp_path / "en" / "rule-starts.txt.j2").write_text(text)
    with pytest.raises(InputError) as raised:
        compose(notice(), sender="it@x.example", timezone=MOSCOW, templates=Templates(tmp_path))
    assert "rule-starts.txt.j2" in raised.value.one_line() and says in raised.value.one_line()


@pytest.mark.parametrize("locale", ["xx", "../../etc", "", "de"])
def test_a_locale_without_templates_is_refused(locale: str) -> None:
    with pytest.raises(UsageError):
        Templates(locale=locale)


def test_client_chosen_labels_cannot_forge_headers() -> None:
    label = "iPhone\r\nBcc: all@minfin.example\x1b[2J" + "x" * 5000
    message = compose(notice(label, "seen on dovecot"), sender="it@x.example", timezone=MOSCOW)
    assert message["Bcc"] is None and "\n" not in message["Subject"]
    assert "\x1b" not in message.as_string() and len(message["Subject"]) < 700


class _Sink:
    def __init__(self) -> None:
        self.sent: list[EmailMessage] = []

    def connect(self) -> _Sink:
        return self

    def send_message(self, message: EmailMessage) -> None:
        self.sent.append(message)

    def quit(self) -> None:
        return None


def test_a_template_error_sends_and_records_nothing(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path}/store.db")
    ledger = Ledger(store)
    (tmp_path / "en").mkdir()
    (tmp_path / "en" / "exception-ends.txt.j2").write_text("Subject: {{ oops }}\n\nx\n")
    templates = Templates(tmp_path)
    sink = _Sink()

    def make(n: Notice) -> EmailMessage:
        return compose(n, sender="it@x.example", timezone=MOSCOW, templates=templates)

    with pytest.raises(InputError):
        deliver([notice(), ending()], sink, ledger, make)  # type: ignore[arg-type]
    assert sink.sent == [] and store.count("notices") == 0


def test_notify_takes_templates_and_locale(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert notify(tmp_path, "--dry-run", "--locale", "ru") == 0
    out = capsys.readouterr().out
    assert "Subject: С 14 августа 2023 г. ваше устройство Apple iOS iPhone14,5" in out
    assert "замечено сервисом dovecot" in out
    assert notify(tmp_path, "--dry-run", "--locale", "xx") == 2
    assert "unknown locale `xx`" in capsys.readouterr().err
    broken = tmp_path / "tpl"
    (broken / "en").mkdir(parents=True)
    (broken / "en" / "rule-starts.txt.j2").write_text("Subject: {% if %}\n")
    smtp = f"smtp://127.0.0.1:{_closed_port()}"
    assert notify(tmp_path, "--templates", str(broken), "--smtp", smtp) == 1
    err = capsys.readouterr().err
    assert f"error: notice template `{broken}/en/rule-starts.txt.j2`:1:" in err
    assert open_store(f"sqlite:///{tmp_path}/store.db").count("notices") == 0


def _closed_port() -> int:
    """A port nothing listens on: the run must stop before it would even connect."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_smtp_errors_are_still_recorded(tmp_path: Path) -> None:
    """Composing first changes nothing for delivery failures: recorded, retried."""
    store = open_store(f"sqlite:///{tmp_path}/store.db")

    class Refusing(_Sink):
        def send_message(self, message: EmailMessage) -> None:
            raise smtplib.SMTPRecipientsRefused({message["To"]: (550, b"no")})

    outcomes = deliver(
        [notice()],
        Refusing(),
        Ledger(store),
        lambda n: compose(n, sender="a@b.example", timezone=MOSCOW),
    )
    assert [o.status for o in outcomes] == ["failed"] and store.count("notices") == 1
