"""netmesh demo: identities, a token issued, verified and delegated, an
identity sealed into an envelope and opened again, a RedEX log written,
reopened and tailed (and a blocked read cancelled, from a thread and from
asyncio), a CortEX tasks model watched live, closed, reopened
from disk and restored from a snapshot, two mesh nodes on 127.0.0.1
handshaking and streaming events reliably both ways, and the event bus:
half a million events batch-ingested into persistent shards, polled back
with a cursor after a restart, and filtered.

Run with `make -C sdk-python demo` (it installs the wheel first).
"""

import asyncio
import os
import shutil
import tempfile
import threading
import time

from netmesh import (
    Bus,
    Cancel,
    CancelledError,
    Entry,
    EveryN,
    Identity,
    Lagged,
    Mesh,
    Redex,
    Scope,
    TaskFilter,
    Tasks,
    Token,
    TokenDelegationExhaustedError,
    channel_hash,
    open_envelope,
    seal_envelope,
    version,
    x25519_public_key,
)


def short(key: bytes) -> str:
    return key.hex()[:12] + "…"


def step(title: str) -> None:
    print(f"\n== {title}")


print(f"netmesh demo (libnet {version()})")

with Identity.generate() as alice, Identity.generate() as bob, Identity.generate() as carol:
    step("identities")
    for name, who in (("alice", alice), ("bob", bob), ("carol", carol)):
        print(f"  {name:<6} entity {short(who.entity_id)}  origin {who.origin_hash:#018x}")

    step("alice issues bob a token")
    lidar = channel_hash("sensors/lidar")
    token = Token.issue(
        alice,
        bob.public_key,
        Scope.PUBLISH | Scope.SUBSCRIBE | Scope.DELEGATE,
        lidar,
        ttl_secs=3600,
        delegation_depth=1,
    )
    print(f"  channel      sensors/lidar (hash {lidar:#06x})")
    print(f"  scope        {token.scope}")
    print(f"  valid for    {token.not_after - token.not_before} s, delegation depth {token.delegation_depth}")
    token.verify()
    token.validate()
    print(f"  signature    ok (issuer {short(token.issuer)})")
    print(f"  valid now    {token.is_valid()}, expires in {token.not_after - int(time.time())} s")
    print(f"  bob may publish: {token.authorizes(Scope.PUBLISH, lidar)}, "
          f"administer: {token.authorizes(Scope.ADMIN, lidar)}")

    step("bob delegates SUBSCRIBE to carol")
    child = token.delegate(bob, carol.public_key, Scope.SUBSCRIBE)
    child.verify()
    child.validate()
    print(f"  child token  issuer {short(child.issuer)} (bob) -> subject {short(child.subject)} (carol)")
    print(f"  scope        {child.scope}, depth {child.delegation_depth}, verifies: yes")
    print(f"  carol may subscribe: {child.authorizes(Scope.SUBSCRIBE, lidar)}, "
          f"publish: {child.authorizes(Scope.PUBLISH, lidar)}")

    step("carol tries to delegate further")
    try:
        child.delegate(carol, alice.public_key, Scope.SUBSCRIBE)
        print("  unexpectedly allowed!")
        raise SystemExit(1)
    except TokenDelegationExhaustedError as exc:
        print(f"  refused: {type(exc).__name__}: {exc.message}")

    step("alice seals her identity to a recipient")
    recipient_secret = os.urandom(32)
    recipient_public = x25519_public_key(recipient_secret)
    chain_link = os.urandom(32)
    envelope = seal_envelope(alice, recipient_public, chain_link)
    print(f"  recipient    X25519 {short(recipient_public)}")
    print(f"  envelope     {len(envelope)} bytes, bound to chain link {short(chain_link)}")
    with open_envelope(envelope, recipient_secret, chain_link, expected_signer=alice.public_key) as opened:
        same = opened.entity_id == alice.entity_id
        print(f"  opened       entity {short(opened.entity_id)} — alice's: {'yes' if same else 'NO'}")
        if not same:
            raise SystemExit(1)

