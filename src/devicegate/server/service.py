"""`ServerService`: the `DecisionService` behind `devicegate serve`.

Per request: identify (cached per distinct Signals by the snapshot's Identifier), look the
device up in the in-memory state cache (no store query), decide with the one engine, queue
the decision (and a sighting, at most one per user/signals/adapter per `sighting_interval`)
for the batching log writer. The caller acknowledges only after `await log.wait(batch)`.
`prepare` also returns a `Prepared` decision that the forward-auth and mail fast paths replay
for identical requests until anything it depends on changes (policy, device state, the next
policy date): a replay is logged and counted like a decision, it only skips the work.

A rule whose effect is `quarantine` also puts the device on hold in the store (synchronously:
the hold is durable before the answer), so it stays blocked on every server until an operator
releases it. The built-in compromised/held rules never create holds: their state already is one.

`reload()` waits until the configured files have stopped changing (`policy.settled`), compiles
the new policy off to the side and swaps one reference: requests see the old snapshot or the
new one, never a mix. An invalid policy raises and the old one stays.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, TypeVar

from devicegate.adapters.base import Adapter, Sighting
from devicegate.boundedcache import BoundedCache
from devicegate.model import (
    Action,
    Decision,
    DeviceProfile,
    DeviceState,
    Request,
    Signals,
)
from devicegate.policy import Snapshot, decide
from devicegate.serialize import signals_from_json, signals_json
from devicegate.server.binding import bind_signals, hold_keys
from devicegate.server.config import ServerConfig
from devicegate.server.decision_log import TEMPLATES_MAX, Batch, DecisionLog
from devicegate.server.device_state import StateCache
from devicegate.server.log_rows import Row
from devicegate.server.metrics import Cell, Metrics
from devicegate.server.trust import ProxyTrust
from devicegate.sources.inputs import Inputs
from devicegate.store import Store
from devicegate.store.records import seen_json

log = logging.getLogger("devicegate.server")

SIGHTING_CACHE_MAX = 100_000
DETAIL_CACHE_MAX = 100_000
#: distinct devices of one user an SMTP decision considers (`--postfix-match any`)
SIGHTINGS_CONSIDERED = 20
SightingKey = tuple[str, str, Signals]
#: seconds: the least time between two sightings of one device when the user switches devices
SWITCH_FLOOR = 1.0


@dataclass(slots=True, eq=False)
class Prepared:
    """One decision with everything needed to log it again without deciding again.

    A server may *replay* it for an identical request while the snapshot, the device-state
    generation and the policy segment (`valid_from`..`valid_until`) are unchanged — on the
    wall clock, which may step back as well as forward: the engine would return
    the same Decision object then (its caches are keyed the same way), so a replay differs
    from deciding only in the work it skips. Every replay is logged and counted like a
    decision."""

    decision: Decision
    tid: int  # template id in the decision log: `row` and `sighting` are sent once
    row: Row  # the decision row from `user` on (rows.DECISION_COLUMNS)
    sighting: Row | None  # the sighting row from `user` on; None: this adapter records none
    sighting_key: tuple[str, str, Signals] | None
    sighting_due: float  # epoch seconds: the next replay to record a sighting
    cell: Cell
    replays: Cell  # the adapter's count of replayed decisions
    snapshot: Snapshot
    generation: int
    valid_until: float  # epoch seconds; -inf: never replay (a decision for a given time)
    valid_from: float  # epoch seconds: the segment's start (a clock stepped back leaves it)


class Kept(Protocol):
    """An answer an endpoint keeps for replay (`forward_auth_endpoint.Answer`,
    `dovecot_endpoint.Answer`)."""

    @property
    def prepared(self) -> Prepared: ...


KeptT = TypeVar("KeptT", bound=Kept)


class ServerService:
    """Implements `devicegate.adapters.base.DecisionService` over the cache and the log."""

    def __init__(
        self, config: ServerConfig, inputs: Inputs, store: Store, metrics: Metrics
    ) -> None:
        self.config = config
        self.inputs = inputs
        inputs.on_change = self.adopt
        metrics.watch_sources(inputs.metrics)
        snapshot = inputs.compile()
        self._snapshot = snapshot
        self.store = store
        self.metrics = metrics
        self.trust = ProxyTrust(config.trusted_proxies, config.proxy_secret)
        #: the forward-auth headers, with X-Forwarded-For walked past these trusted proxies
        self.headers = replace(config.headers, trusted=self.trust.address_trusted)
        self.state = StateCache(
            store, refresh=config.state_refresh, on_failure=metrics.state_failures.inc
        )
        # request ids: unique per process start, then a counter (uuid4 per request costs more
        # than the decision)
        self.log = DecisionLog(
            store,
            id_prefix=uuid.uuid4().hex[:16] + "-",
            ack=config.log_ack,
            on_batch=metrics.batch,
            on_failure=metrics.log_failures.inc,
            on_lost=metrics.log_lost.inc,
        )
        metrics.log_pending.set_function(lambda: float(self.log.pending))
        self._seen: BoundedCache[SightingKey, float] = BoundedCache(SIGHTING_CACHE_MAX)
        # user (lower case) → (time, adapter, signals, key) of this server's newest sighting
        self._latest: BoundedCache[str, tuple[float, str, Signals, SightingKey]] = BoundedCache(
            SIGHTING_CACHE_MAX
        )
        self._details: BoundedCache[tuple[object, ...], tuple[Decision, str]] = BoundedCache(
            DETAIL_CACHE_MAX
        )
        self._counter = 0
        self._tids = itertools.count(1)
        # template id by content: a decision made again with the same outcome (after a hold
        # or release elsewhere ended every replay) reuses its template instead of sending
        # the writer another copy (each copy is kept there until TEMPLATES_MAX)
        self._template_ids: BoundedCache[tuple[Row, Row | None], int] = BoundedCache(TEMPLATES_MAX)
        self._kept: list[BoundedCache[Any, Any]] = []
        self._publish(snapshot)

    def answer_cache(self, size: int) -> BoundedCache[Any, Any]:
        """A cache of answers kept for replay (an endpoint's). Each answer names the snapshot
        it was decided under, and a new snapshot ends every replay: `adopt` empties these
        caches, or each replaced snapshot — its compiled policy, directory and identification
        memo — would live on until the cache holding its last answer filled up."""
        cache: BoundedCache[Any, Any] = BoundedCache(size)
        self._kept.append(cache)
        return cache

    # ---- DecisionService -----------------------------------------------------------------
    @property
    def snapshot(self) -> Snapshot:
        return self._snapshot

    def decide(
        self,
        user: str,
        resource: str,
        signals: Signals,
        *,
        adapter: Adapter,
        at: datetime | None = None,
    ) -> Decision:
        return self.prepare(user, resource, signals, adapter=adapter, at=at)[0].decision

    def prepare(
        self,
        user: str,
        resource: str,
        signals: Signals,
        *,
        adapter: Adapter,
        at: datetime | None = None,
        basis: str | None = None,
        evidence: bool = True,
    ) -> tuple[Prepared, Batch]:
        """Decide, apply the effects (quarantine hold), log; return what a replay needs and
        the log batch to await before answering. `basis` says where the signals came from
        when the request carried none (Postfix: the sighting used); it is logged.

        `user` is the name the proxy or mail server authenticated; decisions and sightings
        record the directory user it stands for (`Snapshot.canonical_user`). With
        `evidence=False` (a user name nobody has verified yet: the Basic name of an
        ActiveSync request, which the backend checks only after this answer) the decision is
        made and logged, but nothing is recorded as evidence — no sighting, no hold."""
        snapshot = self._snapshot  # one read: a reload mid-request cannot mix snapshots
        generation = self.state.generation  # before a hold this decision may add
        now = time.time()
        when = at if at is not None else datetime.fromtimestamp(now, UTC)
        ts = when.timestamp()
        canonical, unbound, profile, state, decision = self._judge(
            snapshot, user, resource, signals, when
        )
        if log.isEnabledFor(logging.DEBUG):  # one line a decision, for any adapter
            log.debug(
                "%s: %s on %s -> %s (%s)",
                adapter.name,
                canonical,
                resource,
                decision.action.value,
                decision.rule or "default",
            )
        if (
            evidence
            and decision.action is Action.QUARANTINE
            and decision.rule is not None
            and not decision.rule.startswith("builtin:")
            and profile.keys
            and resource not in state.held
        ):
            self._hold(canonical, resource, decision, state, signals)
        device = decision.device
        notes = {
            "directory_version": snapshot.directory_version or None,
            "inventory_version": snapshot.inventory_version or None,
            "presented": user if user != canonical else None,
            "user_verified": None if evidence else False,
            "binding": unbound,
            "basis": basis,
        }
        row = (
            canonical,
            resource,
            adapter.name,
            decision.action.value,
            decision.rule,
            decision.policy_version,
            state.device_ref,
            device.vendor,
            device.platform,
            self._detail(decision, signals, notes),
        )
        sighting: Row | None = None
        sighting_key = None
        if evidence and profile.identified and adapter.carries_device_data:
            # SMTP reuses an earlier sighting: recording it again would keep a user "seen"
            # on a device for as long as they send mail. A request that identifies no device
            # is no sighting: it must never hide one that did (docs/mail.md).
            sighting_key = (canonical.lower(), adapter.name, signals)
            signals_text = json.dumps(signals_json(signals), ensure_ascii=False)
            sighting = (
                canonical,
                resource,
                adapter.name,
                state.device_ref,
                device.vendor,
                device.platform,
                signals_text,
            )
        tid = self._template_ids.get((row, sighting))
        if tid is None:
            tid = next(self._tids)
            self._template_ids.put((row, sighting), tid)
        prepared = Prepared(
            decision=decision,
            tid=tid,
            row=row,
            sighting=sighting,
            sighting_key=sighting_key,
            sighting_due=0.0,
            cell=self.metrics.requests.cell(
                decision.action.value, decision.rule or "default", resource, adapter.name
            ),
            replays=self.metrics.requests.replay_cell(adapter.name),
            snapshot=snapshot,
            generation=generation,
            valid_until=snapshot.valid_until(canonical, ts) if at is None else -math.inf,
            valid_from=snapshot.valid_from(canonical, ts),
        )
        return prepared, self._append(prepared, ts, now)

    def check(
        self, user: str, resource: str, signals: Signals, *, at: datetime | None = None
    ) -> Decision:
        """What `prepare` would decide, with nothing recorded: no log row, no sighting, no
        hold (`/v1/check`, and the candidates of an SMTP decision)."""
        when = at if at is not None else datetime.now(UTC)
        return self._judge(self._snapshot, user, resource, signals, when)[4]

    def _judge(
        self, snapshot: Snapshot, user: str, resource: str, signals: Signals, when: datetime
    ) -> tuple[str, str | None, DeviceProfile, DeviceState, Decision]:
        """The decision and what it was made from: the canonical user, what binding set
        aside, the device profile and the device state."""
        canonical = snapshot.canonical_user(user)
        bound, unbound = bind_signals(snapshot, canonical, signals)
        profile = snapshot.identifier.profile(bound)
        state = self.state.get(profile.keys, canonical)
        decision = decide(snapshot, Request(canonical, resource, when, bound, profile), state)
        return canonical, unbound, profile, state, decision

    def replay_if_valid(self, prepared: Prepared, now: float) -> Batch | None:
        """Log (and count) one more request answered by `prepared` if it still holds — same
        snapshot, same device-state generation, same policy segment — and return the batch
        to await; None when it must be decided again."""
        if (
            prepared.snapshot is self._snapshot
            and prepared.generation == self.state.generation
            and prepared.valid_from <= now < prepared.valid_until
        ):
            prepared.replays.value += 1
            return self._append(prepared, now, now)
        return None

    def replay_kept(self, kept: KeptT | None) -> tuple[KeptT, Batch] | None:
        """`replay_if_valid` for an answer a hot path kept under its request values (None
        when there is none or it no longer holds): the answer and the batch to await."""
        if kept is None:
            return None
        batch = self.replay_if_valid(kept.prepared, time.time())
        return None if batch is None else (kept, batch)

    def _append(self, prepared: Prepared, at: float, now: float) -> Batch:
        self._counter += 1
        prepared.cell.value += 1
        with_sighting = False
        key = prepared.sighting_key
        if key is not None:
            latest = self._latest.get(key[0])
            # Recorded at most once a `sighting_interval` per (user, adapter, signals) — unless
            # another device of the user was recorded since: then this one is the newest again,
            # and SMTP's `newest` match must see that (at most once a second per device, so
            # two devices in turn cannot write a row a request).
            # (`is` first: a replay brings the very key it was recorded under)
            switched = latest is not None and latest[3] is not key and latest[3] != key
            if now >= prepared.sighting_due or switched:
                last = self._seen.get(key)
                if (
                    last is None
                    or now - last >= self.config.sighting_interval
                    or (switched and now - last >= SWITCH_FLOOR)
                ):
                    with_sighting = True
                    self._seen.put(key, now)
                    self._latest.put(key[0], (now, key[1], key[2], key))
                    last = now
                prepared.sighting_due = last + self.config.sighting_interval
        return self.log.append(
            (self._counter, at, now, prepared.tid, with_sighting),
            (prepared.row, prepared.sighting),
        )

    def recent_sightings(
        self, user: str, *, window: timedelta, limit: int = SIGHTINGS_CONSIDERED
    ) -> list[Sighting]:
        """The user's distinct identified devices seen within `window`, newest first: from
        the store (every server's), with this server's own newest sighting added — it may
        not be committed yet (`--log-ack buffered`, or a batch still in flight)."""
        snapshot = self._snapshot
        identify = snapshot.identifier.profile
        name = snapshot.canonical_user(user)
        found: list[Sighting] = []
        seen: set[Signals] = set()
        own = self._latest.get(name.lower())
        if own is not None and time.time() - own[0] <= window.total_seconds():
            found.append(
                Sighting(datetime.fromtimestamp(own[0], UTC), own[1], own[2], identify(own[2]))
            )
            seen.add(own[2])
        for row in self.store.recent_devices(name, since=window, limit=limit):
            signals = signals_from_json(dict(row["signals"]))
            if signals in seen:
                continue
            seen.add(signals)
            found.append(Sighting(row["at"], row["adapter"], signals, identify(signals)))
        found.sort(key=lambda s: s.at, reverse=True)
        return found[:limit]

    def recent_sighting(self, user: str, *, window: timedelta) -> Sighting | None:
        """The newest identified sighting of `user` within `window`, if any."""
        found = self.recent_sightings(user, window=window, limit=1)
        return found[0] if found else None

    def seen_at(self, user: str) -> float | None:
        """When this server last recorded a sighting of `user` (epoch seconds), if it did
        (and has not since forgotten it): lets a short-lived cache of `recent_sighting`
        notice a newer sighting at once (the Postfix policy service)."""
        own = self._latest.get(self._snapshot.canonical_user(user).lower())
        return None if own is None else own[0]

    async def durable(self) -> None:
        """Wait until every decision made so far is committed (raises `LogUnavailable`):
        for callers that decide outside a server's own paths (tests, scripts); the
        protocols use `DecisionLog.answer_now`."""
        await self.log.wait(self.log.latest)

    # ---- effects -----------------------------------------------------------------------------
    def _hold(
        self,
        user: str,
        resource: str,
        decision: Decision,
        state: DeviceState,
        signals: Signals,
    ) -> None:
        """Quarantine what this request showed, until an operator releases it: the inventory
        device when the request's link to it holds for this user, else only what this user
        was seen presenting (`binding.hold_keys`)."""
        profile = decision.device
        keys = hold_keys(self._snapshot, user, signals, profile)
        if not keys:
            return
        seen = seen_json(signals, profile)
        try:
            ref = self.store.hold(
                keys,
                resource=resource,
                rule=decision.rule,
                reason=decision.message,
                user=user,
                seen=seen,
                created_by=f"devicegate serve ({self.log.id_prefix.rstrip('-')})",
            )
        except Exception as exc:  # the decision stands (quarantine); the hold is retried next time
            log.error("could not record quarantine hold for %s: %s", user, exc)
            return
        self.metrics.holds.inc()
        log.info("quarantine hold on %s (%s) for %s by rule %s", ref, user, resource, decision.rule)
        self.state.put(
            keys,
            DeviceState(
                compromised=state.compromised,
                verdict=state.verdict,
                held=state.held | {resource},
                device_ref=ref,
            ),
        )

    def _detail(
        self, decision: Decision, signals: Signals, notes: Mapping[str, object | None]
    ) -> str:
        """The decision's explanation as JSON, cached: the engine hands out the same Decision
        object for equal inputs, so most requests reuse a string built once. `notes` (how the
        user was presented, whether it was verified, what was set aside, where inferred
        signals came from) are kept when they say something."""
        key = (id(decision), signals, signals.client_ip, *notes.values())
        hit = self._details.get(key)
        if hit is not None and hit[0] is decision:
            return hit[1]
        detail = json.dumps(
            {
                "message": decision.message,
                "matched": [h.rule for h in decision.matched],
                "report_only": [h.rule for h in decision.report_only],
                "excepted": list(decision.excepted),
                "spoofing_suspected": decision.spoofing_suspected,
                "keys": [list(k) for k in decision.device.keys],
                "signals": signals_json(signals),
                **{name: value for name, value in notes.items() if value is not None},
            },
            ensure_ascii=False,
        )
        self._details.put(key, (decision, detail))
        return detail

    # ---- reload -------------------------------------------------------------------------------
    def reload(self) -> Snapshot:
        """Load and compile the configured files once they have stopped changing (an editor
        or a deployment may still be writing them: `policy.settled`); swap only when that
        fully succeeded."""
        try:
            snapshot = self.inputs.reload()
        except Exception:
            self.metrics.reload_failures.inc()
            raise
        self.metrics.reloads.inc()
        self.adopt(snapshot)
        return snapshot

    def adopt(self, snapshot: Snapshot) -> None:
        """Serve `snapshot` from the next request on: one reference assignment, so every
        request sees the old snapshot or the new one, never a mix (a reload, or a new
        version of a directory or inventory source)."""
        self._snapshot = snapshot
        self._seen.clear()
        self._details.clear()
        for cache in self._kept:
            cache.clear()
        self._publish(snapshot)

    def _publish(self, snapshot: Snapshot) -> None:
        summary = snapshot.summary()
        self.metrics.policy.info({"version": snapshot.version})
        self.metrics.policy_rules.set(float(summary["rules"]))  # type: ignore[arg-type]
