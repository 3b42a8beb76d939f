"""A policy file replaced while it is being reloaded: deleted, truncated to invalid YAML,
written in place while the reload reads it, a symlink swapped. The old policy keeps serving
until a good file loads, and a reload reads a file only once it has stopped changing
(`devicegate.policy.settled`)."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import httpx
import pytest

from devicegate.policy.settled import FileUnsettled, load_settled
from tests.faults.population import IPHONE_SAFARI, ops, policy_text, write_world
from tests.server import procs

pytestmark = [pytest.mark.integration]

APPLE_WEB = {"X-Devicegate-User": ops(0), "User-Agent": IPHONE_SAFARI.format(5, 5)}


def serving(client: httpx.Client) -> str:
    """The version in force, after checking the policy still blocks what it must."""
    assert client.get("/v1/forward-auth/web", headers=APPLE_WEB).status_code == 403
    return str(client.get("/healthz").json()["policy_version"])


def reload(client: httpx.Client, server: procs.Devicegate) -> httpx.Response:
    return client.post("/v1/admin/reload", headers=server.admin(), timeout=60)


def version_of(tmp: Path, text: str) -> str:
    from devicegate.policy.load import load_policy

    path = tmp / f"probe-{time.monotonic_ns()}.yaml"
    path.write_text(text)
    return load_policy([path]).version


def write_in_place(path: Path, text: str, *, chunk: int, pause: float) -> None:
    """What an editor that saves in place does, slowly: truncate, then write in pieces."""
    with path.open("r+b") as handle:
        handle.truncate(0)
        data = text.encode()
        for start in range(0, len(data), chunk):
            handle.write(data[start : start + chunk])
            handle.flush()
            os.fsync(handle.fileno())
            time.sleep(pause)


@pytest.fixture
def world(tmp_path: Path) -> tuple[Path, Path]:
    return write_world(tmp_path / "world", users=4)


def test_deleted_and_invalid_files_keep_the_old_policy(
    tmp_path: Path, world: tuple[Path, Path]
) -> None:
    policy, directory = world
    with (
        procs.devicegate(tmp_path, policy, directory, f"sqlite:///{tmp_path}/s.db") as server,
        server.client() as client,
    ):
        old = serving(client)
        policy.unlink()
        refused = reload(client, server)
        assert refused.status_code == 422 and refused.json()["policy_version"] == old
        assert serving(client) == old
        policy.write_text("version: 1\nrules: [\n")  # truncated: not YAML
        assert reload(client, server).status_code == 422
        assert serving(client) == old
        policy.write_text(policy_text(marker=1)[:-40])  # cut inside a rule: invalid policy
        assert reload(client, server).status_code == 422
        assert serving(client) == old
        good = policy_text(marker=2)
        policy.write_text(good)
        loaded = reload(client, server)
        assert loaded.status_code == 200
        assert serving(client) == loaded.json()["policy_version"] == version_of(tmp_path, good)
    assert "policy reload refused" in server.output()


def test_a_file_written_in_place_during_the_reload_loads_whole(
    tmp_path: Path, world: tuple[Path, Path]
) -> None:
    """The reload begins while the file is half written; every prefix cut at a rule boundary
    is a valid policy of its own, so only waiting for the writes to stop gets the right one."""
    policy, directory = world
    new = policy_text(marker=3) + "".join(
        f"  - id: extra-{n}\n    scope: {{units: [corp/nobody]}}\n    when: {{vendor: [Apple]}}\n"
        f"    resources: [web]\n    from: 2020-01-01\n    effect: block\n    message: extra {n}\n"
        for n in range(8)
    )
    with (
        procs.devicegate(tmp_path, policy, directory, f"sqlite:///{tmp_path}/s.db") as server,
        server.client() as client,
    ):
        old = serving(client)
        writer = threading.Thread(
            target=write_in_place, args=(policy, new), kwargs={"chunk": 120, "pause": 0.1}
        )
        writer.start()
        time.sleep(0.15)  # the first pieces are in: the file is a valid, shorter policy
        answer = reload(client, server)
        writer.join()
        assert answer.status_code == 200, answer.text
        assert answer.json()["previous"] == old
        assert answer.json()["policy_version"] == version_of(tmp_path, new)
        assert answer.json()["rules"] == 11


def test_symlink_swaps(tmp_path: Path, world: tuple[Path, Path]) -> None:
    """The policy path is a symlink (a deployment's `current` link): swapped to a dangling
    target the old policy keeps serving; swapped during the reload, the newest target loads."""
    real, directory = world
    link = tmp_path / "current.yaml"
    link.symlink_to(real)
    with (
        procs.devicegate(tmp_path, link, directory, f"sqlite:///{tmp_path}/s.db") as server,
        server.client() as client,
    ):
        old = serving(client)

        def swap(target: Path) -> None:  # atomically, as `ln -sfn` + rename does
            tmp_link = tmp_path / "current.tmp"
            tmp_link.symlink_to(target)
            tmp_link.replace(link)

        swap(tmp_path / "missing.yaml")
        assert reload(client, server).status_code == 422
        assert serving(client) == old
        first, second = tmp_path / "v4.yaml", tmp_path / "v5.yaml"
        first.write_text(policy_text(marker=4))
        second.write_text(policy_text(marker=5))
        swap(first)
        later = threading.Timer(0.2, swap, args=(second,))  # inside the settle interval
        later.start()
        answer = reload(client, server)
        later.join()
        assert answer.status_code == 200
        assert answer.json()["policy_version"] == version_of(tmp_path, policy_text(marker=5))
        assert serving(client) == answer.json()["policy_version"]


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.calls: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.calls.append(seconds)
        self.now += seconds

    def __call__(self) -> float:
        return self.now


def test_load_settled_waits_for_a_file_that_keeps_changing(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("a")
    clock = FakeClock()
    writes = iter(["ab", "abc"])

    def sleep(seconds: float) -> None:
        clock.sleep(seconds)
        text = next(writes, None)
        if text is not None:  # the file changes during the first two intervals
            path.write_text(text)

    loaded = load_settled(path.read_text, [path], settle=0.5, sleep=sleep, clock=clock)
    assert loaded == "abc" and clock.calls == [0.5, 0.5, 0.5]


def test_load_settled_rereads_a_file_changed_during_the_load(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("old")
    clock = FakeClock()
    reads: list[str] = []

    def load() -> str:
        reads.append(path.read_text())
        if len(reads) == 1:
            path.write_text("new, longer")  # written while the first load read it
        return reads[-1]

    assert load_settled(load, [path], sleep=clock.sleep, clock=clock) == "new, longer"
    assert reads == ["old", "new, longer"]


def test_load_settled_gives_up_on_a_file_that_never_settles(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("0")
    clock = FakeClock()

    def sleep(seconds: float) -> None:
        clock.sleep(seconds)
        path.write_text(str(clock.now))

    with pytest.raises(FileUnsettled, match="kept changing"):
        load_settled(path.read_text, [path], timeout=3, sleep=sleep, clock=clock)
    with pytest.raises(FileUnsettled, match="cannot read"):
        load_settled(path.read_text, [tmp_path / "gone.yaml"], sleep=clock.sleep, clock=clock)
