"""Triangulation's heuristic, after Kaspersky's `triangle_check`, with its defects fixed.

Idea (Kaspersky): the zero-click exploit leaves, within minutes, several kinds of traces —
an SMS attachment folder modified and attribute-changed with no attachment left in it,
changes to the ImageIO / locationd status-bar / FaceTime preference files, network use by
nehelper / WebContent / the datausage diagnostics, and location bundles stopping. Two
or more *kinds* within five minutes is suspicious.

What `triangle_check` got wrong, and what we do instead:

* it only slides its window over `len(timeline) - 10` start positions, so a timeline of
  ten events or fewer is never evaluated and the last ten events never start a window —
  we evaluate every start position, however short the timeline;
* it caps a window at ten events, so a burst of activity hides a trace — our window is
  purely five minutes of time;
* one SMS folder with only a birth event, or any real attachment in the window, makes it
  discard the *whole* window (the other kinds included) — we only decline to count the
  "sms" kind for folders that lack M and C or that hold a real attachment in the window;
* overlapping windows reported the same burst many times — we report a burst once.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import timedelta

from devicegate.triage.result import Detection, Heuristic, TimelineEvent, Verdict
from devicegate.triage.timeconv import iso

WINDOW = timedelta(minutes=5)
THRESHOLD = 2
_KIND = {Heuristic.FILE: "file", Heuristic.NET: "net", Heuristic.LOCATION: "location"}
_SMS_ROOT_DEPTH = 3  # Library/SMS/Attachments/xx has three slashes


class _Window:
    """Kinds of trace among the events currently in the window, updated per event.

    Each event enters and leaves once, so a whole timeline costs O(n) however dense it
    is (a phone with thousands of attachments in one afternoon stays fast).
    """

    def __init__(self) -> None:
        self.simple: Counter[str] = Counter()
        self.folder_events: dict[str, Counter[str]] = {}
        self.attachments: Counter[str] = Counter()
        self.qualifying: set[str] = set()

    def _requalify(self, folder: str) -> None:
        events = self.folder_events.get(folder)
        complete = bool(events) and events["modified"] > 0 and events["changed"] > 0  # type: ignore[index]
        if complete and self.attachments[folder] == 0:
            self.qualifying.add(folder)
        else:
            self.qualifying.discard(folder)

    @staticmethod
    def _ancestors(path: str) -> list[str]:
        """The SMS attachment folders (xx and xx/yy) that contain `path`."""
        parts = path.rstrip("/").split("/")
        return ["/".join(parts[:depth]) for depth in (4, 5) if len(parts) > depth]

    def update(self, event: TimelineEvent, step: int) -> None:
        if event.heuristic in _KIND:
            self.simple[_KIND[event.heuristic]] += step
        elif event.heuristic is Heuristic.SMS_DIR:
            folder = event.subject.rstrip("/")
            self.folder_events.setdefault(folder, Counter())[event.event] += step
            self._requalify(folder)
        elif event.heuristic is Heuristic.SMS_ATTACHMENT:
            for folder in self._ancestors(event.subject):
                self.attachments[folder] += step
                self._requalify(folder)

    def kinds(self) -> set[str]:
        found = {kind for kind, count in self.simple.items() if count > 0}
        if self.qualifying:
            found.add("sms")
        return found


def kinds(window: Sequence[TimelineEvent]) -> set[str]:
    """The distinct kinds of trace among `window`'s events."""
    state = _Window()
    for event in window:
        state.update(event, +1)
    return state.kinds()


def evaluate(timeline: Iterable[TimelineEvent]) -> list[Detection]:
    """Suspicious bursts: windows of five minutes holding two or more kinds of trace."""
    events = sorted((e for e in timeline if e.heuristic is not None), key=lambda e: e.time)
    detections: list[Detection] = []
    state = _Window()
    start = end = 0
    while start < len(events):
        while end < len(events) and events[end].time - events[start].time <= WINDOW:
            state.update(events[end], +1)
            end += 1
        found = state.kinds()
        if len(found) >= THRESHOLD:
            window = events[start:end]
            subjects = sorted({f"{e.event} {e.subject}" for e in window})
            detections.append(
                Detection(
                    "triangulation-heuristic",
                    "timeline",
                    "+".join(sorted(found)) + f" within 5 minutes from {iso(events[start].time)}",
                    Verdict.SUSPICIOUS,
                    time=events[start].time,
                    detail="; ".join(subjects)[:2000],
                )
            )
            while start < end:  # a burst is reported once: the next window starts after it
                state.update(events[start], -1)
                start += 1
        else:
            state.update(events[start], -1)
            start += 1
    return detections
