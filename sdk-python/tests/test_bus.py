"""The event bus through the SDK: raw and batch ingest, polls with
cursors and filters, persistence over the embedded adapter, errors,
RedisStreamDedup, and the handle races (op after close, concurrent
closes, close waits for an ingest in flight). A release libnet has no
memory or discard adapter: the tests use the embedded one (RedEX memory
files unless a directory is given). Flush and poll woken by close or
cancel: test_blocking.py; BusyError from a lossy close: test_lifetime.py."""

from __future__ import annotations

import struct
import threading
from pathlib import Path
from typing import List

import pytest

from conftest import race_in_flight

from netmesh import (
    Bus,
    BusBackpressureError,
    BusConfigError,
    BusEvent,
    BusInvalidRequestError,
    IngestReport,
    RedisStreamDedup,
    ShuttingDownError,
)

MEMORY = {"num_shards": 3, "adapter": {"type": "redex"}, "batch": {"min_size": 16, "max_size": 256, "max_delay_ms": 1}}


def poll_all(bus: Bus, limit: int = 500) -> List[BusEvent]:
    events: List[BusEvent] = []
    cursor = None
    while True:
        page = bus.poll(cursor, limit)
        assert page.next_cursor
        events.extend(page.events)
        cursor = page.next_cursor
        if not page.events and not page.has_more:
            return events


def test_ingest_batch_and_poll_back_every_event_once() -> None:
    with Bus(MEMORY) as bus:
        assert bus.num_shards == 3
        for i in range(1000):
            bus.ingest(struct.pack("<I", i))
        report = bus.ingest_batch([struct.pack("<I", i) for i in range(1000, 4000)])
        assert report == IngestReport(queued=3000, sampled=0, taken=3000)
        report = bus.ingest_batch([struct.pack("<I", i) for i in range(4000, 5000)], copy=False)
        assert report == IngestReport(queued=1000, sampled=0, taken=1000)
        # Any bytes-like works, empty events included.
        assert bus.ingest_batch([bytearray(b"\x01\x02\x03\x04"), memoryview(b"\x05\x06\x07\x08")]).taken == 2
        assert bus.ingest_batch([]).taken == 0
        assert bus.ingest_batch([], copy=False).taken == 0
        with pytest.raises(TypeError):
            bus.ingest_batch(["text"], copy=False)  # type: ignore[list-item]
        bus.flush()
        events = poll_all(bus)
        got = sorted(struct.unpack("<I", e.payload)[0] for e in events)
        assert len(events) == 5002
        assert got[:5000] == list(range(5000))
        for e in events:
            assert 0 <= e.shard < 3 and e.timestamp_ns > 0 and e.id
            assert e.dedup_id is None  # the embedded adapter keeps none
        stats = bus.stats()
        assert stats["events_dispatched"] == 5002
        assert stats["adapter"] == "redex"
        assert len(stats["producer_nonce"]) == 16
        report = bus.shutdown()
        assert report["shutdown_was_lossy"] is False and report["events_dropped"] == 0
        with pytest.raises(ShuttingDownError):
            bus.ingest(b"late")
        assert bus.stats()["events_ingested"] == 5002


def test_filters_compare_integers_exactly_and_cursors_resume() -> None:
    with Bus(MEMORY) as bus:
        big = 2**63 + 1
        bus.ingest_batch([b'{"n":%d}' % big, b'{"n":%d}' % (big - 1), b'{"n":1}'])
        bus.flush()
        page = bus.poll(filter={"field": "n", "op": "eq", "value": big})
        assert [e.payload for e in page.events] == [b'{"n":%d}' % big]
        first = bus.poll(limit=1)
        rest = bus.poll(first.next_cursor, 10)
        assert len(first.events) + len(rest.events) == 3
        assert not {(e.shard, e.id) for e in first.events} & {(e.shard, e.id) for e in rest.events}


def test_the_embedded_adapter_persists_and_the_producer_state_too(tmp_path: Path) -> None:
    config = {
        "num_shards": 2,
        "adapter": {"type": "redex", "dir": str(tmp_path / "redex")},
        "producer_state_dir": str(tmp_path / "producer"),
    }
    with Bus(config) as bus:
        nonce = bus.stats()["producer_nonce"]
        bus.ingest_batch([b"%d" % i for i in range(3000)])
    with Bus(config) as bus:
        assert bus.stats()["producer_nonce"] == nonce
        events = poll_all(bus)
        assert sorted(int(e.payload) for e in events) == list(range(3000))
        assert all(e.dedup_id is None for e in events)


