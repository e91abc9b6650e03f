'use strict';
// Compute groups (net_compute_group_t): replica, fork and standby groups of
// daemons of one registered kind, placed on distinct nodes among the
// Computes they are made over (runtimes of this process: groups spanning
// processes are not there yet). Each member is a Daemon built by its
// node's kind factory on the main thread (a Create work item), so every
// group call that reaches the members (create, route, scale, nodeFailed,
// sync, promote, status, closeAsync) runs on the threadpool and resolves
// once the members have answered: the event loop stays free to run them.

const util = require('node:util');
const { STATUS, fns, errorSlot, takeError } = require('./native');
const args = require('./args');
const asyncCalls = require('./async');
const pool = require('./pool');
const { rawComputeHandle } = require('./compute');
const { leakRegistry } = require('./finalize');
const { parseJsonBigInt } = require('./json');
const { errorFor, ShuttingDownError } = require('./errors');

const groupFinalizer = leakRegistry('ComputeGroup', 'net_compute_group_free');
const kConstruct = Symbol('netmesh.ComputeGroup.construct');

function runtimes(nodes) {
  if (!Array.isArray(nodes) || nodes.length === 0) throw new TypeError('nodes must be a non-empty array of Compute');
  return nodes.map((n) => {
    const h = rawComputeHandle(n);
    if (h === undefined) throw new TypeError('nodes must be Compute objects');
    if (h === null) throw new ShuttingDownError('Compute is closed', STATUS.NET_ERR_SHUTTING_DOWN);
    return h;
  });
}

function countArg(count) {
  if (!Number.isInteger(count) || count < 0 || count > 0xffffffff) throw new RangeError('count must be an integer in 0..2^32-1');
  return count;
}

function seed32(seed) {
  const s = args.bytes(seed, 'seed');
  if (s.length !== 32) throw new RangeError(`seed must be 32 bytes, got ${s.length}`);
  return new Uint8Array(s);
}

function lbJson(options) {
  const lb = options?.lb;
  return lb === undefined || lb === null ? null : new Uint8Array(Buffer.from(typeof lb === 'string' ? lb : JSON.stringify(lb), 'utf8'));
}

function toStatus(j) {
  const big = (v) => (v === undefined || v === null ? v : BigInt(v));
  const out = {
    kind: j.kind,
    daemonKind: j.daemon_kind,
    nodes: j.nodes.map(BigInt),
    health: j.health,
    healthy: Number(j.healthy),
    total: Number(j.total),
    members: j.members.map((m) => ({
      index: Number(m.index),
      origin: BigInt(m.origin),
      node: BigInt(m.node),
      healthy: m.healthy,
      generation: Number(m.generation),
      ...('synced_through' in m ? { syncedThrough: big(m.synced_through) } : {}),
    })),
  };
  if (j.group_id !== undefined) out.groupId = Number(j.group_id);
  if (j.parent_origin !== undefined) {
    Object.assign(out, { parentOrigin: BigInt(j.parent_origin), forkSeq: BigInt(j.fork_seq), lineageVerified: j.lineage_verified, records: j.records });
  }
  if (j.active !== undefined) Object.assign(out, { origin: BigInt(j.origin), active: Number(j.active), logged: Number(j.logged) });
  return out;
}

/**
 * A replica, fork or standby group. Make one with ComputeGroup.replica(),
 * ComputeGroup.fork() or ComputeGroup.standby(); closeAsync() stops its
 * members. Origins and node ids are bigints.
 */
class ComputeGroup {
  #handle;

  /** @private Use ComputeGroup.replica(), .fork() or .standby(). */
  constructor(token, handle) {
    if (token !== kConstruct) throw new TypeError('use ComputeGroup.replica(), .fork() or .standby()');
    this.#handle = handle;
    groupFinalizer.register(this, handle, this);
  }

