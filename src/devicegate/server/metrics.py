"""Prometheus metrics, all named `devicegate_…`, on a registry per server instance.

A registry per instance (not the global default) lets tests run several apps in one process.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)


class Metrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.decisions = Counter(
            "devicegate_decisions",
            "Decisions by action, deciding rule, resource and adapter.",
            ["action", "rule", "resource", "adapter"],
            registry=r,
        )
        self.latency = Histogram(
            "devicegate_decision_seconds",
            "Time from request to durable acknowledgement, per adapter.",
            ["adapter"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.bad_requests = Counter(
            "devicegate_bad_requests",
            "Requests refused as malformed (4xx), per adapter.",
            ["adapter", "status"],
            registry=r,
        )
        self.policy = Info("devicegate_policy", "The policy version in force.", registry=r)
        self.policy_rules = Gauge("devicegate_policy_rules", "Rules in force.", registry=r)
        self.reloads = Counter("devicegate_policy_reloads", "Successful reloads.", registry=r)
        self.reload_failures = Counter(
            "devicegate_policy_reload_failures",
            "Reloads refused (invalid policy); the old policy kept serving.",
            registry=r,
        )
        self.log_batches = Histogram(
            "devicegate_log_batch_size",
            "Records per decision-log commit.",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
            registry=r,
        )
        self.log_commit = Histogram(
            "devicegate_log_commit_seconds",
            "Time of one decision-log commit.",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.log_failures = Counter(
            "devicegate_log_write_failures",
            "Decision-log batches that failed to commit (their requests got 503).",
            registry=r,
        )
        self.state_failures = Counter(
            "devicegate_state_refresh_failures",
            "Failed reloads of the device-state cache (the last good state stays).",
            registry=r,
        )
        self.state_devices = Gauge(
            "devicegate_state_keys", "Identifiers of restricted devices in the cache.", registry=r
        )
        self.holds = Counter(
            "devicegate_quarantine_holds", "Devices put in quarantine by a rule.", registry=r
        )

    def batch(self, size: int, seconds: float) -> None:
        self.log_batches.observe(size)
        self.log_commit.observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
