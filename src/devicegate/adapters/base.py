"""The contract between protocol adapters and the decision service.

An adapter is a thin translation: it parses its protocol's request into (user, resource,
signals), asks a `DecisionService`, and renders the `Decision` back into its protocol's
answer. It knows no policy. The service behind it (in-process for tests and the CLI, the
`devicegate serve` process in production) identifies the device, looks up the device's state
(compromise verdicts, quarantine holds), decides with the one engine, and records the
decision and the sighting.

`LocalService` is the reference implementation shipped with the package (like httpx's
MockTransport): every adapter can be exercised without a server, and then again through the
real one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable

from devicegate.model import NO_STATE, Decision, DeviceProfile, DeviceState, Request, Signals
from devicegate.policy import Snapshot, decide

#: Adapters whose protocol carries no device data (SMTP): they decide from the signals of an
#: earlier sighting, so a DecisionService must not record their requests as new sightings —
#: otherwise a user seen once on IMAP would stay "recently seen" for as long as they send mail.
INFERRING_ADAPTERS = frozenset({"postfix"})


@dataclass(frozen=True, slots=True)
class Sighting:
    """A device seen for a user: what SMTP (which carries no device data) decides from."""

    at: datetime
    adapter: str
    signals: Signals
    profile: DeviceProfile


class DecisionService(Protocol):
    """What adapters may ask. Implementations must never raise on a well-typed call."""

    @property
    def snapshot(self) -> Snapshot: ...

    def decide(
        self,
        user: str,
        resource: str,
        signals: Signals,
        *,
        adapter: str,
        at: datetime | None = None,
    ) -> Decision:
        """Identify, look up device state, decide, and record decision + sighting.

        No sighting is recorded for empty signals or for an adapter in `INFERRING_ADAPTERS`.
        """
        ...

    def recent_sighting(self, user: str, *, window: timedelta) -> Sighting | None:
        """The newest device sighting of `user` on any adapter within `window`, if any."""
        ...

    def seen_at(self, user: str) -> float | None:
        """When this service last recorded a sighting of `user` (epoch seconds), None if it
        knows of none: cheap enough to ask per request, so a cache of `recent_sighting` can
        notice a newer sighting at once."""
        ...


class Replayable(Protocol):
    """A prepared decision (`devicegate.server.service.Prepared`): what a replay repeats."""

    @property
    def decision(self) -> Decision: ...


@runtime_checkable
class ReplayingService(DecisionService, Protocol):
    """A DecisionService that can *replay* a decision for an identical request: logged and
    counted like a decision, without deciding again (`devicegate serve` is one). Adapters
    that see the same request often (a Postfix message to many recipients, an IMAP client
    reconnecting) keep the prepared decision and replay it while `replay_if_valid` accepts it."""

    def prepare(
        self, user: str, resource: str, signals: Signals, *, adapter: str, basis: str | None = None
    ) -> tuple[Replayable, object]:
        """Decide and log; `basis` (logged) says where inferred signals came from."""
        ...

    def replay_if_valid(self, prepared: Replayable, now: float) -> object | None:
        """Log one more request answered by `prepared` if it still holds; None: decide."""
        ...


@dataclass
class LocalService:
    """In-process DecisionService over a snapshot; state and sightings kept in memory."""

    snapshot: Snapshot
    states: dict[str, DeviceState] = field(default_factory=dict)  # by "kind:value" key
    sightings: dict[str, list[Sighting]] = field(default_factory=dict)
    log: list[tuple[str, str, str, Decision]] = field(default_factory=list)

    def state_for(self, profile: DeviceProfile) -> DeviceState:
        for kind, value in profile.keys:
            state = self.states.get(f"{kind}:{value}".lower())
            if state is not None:
                return state
        return NO_STATE

    def decide(
        self,
        user: str,
        resource: str,
        signals: Signals,
        *,
        adapter: str,
        at: datetime | None = None,
    ) -> Decision:
        at = at or datetime.now(UTC)
        profile = self.snapshot.identifier.profile(signals)
        state = self.state_for(profile)
        decision = decide(self.snapshot, Request(user, resource, at, signals), state)
        if not signals.is_empty() and adapter not in INFERRING_ADAPTERS:
            self.sightings.setdefault(user.lower(), []).append(
                Sighting(at, adapter, signals, profile)
            )
        self.log.append((adapter, user, resource, decision))
        return decision

    def seen_at(self, user: str) -> float | None:
        """When `user` was last sighted (epoch seconds): `DecisionService.seen_at`."""
        seen = self.sightings.get(user.lower())
        return max(s.at for s in seen).timestamp() if seen else None

    def recent_sighting(self, user: str, *, window: timedelta) -> Sighting | None:
        now = datetime.now(UTC)
        seen = [s for s in self.sightings.get(user.lower(), []) if now - s.at <= window]
        return max(seen, key=lambda s: s.at) if seen else None
