"""Closing and finalizing handles: ``close()`` raises the free's status
(BusyError for NET_ERR_BUSY) instead of swallowing it; ``__del__`` never
calls libnet — it warns (ResourceWarning) and hands the free to a
background daemon thread, so a finalizer never blocks on a drain or an
fsync; and libnet's log records reach the ``netmesh`` logger."""

from __future__ import annotations

import gc
import logging
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any, List

import pytest

import netmesh
from netmesh import (
    Bus,
    BusyError,
    Identity,
    LogLevel,
    Memories,
    Mesh,
    Redex,
    ShuttingDownError,
    Tasks,
)
from netmesh._ffi import ffi, lib
from netmesh._handle import _reaper

from conftest import FakeRedis


# -- finalizers -------------------------------------------------------------------------


def test_every_handle_type_left_unclosed_warns_and_is_freed_in_the_background(tmp_path: Path) -> None:
    redex = Redex(tmp_path)
    f = redex.open_file("fin/file", persistent=True)
    f.append(b"kept")
    tail = f.tail(0)
    tasks = Tasks(redex, 1)
    watch = tasks.watch()
    mesh = Mesh()
    bus = Bus(num_shards=1)
    ident = Identity.generate()
    raws = {
        "RedexTail": (tail._ptr, lambda p: lib.net_redex_tail_next(p, 0, ffi.new("uint64_t *"), ffi.new("net_bytes_t *"), ffi.NULL, ffi.NULL)),
        "Watch": (watch._ptr, lambda p: lib.net_model_watch_next(p, 0, ffi.new("net_bytes_t *"), ffi.new("uint64_t *"), ffi.NULL, ffi.NULL)),
        "Tasks": (tasks._ptr, lambda p: lib.net_model_kind(p, ffi.new("uint32_t *"))),
        "RedexFile": (f._ptr, lambda p: lib.net_redex_file_len(p, ffi.new("uint64_t *"))),
        "Redex": (redex._ptr, lambda p: lib.net_redex_open_file(p, b"x/y", 3, ffi.NULL, 0, ffi.new("net_redex_file_t **"))),
        "Mesh": (mesh._ptr, lambda p: lib.net_mesh_node_id(p, ffi.new("uint64_t *"))),
        "Bus": (bus._ptr, lambda p: lib.net_bus_num_shards(p, ffi.new("uint16_t *"))),
        "Identity": (ident._ptr, lambda p: lib.net_identity_node_id(p, ffi.new("uint64_t *"))),
    }
    with pytest.warns(ResourceWarning) as record:
        del tail, watch, tasks, f, redex, mesh, bus, ident
        gc.collect()
    warned = {str(w.message).split()[1] for w in record}
    assert set(raws) <= warned, warned
    assert _reaper.wait_idle(60)
    for kind, (raw, call) in raws.items():
        assert call(raw) == lib.NET_ERR_SHUTTING_DOWN, kind
    # The file was closed properly (synced, channel released) by the reaper.
    with Redex(tmp_path) as again, again.open_file("fin/file", persistent=True) as g:
        assert g.read(0) == b"kept"


def _bus_with_a_held_write(fake_redis: FakeRedis, shutdown_timeout_ms: int) -> Bus:
    """A bus over ``fake_redis`` dispatching one event whose XADD the server
    holds unanswered (until ``fake_redis.release()``): its shutdown blocks
    for up to ``shutdown_timeout_ms``, then gives the event up."""
    bus = Bus(
        num_shards=1,
        adapter={"type": "redis", "url": fake_redis.url, "command_timeout_ms": 600000},
        shutdown_timeout_ms=shutdown_timeout_ms,
    )
    bus.ingest(b"held by the server")
    assert fake_redis.wait_for_xadd()
    return bus


def test_a_finalizer_never_waits_for_the_free(fake_redis: FakeRedis) -> None:
    """A bus whose shutdown blocks (its Redis never answers the XADD it is
    dispatching): dropping it returns at once; the reaper's free finishes
    once the server answers. Deterministic: the free cannot complete before
    the release, and the finalizer had returned by then."""
    bus = _bus_with_a_held_write(fake_redis, shutdown_timeout_ms=600000)
    raw = bus._ptr
    with pytest.warns(ResourceWarning, match="Bus was never closed"):
        del bus
        gc.collect()
    # The finalizer has returned; the free cannot have finished.
    assert not _reaper.wait_idle(0)
    fake_redis.release()
    assert _reaper.wait_idle(60)
    out = ffi.new("uint16_t *")
    assert lib.net_bus_num_shards(raw, out) == lib.NET_ERR_SHUTTING_DOWN


def test_failed_background_frees_are_logged(fake_redis: FakeRedis, caplog: Any) -> None:
    bus = _bus_with_a_held_write(fake_redis, shutdown_timeout_ms=100)
    with caplog.at_level(logging.WARNING, logger="netmesh"):
        with pytest.warns(ResourceWarning):
            del bus
            gc.collect()
        assert _reaper.wait_idle(60)
    messages = [r.getMessage() for r in caplog.records if r.name == "netmesh"]
    assert any("freeing a Bus left unclosed failed" in m and "lossily" in m for m in messages), messages


# -- close() raises the free's status ------------------------------------------------------


