"""The Cancel token itself, and how blocking calls wait: off the main thread
directly, on the main thread through a helper thread that a signal
interrupts (the blocked call is cancelled, KeyboardInterrupt raised, a value
the call had already taken kept). Each handle type's calls woken by a cancel
or a close: test_blocking.py."""

from __future__ import annotations

import signal
import threading
import time
from typing import Any, List

import pytest

import netmesh
from netmesh import Cancel, CancelledError, Redex, ShuttingDownError
from netmesh._ffi import ffi, lib
from netmesh.cancel import call_blocking

from conftest import interrupted_while_waiting, let_it_block, run_blocked, until_won


def test_cancel_before_the_call_says_so() -> None:
    with Redex() as redex, redex.open_file("cancel/before") as f, f.tail(0) as tail:
        with Cancel() as token:
            assert not token.cancelled
            token.cancel()
            token.cancel()  # idempotent
            assert token.cancelled
            for where in ("thread", "main"):
                kind, err = run_blocked(lambda: tail.next(cancel=token), lambda: None, where)
                assert kind == "error" and isinstance(err, CancelledError), err
                assert "already cancelled when it started" in err.message
                assert err.status == lib.NET_ERR_CANCELLED
        # Nothing was consumed.
        f.append(b"x")
        assert tail.next(5) == (0, b"x")


def test_one_token_cancels_every_call_using_it() -> None:
    with Redex() as redex, redex.open_file("cancel/many") as f:
        tails = [f.tail(0) for _ in range(4)]
        with Cancel() as token:
            errors: List[BaseException] = []
            entered = threading.Barrier(len(tails) + 1)

            def reader(tail: Any) -> None:
                entered.wait()
                try:
                    tail.next(cancel=token)
                except BaseException as exc:  # noqa: BLE001
                    errors.append(exc)

            threads = [threading.Thread(target=reader, args=(t,)) for t in tails]
            for t in threads:
                t.start()
            entered.wait()
            let_it_block()
            token.cancel()
            for t in threads:
                t.join(30)
            assert not any(t.is_alive() for t in threads)
            assert len(errors) == 4 and all(isinstance(e, CancelledError) for e in errors), errors
        for tail in tails:
            tail.close()


def test_closing_a_token_in_use_never_waits_and_frees_it_after_the_last_call() -> None:
    """net_cancel_free would wait for the calls using the token (and leak it
    with NET_ERR_BUSY after 5 s): Cancel.close() defers the free to the
    last call instead."""
    with Redex() as redex, redex.open_file("cancel/close") as f:
        tail = f.tail(0)
        token = Cancel()
        raw = token._ptr
        result: List[Any] = []

        def reader() -> None:
            try:
                result.append(tail.next(cancel=token))
            except BaseException as exc:  # noqa: BLE001
                result.append(exc)

        t = threading.Thread(target=reader)
        t.start()
        # Wait until the call holds the token (a use is counted before the
        # libnet call starts).
        while token._users == 0:
            time.sleep(0)
        token.close()
        assert token.closed
        alive = ffi.new("bool *")
        # Still alive for the call using it: the close did not free it.
        assert lib.net_cancel_is_cancelled(raw, alive) == lib.NET_OK and not alive[0]
        with pytest.raises(ShuttingDownError):
            tail.next(0, cancel=token)  # a closed token takes no new calls
        token.cancel()  # a closed token can still be cancelled while in use...
        t.join(30)
        assert not t.is_alive()
        assert isinstance(result[0], CancelledError), result
        # ...and is freed once its last call returned.
        assert lib.net_cancel_is_cancelled(raw, alive) == lib.NET_ERR_SHUTTING_DOWN
        token.cancel()  # a no-op now
        token.close()
        tail.close()


def test_cancel_as_a_context_manager_and_its_repr() -> None:
    with Cancel() as token:
        assert repr(token) == "<Cancel not cancelled>"
        raw = token._ptr
    assert token.closed and "closed" in repr(token)
    alive = ffi.new("bool *")
    assert lib.net_cancel_is_cancelled(raw, alive) == lib.NET_ERR_SHUTTING_DOWN
    with Redex() as redex, redex.open_file("cancel/closed") as f, f.tail(0) as tail:
        with pytest.raises(ShuttingDownError, match="Cancel is closed"):
            tail.next(0, cancel=token)
        with pytest.raises(TypeError):
            tail.next(0, cancel=threading.Event())  # type: ignore[arg-type]


