'use strict';
// Channels and capabilities through the Node SDK: register, subscribe
// (accepted, unknown channel, token required without and with a token the
// publisher's identity issued), publish with a report and receive with the
// channel name, unsubscribe stops delivery; announce and find across three
// nodes (one hop forwarded; snake_case keys still accepted); a full
// camelCase capability set read back field by field and found by a filter on
// each kind of field; a full channel (ChannelFullError) and a spent publish
// rate (ChannelRateLimitedError); a subscriber relayed through R; calls after
// close.

const test = require('node:test');
const assert = require('node:assert/strict');
const {
  Identity,
  Token,
  Scope,
  ChannelConfigError,
  ChannelFullError,
  ChannelRateLimitedError,
  ChannelUnauthorizedError,
  ChannelUnknownError,
  MeshCapabilitiesError,
  ShuttingDownError,
} = require('netmesh');

const { FAST, waitFor, started, link, recvOne } = require('./helpers');

const SEED = Buffer.alloc(32, 7);

test('mesh channels: subscribe, tokens, publish, receive with the channel, unsubscribe', async (t) => {
  const a = started(t, { ...FAST, identitySeed: SEED });
  const b = started(t);
  await link(b, a);
  assert.throws(() => a.registerChannel('news', { priority: 300 }), (e) => e instanceof ChannelConfigError && /priority/.test(e.message));
  assert.throws(() => a.registerChannel('news', { colour: 'red' }), (e) => e instanceof ChannelConfigError && /colour/.test(e.message));
  assert.equal(a.registerChannel('news', { reliable: true }), 0);
  a.registerChannel('secret', { requireToken: true });

  await b.subscribe(a.nodeId, 'news');
  await assert.rejects(b.subscribe(a.nodeId, 'nope'), ChannelUnknownError);
  await assert.rejects(b.subscribe(a.nodeId, 'secret'), ChannelUnauthorizedError);
  const issuer = Identity.fromSeed(SEED);
  const token = Token.issue(issuer, b.entityId, { scope: Scope.SUBSCRIBE, channel: 'secret', ttlSecs: 3600 });
  issuer.close();
  await b.subscribe(a.nodeId, 'secret', { token: token.bytes, signal: AbortSignal.timeout(20000) });

  const report = a.publish('news', ['n1']);
  assert.deepEqual(report, { attempted: 1, delivered: 1, evicted: 0, errors: [] });
  const e1 = await recvOne(b);
  assert.deepEqual([e1.peer, e1.data.toString(), e1.channel], [a.nodeId, 'n1', 'news']);
  a.publish('secret', [Buffer.from('s1')], { reliable: true });
  const e2 = await recvOne(b);
  assert.deepEqual([e2.data.toString(), e2.channel], ['s1', 'secret']);
  assert.throws(() => a.publish('unregistered', ['x']), ChannelUnknownError);
  assert.deepEqual(a.channels().channels.map((c) => c.name).sort(), ['news', 'secret']);

  // Unsubscribe stops delivery: the next event b gets is on "secret".
  await b.unsubscribe(a.nodeId, 'news');
  assert.equal(a.publish('news', ['gone']).attempted, 0);
  a.publish('secret', ['s2']);
  await waitFor('an event', () => {
    const e = b.tryRecv();
    if (e === null) return false;
    assert.deepEqual([e.data.toString(), e.channel], ['s2', 'secret']);
    return true;
  });
  assert.equal(a.deregisterChannel('secret'), 1);
  a.installChannelToken(token.bytes);

  a.close();
  assert.throws(() => a.publish('news', ['x']), ShuttingDownError);
  assert.throws(() => a.registerChannel('news'), ShuttingDownError);
  await assert.rejects(a.subscribe(1n, 'news'), ShuttingDownError);
});

test('mesh capabilities: announce and find across three nodes', async (t) => {
  const [a, b, c] = [started(t), started(t), started(t)];
  await link(a, b);
  await link(c, b);
  c.announce({ tags: ['gpu'], hardware: { memory_mb: 4096 } });
  assert.throws(() => c.announce({ hardware: { memroy_mb: 1 } }), (e) => e instanceof MeshCapabilitiesError && /memroy_mb/.test(e.message));
  const gpu = { filter: { require_tags: ['gpu'] } };
  await waitFor('a finds c', () => {
    const found = a.findNodes(gpu);
    return found.length === 1 && found[0] === c.nodeId;
  });
  assert.equal(a.findBestNode({ ...gpu, weights: { memory: 1 } }).nodeId, c.nodeId);
  assert.equal(a.findBestNode({ filter: { require_tags: ['tpu'] } }), null);
  assert.throws(() => a.findNodes({ scope: 'everywhere' }), MeshCapabilitiesError);
  const entry = a.capabilities().find((n) => n.nodeId === c.nodeId);
  assert.equal(entry.hopCount, 1);
  assert.equal(entry.capabilities.hardware.memoryMb, 4096);

  a.registerChannel('jobs', { subscribeCaps: { require_tags: ['gpu'] } });
  await link(c, a);
  await c.subscribe(a.nodeId, 'jobs');
  await assert.rejects(b.subscribe(a.nodeId, 'jobs'), ChannelUnauthorizedError);
});

