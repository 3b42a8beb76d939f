"""The Triangulation heuristic, including the triangle_check defects we fixed."""

from __future__ import annotations

from datetime import timedelta

from devicegate.triage.heuristics import evaluate, kinds
from devicegate.triage.result import Heuristic, TimelineEvent

from .builder import BASE


def ev(
    seconds: int, heuristic: Heuristic, subject: str = "x", event: str = "modified"
) -> TimelineEvent:
    return TimelineEvent(BASE + timedelta(seconds=seconds), "t", event, subject, heuristic)


def sms_dir(seconds: int, path: str = "Library/SMS/Attachments/0a/02") -> list[TimelineEvent]:
    return [
        ev(seconds, Heuristic.SMS_DIR, path, "modified"),
        ev(seconds + 1, Heuristic.SMS_DIR, path, "changed"),
    ]


def test_two_kinds_within_five_minutes_is_suspicious() -> None:
    found = evaluate([ev(0, Heuristic.FILE), ev(299, Heuristic.NET)])
    assert len(found) == 1 and found[0].value.startswith("file+net")


def test_two_kinds_just_over_five_minutes_apart_is_nothing() -> None:
    assert evaluate([ev(0, Heuristic.FILE), ev(301, Heuristic.NET)]) == []


def test_one_kind_repeated_is_nothing() -> None:
    assert evaluate([ev(n, Heuristic.NET) for n in range(40)]) == []


def test_short_timeline_is_evaluated() -> None:
    """triangle_check skips timelines of ten events or fewer entirely."""
    assert len(evaluate([ev(0, Heuristic.LOCATION), ev(10, Heuristic.FILE)])) == 1


def test_trace_after_ten_busy_events_is_still_seen() -> None:
    """triangle_check caps a window at ten events; a burst must not hide a trace."""
    timeline = [ev(n, Heuristic.NET) for n in range(15)] + [ev(200, Heuristic.FILE)]
    assert len(evaluate(timeline)) == 1


def test_last_events_of_the_timeline_start_windows() -> None:
    timeline = [ev(n * 1000, Heuristic.NET) for n in range(20)]
    timeline += [ev(19 * 1000 + 5, Heuristic.FILE)]  # pairs with the final net event
    assert len(evaluate(timeline)) == 1


def test_sms_folder_needs_both_modified_and_changed() -> None:
    only_born = [ev(0, Heuristic.SMS_DIR, "Library/SMS/Attachments/0a", "born")]
    assert "sms" not in kinds(only_born)
    assert "sms" in kinds(sms_dir(0))


def test_a_birth_only_folder_does_not_discard_other_kinds() -> None:
    """triangle_check drops the whole window when one folder lacks M or C."""
    window = [
        ev(0, Heuristic.SMS_DIR, "Library/SMS/Attachments/0c", "born"),
        ev(1, Heuristic.FILE),
        ev(2, Heuristic.NET),
    ]
    assert kinds(window) == {"file", "net"}


def test_a_real_attachment_makes_its_folder_legitimate_only() -> None:
    window = [
        *sms_dir(0, "Library/SMS/Attachments/0a/02"),
        ev(3, Heuristic.SMS_ATTACHMENT, "Library/SMS/Attachments/0a/02/G/IMG_0001.HEIC"),
        ev(5, Heuristic.NET),
    ]
    assert kinds(window) == {"net"}
    window.extend(sms_dir(6, "Library/SMS/Attachments/7f/11"))
    assert kinds(window) == {"net", "sms"}


def test_one_burst_is_reported_once() -> None:
    timeline = [ev(n, Heuristic.FILE) for n in range(0, 100, 10)]
    timeline += [ev(n, Heuristic.NET) for n in range(5, 100, 10)]
    assert len(evaluate(timeline)) == 1


def test_events_without_a_class_are_ignored() -> None:
    plain = TimelineEvent(BASE, "t", "visit", "example.org")
    assert evaluate([plain, ev(1, Heuristic.FILE)]) == []