def test_close_raises_busy_when_the_bus_shutdown_loses_events(fake_redis: FakeRedis) -> None:
    bus = _bus_with_a_held_write(fake_redis, shutdown_timeout_ms=100)
    with pytest.raises(BusyError) as info:
        bus.close()
    assert info.value.status == lib.NET_ERR_BUSY
    assert "lossily" in info.value.message and "stranded" in info.value.message
    assert bus.closed
    bus.close()  # closed: nothing more to report
    with pytest.raises(ShuttingDownError):
        bus.ingest(b"late")


def test_busy_is_a_net_error_with_its_status() -> None:
    assert issubclass(BusyError, netmesh.NetError)
    err = netmesh.errors.error_for_status(lib.NET_ERR_BUSY, "m")
    assert type(err) is BusyError and err.status == netmesh.Status.ERR_BUSY


def test_frees_of_every_type_return_ok_and_are_idempotent() -> None:
    with Redex() as redex:
        for make in (
            lambda: redex.open_file("free/f"),
            lambda: Tasks(redex, 1),
            lambda: Memories(redex, 1),
            lambda: Identity.generate(),
        ):
            h = make()
            raw = h._ptr
            h.close()
            h.close()
            assert type(h)._free(raw) == lib.NET_OK  # NULL-safe and idempotent in libnet too
        assert lib.net_model_watch_free(ffi.NULL) == lib.NET_OK


# -- logging -------------------------------------------------------------------------------


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: List[logging.LogRecord] = []
        self.arrived = threading.Condition()

    def emit(self, record: logging.LogRecord) -> None:
        with self.arrived:
            self.records.append(record)
            self.arrived.notify_all()

    def wait_for(self, predicate: Any, timeout: float = 30) -> bool:
        with self.arrived:
            return self.arrived.wait_for(lambda: any(predicate(r) for r in self.records), timeout)


@pytest.fixture
def netmesh_records():
    handler = _Records()
    logger = logging.getLogger("netmesh")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        netmesh.set_log_level(LogLevel.WARN)


def _provoke_a_recovery_warning(base: Path, channel: str) -> None:
    """A persistent channel whose manifest is garbage: recovery rewrites it
    and libnet logs a warning (tests/ffi_log.rs)."""
    directory = base / channel
    directory.mkdir(parents=True)
    (directory / "manifest").write_bytes(b"not a manifest at all")
    with Redex(base) as redex:
        redex.open_file(channel, persistent=True).close()


def test_libnet_warnings_reach_the_netmesh_logger(tmp_path: Path, netmesh_records: _Records) -> None:
    assert netmesh.log_level() == LogLevel.WARN  # enabled at import
    _provoke_a_recovery_warning(tmp_path, "log/first")
    assert netmesh_records.wait_for(lambda r: "recovery" in r.getMessage())
    record = next(r for r in netmesh_records.records if "recovery" in r.getMessage())
    assert record.name == "netmesh" and record.levelno == logging.WARNING
    assert record.net_target and record.getMessage().startswith(record.net_target + ": ")  # type: ignore[attr-defined]


def test_set_log_level_off_stops_records(tmp_path: Path, netmesh_records: _Records) -> None:
    netmesh.set_log_level("off")
    assert netmesh.log_level() == LogLevel.OFF
    _provoke_a_recovery_warning(tmp_path, "log/while-off")
    netmesh.set_log_level("warn")
    _provoke_a_recovery_warning(tmp_path, "log/after")
    # Records come in order: had the first been queued, it would be here
    # before the second.
    assert netmesh_records.wait_for(lambda r: "log/after" in r.getMessage())
    assert not any("log/while-off" in r.getMessage() for r in netmesh_records.records)


def test_set_log_level_validates() -> None:
    with pytest.raises(ValueError):
        netmesh.set_log_level("loud")
    with pytest.raises(ValueError):
        netmesh.set_log_level(6)
    with pytest.raises(TypeError):
        netmesh.set_log_level(2.0)  # type: ignore[arg-type]
    netmesh.set_log_level(LogLevel.INFO)
    assert netmesh.log_level() == LogLevel.INFO
    netmesh.set_log_level(2)
    assert netmesh.log_level() == LogLevel.WARN


def test_the_level_at_import_comes_from_the_environment() -> None:
    code = "import netmesh, threading; print(netmesh.log_level().name, any(t.name == 'netmesh-log' for t in threading.enumerate()))"
    for value, expected in (("", "WARN True"), ("debug", "DEBUG True"), ("off", "OFF False")):
        env = dict(os.environ, NETMESH_LOG_LEVEL=value)
        r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        assert r.stdout.strip() == expected, (value, r.stdout, r.stderr)


def test_the_background_threads_never_keep_the_process_alive(tmp_path: Path) -> None:
    # A process that leaves a tail blocked on a helper thread, the log
    # puller running and a handle for the reaper still exits.
    script = tmp_path / "exits.py"
    script.write_text(
        "import threading, netmesh\n"
        "redex = netmesh.Redex(); f = redex.open_file('a/b'); tail = f.tail(0)\n"
        "threading.Thread(target=tail.next, daemon=True).start()\n"
        "leaked = netmesh.Identity.generate(); del leaked\n"
        "print('bye')\n"
    )
    r = subprocess.run([sys.executable, "-W", "ignore", str(script)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "bye"
