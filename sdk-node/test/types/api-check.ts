// Type-checked (tsc --noEmit) against the installed package's index.d.ts; not run.
import {
  Compute,
  ComputeGroup,
  type GroupStatus,
  type Routed,
  type SyncReport,
  Daemon,
  Delivery,
  type DaemonEvent,
  type MigrationStatus,
  ComputeDaemonError,
  NetDB,
  type NetDBOptions,
  type MeshRoutes,
  type MeshRoute,
  type SubnetRule,
  type ChannelConfig,
  type PublishReport,
  type NodeCapabilities,
  type Capabilities,
  type CapabilityFilter,
  type GpuVendor,
  type Modality,
  ChannelUnauthorizedError,
  MeshNoRouteError,
  Mesh,
  MeshStream,
  MeshEvent,
  MeshBackpressureError,
  Model,
  ModelKind,
  Tasks,
  Memories,
  Watch,
  Bus,
  BusyError,
  CancelledError,
  setLogLevel,
  getLogLevel,
  setLogHook,
  defaultLogHook,
  LOG_LEVELS,
  type TaskFilter,
  type LogRecord,
  type LogLevel,
  type SignalOptions,
  type CallEvent,
  Task,
  Memory,
  ModelSnapshot,
  Progress,
  CortexError,
  CortexHaltedError,
  Identity,
  Token,
  Scope,
  sealEnvelope,
  sealEnvelopeAsync,
  openEnvelope,
  openEnvelopeAsync,
  x25519PublicKey,
  channelHash,
  validateChannel,
  isValidChannel,
  version,
  abiVersion,
  ABI_VERSION,
  TOKEN_SIZE,
  ENVELOPE_SIZE,
  Status,
  Constants,
  statusName,
  NetError,
  ShuttingDownError,
  ReadOnlyError,
  TokenError,
  TokenExpiredError,
  EnvelopeError,
  EnvelopeSealOpenFailedError,
  ChannelNameError,
  Redex,
  RedexFile,
  RedexTail,
  RedexError,
  RedexLockedError,
  RedexClosedError,
  RedexInvalidConfigError,
  RedexInlineLengthError,
  RedexIoError,
  RedexPoisonedError,
  RedexSyncFailedError,
  RedexTooLargeError,
  RedexGenerationOverflowError,
  RedexNoPersistentDirError,
  RedexCorruptError,
  RedexSeqExhaustedError,
  WAIT_FOREVER,
  internal,
  type StatusName,
  type ConstantName,
  type PoolJobEvent,
  type RedexFileOptions,
  type RedexTailItem,
  type RedexRecord,
  type RedexLagged,
  type RedexRecoveryReport,
  type RedexDroppedRecord,
  type RedexDropReason,
} from 'netmesh';

class TypedCounter extends Daemon {
  count = 0n;
  process(event: DaemonEvent): Buffer[] {
    this.count += 1n;
    return [Buffer.from(event.payload)];
  }
  snapshot(): Buffer {
    return Buffer.from(this.count.toString());
  }
  restore(state: Buffer): void {
    this.count = BigInt(state.toString());
  }
}