step("a RedEX log: append, reopen, tail")
base = tempfile.mkdtemp(prefix="netmesh-demo-")
try:
    with Redex(base) as redex:
        with redex.open_file("sensors/lidar", persistent=True, fsync=EveryN(1)) as log:
            first = log.append(b"scan 0")
            log.append_batch([b"scan 1", b"scan 2"])
            print(f"  appended     seq {first}..{log.next_seq - 1} under {base}")
    with Redex(base) as redex:
        with redex.open_file("sensors/lidar", persistent=True, max_events=3) as log:
            print(f"  reopened     {len(log)} entries: {[p.decode() for _, p in log.read_range(0)]}")
            with log.tail(0) as tail:
                writer = threading.Thread(target=lambda: [log.append(b"scan %d" % i) for i in (3, 4)])
                writer.start()
                got = []
                for item in tail:  # backfill 0..2, then the live appends
                    assert isinstance(item, Entry)
                    got.append(item.seq)
                    if item.seq == 4:
                        break
                writer.join()
                print(f"  tail saw     seq {got}")
            late = log.tail(0)
            removed = log.sweep_retention()
            lag = late.next(0)
            assert isinstance(lag, Lagged)
            print(f"  retention    removed {removed}; a late tail is told it missed "
                  f"{lag.missed_from}..{lag.resume_at - 1}, then gets {late.next(0)}")
            late.close()
            with log.tail(log.next_seq) as idle, Cancel() as stop:
                threading.Timer(0.05, stop.cancel).start()  # any thread may cancel
                try:
                    idle.next(cancel=stop)  # waits for an append that never comes
                except CancelledError as exc:
                    print(f"  cancelled    a blocked tail.next(): {exc.message}")

                async def read_with_a_deadline() -> None:
                    try:
                        await asyncio.wait_for(idle.next_async(), 0.05)
                    except asyncio.TimeoutError:
                        print("  asyncio      wait_for(tail.next_async(), 0.05) timed out; "
                              "the libnet call was cancelled with the task")

                asyncio.run(read_with_a_deadline())
finally:
    shutil.rmtree(base, ignore_errors=True)

step("CortEX: a tasks model, watched live, reopened and restored")
base = tempfile.mkdtemp(prefix="netmesh-demo-cortex-")
try:
    with Identity.generate() as me:
        origin = me.origin_hash  # the writer stamped on every event
    with Redex(base) as redex:
        with Tasks(redex, origin, persistent=True, fsync=EveryN(1)) as tasks:
            pending = TaskFilter(status="pending", order_by="id_asc")
            updates = []
            with tasks.watch(pending) as watch:
                def show() -> None:
                    for rows in watch:  # the current rows first, then each change
                        if isinstance(rows, list):
                            updates.append([t.title for t in rows])
                            print(f"  watch        pending = {updates[-1]}")

                watcher = threading.Thread(target=show)
                watcher.start()
                for seq in (tasks.create(1, "write the spec"), tasks.create(2, "build it"),
                            tasks.rename(2, "build it well"), tasks.complete(1)):
                    tasks.wait_for_seq(seq, timeout=5)  # read-your-writes
                    time.sleep(0.02)  # let the watcher print each step
                last = tasks.create(3, "ship it")
                tasks.wait_for_seq(last, timeout=5)
                time.sleep(0.05)
            watcher.join(5)
            rows = tasks.find_many()
            print(f"  state        {[(t.id, t.title, t.status) for t in rows]}")
            print(f"  queries      pending={tasks.count_where(pending)}, "
                  f"any 'spec'={tasks.exists_where(TaskFilter(title_contains='spec'))}")
            snapshot = tasks.snapshot()
            progress = tasks.progress()
            print(f"  progress     applied through seq {progress.applied_through_seq}, "
                  f"next app seq {progress.app_seq}")
            print(f"  snapshot     {len(snapshot.data)} bytes through seq {snapshot.last_seq}")
        print(f"  closed       (log under {base}/cortex/tasks)")
        with Tasks(redex, origin, persistent=True) as reopened:
            reopened.wait_for_seq(last, timeout=5)
            same = reopened.find_many() == rows
            print(f"  reopened     replayed the log: same state: {'yes' if same else 'NO'}")
            if not same:
                raise SystemExit(1)
    with Redex() as scratch:
        with Tasks.restore(scratch, origin, snapshot) as restored:
            same = [(t.id, t.title, t.status) for t in restored.find_many()] == \
                [(t.id, t.title, t.status) for t in rows]
            print(f"  restored     from the snapshot into a fresh manager: same state: "
                  f"{'yes' if same else 'NO'}")
            if not same:
                raise SystemExit(1)
finally:
    shutil.rmtree(base, ignore_errors=True)

