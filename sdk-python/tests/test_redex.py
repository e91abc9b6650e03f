"""RedEX through the SDK: files, persistence, tails, retention, errors.

The races of the three handle types are in test_redex_races.py.
"""

from __future__ import annotations

import datetime
import gc
import json
import os
import signal
import threading
import time
from typing import List

import pytest

import netmesh
from netmesh import (
    CancelledError,
    ChannelNameError,
    Entry,
    EveryN,
    Interval,
    IntervalOrBytes,
    Lagged,
    NetError,
    RecoveryReport,
    Redex,
    RedexClosedError,
    RedexCorruptError,
    RedexError,
    RedexFile,
    RedexInlineLengthError,
    RedexInvalidConfigError,
    RedexIoError,
    RedexLockedError,
    RedexNoPersistentDirError,
    RedexSeqExhaustedError,
    RedexTail,
    RedexTailEndedError,
    ShuttingDownError,
    Status,
)
from netmesh._ffi import ffi, lib
from netmesh.redex import config_json

from conftest import let_it_block, until_won


@pytest.fixture
def mem():
    with Redex() as redex:
        yield redex


# -- appends and reads -----------------------------------------------------------


def test_append_read_and_counters(mem: Redex):
    with mem.open_file("app/log") as f:
        assert isinstance(f, RedexFile) and f.name == "app/log"
        assert (len(f), f.next_seq) == (0, 0)
        assert f  # a file is truthy even when empty
        assert f.append(b"first") == 0
        assert f.append(bytearray(b"second")) == 1
        assert f.append(memoryview(b"xthirdx")[1:-1]) == 2
        assert f.append(b"") == 3
        assert f.append_inline(b"\x01\x02\x03\x04\x05\x06\x07\x08") == 4
        assert f.append_batch([b"b0", bytearray(b"b1"), b""]) == 5
        assert f.append_batch(iter([b"g0"])) == 8
        assert f.append_batch([]) is None  # empty batch: explicitly nothing
        assert f.append_batch(iter(())) is None
        assert (len(f), f.next_seq) == (9, 9)

        assert f.read(0) == b"first"
        assert f.read(2) == b"third"
        assert f.read(3) == b""  # an empty payload is not "missing"
        assert f.read(4) == b"\x01\x02\x03\x04\x05\x06\x07\x08"
        assert f.read(9) is None
        assert f.read(2**64 - 1) is None

        everything = f.read_range(0)
        assert everything == [
            (0, b"first"),
            (1, b"second"),
            (2, b"third"),
            (3, b""),
            (4, b"\x01\x02\x03\x04\x05\x06\x07\x08"),
            (5, b"b0"),
            (6, b"b1"),
            (7, b""),
            (8, b"g0"),
        ]
        assert all(isinstance(e, Entry) for e in everything)
        assert everything[5].seq == 5 and everything[5].payload == b"b0"
        assert f.read_range(2, 5) == everything[2:5]
        assert f.read_range(5, 5) == [] and f.read_range(7, 2) == []
        assert f.read_range(100, 200) == []


def test_argument_errors(mem: Redex):
    with mem.open_file("app/args") as f:
        with pytest.raises(RedexInlineLengthError) as info:
            f.append_inline(b"1234567")
        assert isinstance(info.value, ValueError) and isinstance(info.value, RedexError)
        assert info.value.status == Status.ERR_REDEX_INLINE_LENGTH
        with pytest.raises(RedexInlineLengthError):
            f.append_inline(b"123456789")
        with pytest.raises(TypeError):
            f.append("text")  # type: ignore[arg-type]
        with pytest.raises(TypeError, match=r"payloads\[1\]"):
            f.append_batch([b"ok", "text"])  # type: ignore[list-item]
        assert f.next_seq == 0, "a refused batch appended nothing"
        with pytest.raises(ValueError):
            f.read(-1)
        with pytest.raises(TypeError):
            f.read("0")  # type: ignore[arg-type]
        with pytest.raises(ValueError):
            f.tail(-5)


def test_bad_channel_name(mem: Redex):
    with pytest.raises(ChannelNameError):
        mem.open_file("")
    with pytest.raises(ChannelNameError):
        mem.open_file("a//b")