async function computeCheck(mesh: Mesh): Promise<void> {
  const rt: Compute = Compute.open(mesh, { workTimeoutMs: 1000 });
  rt.register('counter', () => new TypedCounter());
  const origin: bigint = rt.spawn('counter', Buffer.alloc(32));
  const outcome: number = await rt.deliver(origin, 1n, 1n, Buffer.from('x'));
  const batch: number[] | null = await rt.deliverBatch(origin, 1n, 2n, [Buffer.from('x')], { timeoutMs: 100 });
  void batch;
  if (outcome === Delivery.FORWARDED) await rt.startMigration(origin, 1n, 2n);
  const phase: MigrationStatus = await rt.migrationStatus(origin);
  void phase;
  const status: MigrationStatus | null = await rt.waitMigration(origin, 100);
  if (status?.state === 'failed') throw new ComputeDaemonError(status.reason ?? '', -503);
  const stats = await rt.waitProcessed(origin, 1n, 100);
  void stats?.eventsProcessed;
  await rt.subscribeChannel(origin, 1n, 'ticks', { token: null, signal: AbortSignal.timeout(100) });
  const channels: { publisher: bigint; channel: string }[] = (await rt.stats(origin)).channels;
  void channels;
  await rt.unsubscribeChannel(origin, 1n, 'ticks');
  const group: ComputeGroup = await ComputeGroup.replica([rt], 'counter', Buffer.alloc(32), 1, { lb: { strategy: 'round_robin' } });
  const routed: Routed = await group.route(1n, 2n, Buffer.from('x'), { key: 'k' });
  await group.scale(1);
  const replaced: number[] = await group.nodeFailed(routed.node);
  const st: GroupStatus = await group.status();
  void [replaced, st.members[0]?.origin];
  await group.closeAsync();
  const standby = await ComputeGroup.standby([rt], 'counter', Buffer.alloc(32), 2);
  const report: SyncReport = await standby.sync();
  const active: number = await standby.promote();
  void [report.throughSeq, active];
  await standby.closeAsync();
  const forks = await ComputeGroup.fork([rt], 'counter', 1n, origin, 1);
  await forks.closeAsync();
  await rt.closeAsync();
}

