"""The contract between protocol adapters and the decision service.

An adapter is a thin translation in two steps, which every caller — the production server
and the tests alike — takes through the adapter's own functions:

    parse(the protocol's request)  -> DecisionRequest   (or the protocol's own answer for a
                                                          request that needs no decision, or
                                                          SignalError when it is malformed)
    render(Decision)               -> the protocol's answer

The mail adapters take `parse` in two steps, because `serve` replays their answers: they
first read the protocol's fields into a small request type of their own (`dovecot.read`,
`postfix.parse_request`), whose raw fields key a kept answer (`replay_key`; for Postfix the
SASL user), and only a request that is not a replay becomes a `DecisionRequest`
(`decision_request()`; Postfix's is None for unauthenticated mail, answered `DUNNO`).
`dovecot.parse` is exactly those two steps, so its tests test what the server runs.

Between them a `DecisionService` identifies the device, looks up its state (compromise
verdicts, quarantine holds), decides with the one engine, and records the decision and the
sighting. An adapter knows no policy. Each adapter module also declares itself as an
`Adapter`: its name in the decision log and metrics, and whether its requests carry device
data of their own.

    adapters.forward_auth   nginx auth_request, HAProxy, Traefik, Envoy   carries device data
    adapters.dovecot        Dovecot auth policy (IMAP, POP3, SMTP AUTH)   carries device data
    adapters.radius         FreeRADIUS rlm_rest (Wi-Fi, VPN)              carries device data
    adapters.postfix        Postfix policy delegation (SMTP submission)   infers from sightings

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


@dataclass(frozen=True, slots=True)
class Adapter:
    """One protocol adapter as the service sees it.

    `carries_device_data` is False for a protocol with no device data at all (SMTP): such an
    adapter decides from the signals of an earlier sighting, so its requests must never be
    recorded as sightings — otherwise a user seen once on IMAP would stay "recently seen"
    for as long as they send mail."""

    name: str
    carries_device_data: bool = True

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True, slots=True)
class DecisionRequest:
    """What an adapter makes of its protocol's request: who, to what, with which signals.

    `user_verified` is False when the user is a name nobody has verified yet (the Basic
    name of an ActiveSync request, which Exchange checks only after the answer): it is
    decided, but recorded as no evidence — no sighting, no hold."""

    user: str
    resource: str
    signals: Signals
    user_verified: bool = True


#: The JSON API's own enforcement point (`POST /v1/decide`).
HTTP = Adapter("http")


@dataclass(frozen=True, slots=True)
class Sighting:
    """A device seen for a user: what SMTP (which carries no device data) decides from."""

    at: datetime
    adapter: str
    signals: Signals
    profile: DeviceProfile
    _seen: str | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def seen(self) -> str:
        """How a refusal names it: `Apple iOS seen via dovecot 2023-07-17 09:55 UTC`. Made
        once per sighting (the only state a frozen sighting keeps): the submissions of one
        user refer to the same few sightings, and formatting the time is most of the cost."""
        seen = self._seen
        if seen is None:
            at = self.at.astimezone(UTC)
            seen = f"{self.profile.label} seen via {self.adapter} {at:%Y-%m-%d %H:%M} UTC"
            object.__setattr__(self, "_seen", seen)
        return seen


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
        adapter: Adapter,
        at: datetime | None = None,
    ) -> Decision:
        """Identify, look up device state, decide, and record decision + sighting.

        A sighting is recorded only when the signals identify a device, and never for an
        adapter whose requests carry no device data."""
        ...

    def check(
        self, user: str, resource: str, signals: Signals, *, at: datetime | None = None
    ) -> Decision:
        """Decide as `decide` would, recording nothing (a dry run: `/v1/check`, and the
        candidates an SMTP decision chooses among)."""
        ...

    def recent_sightings(self, user: str, *, window: timedelta) -> list[Sighting]:
        """The user's distinct identified devices seen on any adapter within `window`,
        newest first."""
        ...

    def recent_sighting(self, user: str, *, window: timedelta) -> Sighting | None:
        """The newest identified device sighting of `user` within `window`, if any."""
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
        self,
        user: str,
        resource: str,
        signals: Signals,
        *,
        adapter: Adapter,
        basis: str | None = None,
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
    log: list[tuple[str, str, str, Decision]] = field(default_factory=list)  # adapter name, …

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
        adapter: Adapter,
        at: datetime | None = None,
    ) -> Decision:
        at = at or datetime.now(UTC)
        name = self.snapshot.canonical_user(user)
        profile = self.snapshot.identifier.profile(signals)
        decision = self.check(name, resource, signals, at=at)
        if profile.identified and adapter.carries_device_data:
            self.sightings.setdefault(name.lower(), []).append(
                Sighting(at, adapter.name, signals, profile)
            )
        self.log.append((adapter.name, name, resource, decision))
        return decision

    def check(
        self, user: str, resource: str, signals: Signals, *, at: datetime | None = None
    ) -> Decision:
        profile = self.snapshot.identifier.profile(signals)
        request = Request(user, resource, at or datetime.now(UTC), signals)
        return decide(self.snapshot, request, self.state_for(profile))

    def seen_at(self, user: str) -> float | None:
        """When `user` was last sighted (epoch seconds): `DecisionService.seen_at`."""
        seen = self.sightings.get(self.snapshot.canonical_user(user).lower())
        return max(s.at for s in seen).timestamp() if seen else None

    def recent_sightings(self, user: str, *, window: timedelta) -> list[Sighting]:
        now = datetime.now(UTC)
        newest: dict[tuple[str, Signals], Sighting] = {}
        for sighting in self.sightings.get(self.snapshot.canonical_user(user).lower(), []):
            key = (sighting.adapter, sighting.signals)
            if now - sighting.at <= window and (key not in newest or sighting.at > newest[key].at):
                newest[key] = sighting
        return sorted(newest.values(), key=lambda s: s.at, reverse=True)

    def recent_sighting(self, user: str, *, window: timedelta) -> Sighting | None:
        found = self.recent_sightings(user, window=window)
        return found[0] if found else None
