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

`reload()` compiles the new policy off to the side and swaps one reference: requests see the
old snapshot or the new one, never a mix. An invalid policy raises and the old one stays.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol, TypeVar

from devicegate.adapters.base import INFERRING_ADAPTERS, Sighting
from devicegate.model import SIGNAL_FIELDS, Action, Decision, DeviceState, Request, Signals
from devicegate.policy import Snapshot, decide
from devicegate.serialize import signals_from_json
from devicegate.server.config import ServerConfig
from devicegate.server.declog import Batch, DecisionLog
from devicegate.server.metrics import Cell, Metrics
from devicegate.server.rows import Row
from devicegate.server.state import StateCache
from devicegate.store import Store

log = logging.getLogger("devicegate.server")

SIGHTING_CACHE_MAX = 100_000
DETAIL_CACHE_MAX = 100_000


def load_configured_snapshot(config: ServerConfig) -> Snapshot:
    from devicegate.cli.common import load_snapshot

    return load_snapshot(list(config.policy), config.directory, config.devices, quiet=True)


def _signals_dict(signals: Signals) -> dict[str, str]:
    return {
        name: value for name in SIGNAL_FIELDS if (value := getattr(signals, name)) not in (None, "")
    }


@dataclass(slots=True, eq=False)
class Prepared:
    """One decision with everything needed to log it again without deciding again.

    A server may *replay* it for an identical request while the snapshot, the device-state
    generation and the policy segment (`valid_until`) are unchanged: the engine would return
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
    snapshot: Snapshot
    generation: int
    valid_until: float  # epoch seconds; -inf: never replay (a decision for a given time)


class Kept(Protocol):
    """An answer a hot path keeps for replay (`hotpath.Answer`, `mailpath.Answer`)."""

    @property
    def prepared(self) -> Prepared: ...


KeptT = TypeVar("KeptT", bound=Kept)


class ServerService:
    """Implements `devicegate.adapters.base.DecisionService` over the cache and the log."""

    def __init__(
        self, config: ServerConfig, snapshot: Snapshot, store: Store, metrics: Metrics
    ) -> None:
        self.config = config
        self._snapshot = snapshot
        self.store = store
        self.metrics = metrics
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
        )
        metrics.log_pending.set_function(lambda: float(self.log.pending))
        self._seen: dict[tuple[str, str, Signals], float] = {}
        # user (lower case) → (time, adapter, signals) of this server's newest sighting
        self._latest: dict[str, tuple[float, str, Signals]] = {}
        self._details: dict[tuple[int, Signals, str | None, str | None], tuple[Decision, str]] = {}
        self._counter = 0
        self._tids = itertools.count(1)
        self._publish(snapshot)

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
        adapter: str,
        at: datetime | None = None,
    ) -> Decision:
        return self.prepare(user, resource, signals, adapter=adapter, at=at)[0].decision

    def prepare(
        self,
        user: str,
        resource: str,
        signals: Signals,
        *,
        adapter: str,
        at: datetime | None = None,
        basis: str | None = None,
    ) -> tuple[Prepared, Batch]:
        """Decide, apply the effects (quarantine hold), log; return what a replay needs and
        the log batch to await before answering. `basis` says where the signals came from
        when the request carried none (Postfix: the sighting used); it is logged."""
        snapshot = self._snapshot  # one read: a reload mid-request cannot mix snapshots
        generation = self.state.generation  # before a hold this decision may add
        now = time.time()
        when = at if at is not None else datetime.fromtimestamp(now, UTC)
        ts = when.timestamp()
        profile = snapshot.identifier.profile(signals)
        state = self.state.get(profile.keys) if profile.keys else self.state.get(())
        decision = decide(snapshot, Request(user, resource, when, signals, profile), state)
        if (
            decision.action is Action.QUARANTINE
            and decision.rule is not None
            and not decision.rule.startswith("builtin:")
            and profile.keys
            and resource not in state.held
        ):
            self._hold(user, resource, decision, state)
        device = decision.device
        row = (
            user,
            resource,
            adapter,
            decision.action.value,
            decision.rule,
            decision.policy_version,
            state.device_ref,
            device.vendor,
            device.platform,
            self._detail(decision, signals, basis),
        )
        sighting: Row | None = None
        sighting_key = None
        if not (signals.is_empty() or adapter in INFERRING_ADAPTERS):
            # SMTP reuses an earlier sighting: recording it again would keep a user "seen"
            # on a device for as long as they send mail.
            sighting_key = (user.lower(), adapter, signals)
            signals_json = json.dumps(_signals_dict(signals), ensure_ascii=False)
            sighting = (
                user,
                resource,
                adapter,
                state.device_ref,
                device.vendor,
                device.platform,
                signals_json,
            )
        prepared = Prepared(
            decision=decision,
            tid=next(self._tids),
            row=row,
            sighting=sighting,
            sighting_key=sighting_key,
            sighting_due=0.0,
            cell=self.metrics.requests.cell(
                decision.action.value, decision.rule or "default", resource, adapter
            ),
            snapshot=snapshot,
            generation=generation,
            valid_until=snapshot.valid_until(user, ts) if at is None else -math.inf,
        )
        return prepared, self._append(prepared, ts, now)

    def replay_if_valid(self, prepared: Prepared, now: float) -> Batch | None:
        """Log (and count) one more request answered by `prepared` if it still holds — same
        snapshot, same device-state generation, same policy segment — and return the batch
        to await; None when it must be decided again."""
        if (
            prepared.snapshot is self._snapshot
            and prepared.generation == self.state.generation
            and now < prepared.valid_until
        ):
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
        if prepared.sighting is not None and now >= prepared.sighting_due:
            key = prepared.sighting_key
            last = self._seen.get(key) if key is not None else None
            if last is None or now - last >= self.config.sighting_interval:
                with_sighting = True
                if len(self._seen) >= SIGHTING_CACHE_MAX:
                    self._seen.clear()
                    self._latest.clear()
                if key is not None:
                    self._seen[key] = last = now
                    self._latest[key[0]] = (now, key[1], key[2])
            prepared.sighting_due = (last or now) + self.config.sighting_interval
        return self.log.append(
            (self._counter, at, now, prepared.tid, with_sighting),
            (prepared.row, prepared.sighting),
        )

    def recent_sighting(self, user: str, *, window: timedelta) -> Sighting | None:
        """The newest sighting of `user` within `window`: from the store (every server's),
        or this server's own newest if that is newer — it may not be committed yet (with
        `--log-ack buffered`, or a batch still in flight)."""
        identify = self._snapshot.identifier.profile
        found: Sighting | None = None
        rows = self.store.recent_sightings(user, since=window, limit=1)
        if rows:
            row = rows[0]
            signals = signals_from_json(dict(row["signals"]))
            found = Sighting(row["at"], row["adapter"], signals, identify(signals))
        own = self._latest.get(user.lower())
        if own is not None and time.time() - own[0] <= window.total_seconds():
            at = datetime.fromtimestamp(own[0], UTC)
            if found is None or at > found.at:
                found = Sighting(at, own[1], own[2], identify(own[2]))
        return found

    def seen_at(self, user: str) -> float | None:
        """When this server last recorded a sighting of `user` (epoch seconds), if it did
        (and has not since forgotten it): lets a short-lived cache of `recent_sighting`
        notice a newer sighting at once (the Postfix policy service)."""
        own = self._latest.get(user.lower())
        return None if own is None else own[0]

    async def durable(self) -> None:
        """Wait until every decision made so far is committed (raises `LogUnavailable`):
        for callers that decide outside a server's own paths (tests, scripts); the
        protocols use `DecisionLog.answer_now`."""
        await self.log.wait(self.log.latest)

    # ---- effects -----------------------------------------------------------------------------
    def _hold(self, user: str, resource: str, decision: Decision, state: DeviceState) -> None:
        keys = decision.device.keys
        try:
            ref = self.store.hold(
                keys, resource=resource, rule=decision.rule, reason=decision.message, user=user
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

    def _detail(self, decision: Decision, signals: Signals, basis: str | None = None) -> str:
        """The decision's explanation as JSON, cached: the engine hands out the same Decision
        object for equal inputs, so most requests reuse a string built once."""
        key = (id(decision), signals, signals.client_ip, basis)
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
                "signals": _signals_dict(signals),
                **({"basis": basis} if basis else {}),
            },
            ensure_ascii=False,
        )
        if len(self._details) >= DETAIL_CACHE_MAX:
            self._details.clear()
        self._details[key] = (decision, detail)
        return detail

    # ---- reload -------------------------------------------------------------------------------
    def reload(self) -> Snapshot:
        """Load and compile the configured files; swap only when that fully succeeded."""
        try:
            snapshot = load_configured_snapshot(self.config)
        except Exception:
            self.metrics.reload_failures.inc()
            raise
        self._snapshot = snapshot
        self._seen.clear()
        self._details.clear()
        self.metrics.reloads.inc()
        self._publish(snapshot)
        return snapshot

    def _publish(self, snapshot: Snapshot) -> None:
        summary = snapshot.summary()
        self.metrics.policy.info(
            {"version": snapshot.version, "files": ",".join(str(f) for f in snapshot.loaded.files)}
        )
        self.metrics.policy_rules.set(float(summary["rules"]))  # type: ignore[arg-type]
