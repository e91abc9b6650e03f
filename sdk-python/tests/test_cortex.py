"""CortEX through the Python SDK: the tasks and memories models, queries,
watches, snapshots, persistence, and the halted fold."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from netmesh import (
    CortexHaltedError,
    CortexInvalidConfigError,
    CortexInvalidQueryError,
    CortexSnapshotError,
    CortexWatchEndedError,
    Memories,
    Memory,
    MemoryFilter,
    Redex,
    Snapshot,
    Task,
    TaskFilter,
    Tasks,
    WatchLagged,
)

BIG = 2**63 + 12345  # above 2**53: must round-trip exactly
ORIGIN = 0x1234_5678_9ABC_DEF0


@pytest.fixture
def redex():
    with Redex() as r:
        yield r


def test_task_writes_and_reads(redex: Redex) -> None:
    with Tasks(redex, ORIGIN) as tasks:
        s0 = tasks.create(1, "write spec")
        tasks.create(BIG, "big id")
        tasks.rename(1, "write the spec")
        last = tasks.complete(1)
        assert s0 == 0 and last == 3
        assert tasks.wait_for_seq(last, timeout=5)
        one = tasks.find_unique(1)
        assert isinstance(one, Task)
        assert (one.title, one.status, one.completed) == ("write the spec", "completed", True)
        assert one.updated_ns >= one.created_ns > 0
        big = tasks.find_unique(BIG)
        assert big is not None and big.id == BIG
        assert tasks.find_unique(2) is None
        tasks.wait_for_seq(tasks.delete(1), timeout=5)
        assert tasks.find_unique(1) is None
        assert len(tasks) == 1
        progress = tasks.progress()
        assert progress.applied_through_seq == 4 and progress.running
        assert progress.errors == 0 and progress.app_seq == 5


def test_task_queries(redex: Redex) -> None:
    with Tasks(redex, ORIGIN) as tasks:
        for i in range(1, 11):
            tasks.create(i, f"task {i:02d}" + (" urgent" if i % 3 == 0 else ""))
        last = 0
        for i in (2, 4, 6):
            last = tasks.complete(i)
        tasks.wait_for_seq(last, timeout=5)
        pending = tasks.find_many(TaskFilter(status="pending"))
        assert [t.id for t in pending] == [1, 3, 5, 7, 8, 9, 10]
        desc = tasks.find_many(TaskFilter(order_by="id_desc", offset=2, limit=3))
        assert [t.id for t in desc] == [8, 7, 6]
        assert tasks.count_where(TaskFilter(title_contains="urgent")) == 3
        assert tasks.exists_where(TaskFilter(ids=[6], status="completed"))
        assert not tasks.exists_where(TaskFilter(ids=[1], status="completed"))
        titles = tasks.find_many(TaskFilter(order_by="title_desc", limit=1))
        assert titles[0].id == 10
        now = time.time_ns()
        assert tasks.count_where(TaskFilter(created_after=now)) == 0
        assert tasks.count_where(TaskFilter(created_before=now)) == 10


def test_memory_writes_and_queries(redex: Redex) -> None:
    with Memories(redex, ORIGIN) as mem:
        mem.store(1, "the sky is blue", ["fact", "color"], "alice")
        mem.store(2, "meet at noon", ["todo"], "bob")
        mem.store(BIG, "big", [], "")
        mem.pin(1)
        mem.retag(2, ["todo", "urgent"])
        mem.unpin(1)
        last = mem.pin(2)
        mem.wait_for_seq(last, timeout=5)
        one = mem.find_unique(1)
        assert isinstance(one, Memory)
        assert one.tags == ("fact", "color") and not one.pinned and one.source == "alice"
        assert mem.find_unique(BIG).id == BIG  # type: ignore[union-attr]
        assert [m.id for m in mem.find_many(MemoryFilter(tags_all=["todo", "urgent"]))] == [2]
        assert [m.id for m in mem.find_many(MemoryFilter(tags_any=["fact", "urgent"]))] == [1, 2]
        assert mem.count_where(MemoryFilter(pinned=True)) == 1
        assert mem.exists_where(MemoryFilter(source="bob", content_contains="noon"))
        assert [m.id for m in mem.find_many(MemoryFilter(order_by="id_desc", limit=2))] == [BIG, 2]
        mem.wait_for_seq(mem.delete(2), timeout=5)
        assert mem.count_where() == 2


def test_watch_yields_current_then_changes(redex: Redex) -> None:
    with Tasks(redex, ORIGIN) as tasks:
        tasks.wait_for_seq(tasks.create(1, "a"), timeout=5)
        with tasks.watch(TaskFilter(status="pending")) as watch:
            first = watch.next(timeout=5)
            assert isinstance(first, list) and [t.id for t in first] == [1]
            tasks.create(2, "b")
            update = watch.next(timeout=5)
            assert isinstance(update, list) and [t.id for t in update] == [1, 2]
            tasks.complete(1)
            update = watch.next(timeout=5)
            assert isinstance(update, list) and [t.id for t in update] == [2]
            assert watch.next(timeout=0.05) is None


def test_watch_iteration_ends_when_closed_from_another_thread(redex: Redex) -> None:
    with Tasks(redex, ORIGIN) as tasks:
        watch = tasks.watch()
        seen = []

        def consume() -> None:
            for update in watch:
                seen.append(update)

        t = threading.Thread(target=consume)
        t.start()
        time.sleep(0.1)
        watch.close()
        t.join(5)
        assert not t.is_alive()
        assert seen and seen[0] == []
        with pytest.raises(Exception):
            watch.next(timeout=0)


def test_watch_reports_lag_to_a_slow_reader(redex: Redex) -> None:
    with Tasks(redex, ORIGIN, changes_capacity=2) as tasks:
        with tasks.watch() as watch:
            assert watch.next(timeout=5) == []
            last = 0
            for i in range(50):
                last = tasks.create(i, "x")
            tasks.wait_for_seq(last, timeout=5)
            lagged = False
            rows = None
            for _ in range(60):
                item = watch.next(timeout=1)
                if isinstance(item, WatchLagged):
                    assert item.missed > 0
                    lagged = True
                elif item is not None:
                    rows = item
                    if len(rows) == 50:
                        break
            assert lagged
            assert rows is not None and len(rows) == 50


def test_snapshot_and_watch(redex: Redex) -> None:
    with Tasks(redex, ORIGIN) as tasks:
        tasks.wait_for_seq(tasks.create(1, "a"), timeout=5)
        rows, watch = tasks.snapshot_and_watch()
        with watch:
            assert [t.id for t in rows] == [1]
            assert watch.next(timeout=0.05) is None  # only later changes
            tasks.create(2, "b")
            update = watch.next(timeout=5)
            assert isinstance(update, list) and [t.id for t in update] == [1, 2]


def test_snapshot_restore_gives_the_same_state(redex: Redex) -> None:
    with Tasks(redex, ORIGIN) as tasks:
        for i in range(5):
            tasks.create(i, f"t{i}")
        tasks.wait_for_seq(tasks.complete(3), timeout=5)
        snap = tasks.snapshot()
        before = tasks.find_many()
        app_seq = tasks.progress().app_seq
    assert isinstance(snap, Snapshot) and snap.last_seq == 5
    with Redex() as other:
        with Tasks.restore(other, ORIGIN, snap) as restored:
            assert restored.find_many() == before
            assert restored.progress().app_seq == app_seq
        with pytest.raises(CortexSnapshotError):
            Tasks.restore(other, ORIGIN, Snapshot(b"\xff\xff\xff", 0))


def test_persistent_model_recovers_after_reopen(tmp_path: Path) -> None:
    with Redex(tmp_path) as redex:
        with Memories(redex, ORIGIN, persistent=True) as mem:
            mem.store(1, "remember me", ["x"], "s")
            mem.wait_for_seq(mem.pin(1), timeout=5)
            before = mem.find_many()
            app_seq = mem.progress().app_seq
    assert (tmp_path / "cortex" / "memories").is_dir()
    with Redex(tmp_path) as redex:
        with Memories(redex, ORIGIN, persistent=True) as mem:
            mem.wait_for_seq(1, timeout=5)
            assert mem.find_many() == before
            assert mem.progress().app_seq == app_seq


def test_halted_fold_refuses_writes_and_fails_waits(redex: Redex) -> None:
    with Tasks(redex, ORIGIN, policy="stop") as tasks:
        tasks.wait_for_seq(tasks.create(1, "ok"), timeout=5)
        # The log handle shares the model's file (closing it would close the
        # model's file too), so it stays open until the end of the test.
        log = redex.open_file("cortex/tasks")
        bad = log.append(b"\x00garbage that is not an EventMeta record")
        started = time.monotonic()
        with pytest.raises(CortexHaltedError):
            tasks.wait_for_seq(bad + 1, timeout=10)
        assert time.monotonic() - started < 5
        deadline = time.monotonic() + 5
        while tasks.progress().running and time.monotonic() < deadline:
            time.sleep(0.01)
        progress = tasks.progress()
        assert not progress.running and progress.errors == 1 and progress.last_error
        with pytest.raises(CortexHaltedError):
            tasks.create(2, "refused")
        log.close()


def test_invalid_query_and_config_name_the_key(redex: Redex) -> None:
    with Tasks(redex, ORIGIN) as tasks:
        with pytest.raises(CortexInvalidQueryError, match="order_by|nope"):
            tasks.find_many(TaskFilter(order_by="nope"))
        with pytest.raises(TypeError):
            tasks.find_many(MemoryFilter())  # type: ignore[arg-type]
    with pytest.raises(CortexInvalidConfigError, match="policy"):
        Tasks(redex, ORIGIN, policy="sometimes")  # type: ignore[arg-type]
    with pytest.raises(CortexInvalidConfigError, match="start"):
        Tasks(redex, ORIGIN, start="middle")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Tasks(redex, -1)
    from netmesh.cortex import model_config_json

    assert json.loads(model_config_json(persistent=True, repair=True, policy="stop")) == {
        "persistent": True,
        "repair": True,
        "policy": "stop",
    }


def test_start_live_skips_history(redex: Redex) -> None:
    with Tasks(redex, ORIGIN) as tasks:
        tasks.wait_for_seq(tasks.create(1, "old"), timeout=5)
    with Tasks(redex, ORIGIN, start="live") as tasks:
        tasks.wait_for_seq(tasks.create(2, "new"), timeout=5)
        assert [t.id for t in tasks.find_many()] == [2]


def test_closed_model_raises_and_watch_ends(redex: Redex) -> None:
    tasks = Tasks(redex, ORIGIN)
    watch = tasks.watch()
    assert watch.next(timeout=5) == []
    tasks.close()
    tasks.close()
    with pytest.raises(Exception) as info:
        tasks.create(1, "x")
    assert "closed" in str(info.value)
    with pytest.raises(CortexWatchEndedError):
        while True:
            watch.next(timeout=5)
    watch.close()
