"""CortEX through the Python SDK: the tasks and memories models, queries,
watches, snapshots, persistence, and the halted fold."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from netmesh import (
    Cancel,
    CancelledError,
    CortexHaltedError,
    CortexInvalidConfigError,
    CortexInvalidQueryError,
    CortexSnapshotError,
    CortexWatchEndedError,
    InvalidArgumentError,
    Memories,
    Memory,
    MemoryFilter,
    Model,
    ModelKind,
    Redex,
    ShuttingDownError,
    RedexClosedError,
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
        first = threading.Event()

        def consume() -> None:
            for update in watch:  # blocks after the first update
                seen.append(update)
                first.set()

        t = threading.Thread(target=consume)
        t.start()
        assert first.wait(30)
        watch.close()
        t.join(30)
        assert not t.is_alive()
        assert seen == [[]]
        with pytest.raises(ShuttingDownError):
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


# -- the generic model ---------------------------------------------------------------------


def test_tasks_and_memories_are_thin_kinds_of_one_generic_model(redex: Redex) -> None:
    assert issubclass(Tasks, Model) and issubclass(Memories, Model)
    assert Tasks.KIND is ModelKind.TASKS and Memories.KIND is ModelKind.MEMORIES
    # Generic operations live on Model only; each kind adds its own writes.
    for name in ("wait_for_seq", "progress", "find_unique", "find_many", "count_where",
                 "exists_where", "watch", "snapshot_and_watch", "snapshot", "restore",
                 "delete", "shutdown", "close"):
        assert name in vars(Model), name
        assert name not in vars(Tasks) and name not in vars(Memories), name
    assert {"create", "rename", "complete"} <= set(vars(Tasks))
    assert {"store", "retag", "pin", "unpin"} <= set(vars(Memories))
    with Tasks(redex, ORIGIN) as tasks, Memories(redex, ORIGIN) as mem:
        assert tasks.kind is ModelKind.TASKS and mem.kind is ModelKind.MEMORIES
        with pytest.raises(ValueError):
            Tasks(redex, ORIGIN, kind=ModelKind.MEMORIES)


def test_the_generic_model_opens_any_kind_with_dict_rows(tmp_path: Path) -> None:
    with Redex(tmp_path) as redex:
        with Tasks(redex, ORIGIN, persistent=True) as tasks:
            tasks.create(1, "written through Tasks")
            tasks.wait_for_seq(tasks.create(2, "another"), 5)
        _generic_model_queries(redex)


def _generic_model_queries(redex: Redex) -> None:
    with Model(redex, ORIGIN, kind=ModelKind.TASKS, persistent=True) as model:
        assert model.kind is ModelKind.TASKS and "tasks" in repr(model)
        model.wait_for_seq(1, 5)
        rows = model.find_many({"order_by": "id_desc"})
        assert [r["id"] for r in rows] == [2, 1] and rows[0]["title"] == "another"
        assert model.find_unique(1)["status"] == "pending"
        assert model.count_where(TaskFilter(title_contains="Tasks")) == 1  # any to_json() filter
        assert model.exists_where({"ids": [2]})
        model.wait_for_seq(model.delete(2), 5)
        assert model.find_unique(2) is None
        with model.watch({"ids": [1]}) as watch:
            assert [r["id"] for r in watch.next(5)] == [1]
        snap = model.snapshot()
    with Redex() as other, Model.restore(other, ORIGIN, snap, kind=ModelKind.TASKS) as restored:
        assert [r["id"] for r in restored.find_many()] == [1]
    with pytest.raises(TypeError):
        Model(redex, ORIGIN)  # which kind?
    with pytest.raises(ValueError):
        Model(redex, ORIGIN, kind=99)
    with Model(redex, ORIGIN, kind=ModelKind.MEMORIES) as mem:
        with pytest.raises(TypeError):
            mem.find_many(42)  # type: ignore[arg-type]


def test_a_write_of_another_kind_is_refused_by_libnet(redex: Redex) -> None:
    from netmesh._ffi import ffi, lib

    with Memories(redex, ORIGIN) as mem:
        seq = ffi.new("uint64_t *")
        status = lib.net_tasks_create(mem._ptr, 1, b"x", 1, seq)
        assert status == lib.NET_ERR_INVALID_ARGUMENT
        # Through the SDK the typed kinds cannot even express it; a write
        # of the kind works.
        assert mem.store(1, "m") == 0
    with pytest.raises(InvalidArgumentError):
        from netmesh._ffi import check

        check(status)


def test_typed_filters_of_another_kind_are_refused_dicts_are_not(redex: Redex) -> None:
    with Tasks(redex, ORIGIN) as tasks:
        tasks.wait_for_seq(tasks.create(1, "a"), 5)
        assert [t.id for t in tasks.find_many({"status": "pending"})] == [1]
        with pytest.raises(TypeError):
            tasks.count_where(MemoryFilter(pinned=True))  # type: ignore[arg-type]


def test_shutdown_stops_the_fold_but_queries_still_answer(redex: Redex) -> None:
    tasks = Tasks(redex, ORIGIN)
    tasks.wait_for_seq(tasks.create(1, "kept"), 5)
    _rows, watch = tasks.snapshot_and_watch()
    tasks.shutdown()  # net_model_close
    assert [t.id for t in tasks.find_many()] == [1]
    assert not tasks.progress().running
    with pytest.raises((CortexHaltedError, RedexClosedError)):
        tasks.create(2, "refused")
    with pytest.raises(CortexHaltedError):
        tasks.wait_for_seq(10, 5)
    with pytest.raises(CortexWatchEndedError):
        watch.next(5)
    watch.close()
    tasks.close()
    with pytest.raises(ShuttingDownError):
        tasks.find_many()


def test_wait_for_seq_takes_a_cancel(redex: Redex) -> None:
    with Tasks(redex, ORIGIN) as tasks, Cancel() as token:
        token.cancel()
        with pytest.raises(CancelledError, match="already cancelled"):
            tasks.wait_for_seq(100, cancel=token)
        seq = tasks.create(1, "x")
        with pytest.raises(CancelledError):
            tasks.wait_for_seq(seq, 5, cancel=token)  # cancelled wins over done