async function main(): Promise<void> {
  const v: string = version();
  const abi: number = abiVersion();
  const want: 2 = ABI_VERSION;
  const sizes: number = TOKEN_SIZE + ENVELOPE_SIZE;

  using a = Identity.fromSeed(Buffer.alloc(32, 1));
  await using b = Identity.generate();
  const ro = Identity.fromPublicKey(a.publicKey);
  const pk: Buffer = a.publicKey;
  const eid: Buffer = a.entityId;
  const seed: Buffer = a.seed();
  const origin: bigint = a.originHash;
  const node: bigint = a.nodeId;
  const readOnly: boolean = ro.isReadOnly;
  const closed: boolean = ro.closed;
  const sig: Buffer = a.sign('message');
  const sig2: Buffer = await a.signAsync(new Uint8Array(4));
  const ok: boolean = a.verify(Buffer.from('message'), sig);
  const ok2: boolean = await a.verifyAsync('message', sig2);
  ro.close();
  await b.closeAsync();

  const token: Token = Token.issue(a, b, { scope: Scope.PUBLISH | Scope.SUBSCRIBE, channel: 'sensors/lidar', ttlSecs: 3600n });
  const token2: Token = await Token.issueAsync(a, pk, { scope: Scope.ALL, ttlSecs: 60, channel: 0xe5d8, delegationDepth: 2 });
  const parsed = Token.fromBytes(token.bytes);
  const nb: bigint = parsed.notBefore;
  const na: bigint = parsed.notAfter;
  const nonce: bigint = parsed.nonce;
  const scope: number = parsed.scope + parsed.channelHash + parsed.delegationDepth;
  const issuer: Buffer = parsed.issuer;
  const subject: Buffer = parsed.subject;
  const verified: boolean = parsed.verify();
  const valid: boolean = parsed.isValid() && parsed.isValid(1700000000n) && parsed.isValid(1700000000);
  parsed.assertValid(4102444800n);
  const expired: boolean = parsed.isExpired();
  const auth: boolean = parsed.authorizes(Scope.SUBSCRIBE, 'sensors/lidar') || parsed.authorizes(Scope.ADMIN, 0xe5d8);
  const child: Token = token2.delegate(b, a.publicKey, Scope.SUBSCRIBE);
  const child2: Token = await token2.delegateAsync(b, a, Scope.SUBSCRIBE);
  const same: boolean = child.equals(child2);
  const raw: Buffer = child.toBuffer();

  const secret = Buffer.alloc(32, 9);
  const link = new Uint8Array(32);
  const env: Buffer = sealEnvelope(a, x25519PublicKey(secret), link);
  const env2: Buffer = await sealEnvelopeAsync(a, x25519PublicKey(secret), link);
  const opened: Identity = openEnvelope(env, secret, link);
  const opened2: Identity = await openEnvelopeAsync(env2, secret, link, a);
  const opened3: Identity = openEnvelope(env, secret, link, a.publicKey);
  opened.close();
  opened2.close();
  opened3.close();

  const h: number = channelHash('sensors/lidar');
  validateChannel('a/b');
  const isValid: boolean = isValidChannel(Buffer.from('a b'));

  const expiredCode: number = Status.NET_ERR_TOKEN_EXPIRED;
  const tokenSize: number = Constants.NET_TOKEN_SIZE;
  const name: string = statusName(-22);
  const sn: StatusName = 'NET_ERR_SHUTTING_DOWN';

  try {
    parsed.assertValid(0n);
  } catch (e) {
    if (e instanceof TokenExpiredError) {
      const status: number = e.status;
      const code: string = e.code;
      const te: TokenError = e;
      const ne: NetError = e;
    } else if (e instanceof ShuttingDownError || e instanceof ReadOnlyError || e instanceof ChannelNameError) {
      const msg: string = e.message;
    } else if (e instanceof EnvelopeSealOpenFailedError) {
      const ee: EnvelopeError = e;
    }
  }

  const handle: bigint | null = internal.rawHandle(a);
  const libPath: string = internal.libraryPath;
  internal.poolEvents.on('job', (j: PoolJobEvent) => {
    const d: bigint = j.finishedAt - j.startedAt;
  });

  // RedEX
  using redex = Redex.open('/tmp/redex');
  await using memory = new Redex();
  const dir: string | null = redex.baseDir;
  const options: RedexFileOptions = {
    persistent: true,
    fsync: { intervalMs: 10, maxBytes: 1n << 20n },
    retention: { maxEvents: 1000n, maxBytes: 1 << 30, maxAgeMs: 60_000 },
  };
  using file: RedexFile = redex.openFile('orders/eu', options);
  const file2: RedexFile = await redex.openFileAsync(Buffer.from('orders/us'), { persistent: true, fsync: { everyN: 64 } });
  const file3 = memory.openFile('mem', '{"retention": {"max_events": 2}}');
  memory.openFile('mem2', { fsync: 'never' });
  const seq: bigint = file.append(Buffer.from('x'));
  const seq2: bigint = await file.appendAsync('y');
  const seq3: bigint = file.appendInline(new Uint8Array(8));
  const first: bigint | null = file.appendBatch([Buffer.from('a'), 'b']);
  const first2: bigint | null = await file.appendBatchAsync(new Set(['c']));
  const got: Buffer | null = file.read(seq);
  const got2: Buffer | null = await file.readAsync(0);
  const range: RedexRecord[] = file.readRange(0n, 10n);
  const range2 = await file.readRangeAsync(0, 10);
  const firstSeq: bigint = range2[0].seq;
  const firstPayload: Buffer = range[0].payload;
  const next: bigint = file.nextSeq + file.length;
  file.sync();
  await file.syncAsync();
  const removed: bigint = file.sweepRetention() + (await file.sweepRetentionAsync());
  const fileName: string = file.name;
  const report: RedexRecoveryReport | null = file.recoveryReport();
  if (report !== null) {
    const dropped: RedexDroppedRecord[] = report.dropped;
    const dropSeq: bigint | null = dropped[0].seq;
    const reason: RedexDropReason = dropped[0].reason;
    const counts: bigint = report.records + report.entries + report.holes + report.tornIdxBytes +
      report.datTruncatedBytes + report.timestampsRestored + dropped[0].position + dropped[0].storedSeq;
    const flags: boolean = report.clean && report.repaired && report.indexRewritten;
    const generation: number = report.generation;
    const notes: string[] = report.notes;
    void [dropSeq, reason, counts, flags, generation, notes];
  }
  redex.openFile('orders/eu', { persistent: true, repair: true });
  const tail: RedexTail = file.tail();
  const ac = new AbortController();
  const cancellable: RedexTail = file.tail(0n, { signal: ac.signal });
  const r0: IteratorResult<RedexTailItem, undefined> = await cancellable.next(undefined, { signal: AbortSignal.timeout(10) });
  const r00: IteratorResult<RedexTailItem, undefined> | null = await cancellable.next(5, { signal: ac.signal });
  await cancellable[Symbol.asyncDispose]();
  void [r0, r00];
  for await (const item of file.tail(0n)) {
    if (item.lagged) {
      const missed: bigint = item.resumeAt - item.missedFrom;
      const lag: RedexLagged = item;
      void [missed, lag];
    } else {
      const s: bigint = item.seq;
      const p: Buffer = item.payload;
      void [s, p];
    }
    break;
  }
  const r1: IteratorResult<RedexTailItem, undefined> = await tail.next();
  const r2: IteratorResult<RedexTailItem, undefined> | null = await tail.next(100);
  if (r2 !== null && !r2.done && !r2.value.lagged) {
    const payload: Buffer = r2.value.payload;
    void payload;
  }
  const pos: bigint = tail.position;
  const tailFile: RedexFile = tail.file;
  const it: AsyncIterable<RedexTailItem> = tail;
  const manual = tail[Symbol.asyncIterator]();
  const r3: IteratorResult<RedexTailItem> = await manual.next();
  void r3;
  tail.close();
  await tail.return();
  file2.close();
  await file3.closeAsync();
  redex.close();
  await redex.closeAsync();
  const forever: number = WAIT_FOREVER + Constants.NET_WAIT_FOREVER;
  const cn: ConstantName = 'NET_WAIT_FOREVER';
  const lagged: number = Status.NET_LAGGED + Status.NET_ERR_REDEX_LOCKED;
  try {
    file.append('z');
  } catch (e) {
    if (e instanceof RedexLockedError || e instanceof RedexClosedError || e instanceof RedexInvalidConfigError) {
      const re: RedexError = e;
      const code: string = re.code;
      void code;
    } else if (
      e instanceof RedexInlineLengthError ||
      e instanceof RedexIoError ||
      e instanceof RedexPoisonedError ||
      e instanceof RedexSyncFailedError ||
      e instanceof RedexTooLargeError ||
      e instanceof RedexGenerationOverflowError ||
      e instanceof RedexNoPersistentDirError ||
      e instanceof RedexCorruptError ||
      e instanceof RedexSeqExhaustedError
    ) {
      const ne: NetError = e;
      void ne;
    }
  }
  const redexHandle: bigint | null = internal.rawHandle(file);
  const json: string | null = internal.redexConfigJson(options);
  const budget: number = internal.waitBudget() + internal.waits().queued;
  // @ts-expect-error sequence numbers are bigint
  const wrongSeq: number = file.append('x');
  // @ts-expect-error unknown option keys are rejected
  redex.openFile('x', { persistant: true });
  // @ts-expect-error fsync policies are 'never' or objects
  redex.openFile('x', { fsync: 'always' });
  // @ts-expect-error no public constructor
  new RedexFile();
  void [dir, seq, seq2, seq3, first, first2, got, got2, firstSeq, firstPayload, next, removed, fileName, r1, pos, tailFile, it];
  void [forever, cn, lagged, redexHandle, json, budget, wrongSeq];

  // CortEX
  {
    const r = Redex.open();
    const tasks = Tasks.open(r, 1n, { persistent: false, policy: 'stop', start: 'live', changesCapacity: 8 });
    const seqT: bigint = tasks.create(1, 'title');
    const okWait: Promise<boolean> = tasks.waitForSeq(seqT, 1000);
    const row: Task | null = tasks.findUnique(1n);
    const rows: Task[] = tasks.findMany({ status: 'pending', orderBy: 'created_desc', limit: 10 });
    const n: bigint = tasks.countWhere({ titleContains: 'x' });
    const w: Watch<Task> = tasks.watch({ ids: [1n, 2] });
    const upd = w.next(100);
    const snap: ModelSnapshot = tasks.snapshot();
    const restored: Tasks = Tasks.restore(r, 1n, snap);
    const p: Progress = tasks.progress();
    const mem: Memories = Memories.open(r, 1n);
    const seqM: Promise<bigint> = mem.storeAsync(1n, 'c', ['t'], 's');
    const memRows: Memory[] = mem.findMany({ tagsAny: ['t'], pinned: true });
    const sw = mem.snapshotAndWatch();
    const firstMem: Memory[] = sw.rows;
    const halted: CortexError = new CortexHaltedError('x', -300);
    const asModel: Model<Task, TaskFilter> = tasks;
    const kind: number = tasks.kind + Tasks.kind + Memories.kind + ModelKind.TASKS + ModelKind.MEMORIES;
    const waited: Promise<boolean> = tasks.waitForSeq(seqT, undefined, { signal: AbortSignal.timeout(100) });
    const deleted: bigint = tasks.delete(1n) + mem.delete(2);
    const wSig: Watch<Memory> = mem.watch({ pinned: true }, { signal: new AbortController().signal });
    const upd2 = wSig.next(undefined, { signal: null });
    await tasks.closeAsync();
    await using disposable = Memories.open(r, 2n);
    void [asModel, kind, waited, deleted, upd2, disposable];
    // @ts-expect-error tasks have no tag filters
    tasks.findMany({ tagsAny: ['x'] });
    void [okWait, row, rows, n, upd, restored, p, seqM, memRows, firstMem, halted];
    const dbOptions: NetDBOptions = { withTasks: true, withMemories: true, persistent: false, policy: 'stop' };
    const db: NetDB = NetDB.open(r, 1n, dbOptions);
    const dbTasks: Tasks = db.tasks;
    const dbMemories: Memories = db.memories;
    const bundle: Buffer = db.snapshotBundle();
    const fromBundle: NetDB = NetDB.openFromBundle(r, 2n, bundle, { withTasks: true });
    const dbAsync: Promise<NetDB> = NetDB.openAsync(r, 3n, null);
    db.shutdown();
    await db.closeAsync();
    fromBundle.close();
    void [dbTasks, dbMemories, dbAsync];
  }

  // mesh
  {
    const m: Mesh = Mesh.open({ psk: Buffer.alloc(32), heartbeatIntervalMs: 100, connectForm: 'routed' });
    await computeCheck(m);
    const id: bigint = m.nodeId;
    const conn: Promise<void> = m.connect('127.0.0.1:1', m.publicKey, id);
    const st: MeshStream = m.openStream(id, 1n, { reliable: true, window: 0 });
    st.send('a', Buffer.from('b'));
    const ok: Promise<boolean> = st.sendBlocking(['x'], 100);
    const evs: Promise<MeshEvent[] | null> = m.recv(10, 100);
    const bp: MeshBackpressureError | null = null;
    const opts: SignalOptions = { signal: AbortSignal.timeout(1000) };
    const conn2: Promise<void> = m.connect('127.0.0.1:1', m.publicKey, id, opts);
    const acc: Promise<string | null> = m.accept(id, undefined, opts);
    const via: Promise<void> = m.connectVia(id, m.publicKey, 2n, opts);
    const routed: Promise<void> = m.connectRouted(m.publicKey, 2n);
    const table: MeshRoutes = m.routes();
    const first: MeshRoute | undefined = table.routes[0];
    const hop: bigint | undefined = first?.nextHop;
    const relay: bigint | null = m.peers()[0].relay;
    const noRoute: MeshNoRouteError | null = null;
    const rule: SubnetRule = { prefix: 'zone:', level: 0, values: { a: 3 } };
    const zoned: Mesh = Mesh.open({ subnet: '3.7', subnetPolicy: [rule] });
    const exported: ChannelConfig = { visibility: 'exported', exportTo: ['3.8'] };
    void exported;
    const peerSubnet: string | null = zoned.peers()[0].subnet;
    void [via, routed, hop, relay, noRoute, peerSubnet];
    const cfg: ChannelConfig = { requireToken: true, subscribeCaps: { requireTags: ['gpu'] }, maxRatePps: 10 };
    const evicted: number = m.registerChannel('news', cfg);
    const sub: Promise<void> = m.subscribe(id, 'news', { token: Buffer.alloc(159), signal: opts.signal });
    const unsub: Promise<void> = m.unsubscribe(id, 'news', opts);
    const report: PublishReport = m.publish('news', ['x', Buffer.from('y')], { reliable: true });
    const set: Capabilities = {
      tags: ['gpu'],
      hardware: { memoryMb: 1024, gpu: { vendor: 'nvidia', vramMb: 8192 }, accelerators: [{ accelType: 'tpu' }] },
      software: { runtimes: [['python', '3.12']], cudaVersion: null },
      models: [{ modelId: 'm', modalities: ['text', 'tool-use'] }],
      tools: [{ toolId: 't', inputSchema: null }],
      limits: { maxBatchSize: 8 },
    };
    m.announce(set);
    const filter: CapabilityFilter = { requireTags: ['gpu'], gpuVendor: 'amd', requireModalities: ['image'] };
    const found: bigint[] = m.findNodes({ filter });
    const best: { nodeId: bigint; score: number } | null = m.findBestNode({ weights: { memory: 1 } });
    const caps: NodeCapabilities[] = m.capabilities();
    const vendor: GpuVendor | undefined = caps[0].capabilities.hardware.gpu?.vendor;
    const mods: Modality[] = caps[0].capabilities.models[0].modalities;
    const toolId: string = caps[0].capabilities.tools[0].toolId;
    void [vendor, mods, toolId];
    const gone: number = m.deregisterChannel('news');
    m.installChannelToken(Buffer.alloc(159));
    const refused: ChannelUnauthorizedError | null = null;
    const chan: string = (await m.recv(1))?.[0]?.channel ?? '';
    void [evicted, sub, unsub, report, found, best, caps, gone, refused, chan, m.channels()];
    const evs2: Promise<MeshEvent[] | null> = m.recv(10, null, opts);
    const ok2: Promise<boolean> = st.sendBlocking(['x'], undefined, opts);
    for await (const e of m.events(opts)) {
      const d: Buffer = e.data;
      void d;
      break;
    }
    await st.closeAsync();
    await m.closeAsync();
    void [conn, ok, evs, bp, conn2, acc, evs2, ok2];
  }

  // bus
  {
    await using bus = Bus.open({ num_shards: 1, adapter: { type: 'redex' } });
    await bus.flush({ signal: AbortSignal.timeout(1000) });
    const page = await bus.poll({ limit: 10, signal: new AbortController().signal });
    const report = await bus.shutdown();
    try {
      bus.close();
    } catch (e) {
      if (e instanceof BusyError || e instanceof CancelledError) {
        const ne: NetError = e;
        void ne;
      }
    }
    void [page, report];
  }

  // log
  {
    const old: LogLevel = setLogLevel('info');
    setLogLevel(2);
    const now: LogLevel = getLogLevel();
    const levels: readonly LogLevel[] = LOG_LEVELS;
    const prev = setLogHook((record: LogRecord) => {
      const t: string = record.target + record.message + record.text + record.level;
      const n: number = record.levelNumber;
      void [t, n];
    });
    setLogHook(null);
    setLogHook(defaultLogHook);
    // @ts-expect-error not a level
    setLogLevel('loud');
    internal.callEvents.on('call', (c: CallEvent) => {
      const took: number = c.finishedAt - c.startedAt + c.status;
      const why: string = c.op + c.message;
      void [took, why, c.preempted];
    });
    const leaks: number = internal.leaks().freed;
    void [old, now, levels, prev, leaks];
  }

  // Mistakes the declarations must reject:
  // @ts-expect-error u64 values are bigint, not number
  const wrong: number = a.originHash;
  // @ts-expect-error no public constructor
  new Identity();
  // @ts-expect-error scope is required
  Token.issue(a, b, { ttlSecs: 1n });
  // @ts-expect-error channelHash returns a number
  const wrongHash: string = channelHash('x');

  void [v, abi, want, sizes, eid, seed, origin, node, readOnly, closed, ok, ok2, nb, na, nonce, scope, issuer, subject];
  void [verified, valid, expired, auth, same, raw, h, isValid, expiredCode, tokenSize, name, sn, handle, libPath, wrong, wrongHash];
}

void main;