  static #create(op, argv, keep) {
    return pool
      .getPool()
      .run(op, argv, keep)
      .then((h) => new ComputeGroup(kConstruct, h));
  }

  /**
   * `count` identical daemons of `kind` (identities from the 32-byte
   * `seed`), one per node, sharing routed events through a load balancer;
   * `options.lb` is its configuration, e.g. `{ strategy: 'round_robin' }`.
   */
  static replica(nodes, kind, seed, count, options) {
    return pooled(() => {
      const rts = runtimes(nodes);
      const k = new Uint8Array(Buffer.from(String(kind), 'utf8'));
      const s = seed32(seed);
      const lb = lbJson(options);
      return ComputeGroup.#create('computeGroupReplica', [rts, k, s, countArg(count), lb], nodes);
    });
  }

  /**
   * `count` forks of daemon `parentOrigin` (running on node `parentNode`),
   * each from its state with a new identity and a ForkRecord (see status()).
   */
  static fork(nodes, kind, parentNode, parentOrigin, count, options) {
    return pooled(() => {
      const rts = runtimes(nodes);
      const k = new Uint8Array(Buffer.from(String(kind), 'utf8'));
      const lb = lbJson(options);
      const argv = [rts, k, args.u64(parentNode, 'parentNode'), args.u64(parentOrigin, 'parentOrigin'), countArg(count), lb];
      return ComputeGroup.#create('computeGroupFork', argv, nodes);
    });
  }

  /**
   * `count` (≥ 2) copies of one daemon: member 0 active, the others
   * standbys brought to its state by sync() and made active by promote().
   */
  static standby(nodes, kind, seed, count) {
    return pooled(() => {
      const rts = runtimes(nodes);
      const k = new Uint8Array(Buffer.from(String(kind), 'utf8'));
      const s = seed32(seed);
      return ComputeGroup.#create('computeGroupStandby', [rts, k, s, countArg(count)], nodes);
    });
  }

  #live() {
    const h = this.#handle;
    if (h === null) throw new ShuttingDownError('ComputeGroup is closed', STATUS.NET_ERR_SHUTTING_DOWN);
    return h;
  }

  get closed() {
    return this.#handle === null;
  }

  /**
   * Routes an event into the group and resolves once it is processed:
   * `{ index, origin, node, outcome }` (outcome a Delivery). A replica or
   * fork group's load balancer picks the member (`options.key`: the
   * consistent-hash key); a standby group's active takes it.
   */
  route(producer, sequence, payload, options) {
    return pooled(async () => {
      const handle = this.#live();
      const p = new Uint8Array(args.bytes(payload ?? Buffer.alloc(0), 'payload'));
      const key = options?.key === undefined ? null : Buffer.from(String(options.key), 'utf8');
      const index = [0];
      const origin = [0n];
      const node = [0n];
      const outcome = [0];
      const error = errorSlot();
      const status = await asyncCalls.runAsync(fns.net_compute_group_route, [
        handle, args.u64(producer, 'producer'), args.u64(sequence, 'sequence'), p, p.length,
        key, key === null ? 0 : key.length, index, origin, node, outcome, error,
      ]);
      if (status < 0) throw errorFor(status, takeError(error));
      return { index: index[0], origin: BigInt(origin[0]), node: BigInt(node[0]), outcome: outcome[0] };
    });
  }

  /** Scales a replica or fork group to `count` members. */
  scale(count) {
    return pooled(() => this.#run('computeGroupScale', [this.#live(), countArg(count)]).then(() => undefined));
  }

  /**
   * Moves member `index` to node `node` with the migration protocol: a
   * replica or fork, or a standby group's active (`index` = its active
   * index). The same member (identity, state and chain) continues there.
   * Resolves when the move is over; rejects with
   * ComputeGroupMigrationError if it failed (the member stays).
   */
  migrate(index, node) {
    return pooled(() =>
      this.#run('computeGroupMigrate', [this.#live(), args.uint(index, 32, 'index'), args.u64(node, 'node')]).then(() => undefined),
    );
  }

  #run(op, argv) {
    return pool.getPool().run(op, argv, [this]);
  }

  #json(name, ...extra) {
    return this.#run('computeGroupJson', [name, this.#live(), ...extra]).then((raw) => parseJsonBigInt(Buffer.from(raw).toString('utf8')));
  }

  /** Reports node `node` failed: its members are re-created elsewhere; resolves with the indices replaced. */
  nodeFailed(node) {
    return pooled(async () => {
      const j = await this.#json('net_compute_group_node_failed', args.u64(node, 'node'));
      return j.replaced.map(Number);
    });
  }

  /**
   * Makes the group follow `observer`'s failure detector: every `everyMs`
   * (1 or more) it looks at the peers of `observer`'s node, and a node it
   * saw alive that is reported failed (or is gone) is handled as by
   * nodeFailed(), once, and as by nodeRecovered() when it is alive again —
   * nobody has to report them. `observer` is one of the group's runtimes,
   * or any on a node connected to the members' nodes, its mesh started
   * (Mesh#start). A second call replaces the watch; unwatchFailures() or
   * closing the group ends it. Resolves once the watch runs.
   */
  watchFailures(observer, everyMs) {
    return pooled(() => {
      const rt = rawComputeHandle(observer);
      if (rt === undefined) throw new TypeError('observer must be a Compute');
      if (rt === null) throw new ShuttingDownError('Compute is closed', STATUS.NET_ERR_SHUTTING_DOWN);
      const ms = args.uint(everyMs, 32, 'everyMs');
      return this.#run('computeGroupWatchFailures', [this.#live(), rt, ms]).then(() => undefined);
    });
  }

  /** Ends watchFailures() (nothing to do without one); resolves once it has ended. */
  unwatchFailures() {
    return pooled(() => this.#run('computeGroupUnwatchFailures', [this.#live()]).then(() => undefined));
  }

  /**
   * Reports node `node` back (alive again, or restarted): it may hold members
   * again, copies the group left there are stopped, and an unhealthy member
   * still running there takes traffic again. Resolves with the indices back
   * in service (none for a standby group).
   */
  nodeRecovered(node) {
    return pooled(async () => {
      const j = await this.#json('net_compute_group_node_recovered', args.u64(node, 'node'));
      return j.restored.map(Number);
    });
  }

  /** Brings a standby group's standbys to the active's state: `{ throughSeq, synced, failed: [{ index, error }] }`. */
  sync() {
    return pooled(async () => {
      const j = await this.#json('net_compute_group_sync');
      return {
        throughSeq: BigInt(j.through_seq),
        synced: j.synced.map(Number),
        failed: j.failed.map((f) => ({ index: Number(f.index), error: f.error })),
      };
    });
  }

  /** Makes a standby group's most recent standby the active (replaying the events logged since its sync); resolves with its index. */
  promote() {
    return pooled(() => this.#run('computeGroupPromote', [this.#live()]));
  }

  /** The group: kind, health, nodes, members and the kind's own fields. */
  status() {
    return pooled(async () => toStatus(await this.#json('net_compute_group_status')));
  }

  /** Frees the group off the event loop (its members stop on their nodes). Idempotent. */
  async closeAsync() {
    const h = this.#handle;
    if (h === null) return;
    this.#handle = null;
    groupFinalizer.unregister(this);
    await pool.getPool().run('free', ['net_compute_group_free', h]);
  }

  [Symbol.asyncDispose]() {
    return this.closeAsync();
  }

  [util.inspect.custom]() {
    return `ComputeGroup { ${this.closed ? 'closed' : 'open'} }`;
  }
}

/** A promise for `fn()`, rejected (not thrown) when it throws. */
function pooled(fn) {
  try {
    return fn();
  } catch (err) {
    return Promise.reject(err);
  }
}

module.exports = { ComputeGroup };
