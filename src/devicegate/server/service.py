"""`ServerService`: the `DecisionService` behind `devicegate serve`.

Per request: identify (cached per distinct Signals by the snapshot's Identifier), look the
device up in the in-memory state cache (no store query), decide with the one engine, queue
the decision (and a sighting, at most one per user/signals/adapter per `sighting_interval`)
for the batching log writer. The caller acknowledges only after `await log.wait(seq)`.

A rule whose effect is `quarantine` also puts the device on hold in the store (synchronously:
the hold is durable before the answer), so it stays blocked on every server until an operator
releases it. The built-in compromised/held rules never create holds: their state already is one.

`reload()` compiles the new policy off to the side and swaps one reference: requests see the
old snapshot or the new one, never a mix. An invalid policy raises and the old one stays.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from devicegate.adapters.base import INFERRING_ADAPTERS, Sighting
from devicegate.model import SIGNAL_FIELDS, Action, Decision, DeviceState, Request, Signals
from devicegate.policy import Snapshot, decide
from devicegate.serialize import signals_from_json
from devicegate.server.config import ServerConfig
from devicegate.server.declog import DecisionLog
from devicegate.server.metrics import Metrics
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
        self.log = DecisionLog(
            store,
            batch_max=config.batch_max,
            on_batch=metrics.batch,
            on_failure=metrics.log_failures.inc,
        )
        self._seen: dict[tuple[str, str, Signals], float] = {}
        self._details: dict[tuple[int, Signals], tuple[Decision, str]] = {}
        self._counters: dict[tuple[str, str, str, str], Any] = {}
        # request ids: unique per process start, then a counter (uuid4 per request costs more
        # than the decision)
        self._id_prefix = uuid.uuid4().hex[:16] + "-"
        self._counter = 0
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
        snapshot = self._snapshot  # one read: a reload mid-request cannot mix snapshots
        now = datetime.now(UTC)
        at = at or now
        profile = snapshot.identifier.profile(signals)
        state = self.state.get(profile.keys) if profile.keys else self.state.get(())
        decision = decide(snapshot, Request(user, resource, at, signals, profile), state)
        if (
            decision.action is Action.QUARANTINE
            and decision.rule is not None
            and not decision.rule.startswith("builtin:")
            and profile.keys
            and resource not in state.held
        ):
            self._hold(user, resource, decision, state)
        self.log.append(
            self._sighting(now, user, resource, adapter, signals, decision, state),
            self._decision_row(at, user, resource, adapter, signals, decision, state),
        )
        self._count(decision, resource, adapter)
        return decision

    def recent_sighting(self, user: str, *, window: timedelta) -> Sighting | None:
        rows = self.store.recent_sightings(user, since=window, limit=1)
        if not rows:
            return None
        row = rows[0]
        signals = signals_from_json(dict(row["signals"]))
        return Sighting(
            row["at"], row["adapter"], signals, self._snapshot.identifier.profile(signals)
        )

    async def durable(self) -> None:
        """Wait until every decision made so far is committed (raises `LogUnavailable`).

        For adapters that answer on their own sockets (the Postfix policy server): call it
        after `decide` and before writing the answer, as the HTTP routes do."""
        await self.log.wait(self.log.last_seq)

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

    def _sighting(
        self,
        now: datetime,
        user: str,
        resource: str,
        adapter: str,
        signals: Signals,
        decision: Decision,
        state: DeviceState,
    ) -> Row | None:
        if signals.is_empty() or adapter in INFERRING_ADAPTERS:
            # SMTP reuses an earlier sighting: recording it again would keep a user "seen"
            # on a device for as long as they send mail.
            return None
        key = (user.lower(), adapter, signals)
        clock = time.monotonic()
        last = self._seen.get(key)
        if last is not None and clock - last < self.config.sighting_interval:
            return None
        if len(self._seen) >= SIGHTING_CACHE_MAX:
            self._seen.clear()
        self._seen[key] = clock
        device = decision.device
        signals_json = json.dumps(_signals_dict(signals), ensure_ascii=False)
        return (
            now,
            user,
            resource,
            adapter,
            state.device_ref,
            device.vendor,
            device.platform,
            signals_json,
        )

    def _detail(self, decision: Decision, signals: Signals) -> str:
        """The decision's explanation as JSON, cached: the engine hands out the same Decision
        object for equal inputs, so most requests reuse a string built once."""
        key = (id(decision), signals)
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
            },
            ensure_ascii=False,
        )
        if len(self._details) >= DETAIL_CACHE_MAX:
            self._details.clear()
        self._details[key] = (decision, detail)
        return detail

    def _decision_row(
        self,
        at: datetime,
        user: str,
        resource: str,
        adapter: str,
        signals: Signals,
        decision: Decision,
        state: DeviceState,
    ) -> Row:
        self._counter += 1
        device = decision.device
        return (
            f"{self._id_prefix}{self._counter:x}",
            at,
            user,
            resource,
            adapter,
            decision.action.value,
            decision.rule,
            decision.policy_version,
            state.device_ref,
            device.vendor,
            device.platform,
            self._detail(decision, signals),
        )

    def _count(self, decision: Decision, resource: str, adapter: str) -> None:
        key = (decision.action.value, decision.rule or "default", resource, adapter)
        child = self._counters.get(key)
        if child is None:
            child = self._counters[key] = self.metrics.decisions.labels(*key)
        child.inc()

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
