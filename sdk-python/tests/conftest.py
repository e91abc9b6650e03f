"""Shared fixtures: the Net v0.11 test vectors and a few helpers."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Dict

import pytest

HERE = Path(__file__).resolve().parent
SDK_DIR = HERE.parent


def repo_root() -> Path:
    env = os.environ.get("NET_ROOT")
    if env:
        return Path(env)
    return SDK_DIR.parent


def vectors_dir() -> Path:
    for candidate in (repo_root() / "tests" / "vectors", SDK_DIR.parent / "tests" / "vectors"):
        if candidate.is_dir():
            return candidate
    raise RuntimeError("Net test vectors not found: set NET_ROOT to the repository root")


def _load(name: str) -> Dict[str, Any]:
    with open(vectors_dir() / name, encoding="utf-8") as f:
        return json.load(f)


@pytest.fixture(scope="session")
def identity_vectors() -> Dict[str, Any]:
    return _load("identity.json")


@pytest.fixture(scope="session")
def token_vectors() -> Dict[str, Any]:
    return _load("token.json")


@pytest.fixture(scope="session")
def envelope_vectors() -> Dict[str, Any]:
    return _load("envelope.json")


@pytest.fixture(scope="session")
def channel_vectors() -> Dict[str, Any]:
    return _load("channels.json")


def h(hexstr: str) -> bytes:
    return bytes.fromhex(hexstr)


SEED_A = bytes(range(32))
SEED_B = b"\x42" * 32
SEED_C = b"\xff" * 32


#: Meshes of the tests: two nodes in one process with one pre-shared key and
#: fast timers.
PSK = bytes([0x5A] * 32)
FAST = dict(psk=PSK, heartbeat_interval=0.05, session_timeout=1.0, hello_timeout=0.5)


@pytest.fixture
def redex_dir():
    """A fresh directory for persistent RedEX files, removed afterwards."""
    import shutil
    import tempfile

    path = tempfile.mkdtemp(prefix="netmesh-redex-")
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


# -- proving that a call was really waiting ------------------------------------------
#
# The pattern of tests/ffi_common/mod.rs: start the blocking call, let it run
# (yielding the processor, no clock), interrupt it (a close or a cancel), and
# look at the outcome, which tells a call interrupted *while it waited* from
# one interrupted before it began. A round that proves nothing is retried.


def let_it_block(yields: int = 50) -> None:
    """Lets a call just started on another thread reach its wait, without a
    clock: yields the GIL and the processor a number of times. Whether it got
    there is not assumed; until_won checks the outcome."""
    import time

    for _ in range(yields):
        time.sleep(0)


def until_won(rounds: int, wanted: int, attempt) -> int:
    """Runs ``attempt(round)`` until ``wanted`` rounds returned True (the
    call was interrupted while it waited), at most ``rounds`` times; fails
    if fewer were won. Returns the number of rounds run."""
    won = 0
    for round_ in range(rounds):
        if attempt(round_):
            won += 1
            if won == wanted:
                return round_ + 1
    raise AssertionError(f"the call was interrupted while waiting in only {won} of {rounds} rounds")


def free_wakes_blocked(call, free) -> int:
    """One round of a raw free racing a raw call blocked with no limit:
    ``call()`` starts on another thread and, once it had the chance to
    block, ``free()`` runs here (a raw free, whose status must be NET_OK, or
    a ``close()``, which raises on failure); the free must wake the call.
    Returns the call's status: NET_END when the free woke it in its wait,
    NET_ERR_SHUTTING_DOWN when the free came first (which proves nothing)."""
    import threading

    from netmesh._ffi import lib

    result = []
    t = threading.Thread(target=lambda: result.append(call()))
    t.start()
    let_it_block()
    assert free() in (None, lib.NET_OK)
    t.join(30)
    assert not t.is_alive(), "the free did not wake the blocked call"
    assert result[0] in (lib.NET_END, lib.NET_ERR_SHUTTING_DOWN), result
    return result[0]


def interrupted_while_waiting(message: str) -> bool:
    """Whether a call's error says it was interrupted while it waited (by a
    cancel or a free), as opposed to before it started."""
    return "while the call waited" in message or "while it waited" in message


def run_blocked(call, interrupt, where: str = "thread"):
    """Runs ``call()`` blocked on another thread (``where="thread"``) or on
    the main thread (``where="main"``, interrupted from a helper thread),
    calls ``interrupt()`` once it had the chance to block, and returns
    ``("value", v)`` or ``("error", exc)``."""
    import threading

    outcome = []

    def run_call() -> None:
        try:
            outcome.append(("value", call()))
        except BaseException as exc:  # noqa: BLE001 - the outcome under test
            outcome.append(("error", exc))

    if where == "thread":
        t = threading.Thread(target=run_call)
        t.start()
        let_it_block()
        interrupt()
        t.join(60)
        assert not t.is_alive(), "the interrupted call did not return"
    else:
        assert threading.current_thread() is threading.main_thread()

        def interrupter() -> None:
            let_it_block()
            interrupt()

        t = threading.Thread(target=interrupter)
        t.start()
        run_call()
        t.join(60)
    assert len(outcome) == 1
    return outcome[0]


class Delay:
    """How long to let a racing call run before the close, in yields (no
    clock): doubled when the close came too early (the call was refused),
    halved when it came too late (the call was over), so the race is found
    whatever the machine's speed and load (tests/ffi_cortex.rs)."""

    def __init__(self, yields: int = 8) -> None:
        self.yields = yields

    def run(self) -> None:
        let_it_block(self.yields)

    def too_early(self) -> None:
        self.yields = min(self.yields * 2, 1 << 16)

    def too_late(self) -> None:
        self.yields = max(self.yields // 2, 0)


# -- a Redis server that answers only what the bus needs to start ---------------------


class FakeRedis:
    """A RESP server on 127.0.0.1: it answers the connection's CLIENT
    commands and PING, and holds every XADD (and XRANGE) unanswered until
    :meth:`release` (XADDs are then answered with stream ids; XRANGEs never
    are). A bus over it blocks in dispatch and polls, deterministically."""

    def __init__(self) -> None:
        import socket
        import threading

        self._srv = socket.socket()
        self._srv.bind(("127.0.0.1", 0))
        self._srv.listen(16)
        self.port = self._srv.getsockname()[1]
        self.released = threading.Event()
        self.xadds = 0
        self.seen = threading.Condition()
        self._conns = []
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def release(self) -> None:
        self.released.set()

    def wait_for_xadd(self, timeout: float = 30) -> bool:
        with self.seen:
            return self.seen.wait_for(lambda: self.xadds > 0, timeout)

    def close(self) -> None:
        self._closed = True
        self.released.set()
        for c in list(self._conns):
            try:
                c.close()
            except OSError:
                pass
        self._srv.close()

    def _accept(self) -> None:
        import threading

        while not self._closed:
            try:
                conn, _ = self._srv.accept()
            except OSError:
                return
            self._conns.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    @staticmethod
    def _parse(data: bytes):
        commands = []
        while data.startswith(b"*"):
            try:
                end = data.index(b"\r\n")
                count, pos, args = int(data[1:end]), end + 2, []
                for _ in range(count):
                    end = data.index(b"\r\n", pos)
                    size = int(data[pos + 1 : end])
                    pos = end + 2
                    if len(data) < pos + size + 2:
                        return commands, data
                    args.append(data[pos : pos + size])
                    pos += size + 2
            except ValueError:
                return commands, data
            commands.append(args)
            data = data[pos:]
        return commands, data

    def _serve(self, conn) -> None:
        pending = b""
        sequence = 0
        while True:
            try:
                chunk = conn.recv(65536)
            except OSError:
                return
            if not chunk:
                return
            commands, pending = self._parse(pending + chunk)
            for args in commands:
                name = args[0].upper()
                if name == b"PING":
                    reply = b"+PONG\r\n"
                elif name == b"XADD":
                    with self.seen:
                        self.xadds += 1
                        self.seen.notify_all()
                    self.released.wait()
                    if self._closed:
                        return
                    sequence += 1
                    stream_id = b"%d-0" % sequence
                    reply = b"$%d\r\n%s\r\n" % (len(stream_id), stream_id)
                elif name == b"XRANGE":
                    continue  # never answered
                else:
                    reply = b"+OK\r\n"
                try:
                    conn.sendall(reply)
                except OSError:
                    return


@pytest.fixture
def fake_redis():
    server = FakeRedis()
    try:
        yield server
    finally:
        server.close()


def race_in_flight(run, close, on_result, label: str, wanted: int = 1, rounds: int = 40) -> None:
    """Free-waits-for-an-in-flight-call rounds: ``run()`` on a thread and,
    after an adaptive delay (yields, no clock), ``close()`` on this one.
    Either the call was refused (ShuttingDownError: the close came first,
    wait less next time), or it completed — with an intact result, which
    ``on_result(value)`` checks (``on_result(None)`` after a refusal). A
    round is conclusive when the call was still running when the close
    began: libnet's free returns (without BusyError) only once no call is
    inside the handle, so the close waited for it. Needs ``wanted``
    conclusive rounds."""
    import threading
    import time

    from netmesh import ShuttingDownError

    delay = Delay()
    won = 0
    log = []
    for _ in range(rounds):
        result = {}
        started = threading.Event()

        def worker() -> None:
            started.set()
            try:
                result["value"] = run()
            except ShuttingDownError as exc:  # includes RedexClosedError
                result["refused"] = exc
            except BaseException as exc:  # noqa: BLE001 - anything else fails the test
                result["other"] = exc
            result["end"] = time.perf_counter()

        t = threading.Thread(target=worker)
        t.start()
        started.wait()
        delay.run()
        close_start = time.perf_counter()
        close()  # raises BusyError if it could not drain the call
        t.join(60)
        assert not t.is_alive(), f"{label}: the call never returned"
        assert "other" not in result, result["other"]
        if "refused" in result:
            log.append("refused")
            on_result(None)
            delay.too_early()
            continue
        on_result(result["value"])
        if result["end"] < close_start:
            log.append("over")
            delay.too_late()
            continue
        log.append("in flight")
        won += 1
        if won == wanted:
            print(f"{label}: {log}")
            return
    raise AssertionError(f"{label}: no close met the call in flight in {rounds} rounds: {log}")