def test_persistent_file_survives_close_and_reopen(redex_dir: str):
    payloads = [bytes([i]) * (i * 37 % 500) for i in range(60)]
    with Redex(redex_dir) as redex:
        assert redex.base_dir == redex_dir
        with redex.open_file("sensors/lidar", persistent=True, fsync=EveryN(1)) as f:
            for p in payloads[:20]:
                f.append(p)
            assert f.append_batch(payloads[20:50]) == 20
            for p in payloads[50:]:
                f.append(p)
            assert f.append_inline(b"inline!!") == 60
            f.sync()
            before = f.read_range(0)
    with Redex(redex_dir) as redex:
        with redex.open_file("sensors/lidar", persistent=True) as f:
            assert f.read_range(0) == before
            assert [p for _, p in before] == payloads + [b"inline!!"]
            assert (len(f), f.next_seq) == (61, 61)
            assert f.append(b"after") == 61  # sequence numbers continue
    with Redex(redex_dir) as redex, redex.open_file("sensors/lidar", persistent=True) as f:
        assert f.read(61) == b"after" and len(f) == 62


def test_every_fsync_policy_opens(redex_dir: str):
    with Redex(redex_dir) as redex:
        for i, policy in enumerate(
            ["never", None, EveryN(3), Interval(0.01), Interval(datetime.timedelta(milliseconds=5)),
             IntervalOrBytes(0.05, 4096), IntervalOrBytes(0, 1)]
        ):
            with redex.open_file(f"policy/p{i}", persistent=True, fsync=policy) as f:  # type: ignore[arg-type]
                f.append_batch([b"x" * 1000] * 10)
                f.sync()
                assert len(f) == 10


def test_memory_manager_refuses_persistent_files(mem: Redex):
    with pytest.raises(RedexNoPersistentDirError):
        mem.open_file("a/b", persistent=True)


def test_storage_failure_is_an_io_error_naming_the_path(redex_dir: str):
    not_a_dir = os.path.join(redex_dir, "plain-file")
    with open(not_a_dir, "wb"):
        pass
    with Redex(not_a_dir) as redex:
        with pytest.raises(RedexIoError) as info:
            redex.open_file("a/b", persistent=True)
    assert info.value.status == Status.ERR_REDEX_IO
    assert not_a_dir in info.value.message


def test_same_channel_twice_in_one_manager_is_one_file(mem: Redex):
    a = mem.open_file("shared/one", max_events=5)
    b = mem.open_file("shared/one", max_events=5)
    try:
        a.append(b"via a")
        assert b.read(0) == b"via a" and b.next_seq == 1
        with pytest.raises(RedexInvalidConfigError, match="different configuration"):
            mem.open_file("shared/one")
    finally:
        a.close()
    # Closing one handle closed the shared file.
    with pytest.raises(RedexClosedError):
        b.append(b"x")
    b.close()


# -- configuration -----------------------------------------------------------------


def test_config_json_marshalling():
    assert config_json() == ""
    assert config_json(fsync="never") == ""
    full = config_json(
        persistent=True,
        fsync=IntervalOrBytes(datetime.timedelta(seconds=1.5), 1 << 20),
        max_events=10,
        max_bytes=2**64 - 1,
        max_age=datetime.timedelta(hours=1),
    )
    assert json.loads(full) == {
        "persistent": True,
        "fsync": {"interval_ms": 1500, "max_bytes": 1 << 20},
        "retention": {"max_events": 10, "max_bytes": 2**64 - 1, "max_age_ms": 3_600_000},
    }
    assert json.loads(config_json(persistent=True, fsync=EveryN(1))) == {
        "persistent": True,
        "fsync": {"every_n": 1},
    }
    assert json.loads(config_json(persistent=True, fsync=Interval(0.25))) == {
        "persistent": True,
        "fsync": {"interval_ms": 250},
    }
    assert json.loads(config_json(persistent=True, repair=True)) == {"persistent": True, "repair": True}
    assert "repair" not in config_json(persistent=True, repair=False)
    # A positive duration never rounds down to "zero" (which would mean "never").
    assert json.loads(config_json(max_age=0.0001)) == {"retention": {"max_age_ms": 1}}
    assert json.loads(config_json(max_age=0)) == {"retention": {"max_age_ms": 0}}