def test_errors_are_typed_and_name_the_problem() -> None:
    with pytest.raises(BusConfigError, match="num_shards"):
        Bus(num_shards=0)
    with pytest.raises(BusConfigError, match="shards"):
        Bus(shards=2)
    with pytest.raises(BusConfigError, match="adapter"):
        Bus(adapter={"type": "kafka"})
    for test_only in ("memory", "discard"):  # test builds of libnet only
        with pytest.raises(BusConfigError):
            Bus(adapter={"type": test_only})
    with pytest.raises(BusConfigError):
        Bus(adapter=object())
    with Bus(MEMORY) as bus:
        with pytest.raises(BusInvalidRequestError, match="limit"):
            bus.poll(limit=0)
        with pytest.raises(BusInvalidRequestError):
            bus.poll("not a cursor")
        with pytest.raises(TypeError):
            bus.ingest("text")  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            bus.ingest_batch(["text"])  # type: ignore[list-item]
    with Bus(
        num_shards=1,
        shard_capacity=8,
        backpressure={"mode": "fail_producer"},
        adapter={"type": "redex"},
        batch={"min_size": 8, "max_size": 8, "max_delay_ms": 1000},
    ) as bus:
        report = bus.ingest_batch([b"x"] * 100)
        assert report.taken < 100 and report.queued == report.taken
        with pytest.raises(BusBackpressureError):
            for _ in range(1000):
                bus.ingest(b"y")


def test_redis_stream_dedup_is_fifo_and_clamped() -> None:
    with RedisStreamDedup(2) as d:
        assert [d.is_duplicate(x) for x in ["a", "b", "a", "c", "a"]] == [False, False, True, False, False]
        assert d.check_batch(["x", "y", "x"]) == [False, False, True]
        assert (len(d), d.capacity, d.duplicates) == (2, 2, 2)
        d.clear()
        assert len(d) == 0
    with RedisStreamDedup(2**40) as big:
        assert big.capacity == 1 << 24
    with pytest.raises(ValueError):
        RedisStreamDedup(-1)


def test_race_op_after_close_is_refused() -> None:
    bus = Bus(MEMORY)
    d = RedisStreamDedup(8)
    bus.close()
    d.close()
    with pytest.raises(ShuttingDownError):
        bus.ingest(b"x")
    with pytest.raises(ShuttingDownError):
        bus.poll()
    with pytest.raises(ShuttingDownError):
        d.is_duplicate("x")
    bus.close()  # idempotent
    d.close()


def test_race_concurrent_closes_are_idempotent_with_ops_racing() -> None:
    for _ in range(5):
        bus = Bus(MEMORY)
        d = RedisStreamDedup(64)
        errors: List[BaseException] = []

        def ops(kind: int) -> None:
            try:
                for i in range(200):
                    try:
                        if kind == 0:
                            bus.ingest(b"%d" % i)
                        elif kind == 1:
                            bus.poll(limit=10)
                        else:
                            d.is_duplicate(str(i))
                    except ShuttingDownError:
                        pass
            except BaseException as exc:  # noqa: BLE001
                errors.append(exc)

        threads = [threading.Thread(target=ops, args=(k,)) for k in range(3)]
        threads += [threading.Thread(target=lambda: (bus.close(), d.close())) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert not errors, errors
        assert bus.closed and d.closed


def test_race_close_waits_for_an_ingest_in_flight() -> None:
    """A batch of a million events in flight when the bus is closed: the
    close waits for it (and drains it: no BusyError) or refuses it."""
    n = 1_000_000
    batch = [b"%08d" % i for i in range(n)]
    holder = []

    def new_bus() -> Bus:
        return Bus(num_shards=1, shard_capacity=1 << 21, adapter={"type": "redex"})

    def on_result(report: object) -> None:
        assert report is None or report == IngestReport(n, 0, n)
        holder[0] = new_bus()

    holder.append(new_bus())
    try:
        race_in_flight(
            lambda: holder[0].ingest_batch(batch),
            lambda: holder[0].close(),
            on_result,
            "bus ingest_batch",
            wanted=2,
        )
    finally:
        holder[0].close()