def test_a_forgotten_token_is_freed_without_a_warning(recwarn: Any) -> None:
    import gc

    token = Cancel()
    raw = token._ptr
    del token
    gc.collect()
    alive = ffi.new("bool *")
    assert lib.net_cancel_is_cancelled(raw, alive) == lib.NET_ERR_SHUTTING_DOWN
    assert not [w for w in recwarn if issubclass(w.category, ResourceWarning) and "Cancel" in str(w.message)]


# -- the main thread -----------------------------------------------------------------


@pytest.fixture
def sigint_handler():
    # A runner started in the background may inherit SIGINT as ignored.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _sigint_once_waiting(main: Any) -> None:
    """SIGINT to the main thread once it waits for the call. (A signal that
    lands between the main thread's last check for signals and its wait is
    seen only when the wait ends, as for any blocking call in CPython.)"""
    while netmesh.cancel._main_waits == 0:
        time.sleep(0)
    let_it_block()
    signal.pthread_kill(main, signal.SIGINT)


def test_a_blocked_main_thread_call_runs_on_a_helper_thread() -> None:
    threads: List[str] = []

    def fn(token: Any) -> int:
        threads.append(threading.current_thread().name)
        return 7

    assert call_blocking(fn, None) == 7
    assert threads == ["netmesh-call"]
    # Off the main thread the call is made right there.
    t = threading.Thread(target=lambda: call_blocking(fn, None), name="worker")
    t.start()
    t.join()
    assert threads == ["netmesh-call", "worker"]


def test_sigint_cancels_a_call_blocked_on_the_main_thread(sigint_handler: Any) -> None:
    main = threading.main_thread().ident

    def attempt(_: int) -> bool:
        netmesh.cancel._last_abandoned = None
        with Redex() as redex, redex.open_file("cancel/sigint") as f:
            tail = f.tail(0)

            def interrupter() -> None:
                while netmesh.cancel._main_waits == 0:
                    time.sleep(0)
                let_it_block()
                signal.pthread_kill(main, signal.SIGINT)

            t = threading.Thread(target=interrupter)
            t.start()
            try:
                with pytest.raises(KeyboardInterrupt):
                    tail.next()
            finally:
                t.join()
            abandoned = netmesh.cancel._last_abandoned
            assert isinstance(abandoned, CancelledError), abandoned
            tail.close()
            return interrupted_while_waiting(abandoned.message)

    until_won(50, 3, attempt)


def test_a_value_taken_by_an_interrupted_call_is_kept(sigint_handler: Any) -> None:
    """The call had taken its item when the signal came (it finishes after
    the cancel): the item goes to ``keep`` and KeyboardInterrupt is raised."""
    main = threading.main_thread().ident
    kept: List[Any] = []

    def fn(token: Any) -> str:
        _sigint_once_waiting(main)
        # Finish only once the main thread cancelled this call, as a call
        # that took its item just before the cancel reached it.
        cancelled = ffi.new("bool *")
        deadline = time.monotonic() + 60
        while not cancelled[0] and time.monotonic() < deadline:
            lib.net_cancel_is_cancelled(token, cancelled)
            time.sleep(0)
        return "the item"

    with pytest.raises(KeyboardInterrupt):
        call_blocking(fn, None, keep=kept.append)
    assert kept == ["the item"]
    assert netmesh.cancel._last_abandoned == "the item"


def test_a_second_sigint_while_cancelling_does_not_leave_the_call_behind(sigint_handler: Any) -> None:
    main = threading.main_thread().ident
    finished = threading.Event()

    def fn(token: Any) -> None:
        _sigint_once_waiting(main)
        cancelled = ffi.new("bool *")
        while not cancelled[0]:
            lib.net_cancel_is_cancelled(token, cancelled)
            time.sleep(0)
        signal.pthread_kill(main, signal.SIGINT)  # Ctrl-C again, while cancelling
        for _ in range(100):
            time.sleep(0)
        finished.set()

    with pytest.raises(KeyboardInterrupt):
        call_blocking(fn, None)
    # The first interrupt is raised only after the call returned.
    assert finished.is_set()


def test_a_user_token_still_cancels_a_main_thread_call() -> None:
    with Redex() as redex, redex.open_file("cancel/main") as f, f.tail(0) as tail:

        def attempt(_: int) -> bool:
            with Cancel() as token:
                kind, err = run_blocked(lambda: tail.next(cancel=token), token.cancel, "main")
                assert kind == "error" and isinstance(err, CancelledError), err
                # The user's token is linked to the call's own; nothing stays linked.
                assert not token._children
                return interrupted_while_waiting(err.message)

        until_won(200, 3, attempt)