def test_config_errors_name_the_key(mem: Redex, redex_dir: str):
    # Checked by libnet: fsync on a memory file.
    with pytest.raises(RedexInvalidConfigError) as info:
        mem.open_file("cfg/a", fsync=EveryN(2))
    assert "fsync" in info.value.message and "persistent" in info.value.message
    assert info.value.status == Status.ERR_REDEX_INVALID_CONFIG
    assert isinstance(info.value, ValueError)
    # Checked here before libnet sees JSON, with the same key names.
    for kwargs, key in [
        (dict(max_events=-1), "retention.max_events"),
        (dict(max_bytes=2**64), "retention.max_bytes"),
        (dict(max_age=-0.5), "retention.max_age_ms"),
        (dict(fsync="always"), "fsync"),
    ]:
        with pytest.raises(RedexInvalidConfigError) as info:
            mem.open_file("cfg/b", **kwargs)  # type: ignore[arg-type]
        assert key in info.value.message, (kwargs, info.value.message)
    with pytest.raises(RedexInvalidConfigError, match="fsync.every_n"):
        EveryN(-1)
    with pytest.raises(RedexInvalidConfigError, match="fsync.max_bytes"):
        IntervalOrBytes(1, -1)
    with pytest.raises(TypeError):
        mem.open_file("cfg/c", max_events=1.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        mem.open_file("cfg/c", fsync=3)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Interval("1s")  # type: ignore[arg-type]
    # libnet names an unknown key in the raw JSON too.
    with Redex(redex_dir) as redex:
        for text, key in [
            ('{"persistant": true}', "persistant"),
            ('{"persistent": true, "fsync": {"evry_n": 1}}', "evry_n"),
            ('{"retention": {"max_event": 1}}', "max_event"),
        ]:
            raw = text.encode()
            out = ffi.new("net_redex_file_t **")
            status = lib.net_redex_open_file(redex._ptr, b"cfg/raw", 7, raw, len(raw), out)
            assert status == lib.NET_ERR_REDEX_INVALID_CONFIG
            assert out[0] == ffi.NULL
            message = ffi.string(lib.net_last_error_message()).decode()
            assert key in message, message
            err = netmesh.errors.error_for_status(status, message)
            assert type(err) is RedexInvalidConfigError


# -- recovery --------------------------------------------------------------------


def _write_channel(redex_dir: str, name: str, n: int) -> None:
    with Redex(redex_dir) as redex, redex.open_file(name, persistent=True) as f:
        for i in range(n):
            f.append(b"entry-%d" % i)


def _snapshot(directory: str) -> dict:
    files = {}
    for root, _, names in os.walk(directory):
        for name in names:
            path = os.path.join(root, name)
            with open(path, "rb") as fh:
                files[path] = fh.read()
    return files


def test_lost_dat_is_corrupt_until_repaired(redex_dir: str):
    _write_channel(redex_dir, "orders/eu", 3)
    dat = os.path.join(redex_dir, "orders", "eu", "v0000000001", "dat")
    os.remove(dat)
    before = _snapshot(redex_dir)
    with Redex(redex_dir) as redex:
        with pytest.raises(RedexCorruptError) as info:
            redex.open_file("orders/eu", persistent=True)
        assert info.value.status == Status.ERR_REDEX_CORRUPT
        assert isinstance(info.value, RedexError)
        assert dat in info.value.message
        assert _snapshot(redex_dir) == before, "a refused open changed the files"

        with redex.open_file("orders/eu", persistent=True, repair=True) as f:
            report = f.recovery_report()
            assert isinstance(report, RecoveryReport)
            assert report.repaired and not report.clean
            assert report.entries == 0
            assert [d.reason for d in report.dropped] == ["payload_out_of_range"] * 3
            assert [d.position for d in report.dropped] == [0, 1, 2]
            assert [d.stored_seq for d in report.dropped] == [0, 1, 2]
            assert f.read(0) is None


def test_recovery_report_lists_a_checksum_mismatch(redex_dir: str):
    _write_channel(redex_dir, "orders/eu", 3)
    dat = os.path.join(redex_dir, "orders", "eu", "v0000000001", "dat")
    with open(dat, "r+b") as fh:
        first = fh.read(1)
        fh.seek(0)
        fh.write(bytes([first[0] ^ 0xFF]))
    with Redex(redex_dir) as redex:
        with redex.open_file("orders/eu", persistent=True) as f:
            report = f.recovery_report()
            assert report is not None
            assert not report.clean and not report.repaired
            assert report.entries == 2
            assert len(report.dropped) == 1
            dropped = report.dropped[0]
            assert dropped.reason == "checksum_mismatch"
            assert (dropped.position, dropped.seq, dropped.stored_seq) == (0, 0, 0)
            assert f.read(0) is None and f.read(1) == b"entry-1"
        with redex.open_file("orders/fresh", persistent=True) as fresh:
            report = fresh.recovery_report()
            assert report is not None and report.clean
            assert report.dropped == () and report.notes == () and report.generation == 1
    with Redex() as mem, mem.open_file("orders/mem") as f:
        assert f.recovery_report() is None
    with pytest.raises(ShuttingDownError):
        f.recovery_report()


def test_repair_needs_a_persistent_file(redex_dir: str):
    with Redex(redex_dir) as redex:
        with pytest.raises(RedexInvalidConfigError, match="repair"):
            redex.open_file("cfg/repair", repair=True)
        with pytest.raises(TypeError):
            redex.open_file("cfg/repair", persistent=True, repair="yes")  # type: ignore[arg-type]


# -- locking -----------------------------------------------------------------------


def test_second_writer_is_refused_until_the_first_closes(redex_dir: str):
    with Redex(redex_dir) as first, Redex(redex_dir) as second:
        f = first.open_file("locked/chan", persistent=True)
        f.append(b"one")
        with pytest.raises(RedexLockedError) as info:
            second.open_file("locked/chan", persistent=True)
        assert info.value.status == Status.ERR_REDEX_LOCKED
        assert isinstance(info.value, RedexError)
        f.close()
        with second.open_file("locked/chan", persistent=True) as g:
            assert g.read(0) == b"one"


# -- tails -------------------------------------------------------------------------


def test_tail_backfill_then_live_with_concurrent_appends(mem: Redex):
    total = 3000
    with mem.open_file("tail/live") as f:
        for i in range(500):
            f.append(b"%d" % i)
        errors: List[BaseException] = []

        def writer() -> None:
            try:
                i = 500
                while i < total:
                    if i % 3 == 0:
                        n = min(7, total - i)
                        f.append_batch([b"%d" % j for j in range(i, i + n)])
                        i += n
                    else:
                        f.append(b"%d" % i)
                        i += 1
            except BaseException as exc:  # noqa: BLE001
                errors.append(exc)

        seen: List[int] = []
        with f.tail(0) as tail:
            t = threading.Thread(target=writer)
            t.start()
            while True:
                # Bounded wait: a writer that died must fail the test, not hang it.
                item = tail.next(10)
                assert item is not None, f"no entry for 10 s after {seen[-1:]}; writer errors: {errors}"
                assert isinstance(item, Entry), item
                assert item.payload == b"%d" % item.seq
                seen.append(item.seq)
                if item.seq == total - 1:
                    break
            t.join(10)
            assert tail.position == total
        assert not errors, errors
        assert seen == list(range(total)), "gap or duplicate"


def test_tail_from_the_middle_and_timeouts(mem: Redex):
    with mem.open_file("tail/mid") as f:
        f.append_batch([b"a", b"b", b"c", b"d"])
        with f.tail(2) as tail:
            assert isinstance(tail, RedexTail)
            assert tail.next() == Entry(2, b"c")
            assert tail.next(0) == (3, b"d")
            assert tail.next(0) is None  # 0: don't wait
            start = time.monotonic()
            assert tail.next(0.05) is None
            assert time.monotonic() - start >= 0.045
            assert tail.next(datetime.timedelta(milliseconds=1)) is None
            f.append(b"e")
            assert tail.next(float("inf")) == (4, b"e")
            f.append(b"e2")
            assert tail.next(5) == (5, b"e2")
            with pytest.raises(ValueError):
                tail.next(-1)
            with pytest.raises(TypeError):
                tail.next("1")  # type: ignore[arg-type]
        with f.tail(f.next_seq) as live:  # new appends only
            f.append(b"f")
            assert live.next(5) == (6, b"f")


def test_lagged_after_retention(mem: Redex):
    with mem.open_file("tail/lag", max_events=2) as f:
        f.append_batch([b"e%d" % i for i in range(5)])
        fresh = f.tail(0)
        started = f.tail(0)
        assert started.next(0) == (0, b"e0")
        assert f.sweep_retention() == 3
        assert len(f) == 2 and f.read(0) is None and f.read(3) == b"e3"

        lag = fresh.next(0)
        assert lag == Lagged(missed_from=0, resume_at=3)
        assert isinstance(lag, Lagged) and lag.missed == 3
        assert fresh.position == 3
        assert fresh.next(0) == (3, b"e3")

        items = []
        for item in started:  # iteration yields the lag in-line
            items.append(item)
            if isinstance(item, Entry) and item.seq == 4:
                break
        assert items == [Lagged(1, 3), Entry(3, b"e3"), Entry(4, b"e4")]

        # Lagged is not a tuple: unpacking it as an entry fails loudly.
        f.append_batch([b"e5", b"e6", b"e7"])
        assert f.sweep_retention() == 3
        with f.tail(0) as again:
            with pytest.raises(TypeError):
                for seq, payload in again:  # type: ignore[misc]  # noqa: B007
                    pass
        fresh.close()
        started.close()


def test_lagged_after_retention_on_a_persistent_file(redex_dir: str):
    with Redex(redex_dir) as redex:
        with redex.open_file("tail/plag", persistent=True, max_events=2) as f:
            f.append_batch([b"p%d" % i for i in range(6)])
            with f.tail(1) as tail:
                assert f.sweep_retention() == 4
                assert tail.next(0) == Lagged(1, 4)
                assert [tail.next(0), tail.next(0), tail.next(0)] == [(4, b"p4"), (5, b"p5"), None]
        with redex.open_file("tail/plag", persistent=True) as f:
            assert f.read_range(0) == [(4, b"p4"), (5, b"p5")]


def test_max_age_retention(mem: Redex):
    with mem.open_file("ret/age", max_age=datetime.timedelta(milliseconds=30)) as f:
        f.append(b"old")
        time.sleep(0.1)
        f.append(b"new")
        assert f.sweep_retention() == 1
        assert f.read_range(0) == [(1, b"new")]


def test_closing_the_file_ends_tails(mem: Redex):
    f = mem.open_file("tail/end")
    f.append(b"x")
    tail = f.tail(0)
    seen: List[object] = []
    first = threading.Event()

    def consume() -> None:
        for item in tail:  # blocks after the first entry
            seen.append(item)
            first.set()

    t = threading.Thread(target=consume)
    t.start()
    assert first.wait(30)
    f.close()
    t.join(30)
    assert not t.is_alive(), "closing the file did not end the iteration"
    assert seen == [Entry(0, b"x")]
    with pytest.raises(RedexTailEndedError) as info:
        tail.next()
    assert info.value.status == Status.END
    assert list(tail) == []
    tail.close()
    with pytest.raises(ShuttingDownError):
        tail.next(0)
    # And no new tail can be started on the closed file.
    with pytest.raises(ShuttingDownError):
        f.tail(0)


def test_shutdown_ends_tails_and_keeps_the_handle(mem: Redex):
    f = mem.open_file("tail/shutdown")
    f.append(b"x")
    tail = f.tail(1)
    f.shutdown()  # net_redex_file_close
    f.shutdown()  # idempotent
    with pytest.raises(RedexTailEndedError):
        tail.next(5)
    with pytest.raises(RedexClosedError):
        f.append(b"y")
    assert not f.closed
    f.close()
    tail.close()


def test_closing_the_tail_from_another_thread_wakes_a_blocked_iteration(mem: Redex):
    with mem.open_file("tail/wake") as f:

        def attempt(_: int) -> bool:
            tail = f.tail(f.next_seq)
            entered = threading.Event()
            ended: List[bool] = []

            def consume() -> None:
                entered.set()
                for _ in tail:
                    pass
                ended.append(True)

            t = threading.Thread(target=consume)
            t.start()
            entered.wait()
            # The GIL is free while the consumer waits inside libnet: this
            # thread runs on.
            let_it_block()
            waiting = t.is_alive() and not ended
            tail.close()
            t.join(30)
            assert not t.is_alive() and ended
            return waiting

        until_won(200, 3, attempt)
        f.append(b"the file is still open")


def _sigint_main_once_blocked() -> threading.Thread:
    """Sends SIGINT to the main thread once it waits in a blocking call (a
    real signal: a simulated one, _thread.interrupt_main, only runs its
    handler when the main thread runs Python again)."""
    main = threading.main_thread().ident
    waits = netmesh.cancel

    def interrupter() -> None:
        while waits._main_waits == 0:
            time.sleep(0)
        let_it_block()
        signal.pthread_kill(main, signal.SIGINT)

    t = threading.Thread(target=interrupter)
    t.start()
    return t


def test_blocked_iteration_on_the_main_thread_can_be_interrupted(mem: Redex):
    """Ctrl-C on the main thread, blocked in a tail with no timeout: the
    libnet call (run on a helper thread) is cancelled while it waits and
    KeyboardInterrupt is raised; the tail reads on, nothing lost."""
    assert threading.current_thread() is threading.main_thread()
    # A runner started in the background may inherit SIGINT as ignored: use
    # Python's handler for the test.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with mem.open_file("tail/sigint") as f, f.tail(0) as tail:

            def attempt(_: int) -> bool:
                netmesh.cancel._last_abandoned = None
                interrupter = _sigint_main_once_blocked()
                try:
                    with pytest.raises(KeyboardInterrupt):
                        for _ in tail:
                            pass
                finally:
                    interrupter.join()
                abandoned = netmesh.cancel._last_abandoned
                return isinstance(abandoned, CancelledError) and "while it waited" in abandoned.message

            until_won(50, 3, attempt)
            f.append(b"still usable")
            assert tail.next(5) == (0, b"still usable")
    finally:
        signal.signal(signal.SIGINT, previous)


def test_a_tail_keeps_its_file_open(mem: Redex):
    tail = mem.open_file("tail/alive").tail(0)  # the file object is not kept
    gc.collect()
    assert tail.next(0) is None  # not ended: the tail holds the file
    tail.close()


# -- lifetime ----------------------------------------------------------------------


def test_closed_handles_raise_shutting_down(redex_dir: str):
    redex = Redex(redex_dir)
    f = redex.open_file("life/a", persistent=True)
    tail = f.tail(0)
    redex.close()
    redex.close()
    assert redex.closed and "closed" in repr(redex)
    with pytest.raises(ShuttingDownError):
        redex.open_file("life/b")
    # Files outlive their manager.
    assert f.append(b"x") == 0
    assert tail.next(1) == (0, b"x")
    f.close()
    f.close()
    assert f.closed and "closed" in repr(f)
    for op in (
        lambda: f.append(b"y"),
        lambda: f.append_inline(b"12345678"),
        lambda: f.append_batch([b"z"]),
        lambda: f.read(0),
        lambda: f.read_range(0),
        lambda: f.next_seq,
        lambda: len(f),
        f.sync,
        f.sweep_retention,
        lambda: f.tail(0),
    ):
        with pytest.raises(ShuttingDownError):
            op()
    with pytest.raises(RedexTailEndedError):
        tail.next()
    tail.close()
    with pytest.raises(ShuttingDownError):
        with tail:
            pass
    # The channel directory was released: another manager can write it.
    with Redex(redex_dir) as again, again.open_file("life/a", persistent=True) as g:
        assert g.read(0) == b"x"


def test_context_managers_and_reprs(redex_dir: str):
    with Redex(redex_dir) as redex:
        assert repr(redex).startswith("<Redex ")
        with redex.open_file("repr/x") as f:
            f.append(b"1")
            assert repr(f) == "<RedexFile 'repr/x' next_seq=1>"
            with f.tail(0) as t:
                t.next(0)
                assert repr(t) == "<RedexTail 'repr/x' position=1>"
            assert t.closed
        assert f.closed
    assert redex.closed
    assert repr(Redex()) == "<Redex memory>"


def test_constructors_refuse_null_handles():
    with pytest.raises(TypeError):
        RedexFile(None, "x")
    with pytest.raises(TypeError):
        RedexTail(ffi.NULL, None, 0)
    with pytest.raises(ValueError):
        Redex("")


def test_status_codes_and_error_classes():
    assert Status.LAGGED == lib.NET_LAGGED == 3
    assert netmesh.NET_WAIT_FOREVER == 0xFFFFFFFF
    for status in range(-111, -99):
        err = netmesh.errors.error_for_status(status, "m")
        assert isinstance(err, RedexError) and isinstance(err, NetError)
        assert Status(status).name.startswith("ERR_REDEX_")
    assert issubclass(RedexClosedError, ShuttingDownError)
    assert Status.ERR_REDEX_CORRUPT == lib.NET_ERR_REDEX_CORRUPT == -110
    assert Status.ERR_REDEX_SEQ_EXHAUSTED == lib.NET_ERR_REDEX_SEQ_EXHAUSTED == -111
    assert type(netmesh.errors.error_for_status(-110)) is RedexCorruptError
    assert type(netmesh.errors.error_for_status(-111)) is RedexSeqExhaustedError
    assert netmesh.status_name(-110) == "NET_ERR_REDEX_CORRUPT"
    assert netmesh.status_name(-111) == "NET_ERR_REDEX_SEQ_EXHAUSTED"
    assert netmesh.status_name(lib.NET_LAGGED) == "NET_LAGGED"
    assert "unexpected" in str(netmesh.errors.error_for_status(lib.NET_LAGGED))
