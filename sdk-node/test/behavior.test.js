'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const netmesh = require('netmesh');
const { Rules, Safety, LoadBalancer, ShuttingDownError } = netmesh;

const RULES = {
  name: 'edge',
  rules: [
    {
      id: 'big',
      priority: 'high',
      condition: { single: { field: 'size', op: 'Gt', value: 1000 } },
      action: { reject: { reason: 'too large' } },
      rate_limit: { max_executions: 1, window_ms: 3600000 },
    },
    {
      id: 'pro',
      tags: ['tier'],
      condition: { single: { field: 'user.tier', op: 'Eq', value: 'pro' } },
      action: { log: { level: 'info', message: 'pro' } },
    },
  ],
};

test('rules: evaluate, rate limit, stats, round trip, typed errors', () => {
  const rules = new Rules(RULES);
  const e = rules.evaluate({ size: 5000.5, user: { tier: 'pro' } });
  assert.equal(e.visited, 2n);
  assert.deepEqual(e.outcomes.map((o) => o.rule_id), ['big', 'pro']);
  assert.equal(e.outcomes[0].action.reject.reason, 'too large');
  const second = rules.evaluate('{"size": 2000}');
  assert.equal(second.outcomes[0].suppressed, 'rate_limited');
  assert.equal(second.outcomes[0].action, null);
  assert.equal(rules.evaluate({}, 'tier').visited, 1n);
  const stats = rules.stats('big');
  assert.equal(stats.matches, 2n);
  assert.equal(stats.executions, 1n);
  const again = new Rules(rules.toJSON());
  assert.deepEqual(again.toJSON().rules.map((r) => r.id), ['big', 'pro']);
  again.close();
  rules.remove('pro');
  assert.throws(() => rules.stats('pro'), netmesh.RulesUnknownRuleError);
  assert.throws(() => rules.evaluate('{broken'), (e) => e instanceof netmesh.RulesInvalidError && /context/.test(e.message));
  assert.throws(() => rules.load(RULES), (e) => e instanceof netmesh.RulesInvalidError && /duplicate/.test(e.message));
  assert.throws(() => new Rules({ name: 'x', rulez: [] }), (e) => e instanceof netmesh.RulesInvalidError && /rulez/.test(e.message));
  rules.close();
  rules.close();
  assert.throws(() => rules.evaluate({}), ShuttingDownError);
});

test('safety: permits release with `using`, caps, kill switch, limits, audit', () => {
  const safety = new Safety({
    limits: { max_concurrent: 1 },
    policies: [
      { name: 'no-secrets', rule: { block: '(?i)password' } },
      { name: 'mail', rule: { redact: '[a-z]+@[a-z]+' } },
    ],
  });
  const permit = safety.acquire('a', { content: 'to bob@example', tokens: 10 });
  try {
    assert.equal(permit.info().redacted, 'to [REDACTED]');
    permit.consume(4);
    assert.throws(() => safety.acquire('b'), (e) => e instanceof netmesh.SafetyLimitError && /concurrent/.test(e.message));
  } finally {
    permit[Symbol.dispose]();
  }
  const u = safety.usage();
  assert.equal(u.concurrent, 0n);
  assert.equal(u.tokens_last_minute, 4n);
  assert.throws(() => safety.acquire('a', { content: 'my password' }), netmesh.SafetyContentError);
  safety.kill('maintenance');
  assert.throws(() => safety.check('a'), (e) => e instanceof netmesh.SafetyKillSwitchError && /maintenance/.test(e.message));
  safety.resetKillSwitch();
  safety.setLimits({ per_source_rpm: 1 });
  assert.equal(safety.limits.per_source_rpm, 1n);
  safety.acquire('fresh').release();
  assert.throws(() => safety.acquire('fresh'), netmesh.SafetyRateLimitedError);
  assert.throws(() => safety.setLimits({ per_source_rmp: 1 }), (e) => e instanceof netmesh.SafetyConfigError && /per_source_rmp/.test(e.message));
  assert.ok(safety.audit(true).filter((a) => a.kind === 'blocked').length >= 4);
  assert.deepEqual(safety.audit(), []);
  safety.close();
});

test('load balancer: selections release on complete and on close', () => {
  const lb = new LoadBalancer({ strategy: 'power_of_two', seed: 1, max_connections: 1 });
  assert.throws(() => lb.select(), netmesh.LbNoEndpointError);
  const one = Buffer.alloc(32, 1);
  const two = Buffer.alloc(32, 2);
  lb.add(one);
  lb.add(two, { tags: ['gpu'] });
  assert.throws(() => lb.add(two), netmesh.LbDuplicateEndpointError);
  assert.throws(() => lb.add(Buffer.alloc(32, 3), { health: 'sideways' }), (e) => e instanceof netmesh.LbConfigError && /sideways/.test(e.message));
  const sel = lb.select({ required_tags: ['gpu'] });
  try {
    assert.deepEqual(sel.id, two);
    assert.equal(sel.isProbe, false);
    assert.deepEqual(lb.endpoints().map((e) => e.connections), [0n, 1n]);
  } finally {
    sel[Symbol.dispose]();
  }
  assert.deepEqual(lb.endpoints().map((e) => e.connections), [0n, 0n]);
  const a = lb.select();
  const b = lb.select();
  assert.throws(() => lb.select(), netmesh.LbNoEndpointError);
  a.complete(true);
  b.complete(false);
  assert.ok(a.closed && b.closed);
  assert.deepEqual(lb.endpoints().map((e) => e.connections), [0n, 0n]);
  lb.remove(two);
  assert.throws(() => lb.remove(two), netmesh.LbUnknownEndpointError);
  lb.close();
});

test('closeAsync waits for calls and later calls are refused', async () => {
  const safety = new Safety();
  const permit = safety.acquire('x');
  await permit.closeAsync();
  await permit.closeAsync();
  assert.throws(() => permit.consume(1), ShuttingDownError);
  assert.equal(safety.usage().concurrent, 0n);
  await safety.closeAsync();
  assert.throws(() => safety.usage(), ShuttingDownError);
});