step("mesh: two nodes on 127.0.0.1, reliable streams both ways")
psk = os.urandom(32)
options = dict(psk=psk, window=0, recv_buffer=4 << 20, send_buffer=4 << 20)
with Mesh(**options) as a, Mesh(**options) as b:
    a.start()
    b.start()
    t0 = time.perf_counter()
    a.connect(b.local_addr, b.public_key, b.node_id)  # Noise NKpsk0, routed form
    handshake_ms = (time.perf_counter() - t0) * 1000
    print(f"  a            {a.node_id:#018x} at {a.local_addr}")
    print(f"  b            {b.node_id:#018x} at {b.local_addr}")
    print(f"  handshake    {handshake_ms:.1f} ms (including the identity exchange)")
    total, size, batch = 200_000, 64, 1000
    payload = bytes(size)

    def pump(src: Mesh, dst: Mesh, stream_id: int) -> float:
        received = []
        t = threading.Thread(target=lambda: received.append(_drain(dst, total)))
        t.start()
        start = time.perf_counter()
        with src.open_stream(dst.node_id, stream_id, reliable=True) as s:
            for _ in range(total // batch):
                s.send_blocking([payload] * batch, timeout=30)
        t.join(60)
        elapsed = time.perf_counter() - start
        if received != [total]:
            raise SystemExit(f"  lost events: {received}")
        return elapsed

    def _drain(node: Mesh, n: int) -> int:
        got = 0
        deadline = time.monotonic() + 60
        while got < n and time.monotonic() < deadline:
            got += len(node.recv_batch(4096, timeout=0.5))
        return got

    for src, dst, label, sid in ((a, b, "a → b", 1), (b, a, "b → a", 2)):
        secs = pump(src, dst, sid)
        print(f"  {label}        {total} reliable {size}-byte events in {secs:.2f} s: "
              f"{total / secs / 1e6:.2f} M events/s ({total * size / secs / 1e6:.1f} MB/s of payload)")
    peer = a.peers()[0]
    stats = a.stats()
    print(f"  session      id {peer['session_id']:#018x}, identity {peer['identity']} "
          f"(entity {peer['entity'][:12]}…), health {peer['health']}")
    print(f"  a's counters datagrams sent {stats['datagrams_sent']}, received "
          f"{stats['datagrams_received']}, retransmits {stats['retransmits']}, "
          f"grants {stats['grants_sent']}, acks {stats['acks_sent']}")

step("event bus from Python: persistent shards, batch ingest, cursor polls, a restart")
base = tempfile.mkdtemp(prefix="netmesh-demo-bus-")
try:
    config = dict(
        num_shards=4,
        adapter={"type": "redex", "dir": os.path.join(base, "bus")},
        producer_state_dir=os.path.join(base, "producer"),
    )
    total, batch = 500_000, 1000
    events = [b'{"n":%d}' % i for i in range(total)]
    with Bus(config) as bus:
        nonce = bus.stats()["producer_nonce"]
        start = time.perf_counter()
        for i in range(0, total, batch):
            chunk = events[i : i + batch]
            while chunk:  # backpressure refuses the tail: retry it
                chunk = chunk[bus.ingest_batch(chunk).taken :]
        bus.flush()
        secs = time.perf_counter() - start
        print(f"  ingested     {total} events in {secs:.2f} s: {total / secs / 1e6:.2f} M events/s "
              f"({bus.num_shards} shards, producer nonce {nonce})")
    with Bus(config) as bus:  # reopened: the events and the nonce persisted
        start = time.perf_counter()
        seen, cursor = 0, None
        while True:
            page = bus.poll(cursor, 10_000)
            seen += len(page.events)
            cursor = page.next_cursor
            if not page.events and not page.has_more:
                break
        secs = time.perf_counter() - start
        odd, cursor = [], None
        while True:  # a filtered poll pages through everything, keeping matches
            page = bus.poll(cursor, 10_000, filter={"field": "n", "op": "in", "value": [7, 499_999]})
            odd += page.events
            cursor = page.next_cursor
            if not page.events and not page.has_more:
                break
        print(f"  polled back  {seen} events after a restart in {secs:.2f} s: {seen / secs / 1e6:.2f} M events/s "
              f"(same nonce: {'yes' if bus.stats()['producer_nonce'] == nonce else 'NO'})")
        print(f"  filtered     n in [7, 499999]: {sorted(e.payload.decode() for e in odd)}")
        report = bus.shutdown()
        print(f"  shutdown     lossy: {report['shutdown_was_lossy']}, dropped: {report['events_dropped']}")
        if seen != total or report["shutdown_was_lossy"]:
            raise SystemExit("  the bus lost events")
finally:
    shutil.rmtree(base, ignore_errors=True)

print("\ndone.")
