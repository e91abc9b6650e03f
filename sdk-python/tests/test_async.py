"""asyncio: the ``*_async`` forms of the blocking calls and the async
iterators wait on helper threads (never on the event loop), a cancelled
task cancels its libnet call, nothing a cancelled call had already taken is
lost, and ``async with`` / ``aclose()`` close handles off the loop.

No pytest plugin: each test runs its coroutine with ``asyncio.run``."""

from __future__ import annotations

import asyncio
import threading
from typing import Any, List

import pytest

import netmesh
from netmesh import (
    Bus,
    Cancel,
    CancelledError,
    Entry,
    Mesh,
    Redex,
    RedexTailEndedError,
    ShuttingDownError,
    Tasks,
)

from conftest import FAST, interrupted_while_waiting, until_won


async def _let_it_block() -> None:
    """Lets a call just handed to a helper thread reach its wait (yields of
    the loop and of the GIL, no clock)."""
    for _ in range(50):
        await asyncio.sleep(0)
        threading.Event().wait(0)


def test_next_async_and_async_iteration_wait_off_the_loop() -> None:
    async def main() -> None:
        with Redex() as redex, redex.open_file("async/tail") as f, f.tail(0) as tail:
            f.append(b"backlog")
            assert await tail.next_async(0) == Entry(0, b"backlog")
            assert await tail.next_async(0) is None
            waiting = asyncio.ensure_future(tail.next_async())
            ticks = 0
            while not waiting.done():  # the loop runs on while the call waits
                ticks += 1
                if ticks == 20:
                    f.append(b"live")
                await asyncio.sleep(0)
            assert waiting.result() == Entry(1, b"live")
            f.append(b"more")
            got = []
            async for item in tail:
                got.append(item)
                if len(got) == 1:
                    f.shutdown()  # ends the iteration after the backlog
            assert got == [Entry(2, b"more")]
            with pytest.raises(RedexTailEndedError):
                await tail.next_async()

    asyncio.run(main())


def test_cancelling_the_task_cancels_the_libnet_call() -> None:
    async def attempt() -> bool:
        with Redex() as redex, redex.open_file("async/cancel") as f, f.tail(0) as tail:
            netmesh.cancel._last_abandoned = None
            task = asyncio.ensure_future(tail.next_async())
            await _let_it_block()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            abandoned = netmesh.cancel._last_abandoned
            assert isinstance(abandoned, CancelledError), abandoned
            # The tail reads on.
            f.append(b"after")
            assert await tail.next_async(5) == Entry(0, b"after")
            return interrupted_while_waiting(abandoned.message)

    until_won(100, 3, lambda _: asyncio.run(attempt()))


def test_timeouts_and_cancellations_lose_nothing() -> None:
    """Entries appended while readers are cancelled (asyncio.wait_for timing
    out, tasks cancelled mid-call): every entry is read once, in order — an
    entry a cancelled call had already taken comes with the next call."""

    async def main() -> None:
        with Redex() as redex, redex.open_file("async/noloss") as f, f.tail(0) as tail:
            total = 300
            received: List[int] = []

            async def writer() -> None:
                for i in range(total):
                    f.append(b"%d" % i)
                    await asyncio.sleep(0)

            w = asyncio.ensure_future(writer())
            while len(received) < total:
                try:
                    item = await asyncio.wait_for(tail.next_async(), 0.001)
                except asyncio.TimeoutError:
                    continue
                assert isinstance(item, Entry)
                received.append(item.seq)
            await w
            assert received == list(range(total))
            assert await tail.next_async(0) is None

    asyncio.run(main())


def test_a_cancel_token_works_with_async_calls() -> None:
    async def main() -> None:
        with Redex() as redex, redex.open_file("async/token") as f, f.tail(0) as tail:
            with Cancel() as token:
                task = asyncio.ensure_future(tail.next_async(cancel=token))
                await _let_it_block()
                token.cancel()  # from the loop, or any thread
                with pytest.raises(CancelledError):
                    await task
                with pytest.raises(CancelledError, match="already cancelled"):
                    await tail.next_async(0, cancel=token)

    asyncio.run(main())


