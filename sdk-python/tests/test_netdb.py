"""NetDB through the Python SDK: both models through one handle, bundles
(round trip, a disabled model refused, corrupt bytes), failure-atomic open,
persistence, and use after close."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from netmesh import (
    CortexInvalidConfigError,
    CortexSnapshotError,
    InvalidArgumentError,
    Memories,
    ModelKind,
    NetDB,
    Redex,
    RedexLockedError,
    RedexNoPersistentDirError,
    ShuttingDownError,
    Tasks,
)

BIG = 2**63 + 12345
ORIGIN = 0x1234_5678_9ABC_DEF0
BOTH = dict(with_tasks=True, with_memories=True)


def test_operations_through_both_models() -> None:
    with Redex() as redex, NetDB(redex, ORIGIN, **BOTH) as db:
        assert isinstance(db.tasks, Tasks) and isinstance(db.memories, Memories)
        assert db.tasks is db.tasks
        assert db.tasks.kind == ModelKind.TASKS and db.tasks.origin_hash == ORIGIN
        db.tasks.create(1, "write the report")
        db.tasks.create(BIG, "big")
        done = db.tasks.complete(1)
        db.memories.store(10, "the sky is blue", ["color", "sky"], "eyes")
        pinned = db.memories.pin(10)
        assert db.tasks.wait_for_seq(done, timeout=5)
        assert db.memories.wait_for_seq(pinned, timeout=5)
        assert db.tasks.find_unique(1).completed
        assert [t.id for t in db.tasks.find_many()] == [1, BIG]
        memory = db.memories.find_unique(10)
        assert memory.pinned and memory.tags == ("color", "sky") and memory.source == "eyes"
        assert "tasks+memories" in repr(db)
    assert "closed" in repr(db)


def test_a_model_not_enabled_and_bad_configuration() -> None:
    with Redex() as redex:
        with NetDB(redex, ORIGIN, with_memories=True) as db:
            with pytest.raises(InvalidArgumentError, match="tasks"):
                db.tasks
            db.memories.store(1, "only memories")
        with pytest.raises(CortexInvalidConfigError, match="policy"):
            NetDB(redex, ORIGIN, with_tasks=True, policy="retry")  # type: ignore[arg-type]
        with pytest.raises(CortexInvalidConfigError, match="with_tasks"):
            NetDB(redex, ORIGIN, with_tasks=1)  # type: ignore[arg-type]
        with pytest.raises(RedexNoPersistentDirError):
            NetDB(redex, ORIGIN, with_tasks=True, persistent=True)
        with pytest.raises(TypeError):
            NetDB("not a redex", ORIGIN, with_tasks=True)  # type: ignore[arg-type]


def test_bundle_round_trip() -> None:
    with Redex() as redex, NetDB(redex, ORIGIN, **BOTH) as db:
        db.tasks.create(1, "one")
        db.tasks.create(BIG, "big")
        db.memories.store(5, "remember", ["x"])
        bundle = db.snapshot_bundle()
        assert isinstance(bundle, bytes) and bundle
        db.tasks.create(3, "after the cut")
    with Redex() as redex, NetDB.from_bundle(redex, ORIGIN, bundle, **BOTH) as restored:
        assert [t.id for t in restored.tasks.find_many()] == [1, BIG]
        assert [m.id for m in restored.memories.find_many()] == [5]
        seq = restored.tasks.create(9, "after restore")
        assert restored.tasks.wait_for_seq(seq, timeout=5)
        assert restored.tasks.count_where() == 3
    # A bundle restores into a NetDB that enables more than it holds.
    with Redex() as redex, NetDB(redex, ORIGIN, with_tasks=True) as tasks_only:
        tasks_only.tasks.create(1, "t")
        only_tasks = tasks_only.snapshot_bundle()
    with Redex() as redex, NetDB.from_bundle(redex, ORIGIN, only_tasks, **BOTH) as db:
        assert db.tasks.count_where() == 1 and db.memories.count_where() == 0


def test_a_bundle_naming_a_disabled_model_is_refused() -> None:
    with Redex() as redex, NetDB(redex, ORIGIN, **BOTH) as db:
        db.memories.store(1, "m")
        bundle = db.snapshot_bundle()
    with Redex() as redex:
        with pytest.raises(CortexSnapshotError, match="memories"):
            NetDB.from_bundle(redex, ORIGIN, bundle, with_tasks=True)
        with pytest.raises(CortexSnapshotError):
            NetDB.from_bundle(redex, ORIGIN, b"\x01\x09\x01", **BOTH)
        # Nothing was left open: the models open on the same Redex.
        with NetDB(redex, ORIGIN, **BOTH) as again:
            again.tasks.create(1, "fine")


def test_a_failed_open_leaves_nothing_open(tmp_path: Path) -> None:
    with Redex(tmp_path) as redex, Redex(tmp_path) as holder:
        # The memories log is held by another manager on the directory: the
        # tasks model the NetDB opened first must be closed again.
        held = Memories(holder, 1, persistent=True)
        with pytest.raises(RedexLockedError):
            NetDB(redex, ORIGIN, with_tasks=True, with_memories=True, persistent=True)
        held.close()
        Tasks(holder, 1, persistent=True).close()
        NetDB(redex, ORIGIN, with_tasks=True, with_memories=True, persistent=True).close()


def test_persistent_reopens_and_shutdown(tmp_path: Path) -> None:
    config = dict(with_tasks=True, with_memories=True, persistent=True)
    with Redex(tmp_path) as redex, NetDB(redex, ORIGIN, **config) as db:
        assert db.tasks.wait_for_seq(db.tasks.create(4, "kept"), timeout=5)
        db.shutdown()
        db.shutdown()  # idempotent
        with pytest.raises(Exception):
            db.tasks.create(5, "refused after shutdown")
        assert db.tasks.find_unique(4) is not None  # queries still answer
    with Redex(tmp_path) as redex, NetDB(redex, ORIGIN, **config) as db:
        assert db.tasks.find_unique(4).title == "kept"


def test_use_after_close_errors_cleanly() -> None:
    with Redex() as redex:
        db = NetDB(redex, ORIGIN, **BOTH)
        tasks, memories = db.tasks, db.memories
        tasks.create(1, "x")
        # Closing a lent model only lets go of it: the NetDB still serves.
        memories.close()
        with pytest.raises(ShuttingDownError):
            memories.count_where()
        db.snapshot_bundle()
        threads = [threading.Thread(target=db.close) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        db.close()
        assert db.closed
        with pytest.raises(ShuttingDownError):
            db.snapshot_bundle()
        with pytest.raises(ShuttingDownError):
            db.shutdown()
        with pytest.raises(ShuttingDownError):
            tasks.create(2, "y")


def test_closing_wakes_a_wait_on_a_lent_model() -> None:
    with Redex() as redex:
        db = NetDB(redex, ORIGIN, with_tasks=True)
        result: list = []
        started = threading.Event()

        def wait() -> None:
            started.set()
            try:
                db.tasks.wait_for_seq(1_000_000)
            except ShuttingDownError as e:
                result.append(e)

        waiter = threading.Thread(target=wait)
        waiter.start()
        started.wait()
        db.close()
        waiter.join(timeout=20)
        assert not waiter.is_alive() and len(result) == 1


def test_async_close() -> None:
    async def main() -> None:
        with Redex() as redex:
            async with NetDB(redex, ORIGIN, with_tasks=True) as db:
                db.tasks.create(1, "async")
            assert db.closed

    asyncio.run(main())


def test_close_races_calls_in_flight() -> None:
    """Every call racing close either lands or raises ShuttingDownError."""
    for _ in range(30):
        with Redex() as redex:
            db = NetDB(redex, ORIGIN, **BOTH)
            tasks, memories = db.tasks, db.memories
            unexpected: list = []
            start = threading.Barrier(5)

            def hammer(call) -> None:
                start.wait()
                i = 0
                while True:
                    try:
                        call(i)
                    except ShuttingDownError:
                        return
                    except Exception as e:  # noqa: BLE001 - collected for the assertion
                        unexpected.append(e)
                        return
                    i += 1

            calls = [
                lambda i: tasks.create(i, "t"),
                lambda i: memories.store(i, "m", ["x"]),
                lambda i: db.snapshot_bundle(),
                lambda i: tasks.count_where(),
            ]
            threads = [threading.Thread(target=hammer, args=(c,)) for c in calls]
            for t in threads:
                t.start()
            start.wait()
            db.close()
            for t in threads:
                t.join(timeout=30)
            assert not any(t.is_alive() for t in threads)
            assert unexpected == []