test('mesh channels: a subscriber relayed through R', async (t) => {
  const [a, r, b] = [started(t), started(t), started(t)];
  await link(a, r);
  await link(b, r);
  await b.connectVia(r.nodeId, a.publicKey, a.nodeId);
  a.registerChannel('relayed');
  await b.subscribe(a.nodeId, 'relayed');
  assert.equal(a.publish('relayed', ['over r'], { reliable: true }).delivered, 1);
  const e = await recvOne(b);
  assert.deepEqual([e.peer, e.data.toString(), e.channel], [a.nodeId, 'over r', 'relayed']);
});

/** A set with every member set (enumeration names in assorted cases). */
const FULL = {
  hardware: {
    cpuCores: 16,
    cpuThreads: 32,
    memoryMb: 65536,
    gpu: { vendor: 'NVIDIA', model: 'RTX 4090', vramMb: 24576, computeUnits: 128, tensorCores: 512, fp16TflopsX10: 825 },
    additionalGpus: [{ vendor: 'amd', model: 'MI300', vramMb: 8192, computeUnits: 304, tensorCores: 0, fp16TflopsX10: 1307 }],
    storageMb: 2000000,
    networkMbps: 10000,
    accelerators: [{ accelType: 'tpu', model: 'v5e', memoryMb: 16384, topsX10: 3940 }],
  },
  software: {
    os: 'linux',
    osVersion: '6.8',
    runtimes: [['python', '3.12']],
    frameworks: [['torch', '2.3']],
    cudaVersion: '12.4',
    drivers: [['nvidia', '550.54']],
  },
  models: [
    {
      modelId: 'llama-3-8b',
      family: 'llama',
      parametersBX10: 80,
      contextLength: 8192,
      quantization: 'q4_k_m',
      modalities: ['text', 'tool_use'],
      tokensPerSec: 95,
      loaded: true,
    },
  ],
  tools: [
    {
      toolId: 'grep',
      name: 'Grep',
      version: '3.11',
      inputSchema: '{"type":"object"}',
      outputSchema: '{"type":"string"}',
      requires: ['fs'],
      estimatedTimeMs: 40,
      stateless: true,
    },
  ],
  tags: ['gpu', 'zone:eu'],
  limits: {
    maxConcurrentRequests: 4,
    maxTokensPerRequest: 4096,
    rateLimitRpm: 600,
    maxBatchSize: 8,
    maxInputBytes: 1 << 20,
    maxOutputBytes: 1 << 21,
  },
};

test('mesh capabilities: a full camelCase set reads back field by field', async (t) => {
  const [a, b, c] = [started(t), started(t), started(t)];
  await link(a, b);
  await link(c, b);
  assert.throws(
    () => c.announce({ hardware: { gpu: { vendor: 'nvidea' } } }),
    (e) => e instanceof MeshCapabilitiesError && /nvidea/.test(e.message),
  );
  assert.throws(() => c.announce({ models: [{ modalities: ['smell'] }] }), MeshCapabilitiesError);
  assert.throws(
    () => c.announce({ tools: [{ toolName: 'x' }] }),
    (e) => e instanceof MeshCapabilitiesError && /`tools\[0\]\.tool_name`/.test(e.message),
  );
  c.announce({ hardware: { gpu: { vendor: 'amd' } }, models: [{ modelId: 'partial' }] }); // items take their defaults
  c.announce(FULL);
  const finds = (filter) => {
    const found = a.findNodes({ filter });
    return found.length === 1 && found[0] === c.nodeId;
  };
  await waitFor('a finds c', () => finds({ requireTags: ['zone:eu'] }));
  const got = a.capabilities().find((n) => n.nodeId === c.nodeId).capabilities;
  // What was announced, with the enumeration names in their canonical lowercase form.
  const want = structuredClone(FULL);
  want.hardware.gpu.vendor = 'nvidia';
  want.models[0].modalities = ['text', 'tool-use'];
  for (const member of Object.keys(want)) assert.deepEqual(got[member], want[member], member);
  assert.deepEqual(got, want);

  for (const filter of [
    { requireModels: ['llama-3-8b'] },
    { requireTools: ['grep'] },
    { minMemoryMb: 65536 },
    { requireGpu: true, gpuVendor: 'nvidia' },
    { minVramMb: 24576 + 8192 },
    { minContextLength: 8192 },
    { requireModalities: ['tool-use', 'text'] },
    { require_tools: ['grep'] }, // snake_case still accepted
  ]) {
    assert.ok(finds(filter), JSON.stringify(filter));
  }
  for (const filter of [
    { requireModels: ['gpt'] },
    { minMemoryMb: 65537 },
    { gpuVendor: 'amd' }, // only the primary GPU counts
    { minVramMb: 24576 + 8192 + 1 },
    { requireModalities: ['image'] },
  ]) {
    assert.deepEqual(a.findNodes({ filter }), [], JSON.stringify(filter));
  }
});

test('mesh channels: a full channel and a spent publish rate', async (t) => {
  const [a, b, c] = [started(t), started(t), started(t)];
  await link(b, a);
  await link(c, a);
  a.registerChannel('one', { maxSubscribers: 1 });
  await b.subscribe(a.nodeId, 'one');
  await b.subscribe(a.nodeId, 'one'); // idempotent at the cap
  await assert.rejects(c.subscribe(a.nodeId, 'one'), ChannelFullError);
  a.registerChannel('slow', { maxRatePps: 1 });
  a.publish('slow', ['first']);
  assert.throws(() => a.publish('slow', ['second']), (e) => e instanceof ChannelRateLimitedError && /rate/.test(e.message));
});