def test_async_model_watch_and_wait() -> None:
    async def main() -> None:
        with Redex() as redex:
            async with Tasks(redex, 1) as tasks:
                seq = tasks.create(1, "a")
                assert await tasks.wait_for_seq_async(seq, 5)
                assert not await tasks.wait_for_seq_async(10**6, 0)
                async with tasks.watch() as watch:
                    first = await watch.next_async(5)
                    assert [t.id for t in first] == [1]
                    tasks.create(2, "b")
                    async for rows in watch:
                        assert [t.id for t in rows] == [1, 2]
                        break
                assert watch.closed
            assert tasks.closed

    asyncio.run(main())


def test_async_mesh_and_bus() -> None:
    async def main() -> None:
        async with Mesh(**FAST) as a, Mesh(**FAST) as b:
            await a.connect_async(b.local_addr, b.public_key, b.node_id)
            async with a.open_stream(b.node_id, 5, reliable=True) as s:
                assert await s.send_blocking_async([b"one", b"two"], 5)
                got = [await b.recv_async(5)]
                while len(got) < 2:
                    got.extend(await b.recv_batch_async(8, 5))
                assert [e.data for e in got] == [b"one", b"two"]
            task = asyncio.ensure_future(b.recv_async())
            await _let_it_block()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert await b.accept_async(12345, 0) is None
            seen = []

            async def consume() -> None:
                async for event in b:
                    seen.append(event)

            consumer = asyncio.ensure_future(consume())
            await _let_it_block()
            await b.aclose()  # ends the async iteration
            await consumer
            assert seen == []
        async with Bus(num_shards=1, adapter={"type": "redex"}) as bus:
            bus.ingest(b"e")
            await bus.flush_async()
            page = await bus.poll_async()
            assert [e.payload for e in page.events] == [b"e"]

    asyncio.run(main())


def test_aclose_raises_what_close_raises() -> None:
    async def main() -> None:
        redex = Redex()
        await redex.aclose()
        await redex.aclose()  # idempotent
        with pytest.raises(ShuttingDownError):
            redex.open_file("x")

    asyncio.run(main())


def test_the_loop_stays_responsive_while_many_calls_wait() -> None:
    async def main() -> Any:
        with Redex() as redex, redex.open_file("async/many") as f:
            tails = [f.tail(0) for _ in range(20)]
            tasks = [asyncio.ensure_future(t.next_async()) for t in tails]
            await _let_it_block()
            f.append(b"wake")
            results = await asyncio.gather(*tasks)
            assert all(r == Entry(0, b"wake") for r in results)
            for t in tails:
                t.close()

    asyncio.run(main())


def test_a_tail_read_by_a_thread_never_blocks_the_loop() -> None:
    """libnet serves the calls on one tail one at a time: while a thread
    waits in tail.next(), even a next_async(0) would wait behind it — on the
    loop's thread that would block the loop, and this test (which appends
    from the loop) would never end."""

    async def main() -> None:
        with Redex() as redex, redex.open_file("async/shared") as f, f.tail(0) as tail:
            got: List[Any] = []
            t = threading.Thread(target=lambda: got.append(tail.next()))
            t.start()
            while tail._calls == 0:  # the thread is inside (or entering) libnet
                await asyncio.sleep(0)
            task = asyncio.ensure_future(tail.next_async(0))
            for _ in range(100):
                if task.done():
                    break
                await asyncio.sleep(0)  # the loop runs while the call waits
            f.append(b"x")
            results = [await task]
            if not got:  # the task took the entry: give the thread another
                f.append(b"y")
            t.join(30)
            assert not t.is_alive()
            results += got
            assert Entry(0, b"x") in results and len(results) == 2
            assert results.count(None) + results.count(Entry(1, b"y")) == 1

    asyncio.run(main())
